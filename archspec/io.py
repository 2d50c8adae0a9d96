"""Atomic file writes: everything archspec saves goes to a temp file, then ``os.replace``.

A crash, a full disk or a second Ctrl-C during a save leaves the previous file
intact and at most a stray ``.tmp`` file beside it, never a half-written one. A
failed write raises :class:`~archspec.errors.WriteError` (exit 1, one line).
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

from archspec.errors import UsageError, WriteError


@contextlib.contextmanager
def atomic_path(dest: Path) -> Iterator[Path]:
    """Yield a temp path beside ``dest``; on success it replaces ``dest`` in one rename.

    An :class:`OSError` while writing (a full disk, a read-only folder) becomes a one-line
    :class:`~archspec.errors.WriteError`; the temp file is removed and ``dest`` is untouched.
    """
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".tmp", dir=dest.parent)
        os.close(fd)
    except OSError as exc:
        raise write_error(dest, exc) from exc
    tmp = Path(name)
    try:
        yield tmp
        _fsync(tmp)
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; saved files get the usual mode
        os.replace(tmp, dest)
    except WriteError:
        raise
    except OSError as exc:
        raise write_error(dest, exc) from exc
    finally:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)


def write_error(dest: Path, exc: OSError, hint: str = "") -> WriteError:
    """``cannot write DEST: No space left on device`` — with how to go on."""
    reason = exc.strerror or str(exc) or type(exc).__name__
    return WriteError(
        f"cannot write {dest}: {reason}",
        hint
        or f"free some disk space or fix the permissions of {dest.parent}; "
        "nothing was half-written",
    )


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _fsync(path: Path) -> None:
    with open(path, "rb+") as handle:
        os.fsync(handle.fileno())


def write_bytes(dest: Path, data: bytes) -> None:
    with atomic_path(dest) as tmp:
        tmp.write_bytes(data)


def write_text(dest: Path, text: str) -> None:
    write_bytes(dest, text.encode("utf-8"))


def write_with(dest: Path, writer: Callable[[Path], object]) -> None:
    """Atomically write ``dest`` with a function that writes to a given path."""
    with atomic_path(dest) as tmp:
        writer(tmp)


def format_from_suffix(
    path: str | Path, fmt: str | None, extensions: dict[str, str], what: str, choices: str
) -> str:
    """An output format: ``fmt`` if given, else the one ``extensions`` maps the suffix to.

    >>> format_from_suffix("net.mmd", None, {".mmd": "mermaid"}, "diagram", "mermaid")
    'mermaid'
    """
    if fmt is not None:
        return fmt
    suffix = Path(path).suffix.lower()
    if suffix not in extensions:
        raise UsageError(
            f"cannot tell the {what} format from '{path}': the extension must be "
            f"one of {', '.join(extensions)}",
            f"rename the file or pass --format {choices}",
        )
    return extensions[suffix]
