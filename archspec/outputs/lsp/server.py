"""``archspec lsp``: the language server (pygls), on stdio.

Checking runs on a worker thread, so the server keeps answering while it works.
Debounced: a change while a check of the same buffer runs does not start a second
one; when the running one ends it is thrown away (stale) and one check of the
newest text follows, so a burst of keystrokes costs one or two checks, and the
result of an older text never replaces a newer one (each is published only if the
buffer's version is still the one it checked). When a spec changes, open specs
that ``extends:`` it are checked again.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

from lsprotocol import types as lsp
from pygls.lsp.server import LanguageServer

from archspec import __version__
from archspec.errors import Location, Problem
from archspec.outputs.lsp import features
from archspec.outputs.lsp.analysis import Analysis, Finding, analyze

WAIT_S = 5.0  # how long a hover or hint waits for the check of the newest text


@dataclass
class Buffer:
    """What the server knows of one open document."""

    uri: str
    path: Path | None
    analysis: Analysis | None = None
    good: Analysis | None = None  # the newest one that got past parsing (names, blocks, vars)
    running: bool = False
    again: bool = False  # changed while a check ran: check once more when it ends
    fresh: asyncio.Event = field(default_factory=asyncio.Event)  # analysis is of the newest text


def uri_path(uri: str) -> Path | None:
    """``file:///a/b.yaml`` → ``/a/b.yaml``; None for ``untitled:`` and other schemes."""
    parsed = urlparse(uri)
    if parsed.scheme != "file":
        return None
    return Path(unquote(parsed.path)).resolve()


class SpecServer(LanguageServer):
    def __init__(self) -> None:
        super().__init__("archspec", __version__)
        self.buffers: dict[str, Buffer] = {}
        self.checked_versions: list[tuple[str, int | None]] = []  # for tests and the bench
        self._gc_holds = 0  # checks running (each holds the collector paused)
        self._gc_was_enabled = True

    # ---------------------------------------------------------------- checking
    def text_of(self, uri: str) -> tuple[str, int | None]:
        doc = self.workspace.get_text_document(uri)
        return doc.source, doc.version

    def overlay(self, path: Path) -> str | None:
        for buffer in self.buffers.values():
            if buffer.path == path:
                return self.text_of(buffer.uri)[0]
        return None

    def schedule(self, uri: str) -> None:
        buffer = self.buffers.get(uri)
        if buffer is None:
            return
        buffer.fresh.clear()
        if buffer.running:
            buffer.again = True
            return
        buffer.running = True
        asyncio.get_running_loop().create_task(self._check(buffer))

    async def _check(self, buffer: Buffer) -> None:
        self._hold_gc()
        try:
            while True:
                buffer.again = False
                text, version = self.text_of(buffer.uri)
                file = str(buffer.path) if buffer.path else buffer.uri
                try:
                    result = await asyncio.to_thread(analyze, text, buffer.path, file, self.overlay)
                except Exception as exc:  # a bug in archspec: say so in the editor, keep serving
                    result = _internal_error(text, buffer.path, file, exc)
                result.version = version
                if buffer.again or self.text_of(buffer.uri)[1] != version:
                    continue  # stale: the text changed while it was checked
                self._publish(buffer, result)
                break
        finally:
            buffer.running = False
            self._release_gc()

    def _hold_gc(self) -> None:
        """Keep the cyclic collector paused from a check's start until its diagnostics are
        out. A check makes some 100,000 objects; with the collector on, its first pass over
        them ran between the check and the publishing (~10 ms of a 500-layer round trip).
        Paused, that pass runs after the editor has its answer, before the next keystroke."""
        if self._gc_holds == 0:
            self._gc_was_enabled = gc.isenabled()
            gc.disable()
        self._gc_holds += 1

    def _release_gc(self) -> None:
        self._gc_holds -= 1
        if self._gc_holds == 0 and self._gc_was_enabled:
            gc.enable()

    def _publish(self, buffer: Buffer, result: Analysis) -> None:
        if buffer.uri not in self.buffers:
            return  # closed meanwhile
        # The analyses this one replaces hold some 100,000 objects: freeing them took ~3 ms
        # of a 500-layer round trip. They go once the diagnostics are out.
        retired = [buffer.analysis, buffer.good]
        asyncio.get_running_loop().call_soon(retired.clear)
        buffer.analysis = result
        if result.validated is not None:
            buffer.good = result
        buffer.fresh.set()
        self.checked_versions.append((buffer.uri, result.version))
        self.text_document_publish_diagnostics(
            lsp.PublishDiagnosticsParams(
                uri=buffer.uri, diagnostics=features.diagnostics(result), version=result.version
            )
        )
        if self._can_refresh_hints():  # shapes may have changed: the editor asks again
            self.workspace_inlay_hint_refresh(None)
        if buffer.path is not None:  # open specs that extend this one see the change
            for other in self.buffers.values():
                if other is not buffer and other.analysis and buffer.path in other.analysis.depends:
                    self.schedule(other.uri)

    def _can_refresh_hints(self) -> bool:
        caps = self.client_capabilities.workspace
        hints = caps.inlay_hint if caps is not None else None
        return bool(hints is not None and hints.refresh_support)

    async def current(self, uri: str) -> Analysis | None:
        """The analysis of the newest text (waits for a running check, within reason)."""
        buffer = self.buffers.get(uri)
        if buffer is None:
            return None
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(buffer.fresh.wait(), WAIT_S)
        return buffer.analysis


