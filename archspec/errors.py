"""Errors are values with locations.

Every problem archspec finds in user input is a :class:`Problem`: where it is
(file, line, column, and the path inside the spec), what is wrong (stating the
rule and what was received) and how to fix it. Problems are collected and raised
together as one :class:`SpecError`, so independent mistakes are reported in one run.

All exceptions archspec raises for user input derive from :class:`ArchspecError`;
the CLI maps them to exit codes (1 for invalid spec/data/checkpoint, 2 for usage).
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

from archspec.text import terminal

PathItem = str | int
DataPath = tuple[PathItem, ...]


class Location(NamedTuple):
    """A position in a source file; ``line`` and ``col`` are 1-based.

    A named tuple rather than a dataclass: the loader makes one per value of a spec, and
    a 10,000-layer spec has some 100,000 values.
    """

    file: str
    line: int
    col: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.col}"


def format_path(path: Sequence[PathItem]) -> str:
    """Render a data path the way a user reads it.

    >>> format_path(("layers", 3, "pool", "size"))
    'layers[3].pool.size'
    """
    out = ""
    for item in path:
        if isinstance(item, int):
            out += f"[{item}]"
        else:
            out += f".{item}" if out else str(item)
    return out


def printable(text: str) -> str:
    """``text`` safe to print on one terminal line (:func:`archspec.text.terminal`):
    control characters (line breaks, ANSI escapes), line/paragraph separators and bidi
    controls become ``\\x..``/``\\u....``.

    Messages quote the user's spec (keys, names, values), and a spec may come from anyone.

    >>> printable("unknown key 'a\\nb\\x1b[2J'")
    "unknown key 'a\\\\nb\\\\x1b[2J'"
    """
    return terminal(text)


@dataclass(frozen=True)
class Problem:
    """One thing wrong with an input, with where it is and how to fix it."""

    message: str
    hint: str = ""
    location: Location | None = None
    path: DataPath = ()
    notes: tuple[str, ...] = field(default=())

    def render(self) -> str:
        """``file:line:col: path: message — hint`` on one line."""
        prefix = f"{self.location}: " if self.location else ""
        where = f"{format_path(self.path)}: " if self.path else ""
        hint = f" — {self.hint}" if self.hint else ""
        notes = "".join(f" ({note})" for note in self.notes)
        return printable(f"{prefix}{where}{self.message}{hint}{notes}")

    def as_dict(self) -> dict[str, object]:
        loc = self.location
        return {
            "file": loc.file if loc else None,
            "line": loc.line if loc else None,
            "col": loc.col if loc else None,
            "path": format_path(self.path),
            "message": self.message,
            "hint": self.hint,
            "notes": list(self.notes),
        }


class ArchspecError(Exception):
    """Base class of every error archspec raises for bad user input."""

    exit_code = 1

    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def render(self) -> str:
        return printable(f"{self.message} — {self.hint}" if self.hint else self.message)


class SpecError(ArchspecError):
    """One or more located problems in a spec file."""

    def __init__(self, problems: Iterable[Problem]) -> None:
        self.problems = sorted(
            problems, key=lambda p: (p.location or Location("", 0, 0), format_path(p.path))
        )
        assert self.problems, "SpecError needs at least one problem"
        super().__init__(self.problems[0].render())

    def render(self) -> str:
        return "\n".join(p.render() for p in self.problems)


class DataError(ArchspecError):
    """A dataset file is missing, corrupt, or does not fit the spec."""


class CheckpointError(ArchspecError):
    """A checkpoint or run directory is missing, corrupt, or does not fit the model."""


class TrainingError(ArchspecError):
    """Training cannot go on (e.g. the loss became NaN)."""


class WriteError(ArchspecError, OSError):
    """A file could not be written (disk full, read-only, no permission). Writes are atomic,
    so the file that was there before is intact. Also an :class:`OSError`, so callers that
    handle I/O errors keep working."""


class ResourceError(ArchspecError):
    """An input would need more memory, time or nesting than allowed."""


class UsageError(ArchspecError):
    """The command line itself is wrong."""

    exit_code = 2


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """A ``did you mean 'x'?`` suggestion, or ``''`` if nothing is close.

    >>> did_you_mean("cnov", ["conv", "pool", "dense"])
    "did you mean 'conv'?"
    """
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f"did you mean '{close[0]}'?" if close else ""


def one_of(choices: Iterable[str]) -> str:
    """``'a', 'b' or 'c'`` for messages."""
    items = [f"'{c}'" for c in sorted(choices)]
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " or " + items[-1]
