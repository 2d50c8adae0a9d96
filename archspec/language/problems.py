"""Turning Pydantic's validation errors into located, actionable :class:`Problem` s."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Annotated, Any, get_args, get_origin

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from archspec.errors import DataPath, Problem, did_you_mean, one_of, suggest
from archspec.language.expr import Scalar, unknown_name_hint
from archspec.loader.source import SourceMap


def _fields(model: type[BaseModel] | None) -> list[str]:
    if model is None:
        return []
    names: dict[str, None] = {}  # ordered, each once (`units` is a field and its own alias)
    for name, info in model.model_fields.items():
        names[name] = None
        choices = getattr(info.validation_alias, "choices", None)
        names.update((str(c), None) for c in choices or () if isinstance(c, str))
    return list(names)


def _members(annotation: Any) -> list[type[BaseModel]]:
    """The models of a union annotation (``SGD | Adam | AdamW``)."""
    return [m for m in get_args(annotation) if isinstance(m, type) and issubclass(m, BaseModel)]


def _tags(member: type[BaseModel]) -> list[str]:
    """The ``name:`` values that select ``member`` in a discriminated union."""
    info = member.model_fields.get("name")
    return [str(tag) for tag in get_args(info.annotation)] if info is not None else []


def _element(annotation: Any) -> Any:
    """The item type of ``tuple[X, ...]`` (``X`` unwrapped from ``Annotated``), else as is."""
    if get_origin(annotation) is tuple and len(get_args(annotation)) == 2:
        item = get_args(annotation)[0]
        return get_args(item)[0] if get_origin(item) is Annotated else item
    return annotation


def _model_at(model: type[BaseModel] | None, loc: tuple[Any, ...]) -> type[BaseModel] | None:
    """The nested model class that Pydantic's ``loc`` (minus its last item) points into.

    Inside a discriminated union Pydantic's loc names the member by its tag
    (``optimizer.sgd.betas``), so the tag picks the member.
    """
    items = loc[:-1]
    i = 0
    while i < len(items):
        item = items[i]
        if model is None or not isinstance(item, str) or item not in model.model_fields:
            return None
        annotation = _element(model.model_fields[item].annotation)
        if annotation is not model.model_fields[item].annotation:  # a list: skip its index
            i += 1
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            model = annotation
        else:
            tagged = {tag: m for m in _members(annotation) for tag in _tags(m)}
            model = tagged.get(items[i + 1]) if i + 1 < len(items) else None
            i += 1
        i += 1
    return model


def _field_model(model: type[BaseModel] | None, loc: tuple[Any, ...]) -> type[BaseModel] | None:
    """The model expected at ``loc`` itself (``model`` for the empty loc)."""
    if not loc:
        return model
    owner = _model_at(model, loc)
    info = owner.model_fields.get(str(loc[-1])) if owner is not None else None
    if info is None:
        return None
    annotation = info.annotation
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    return None


def _union_choices(model: type[BaseModel] | None, loc: tuple[Any, ...]) -> list[str]:
    """The tags a discriminated union at ``loc`` accepts."""
    owner = _model_at(model, loc)
    info = owner.model_fields.get(str(loc[-1])) if owner is not None and loc else None
    return [tag for m in _members(info.annotation) for tag in _tags(m)] if info is not None else []


def _received(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _message(
    err: ErrorDetails,
    model: type[BaseModel] | None,
    env: Mapping[str, Scalar],
    raw_loc: tuple[Any, ...],
) -> tuple[str, str]:
    """Message and hint; ``err["loc"]`` is the data's path, ``raw_loc`` Pydantic's own."""
    kind, loc, value = err["type"], err["loc"], err.get("input")
    field = str(loc[-1]) if loc else ""
    ctx = err.get("ctx", {})
    if kind == "extra_forbidden":
        allowed = _fields(_model_at(model, raw_loc))
        hint = suggest(field, allowed) or (
            f"allowed keys: {', '.join(allowed)}" if allowed else "remove it"
        )
        return f"unknown key '{field}'", hint
    if kind == "missing":
        return f"missing required key '{field}'", f"add `{field}: ...`"
    if kind == "literal_error":
        expected = err.get("ctx", {}).get("expected", "")
        choices = [c.strip().strip("'") for c in str(expected).replace(" or ", ",").split(",")]
        hint = suggest(str(value), choices) if isinstance(value, str) else ""
        return (
            f"must be {one_of(choices)}; received {_received(value)}",
            hint or f"use {one_of(choices)}",
        )
    if kind in ("union_tag_invalid", "union_tag_not_found"):
        expected = str(ctx.get("expected_tags", ""))
        choices = [c.strip().strip("'") for c in expected.split(",") if c.strip()]
        choices = choices or _union_choices(model, raw_loc)
        tag = ctx.get("tag", "")
        hint = suggest(str(tag), choices) if tag else ""
        received = f"; received {_received(tag)}" if tag else ""
        message = f"needs a `name:` among {one_of(choices)}{received}"
        return message, hint or f"use {one_of(choices)}"
    if kind in ("model_type", "model_attributes_type", "dict_type"):
        return _not_a_mapping(_field_model(model, raw_loc), value)
    if kind in ("too_long", "too_short"):
        bound = ctx.get("max_length") if kind == "too_long" else ctx.get("min_length")
        most, fix = ("at most", "remove items") if kind == "too_long" else ("at least", "add items")
        plural = "s" if bound != 1 else ""
        return f"must have {most} {bound} item{plural}; received {ctx.get('actual_length')}", fix
    message = err["msg"].replace("Input should be", "must be").replace("Value error, ", "")
    hint = unknown_name_hint(value, env) if isinstance(value, str) else ""
    hint = hint or str(ctx.get("hint", ""))  # custom errors may carry their own fix
    if kind in ("int_type", "int_from_float") and isinstance(value, float):
        hint = hint or "use a whole number (// is integer division in expressions)"
    numeric = ("greater", "less", "int", "float", "bool", "finite")
    if kind.endswith("_type") or kind.startswith(numeric):
        message += f"; received {_received(value)}"
    return message, hint or _default_hint(kind)


def _not_a_mapping(target: type[BaseModel] | None, value: Any) -> tuple[str, str]:
    if target is not None and not target.model_fields:
        return (
            f"takes no parameters; received {_received(value)}",
            "write the kind alone (e.g. `- relu`), with nothing after it",
        )
    required = [
        name for name, info in (target.model_fields.items() if target else ()) if info.is_required()
    ]
    example = ", ".join(f"{name}: ..." for name in required) or "key: value"
    message = f"must be a mapping of keys and values; received {_received(value)}"
    return message, f"write {{{example}}}"


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
        "finite_number": "write an ordinary number (not .inf or .nan)",
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
    union_paths = set()  # one problem per value that no member of a union accepts
    errors = _drop_misspelt_missing(error.errors(include_url=False), model)
    for err in errors:
        keep_last = err["type"] in ("missing", "extra_forbidden")
        loc = _data_loc(err["loc"], source, base, keep_last)
        if loc_map and loc and str(loc[0]) in loc_map:
            loc = (loc_map[str(loc[0])], *loc[1:])
        path = (*base, *loc)
        if len(loc) < len(err["loc"]):  # a union member's error: the first one speaks for all
            if path in union_paths:
                continue
            union_paths.add(path)
        message, hint = _message({**err, "loc": loc}, model, env or {}, tuple(err["loc"]))
        key = err["type"] == "extra_forbidden"
        problems.append(Problem(message, hint, source.locate(path, key=key), path, notes))
    return problems


def _drop_misspelt_missing(
    errors: list[ErrorDetails], model: type[BaseModel] | None
) -> list[ErrorDetails]:
    """``kernal: 5`` is one mistake: drop "missing 'kernel'" when an unknown key is its typo."""
    typos = set()
    for err in errors:
        if err["type"] == "extra_forbidden" and err["loc"]:
            allowed = _fields(_model_at(model, err["loc"]))
            meant = did_you_mean(str(err["loc"][-1]), allowed)
            if meant is not None:
                typos.add((*err["loc"][:-1], meant))
    return [err for err in errors if not (err["type"] == "missing" and tuple(err["loc"]) in typos)]


def _data_loc(loc: tuple[Any, ...], source: SourceMap, base: DataPath, keep_last: bool) -> DataPath:
    """Pydantic's loc without the items that are not in the data: union tags, and the
    index or field a shorthand adds (``stride: 0`` fails at ``stride[0]``, ``dense: 0`` at
    ``units``). ``keep_last`` keeps a missing key's name."""
    kept: list[Any] = []
    for i, item in enumerate(loc):
        if (keep_last and i == len(loc) - 1) or (*base, *kept, item) in source.values:
            kept.append(item)
    return tuple(kept)


def dedupe(problems: Iterable[Problem]) -> list[Problem]:
    """Keep the first problem of each value: a block used many times reports each of its
    mistakes once, and a value whose expression failed is not also called the wrong type."""
    seen: set[tuple[object, object]] = set()
    out = []
    for problem in problems:
        key = (problem.location, problem.path or problem.message)
        if key not in seen:
            seen.add(key)
            out.append(problem)
    return out
