"""One editor buffer, checked: its problems, its Plan (as far as it goes) and indexes by line.

Torch-free, and protocol-free: :mod:`archspec.outputs.lsp.features` turns an
:class:`Analysis` into LSP answers. The checking is the library's own
(``validate_document`` + ``infer``, as :func:`archspec.load` does), so an editor
shows exactly what ``archspec check`` prints; unsaved buffers (the spec and any
spec it ``extends:``) are read through an overlay instead of the disk.
"""

from __future__ import annotations

import contextlib
import gc
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

from archspec.errors import DataPath, Location, Problem, SpecError
from archspec.language.extends import read_spec
from archspec.language.load import DEFAULT_MAX_LAYERS, Layer, Validated, validate_document
from archspec.loader.source import (
    DEFAULT_LIMITS,
    Document,
    Limits,
    SourceMap,
    parse,
    read,
    reparse,
)
from archspec.shapes import memory
from archspec.shapes.infer import infer_partial
from archspec.shapes.plan import Plan, PlanNode

Overlay = Callable[[Path], str | None]  # an open buffer's text, or None: read the disk


@dataclass(frozen=True)
class Finding:
    """A problem to show, with how serious it is."""

    problem: Problem
    warning: bool = False


@dataclass
class Analysis:
    file: str  # the name locations in this buffer carry
    text: str
    path: Path | None
    findings: list[Finding]
    validated: Validated | None = None
    nodes: tuple[PlanNode, ...] = ()  # every node that could be inferred
    complete: bool = False  # True when the whole network inferred (``nodes`` is the Plan)
    depends: frozenset[Path] = frozenset()  # every file read (the spec and its parents)
    version: int | None = None

    @property
    def source(self) -> SourceMap | None:
        return self.validated.source if self.validated else None

    @cached_property
    def lines(self) -> list[str]:
        return self.text.splitlines() or [""]

    def mine(self, loc: Location | None) -> bool:
        return loc is not None and loc.file == self.file

    @cached_property
    def layers_by_entry(self) -> dict[DataPath, list[Layer]]:
        """Layer entry path in the source → its validated layers (several for a block's)."""
        out: dict[DataPath, list[Layer]] = {}
        for layer in self.validated.layers if self.validated else ():
            out.setdefault(layer.params_path[:-1], []).append(layer)
        return out

    @cached_property
    def node_by_name(self) -> dict[str, PlanNode]:
        return {node.name: node for node in self.nodes}

    @cached_property
    def nodes_by_line(self) -> dict[int, list[PlanNode]]:
        """1-based line of a layer entry in this buffer → the nodes it makes, in order."""
        out: dict[int, list[PlanNode]] = {}
        for node in self.nodes:
            if self.mine(node.location):
                assert node.location is not None
                out.setdefault(node.location.line, []).append(node)
        return out

    @cached_property
    def uses_by_line(self) -> dict[int, list[str]]:
        """1-based line of a block use → the block instances it makes (their group names)."""
        out: dict[int, list[str]] = {}
        for layer in self.validated.layers if self.validated else ():
            for note in layer.notes:
                match = _USE_NOTE.match(note)
                if match:
                    names = out.setdefault(int(match[2]), [])
                    if match[1] not in names:
                        names.append(match[1])
        return out

    @cached_property
    def group_members(self) -> dict[str, list[PlanNode]]:
        out: dict[str, list[PlanNode]] = {}
        for node in self.nodes:
            for group in node.group:
                out.setdefault(group, []).append(node)
        return out

    def group_output(self, group: str) -> PlanNode | None:
        """The node a block instance returns: the one read from outside it (else its last)."""
        members = self.group_members.get(group, [])
        inside = {node.name for node in members}
        read_outside = {
            name
            for node in self.nodes
            if node.name not in inside
            for name in node.inputs
            if name in inside
        }
        if self.validated and self.validated.output in inside:
            read_outside.add(self.validated.output)
        chosen = [node for node in members if node.name in read_outside]
        pick = chosen or members
        return pick[-1] if pick else None

    @cached_property
    def paths_by_line(self) -> dict[int, list[tuple[DataPath, Location]]]:
        """1-based line → the data paths whose value (or key) starts on it, in this buffer."""
        out: dict[int, list[tuple[DataPath, Location]]] = {}
        source = self.source
        if source is None:
            return out
        for table in (source.keys, source.values):
            for path, loc in table.items():
                if loc.file == self.file:
                    out.setdefault(loc.line, []).append((path, loc))
        for items in out.values():
            items.sort(key=lambda item: item[1].col)
        return out

    def entry_at(self, line: int) -> DataPath | None:
        """The layer entry (``(..., "layers", i)``) written on 1-based ``line``, if any."""
        best: DataPath | None = None
        for path, _ in self.paths_by_line.get(line, ()):
            for end in range(len(path), 0, -1):
                if path[:end] in self.layers_by_entry or _is_entry(path[:end]):
                    if best is None or len(path[:end]) > len(best):
                        best = path[:end]
                    break
        return best

    def data_at(self, path: DataPath) -> Any:
        data: Any = self.validated.data if self.validated else None
        for item in path:
            try:
                data = data[item]
            except (KeyError, IndexError, TypeError):
                return None
        return data

    def block_names(self) -> list[str]:
        blocks = self.data_at(("blocks",))
        return [str(name) for name in blocks] if isinstance(blocks, dict) else []

    def var_names(self) -> list[str]:
        env = self.data_at(("vars",))
        return [str(name) for name in env] if isinstance(env, dict) else []


