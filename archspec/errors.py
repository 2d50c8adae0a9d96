"""Errors are values with locations.

Every problem archspec finds in user input is a :class:`Problem`: where it is
(file, line, column, and the path inside the spec), what is wrong (stating the
rule and what was received) and how to fix it. Problems are collected and raised
together as one :class:`SpecError`, so independent mistakes are reported in one run.

All exceptions archspec raises for user input derive from :class:`ArchspecError`;
the CLI maps them to exit codes (1 for invalid spec/data/checkpoint, 2 for usage).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
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


_EXHAUSTIVE = 200  # names; see Names
_CUTOFF = 0.6
_WORK = 100_000  # comparisons per load; see bounded_suggestions


class _Budget:
    """What one :func:`bounded_suggestions` block may still spend, and the indexes it built."""

    def __init__(self, work: int) -> None:
        self.left = work
        self.indexes: dict[tuple[str, ...], Names] = {}

    def spend(self, work: int) -> bool:
        """Whether a search costing ``work`` comparisons may run (it is then paid for)."""
        if self.left <= 0:
            return False
        self.left -= work
        return True


_BUDGET: ContextVar[_Budget | None] = ContextVar("archspec_suggestions", default=None)


@contextmanager
def bounded_suggestions(work: int = _WORK) -> Iterator[None]:
    """Bound the "did you mean" searches made inside the block to ``work`` name comparisons
    in all (about a second), and share one index per list of choices among them.

    Each problem's search is cheap, but a 1 MB spec holds up to 100,000 problems: 70,000
    unknown kinds took 21 s, 300 misspelt variables among 10,000 took 18 s (one index each),
    32,000 misspelt `from:` names 80 s (issue #13). Past the budget, problems keep their
    location, message and fallback hint; only the suggestion is left out. The loader runs
    each spec inside one block (:func:`archspec.language.load.validate_document`).
    """
    token = _BUDGET.set(_Budget(work))
    try:
        yield
    finally:
        _BUDGET.reset(token)


def did_you_mean(word: str, choices: Iterable[str]) -> str | None:
    """The choice closest to ``word``, or ``None`` if nothing is close. Callers format it.

    >>> did_you_mean("cnov", ["conv", "pool", "dense"])
    'conv'
    >>> did_you_mean("xyz", ["conv", "pool"]) is None
    True

    To ask about many words among the same choices, build one :class:`Names`.
    """
    names = _names(choices)
    return names.closest(word) if names is not None else None


class Names:
    """A set of names to suggest from, indexed once.

    Up to ``_EXHAUSTIVE`` names every one is compared (difflib, exact). Above it, only
    those within one deletion of the word on each side (a typo: one letter added, dropped,
    changed, or two swapped) are: each name is filed under itself and every string one
    deletion away (symmetric-delete lookup), so a word costs ``len(word) + 1`` dictionary
    lookups however many names there are. Without the bound, 6,000 misspelt `from:` names
    among 6,000 layers took 120 s (36 million comparisons). A word asked twice is answered
    from memory; inside :func:`bounded_suggestions` every search is paid for.
    """

    def __init__(self, choices: Iterable[str]) -> None:
        self.choices = tuple(dict.fromkeys(choices))
        self._keys: dict[str, list[str]] | None = None
        self._answers: dict[str, str | None] = {}

    def closest(self, word: str) -> str | None:
        if word in self._answers:
            return self._answers[word]
        budget = _BUDGET.get()
        if len(self.choices) <= _EXHAUSTIVE:
            if budget is not None and not budget.spend(len(self.choices)):
                return None
            answer = _closest(word, self.choices)
        else:
            if self._keys is None and budget is not None and not budget.spend(len(self.choices)):
                return None  # building the index compares as much as one search
            near = self._near(word)
            if budget is not None and not budget.spend(len(near) + 1):
                return None
            answer = _closest(word, near)
        self._answers[word] = answer
        return answer

    def _near(self, word: str) -> list[str]:
        if self._keys is None:
            self._keys = {}
            for choice in self.choices:
                for key in _deletions(choice):
                    self._keys.setdefault(key, []).append(choice)
        found: dict[str, None] = {}
        for key in _deletions(word):
            found.update(dict.fromkeys(self._keys.get(key, ())))
        return list(found)


def _names(choices: Iterable[str]) -> Names | None:
    """``choices`` indexed; inside :func:`bounded_suggestions`, one index per list of
    choices (a spec's variables are the same list for every misspelt variable), each
    lookup paid for (keying compares the whole list), and ``None`` once the budget is spent."""
    budget = _BUDGET.get()
    if budget is None:
        return Names(choices)
    if budget.left <= 0:
        return None
    key = tuple(choices)
    budget.spend(len(key))
    if key not in budget.indexes:
        budget.indexes[key] = Names(key)
    return budget.indexes[key]


def _closest(word: str, pool: Iterable[str]) -> str | None:
    import difflib  # only when a name is unknown

    close = difflib.get_close_matches(word, list(pool), n=1, cutoff=_CUTOFF)
    return close[0] if close else None


def _deletions(text: str) -> set[str]:
    """``text`` and every string one deletion away; only ``text`` past 64 characters (no
    one misspells a name that long, and the strings would cost its length squared)."""
    if len(text) > 64:
        return {text}
    return {text, *(text[:i] + text[i + 1 :] for i in range(len(text)))}


def suggest(word: str, choices: Iterable[str] | Names) -> str:
    """``did you mean 'x'?`` for a hint, or ``''`` when nothing is close."""
    names = choices if isinstance(choices, Names) else _names(choices)
    close = names.closest(word) if names is not None else None
    return f"did you mean '{close}'?" if close is not None else ""


def listing(choices: Sequence[str], limit: int = 20) -> str:
    """``a, b, c`` for a hint, cut after ``limit`` names (a hint is one line)."""
    if len(choices) <= limit:
        return ", ".join(choices)
    return f"{', '.join(choices[:limit])}, … ({len(choices):,} in all)"


def one_of(choices: Iterable[str]) -> str:
    """``'a', 'b' or 'c'`` for messages."""
    items = [f"'{c}'" for c in sorted(choices)]
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " or " + items[-1]
