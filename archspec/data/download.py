"""Downloading dataset files: urllib only, mirrors in order, MD5-verified, atomic.

A file is streamed into a hidden temp file beside its destination, its MD5 is
checked, and only then is it renamed into place with ``os.replace``; a failed,
interrupted or corrupted download leaves nothing at the destination. A rich
progress bar is drawn on stderr only when stderr is a terminal.

``ARCHSPEC_MIRRORS`` (comma-separated base URLs, http, https or file) replaces a
dataset's mirror list, for tests and for air-gapped sites with a local mirror.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import sys
import tempfile
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TransferSpeedColumn

from archspec.errors import DataError

MIRRORS_ENV = "ARCHSPEC_MIRRORS"
SCHEMES = ("http://", "https://", "file://")
TIMEOUT_S = 30.0
MAX_DOWNLOAD_BYTES = 1 << 30  # no dataset file archspec knows is near 1 GiB
_CHUNK = 1 << 16


class DownloadError(DataError):
    """Every mirror failed for one file; ``failures`` holds one ``url: reason`` per mirror."""

    def __init__(self, filename: str, failures: Sequence[str]) -> None:
        self.filename = filename
        self.failures = tuple(failures)
        super().__init__(f"could not download {filename}: " + "; ".join(self.failures))


def mirror_urls(defaults: Sequence[str]) -> tuple[str, ...]:
    """``$ARCHSPEC_MIRRORS`` if set, else ``defaults``; every base URL ends with ``/``."""
    override = [url.strip() for url in os.environ.get(MIRRORS_ENV, "").split(",")]
    chosen = [url for url in override if url] or list(defaults)
    for url in chosen:
        if not url.startswith(SCHEMES):
            raise DataError(
                f"{MIRRORS_ENV}: mirror {url!r} is not an http, https or file URL",
                f"set {MIRRORS_ENV} to comma-separated base URLs, e.g. https://host/mnist/",
            )
    return tuple(url if url.endswith("/") else f"{url}/" for url in chosen)


def _show_progress() -> bool:
    """Draw a progress bar only for a person watching a terminal."""
    return sys.stderr.isatty()


@contextmanager
def _progress(label: str, total: int | None) -> Iterator[Callable[[int], None]]:
    """Yield ``advance(nbytes)``: a rich bar on a terminal's stderr, else a no-op."""
    if not _show_progress():
        yield lambda _nbytes: None
        return
    columns = (TextColumn("{task.description}"), BarColumn(), DownloadColumn())
    bar = Progress(*columns, TransferSpeedColumn(), console=Console(stderr=True), transient=True)
    with bar:
        task = bar.add_task(label, total=total)
        yield lambda nbytes: bar.advance(task, nbytes)


def _content_length(response: http.client.HTTPResponse) -> int | None:
    value = response.headers.get("Content-Length")
    return int(value) if value and value.isdigit() else None


def _copy(url: str, response: http.client.HTTPResponse, out: BinaryIO) -> str:
    """Stream the body into ``out``; return its MD5 hex digest."""
    total = _content_length(response)
    digest = hashlib.md5(usedforsecurity=False)
    size = 0
    with _progress(url.rsplit("/", 1)[-1], total) as advance:
        while chunk := response.read(_CHUNK):
            size += len(chunk)
            if size > MAX_DOWNLOAD_BYTES:
                raise DataError(f"{url}: more than {MAX_DOWNLOAD_BYTES} bytes", "check the mirror")
            digest.update(chunk)
            out.write(chunk)
            advance(len(chunk))
    if total is not None and size != total:
        raise DataError(f"{url}: connection closed after {size} of {total} bytes", "retry")
    return digest.hexdigest()


def _stream(url: str, out: BinaryIO, timeout: float) -> str:
    """Download ``url`` into ``out``; network failures become DataError."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return _copy(url, response, out)
    except urllib.error.HTTPError as error:
        error.close()
        reason = f"HTTP {error.code} {error.reason}"
    except urllib.error.URLError as error:
        reason = str(error.reason)
    except (OSError, http.client.HTTPException, ValueError) as error:
        reason = str(error) or type(error).__name__
    raise DataError(f"{url}: {reason}", "check the URL and the network, or retry")


def download_file(url: str, dest: Path, md5: str, *, timeout: float = TIMEOUT_S) -> Path:
    """Download ``url`` to ``dest`` atomically, verifying ``md5`` before the rename."""
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        handle, temp_name = tempfile.mkstemp(
            prefix=f".{dest.name}.", suffix=".part", dir=dest.parent
        )
    except OSError as error:
        raise DataError(
            f"cannot write to {dest.parent}: {error.strerror or error}",
            "choose a writable folder with --data-dir or ARCHSPEC_DATA",
        ) from None
    temp = Path(temp_name)
    try:
        with os.fdopen(handle, "wb") as out:
            got = _stream(url, out, timeout)
        if got != md5:
            raise DataError(
                f"checksum mismatch for {url}: expected MD5 {md5}, got {got}",
                f"the mirror served a corrupted file; retry or place the file in {dest.parent}",
            )
        os.replace(temp, dest)
    finally:
        temp.unlink(missing_ok=True)
    return dest


def fetch(
    name: str, md5: str, mirrors: Sequence[str], folder: Path, *, timeout: float = TIMEOUT_S
) -> Path:
    """Download ``name`` into ``folder`` from the first mirror that serves it intact."""
    failures: list[str] = []
    for base in mirrors:
        try:
            return download_file(f"{base}{name}", folder / name, md5, timeout=timeout)
        except DataError as error:
            failures.append(error.message)
    raise DownloadError(name, failures)