_USE_NOTE = re.compile(r"in (\S+) \(block '[^']*' used at line (\d+)\)$")  # graph.Expander's


def _is_entry(path: DataPath) -> bool:
    return len(path) >= 2 and isinstance(path[-1], int) and path[-2] == "layers"


def analyze(
    text: str,
    path: Path | None,
    file: str,
    overlay: Overlay = lambda _: None,
    limits: Limits = DEFAULT_LIMITS,
    max_layers: int = DEFAULT_MAX_LAYERS,
) -> Analysis:
    """Check ``text`` (the buffer of ``path``; ``None`` for an unsaved, untitled one)."""
    with _no_gc():
        return _analyze(text, path, file, overlay, limits, max_layers)


@contextlib.contextmanager
def _no_gc() -> Iterator[None]:
    """Pause the cyclic collector while checking, as :func:`archspec.load` does: loading
    makes many objects and frees none, so its passes are pure cost (~20% here)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _analyze(
    text: str, path: Path | None, file: str, overlay: Overlay, limits: Limits, max_layers: int
) -> Analysis:
    read_files: set[Path] = set()

    def reader(where: Path, limits: Limits) -> Document:
        read_files.add(where.resolve())
        if path is not None and where.resolve() == path.resolve():
            return _parse_buffer(text, file, limits)
        buffered = overlay(where.resolve())
        return parse(buffered, str(where), limits) if buffered is not None else read(where, limits)

    try:
        doc = (
            read_spec(path, limits, reader)
            if path is not None
            else _parse_buffer(text, file, limits)
        )
        validated, problems = validate_document(doc, path, max_layers)
    except SpecError as exc:
        return Analysis(
            file, text, path, [Finding(p) for p in exc.problems], depends=_f(read_files)
        )
    findings = [Finding(p) for p in problems]
    plan, nodes, shape_problems = _infer(validated)
    findings += [Finding(p) for p in shape_problems]
    complete = plan is not None and not problems
    if plan is not None and complete:
        extra = memory.check_plan(plan, validated.train, memory.available_bytes())
        if extra is not None:
            findings.append(Finding(extra, warning=True))
    return Analysis(file, text, path, findings, validated, nodes, complete, _f(read_files))


# Each buffer's last parsed text and Document (by the name its locations carry): the next
# keystroke's text is parsed from it when only one list item changed (loader.reparse).
_LAST: dict[str, tuple[str, Limits, Document]] = {}
LAST_SIZE = 64  # buffers remembered; emptied when full


def _parse_buffer(text: str, file: str, limits: Limits) -> Document:
    last = _LAST.get(file)
    doc = None
    if last is not None and last[1] == limits:
        # the same text again (a save, a parent's change): its Document, never mutated
        doc = last[2] if last[0] == text else reparse(last[2], last[0], text, limits)
    if doc is None:
        doc = parse(text, file, limits)  # raises for a buffer with problems: nothing kept
    if len(_LAST) >= LAST_SIZE:
        _LAST.clear()
    _LAST[file] = (text, limits, doc)
    return doc


def _f(paths: set[Path]) -> frozenset[Path]:
    return frozenset(paths)


def _infer(v: Validated) -> tuple[Plan | None, tuple[PlanNode, ...], list[Problem]]:
    """The Plan; when some layer fails, the nodes that still infer (for hints). One pass:
    the nodes of a failing spec are not inferred a second time."""
    return infer_partial(
        v.name, v.input_shape, v.layers, v.output, v.source, v.input_layout, v.output_port,
        v.inputs, v.outputs,
    )  # fmt: skip


def walk_entries(data: Any, path: DataPath) -> Iterator[tuple[DataPath, Any]]:
    """The layer entries of the list at ``path`` in ``data``: (path, entry)."""
    if isinstance(data, list):
        for i, entry in enumerate(data):
            yield (*path, i), entry


def entry_op(entry: Any) -> str | None:
    """The kind (or block) an entry uses: ``relu`` for ``- relu``, ``conv`` for ``- conv: …``."""
    if isinstance(entry, str):
        return entry
    if isinstance(entry, Mapping):
        ops = [str(k) for k in entry if k not in ("name", "from", "repeat", "when")]
        return ops[0] if len(ops) == 1 else None
    return None
