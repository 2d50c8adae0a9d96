"""Turning Pydantic's validation errors into located, actionable :class:`Problem` s."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from ..errors import DataPath, Problem, did_you_mean, one_of
from ..source import SourceMap
from .expr import Scalar, unknown_name_hint


def _fields(model: type[BaseModel] | None) -> list[str]:
    if model is None:
        return []
    names = []
    for name, info in model.model_fields.items():
        names.append(name)
        choices = getattr(info.validation_alias, "choices", None)
        names.extend(str(c) for c in choices or () if isinstance(c, str))
    return names


def _model_at(model: type[BaseModel] | None, loc: tuple[Any, ...]) -> type[BaseModel] | None:
    """The nested model class that ``loc`` (minus its last item) points into."""
    for item in loc[:-1]:
        if model is None or not isinstance(item, str) or item not in model.model_fields:
            return None
        annotation = model.model_fields[item].annotation
        model = annotation if isinstance(annotation, type) and issubclass(annotation, BaseModel) else None
    return model


def _received(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _message(err: ErrorDetails, model: type[BaseModel] | None, env: Mapping[str, Scalar]) -> tuple[str, str]:
    kind, loc, value = err["type"], err["loc"], err.get("input")
    field = str(loc[-1]) if loc else ""
    if kind == "extra_forbidden":
        allowed = _fields(_model_at(model, loc))
        hint = did_you_mean(field, allowed) or (f"allowed keys: {', '.join(allowed)}" if allowed else "remove it")
        return f"unknown key '{field}'", hint
    if kind == "missing":
        return f"missing required key '{field}'", f"add `{field}: ...`"
    if kind == "literal_error":
        expected = err.get("ctx", {}).get("expected", "")
        choices = [c.strip().strip("'") for c in str(expected).replace(" or ", ",").split(",")]
        hint = did_you_mean(str(value), choices) if isinstance(value, str) else ""
        return f"must be {one_of(choices)}; received {_received(value)}", hint or f"use {one_of(choices)}"
    if kind in ("union_tag_invalid", "union_tag_not_found"):
        expected = str(err.get("ctx", {}).get("expected_tags", ""))
        choices = [c.strip().strip("'") for c in expected.split(",") if c.strip()]
        tag = err.get("ctx", {}).get("tag", "")
        hint = did_you_mean(str(tag), choices) if tag else ""
        return f"needs a `name:` among {one_of(choices)}", hint or f"use {one_of(choices)}"
    message = err["msg"].replace("Input should be", "must be").replace("Value error, ", "")
    hint = unknown_name_hint(value, env) if isinstance(value, str) else ""
    if kind in ("int_type", "int_from_float") and isinstance(value, float):
        hint = hint or "use a whole number (// is integer division in expressions)"
    if kind.endswith("_type") or kind.startswith(("greater", "less", "int", "float", "bool")):
        message += f"; received {_received(value)}"
    return message, hint or _default_hint(kind)


def _default_hint(kind: str) -> str:
    return {
        "int_type": "write a whole number",
        "bool_type": "write true or false",
        "string_type": "write a string",
        "dict_type": "write a mapping (key: value lines)",
        "list_type": "write a list ([a, b] or - items)",
        "tuple_type": "write a list",
        "float_type": "write a number",
        "greater_than": "use a larger value",
        "greater_than_equal": "use a larger value",
        "less_than": "use a smaller value",
        "less_than_equal": "use a smaller value",
    }.get(kind, "")


def from_validation(
    error: ValidationError,
    source: SourceMap,
    base: DataPath,
    model: type[BaseModel] | None = None,
    env: Mapping[str, Scalar] | None = None,
    notes: tuple[str, ...] = (),
    loc_map: Mapping[str, str] | None = None,
) -> list[Problem]:
    """Located problems for every error in ``error``; ``base`` is the validated value's path.

    ``loc_map`` renames leading loc items (a shorthand's field → the spec's key).
    """
    problems = []
    errors = _drop_misspelt_missing(error.errors(include_url=False), model)
    for err in errors:
        loc = _data_loc(err["loc"], source, base)
        if loc_map and loc and str(loc[0]) in loc_map:
            loc = (loc_map[str(loc[0])], *loc[1:])
        message, hint = _message({**err, "loc": loc}, model, env or {})
        path = (*base, *loc)
        key = err["type"] == "extra_forbidden"
        problems.append(Problem(message, hint, source.locate(path, key=key), path, notes))
    return problems


def _drop_misspelt_missing(errors: list[ErrorDetails], model: type[BaseModel] | None) -> list[ErrorDetails]:
    """``kernal: 5`` is one mistake: drop "missing 'kernel'" when an unknown key is its typo."""
    typos = set()
    for err in errors:
        if err["type"] == "extra_forbidden" and err["loc"]:
            allowed = _fields(_model_at(model, err["loc"]))
            suggestion = did_you_mean(str(err["loc"][-1]), allowed)
            if suggestion:
                typos.add((*err["loc"][:-1], suggestion.split("'")[1]))
    return [err for err in errors if not (err["type"] == "missing" and tuple(err["loc"]) in typos)]


def _data_loc(loc: tuple[Any, ...], source: SourceMap, base: DataPath) -> DataPath:
    """Pydantic's loc without the items that are not in the data (union tags)."""
    kept: list[Any] = []
    for i, item in enumerate(loc):
        if i == len(loc) - 1 or (*base, *kept, item) in source.values:
            kept.append(item)
    return tuple(kept)


def dedupe(problems: Iterable[Problem]) -> list[Problem]:
    """Drop repeats (a block used many times reports each of its mistakes once)."""
    seen: set[tuple[object, str]] = set()
    out = []
    for problem in problems:
        key = (problem.location, problem.message)
        if key not in seen:
            seen.add(key)
            out.append(problem)
    return out
