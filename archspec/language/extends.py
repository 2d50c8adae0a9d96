"""``extends:`` — a spec that overrides another (relative path, cycle-checked).

Mappings merge key by key (recursively); any other value in the child replaces
the parent's. So a variant that only changes ``vars: {width: 32}`` keeps every
layer, block and training setting of its parent.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from archspec.errors import DataPath, Location, Problem, SpecError
from archspec.loader.source import DEFAULT_LIMITS, Document, Limits, SourceMap, read

MAX_DEPTH = 16
Reader = Callable[[Path, Limits], Document]


def read_spec(path: Path, limits: Limits = DEFAULT_LIMITS, reader: Reader = read) -> Document:
    """Read ``path`` and, recursively, the specs it extends; merge them.

    ``reader`` reads one file (an editor passes one that prefers its unsaved buffers).
    """
    return _read(path, limits, (), reader)


def _read(path: Path, limits: Limits, chain: tuple[Path, ...], reader: Reader) -> Document:
    doc = reader(path, limits)
    data = doc.data
    if not isinstance(data, dict) or "extends" not in data:
        return doc
    parent_ref = data["extends"]
    at = doc.source.locate(("extends",)) or Location(str(path), 1, 1)
    if not isinstance(parent_ref, str) or not parent_ref:
        raise SpecError(
            [Problem("extends must be a file path", "write `extends: base.yaml`", at, ("extends",))]
        )
    parent_path = (path.parent / parent_ref).resolve()
    here = path.resolve()
    if parent_path in (*chain, here):
        loop = " → ".join(p.name for p in (*chain, here, parent_path))
        raise SpecError(
            [
                Problem(
                    f"extends makes a cycle: {loop}", "remove one of the extends", at, ("extends",)
                )
            ]
        )
    if len(chain) >= MAX_DEPTH:
        raise SpecError(
            [
                Problem(
                    f"extends is nested more than {MAX_DEPTH} deep",
                    "flatten the chain of specs",
                    at,
                    ("extends",),
                )
            ]
        )
    if not parent_path.is_file():
        raise SpecError(
            [
                Problem(
                    f"extends names '{parent_ref}', which does not exist (looked at {parent_path})",
                    "give a path relative to this spec",
                    at,
                    ("extends",),
                )
            ]
        )
    shown = Path(os.path.normpath(path.parent / parent_ref))  # as the user would write it
    parent = _read(shown, limits, (*chain, here), reader)
    child = {key: value for key, value in data.items() if key != "extends"}
    return override(parent, child, doc.source)


def override(parent: Document, child: dict[str, Any], child_source: SourceMap) -> Document:
    """``parent`` with ``child`` merged over it, exactly as a spec that extends it
    (``archspec fit`` tries variable values this way: ``{"vars": {"width": 48}}``)."""
    source = SourceMap(child_source.file)
    merged = _merge(parent.data, parent.source, child, child_source, (), source)
    return Document(merged, source)


def _merge(
    base: Any, base_map: SourceMap, over: Any, over_map: SourceMap, path: DataPath, out: SourceMap
) -> Any:
    """Deep-merge ``over`` onto ``base`` at ``path``, filling ``out`` with the winners' marks."""
    if (
        len(path) == 2
        and path[0] == "vars"
        and isinstance(base, dict)
        and not isinstance(over, dict)
    ):
        # a new value for a declared variable keeps its declaration (multiple_of, min, max)
        _copy_marks(base_map, path, out)
        _copy_marks(over_map, path, out)
        out.values[(*path, "value")] = over_map.locate(path) or out.values[path]
        return {**base, "value": over}
    if isinstance(base, dict) and isinstance(over, dict):
        _copy_marks(base_map, path, out, shallow=True)
        _copy_marks(over_map, path, out, shallow=True)
        merged = {}
        for key in {**base, **over}:
            if key in over and key in base:
                merged[key] = _merge(base[key], base_map, over[key], over_map, (*path, key), out)
            elif key in over:
                merged[key] = over[key]
                _copy_marks(over_map, (*path, key), out)
            else:
                merged[key] = base[key]
                _copy_marks(base_map, (*path, key), out)
        return merged
    _copy_marks(over_map, path, out)
    return over


def _copy_marks(source: SourceMap, path: DataPath, out: SourceMap, shallow: bool = False) -> None:
    n = len(path)
    for table, target in ((source.values, out.values), (source.keys, out.keys)):
        for key, loc in table.items():
            if key[:n] == path and (not shallow or len(key) == n):
                target[key] = loc
