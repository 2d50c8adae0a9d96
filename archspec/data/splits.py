"""Split expressions: a split name plus an optional Python-like slice.

Grammar (whitespace allowed around the brackets, colon and numbers)::

    split  := NAME [ "[" [INT] ":" [INT] "]" ]
    NAME   := [A-Za-z_][A-Za-z0-9_-]*
    INT    := ["-"] digit{1,18}

``train`` → ``("train", None, None)``; ``test[:8000]`` → ``("test", None, 8000)``;
``all[100:-50]`` → ``("all", 100, -50)``. Parsed with a regular expression, never
``eval``. Pure Python: no torch, no numpy.
"""

from __future__ import annotations

import re

from archspec.errors import DataError

_INT = r"-?[0-9]{1,18}"
_SPLIT = re.compile(
    rf"\s*(?P<name>[A-Za-z_][A-Za-z0-9_-]*)\s*"
    rf"(?:\[\s*(?P<start>{_INT})?\s*:\s*(?P<stop>{_INT})?\s*\])?\s*"
)
GRAMMAR = (
    "NAME or NAME[START:STOP] with optional integer bounds, "
    "e.g. 'train', 'test[:8000]', 'all[100:-50]'"
)


def _bound(text: str | None) -> int | None:
    return None if text is None else int(text)


def parse_split(expr: str) -> tuple[str, int | None, int | None]:
    """Parse ``name[start:stop]`` into ``(name, start, stop)``.

    >>> parse_split("test[:8000]")
    ('test', None, 8000)
    """
    match = _SPLIT.fullmatch(expr)
    if match is None:
        raise DataError(
            f"split {expr!r} is not a split expression",
            f"write {GRAMMAR}",
        )
    return match["name"], _bound(match["start"]), _bound(match["stop"])


def format_split(name: str, start: int | None, stop: int | None) -> str:
    """The canonical text of a parsed split: ``("test", None, 8000)`` → ``test[:8000]``."""
    if start is None and stop is None:
        return name
    return f"{name}[{'' if start is None else start}:{'' if stop is None else stop}]"


def select(count: int, name: str, start: int | None, stop: int | None, source: str) -> range:
    """The sample indices ``range(count)[start:stop]``; an empty selection is a DataError."""
    chosen = range(count)[start:stop]
    if len(chosen) > 0:
        return chosen
    text = format_split(name, start, stop)
    raise DataError(
        f"split '{text}' selects no samples: split '{name}' of {source} has {count}",
        f"choose bounds inside 0..{count}, e.g. '{name}[:{max(count // 2, 1)}]'",
    )