def _internal_error(text: str, path: Path | None, file: str, exc: Exception) -> Analysis:
    problem = Problem(
        f"internal error: {type(exc).__name__}: {exc}",
        "this is a bug in archspec; `archspec check` with ARCHSPEC_DEBUG=1 shows a traceback",
        Location(file, 1, 1),
    )
    return Analysis(file, text, path, [Finding(problem)])


server = SpecServer()


@server.feature(lsp.INITIALIZED)
def _initialized(ls: SpecServer, params: lsp.InitializedParams) -> None:
    logging.getLogger("pygls").setLevel(logging.WARNING)


@server.feature(lsp.TEXT_DOCUMENT_DID_OPEN)
def did_open(ls: SpecServer, params: lsp.DidOpenTextDocumentParams) -> None:
    uri = params.text_document.uri
    ls.buffers[uri] = Buffer(uri, uri_path(uri))
    ls.schedule(uri)


@server.feature(lsp.TEXT_DOCUMENT_DID_CHANGE)
def did_change(ls: SpecServer, params: lsp.DidChangeTextDocumentParams) -> None:
    ls.schedule(params.text_document.uri)


@server.feature(lsp.TEXT_DOCUMENT_DID_SAVE)
def did_save(ls: SpecServer, params: lsp.DidSaveTextDocumentParams) -> None:
    ls.schedule(params.text_document.uri)


@server.feature(lsp.TEXT_DOCUMENT_DID_CLOSE)
def did_close(ls: SpecServer, params: lsp.DidCloseTextDocumentParams) -> None:
    uri = params.text_document.uri
    buffer = ls.buffers.pop(uri, None)
    ls.text_document_publish_diagnostics(lsp.PublishDiagnosticsParams(uri=uri, diagnostics=[]))
    if buffer is not None and buffer.path is not None:  # children now read it from disk
        for other in ls.buffers.values():
            if other.analysis and buffer.path in other.analysis.depends:
                ls.schedule(other.uri)


@server.feature(lsp.TEXT_DOCUMENT_INLAY_HINT)
async def inlay_hint(ls: SpecServer, params: lsp.InlayHintParams) -> list[lsp.InlayHint]:
    a = await ls.current(params.text_document.uri)
    if a is None:
        return []
    return features.inlay_hints(a, params.range.start.line, params.range.end.line)


@server.feature(lsp.TEXT_DOCUMENT_HOVER)
async def hover(ls: SpecServer, params: lsp.HoverParams) -> lsp.Hover | None:
    a = await ls.current(params.text_document.uri)
    return features.hover(a, params.position) if a is not None else None


@server.feature(
    lsp.TEXT_DOCUMENT_COMPLETION,
    lsp.CompletionOptions(trigger_characters=[" ", "-", "{", ",", "["]),
)
async def completion(ls: SpecServer, params: lsp.CompletionParams) -> lsp.CompletionList:
    uri = params.text_document.uri
    a = await ls.current(uri)
    buffer = ls.buffers.get(uri)
    if a is None or buffer is None:
        return lsp.CompletionList(is_incomplete=False, items=[])
    # a half-typed line rarely parses: complete on the newest text with the names, blocks
    # and vars of the newest buffer that did
    text, version = ls.text_of(uri)
    a = _with_text(buffer.good or a, text, version)
    return lsp.CompletionList(is_incomplete=False, items=features.completion(a, params.position))


def _with_text(a: Analysis, text: str, version: int | None) -> Analysis:
    return Analysis(
        a.file, text, a.path, a.findings, a.validated, a.nodes, a.complete, a.depends, version
    )


@server.feature(lsp.TEXT_DOCUMENT_DEFINITION)
async def definition(ls: SpecServer, params: lsp.DefinitionParams) -> lsp.Location | None:
    a = await ls.current(params.text_document.uri)
    return features.definition(a, params.position) if a is not None else None


@server.feature(lsp.TEXT_DOCUMENT_DOCUMENT_SYMBOL)
async def document_symbol(ls: SpecServer, params: lsp.DocumentSymbolParams) -> list[Any]:
    a = await ls.current(params.text_document.uri)
    return list(features.symbols(a)) if a is not None else []


def serve() -> None:
    """Run the server on stdin/stdout until the client says exit."""
    # What importing made (modules, models, schemas) lives as long as the server: out of
    # the collector's sight, each of its full passes walks only what checks made since.
    gc.freeze()
    server.start_io()
