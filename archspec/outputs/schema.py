"""The JSON Schema (draft 2020-12) of the spec language, generated from the Pydantic models.

Editors validate and complete specs with it: VS Code's YAML extension reads the
first line ``# yaml-language-server: $schema=../archspec/outputs/archspec.schema.json``.
The schema is a helper for editors, not the authority: ``archspec check`` still
validates everything (shapes, names, expressions) and is what CI trusts. So the
schema never rejects a spec archspec accepts, and is as strict as it can be
beyond that:

- a layer is a bare kind (``relu``), ``{kind: shorthand}`` (``dense: 10``),
  ``{kind: {params}}`` or ``{kind: null}``, with ``name``/``from``/``repeat``/``when``
  beside the kind, or a block use ``{block: {args}}`` (block names match a pattern);
- numbers and booleans may be expressions over ``vars:`` (strings);
- a "plain" spec (no ``blocks:``, ``extends:`` or text-valued ``vars:``) must use
  known kinds and exact enum words (``pool: {kind: maxx}`` is an error); inside
  blocks an enum may also be an argument name;
- a spec that ``extends:`` another may leave out ``input``/``layers``/``train.data``.

Torch-free: pydantic and the kinds registry only.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any, get_args

from pydantic import AliasChoices, BaseModel
from pydantic.fields import FieldInfo

from archspec.language import recipe
from archspec.language import train as train_models
from archspec.language.graph import META_KEYS
from archspec.language.model import BlockModel, DeclaredVar, InputModel, SpecModel
from archspec.shapes import kinds
from archspec.shapes.params import per_dim

DRAFT = "https://json-schema.org/draft/2020-12/schema"
SCHEMA_FILE = Path(__file__).parent / "archspec.schema.json"
SPEC_COMMENT = "# yaml-language-server: $schema=../archspec/outputs/archspec.schema.json"
IDENT = r"^[A-Za-z_][A-Za-z0-9_]*$"
Json = dict[str, Any]


def generate() -> Json:
    """The whole schema as a JSON-able dict (deterministic: same models, same output)."""
    defs: Json = {**_meta_defs(), **_train_defs()}
    for loose in (False, True):
        defs.update(_layer_defs(loose))
    top = _model(SpecModel, expressions=False)
    props = top["properties"]
    # `input:` (one) or `inputs:` (name → one), each [C, *spatial] or {shape, layout, ...}
    entry = props["input"]["anyOf"][0]
    shape, declared = entry["oneOf"]
    shape["items"] = _expressions(shape["items"])
    declared.clear()
    declared.update(_model(InputModel))
    defs["Input"] = entry
    for key in ("input", "inputs"):
        props[key].pop("anyOf")
        props[key].pop("default", None)
    props["input"]["$ref"] = "#/$defs/Input"
    props["inputs"].update(
        type="object",
        propertyNames={"pattern": IDENT},
        additionalProperties={"$ref": "#/$defs/Input"},
        minProperties=1,
    )
    props["layers"].pop("items")  # StrictLayer or Layer: see _conditions
    props["vars"]["propertyNames"] = {"pattern": IDENT}
    props["blocks"] = {
        **props["blocks"],
        "propertyNames": {"$ref": "#/$defs/BlockName"},
        "additionalProperties": {"$ref": "#/$defs/Block"},
    }
    props["train"] = {
        **props["train"],
        "anyOf": [{"$ref": "#/$defs/TrainConfig"}, {"type": "null"}],
    }
    top.pop("required")
    defs["Block"] = _block_def()
    defs["DeclaredVar"] = _model(DeclaredVar, expressions=False)
    return {
        "$schema": DRAFT,
        "title": "archspec spec",
        "description": "A neural network as YAML: input, layers, blocks and training. "
        "Validate with `archspec check`; regenerate with `archspec schema`.",
        **top,
        "allOf": [
            *_conditions(),
            {"not": {"required": ["input", "inputs"]}},  # one or the other
        ],
        "$defs": dict(sorted(defs.items())),
    }


def render() -> str:
    """The schema as the text of the shipped file (sorted keys, two-space indent)."""
    return json.dumps(generate(), indent=2, ensure_ascii=False) + "\n"


# --------------------------------------------------------------------------- documentation
def _doc(info: FieldInfo) -> tuple[str, list[Any]] | None:
    """A field's description and examples, from the model itself: ``Field(description=...,
    examples=[...])`` on a kind's Params (archspec.shapes.kinds) or a spec/train model
    (archspec.language)."""
    if not info.examples:
        return None
    return info.description or "", list(info.examples)


def _model(model: type[BaseModel], *, expressions: bool = True) -> Json:
    """A model's schema with descriptions, examples, alias names and (optionally) expressions."""
    schema = model.model_json_schema(mode="validation", ref_template="#/$defs/{model}")
    schema.pop("$defs", None)
    schema.pop("title", None)
    props: Json = schema.get("properties", {})
    for name, info in model.model_fields.items():
        prop = props[name]
        if _per_dim_field([*info.metadata, info.annotation]):
            prop = _per_axis(prop)
        prop["title"] = name  # editors show it in hovers and messages
        _drop_examples(prop)  # pydantic puts a Field's examples inside; they go on top
        doc = _doc(info)
        if doc is not None:
            prop.setdefault("description", doc[0])
            prop["examples"] = [prop["const"]] if "const" in prop else doc[1]
        if isinstance(prop.get("default"), list) and len(prop["default"]) == 1:
            prop["default"] = prop["default"][0]  # `stride: 1`, as a spec writes it
        props[name] = _expressions(prop) if expressions else prop
        _aliases(schema, name, info.validation_alias)
    return schema


def _drop_examples(node: Json) -> None:
    node.pop("examples", None)
    for part in node.get("anyOf", []):
        _drop_examples(part)


def _per_dim_field(parts: list[Any]) -> bool:
    """True when a field (or a member of its union) is ``PerDim``-like: ``5`` means ``(5,)``."""
    for part in parts:
        if getattr(part, "func", None) is per_dim:
            return True
        inner = [*get_args(part), *getattr(part, "__metadata__", ())]
        if inner and _per_dim_field(inner):
            return True
    return False


def _per_axis(prop: Json) -> Json:
    """``[int, ...]`` → ``int | [int, ...]``: one value for every axis, or one per axis."""
    if "anyOf" in prop:
        parts = [_per_axis(p) if p.get("type") == "array" else p for p in prop["anyOf"]]
        return {**prop, "anyOf": [x for p in parts for x in p.get("anyOf", [p])]}
    meta: Json = {k: prop.pop(k) for k in ("default", "description") if k in prop}
    return {"anyOf": [prop["items"], {**prop, "minItems": 1}], **meta}


def _aliases(schema: Json, name: str, alias: Any) -> None:
    """Accept every ``AliasChoices`` spelling (``filters`` for ``depth``) as a property."""
    if not isinstance(alias, AliasChoices):
        return
    others = [c for c in alias.choices if isinstance(c, str) and c != name]
    for other in others:
        schema["properties"][other] = copy.deepcopy(schema["properties"][name])
    if name in schema.get("required", []):
        schema["required"].remove(name)
        schema.setdefault("allOf", []).append(
            {"anyOf": [{"required": [n]} for n in (name, *others)]}
        )
        if not schema["required"]:
            del schema["required"]


# ---------------------------------------------------------------------------- expressions
_PASS = ("title", "description", "default", "examples")


def _walk(node: Any, leaf: Callable[[Json], Json | None]) -> Any:
    """Rebuild a schema, replacing each subschema for which ``leaf`` returns a new one."""
    if not isinstance(node, dict):
        return node
    replaced = leaf(node)
    if replaced is not None:
        return replaced
    out = dict(node)
    for key in ("items", "additionalProperties", "not"):
        if isinstance(node.get(key), dict):
            out[key] = _walk(node[key], leaf)
    for key in ("prefixItems", "anyOf", "oneOf", "allOf"):
        if key in node:
            out[key] = [_walk(part, leaf) for part in node[key]]
    if "properties" in node:
        out["properties"] = {k: _walk(v, leaf) for k, v in node["properties"].items()}
    if "anyOf" in out:  # flatten the anyOf that wrapping a member made
        flat = [
            x
            for part in out["anyOf"]
            for x in (part["anyOf"] if set(part) == {"anyOf"} else [part])
        ]
        out["anyOf"] = [x for i, x in enumerate(flat) if x not in flat[:i]]
    return out


def _or_expression(node: Json) -> Json:
    meta = {k: node[k] for k in _PASS if k in node}
    core = {k: v for k, v in node.items() if k not in _PASS}
    return {"anyOf": [core, {"$ref": "#/$defs/Expression"}], **meta}


def _number_leaf(node: Json) -> Json | None:
    numeric_enum = "enum" in node and all(isinstance(v, int | float) for v in node["enum"])
    if node.get("type") in ("integer", "number", "boolean") or numeric_enum:
        return _or_expression(node)
    return None


def _word_leaf(node: Json) -> Json | None:
    if "enum" in node and all(isinstance(v, str) for v in node["enum"]):
        return _or_expression(node)
    return None


def _expressions(node: Json) -> Json:
    """Let a number or boolean also be an expression string (``depth * 2``, ``downsample``)."""
    result: Json = _walk(node, _number_leaf)
    return result


def _loosen(node: Json) -> Json:
    """Inside blocks a word (``kind: max``) may also be an argument (``kind: pool_kind``)."""
    result: Json = _walk(node, _word_leaf)
    return result


# --------------------------------------------------------------------------------- layers
def _ref(name: str, **extra: Any) -> Json:
    return {"$ref": f"#/$defs/{name}", **extra}


def _spellings() -> list[tuple[str, kinds.Kind]]:
    """Every name a layer may use for its kind, registry order, aliases after each kind."""
    return [
        (spelling, kind)
        for kind in kinds.REGISTRY.values()
        for spelling in (kind.name, *kind.aliases)
    ]


def _required(kind: kinds.Kind) -> list[str]:
    """The parameters a kind cannot do without (``conv`` needs depth and kernel)."""
    return [name for name, info in kind.params.model_fields.items() if info.is_required()]


def _kind_value(kind: kinds.Kind, params: Json, params_ref: str) -> Json:
    """What may follow ``conv:``: the parameters, the shorthand value, or null."""
    options: list[Json] = [_ref(params_ref)]
    props = params["properties"]
    shorthand = kind.params.shorthand
    if shorthand is not None:
        options += props[shorthand].get("anyOf") or [props[shorthand]]
    needed = _required(kind)
    if not needed:
        options.append({"type": "null"})
    example: Any = None
    if shorthand is not None:
        example = props[shorthand]["examples"][0]
    elif needed:
        example = {name: props[name]["examples"][0] for name in needed}
    return {"description": kind.summary, "examples": [example], "anyOf": options}


def _layer_defs(loose: bool) -> Json:
    """Parameter models, kind values and the layer entry, strict or loose (see the module doc)."""
    suffix = "_loose" if loose else ""
    defs: Json = {}
    alternatives: list[Json] = [_ref("BareKind")]
    if loose:
        alternatives.append(_ref("BlockName", description="A block used without arguments."))
    for kind in kinds.REGISTRY.values():
        params = _model(kind.params)
        params = {**(_loosen(params) if loose else params), "title": f"{kind.name} parameters"}
        defs[f"{kind.name}_params{suffix}"] = params
        value = _kind_value(kind, params, f"{kind.name}_params{suffix}")
        defs[f"kind_{kind.name}{suffix}"] = {"title": kind.name, **value}
        for spelling in (kind.name, *kind.aliases):
            alternatives.append(
                {
                    "title": f"{spelling} layer",
                    "type": "object",
                    "description": kind.summary,
                    "properties": {spelling: _ref(f"kind_{kind.name}{suffix}"), **_meta_props()},
                    "required": [spelling],
                    "additionalProperties": False,
                }
            )
    if loose:
        alternatives.append(_ref("BlockUse"))
    name = "Layer" if loose else "StrictLayer"
    forms = "a kind name (`relu`), `kind: value` (`dense: 10`), `kind: {params}`"
    forms += " or a block use (`block: {args}`)" if loose else ""
    defs[name] = {
        "title": "layer",
        "description": f"A layer: {forms}, with `name`, `from`, `repeat`, `when` beside the kind.",
        "anyOf": alternatives,
    }
    return defs


def _meta_props() -> Json:
    return {key: _ref(f"Meta_{key}") for key in META_KEYS}


def _meta_docs() -> dict[str, tuple[str, list[Any]]]:
    docs: dict[str, tuple[str, list[Any]]] = {
        "name": ("Name of the layer, for `from:` and module paths.", ["skip", "conv1", 0]),
        "from": (
            "The input(s): a layer name or a list of names; `input` is the network's.",
            ["skip", ["a", "b"]],
        ),
        "repeat": ("Stack this layer or block this many times.", [2, "depth"]),
        "when": ("Skip the layer (pass its input through) when false.", [True, "project"]),
        "outputs": (
            "Names for the outputs of a layer with several (split, chunk); `from:` reads one.",
            [["x1", "x2"]],
        ),
    }
    assert set(docs) == set(META_KEYS), "document every meta key"
    return docs


def _meta_defs() -> Json:
    bare = [spelling for spelling, kind in _spellings() if not _required(kind)]
    scalar = {"type": ["string", "number", "boolean"]}
    meta = {
        f"Meta_{key}": {"title": key, "description": d, "examples": e}
        for key, (d, e) in _meta_docs().items()
    }
    return {
        "Expression": {
            "title": "expression",
            "type": "string",
            "minLength": 1,
            "description": "Or an arithmetic expression over `vars:` or block arguments, "
            "e.g. `width * 2` (+ - * / // %, min, max, parentheses).",
        },
        "BareKind": {
            "title": "kind",
            "enum": bare,
            "description": "A layer kind that needs no parameters.",
        },
        "BlockName": {
            "title": "block name",
            "type": "string",
            "pattern": IDENT,
            "not": {"enum": [*kinds.names(), *META_KEYS, "input", "output"]},
            "description": "A block defined under `blocks:` (not a layer kind).",
        },
        "BlockUse": {
            "title": "block use",
            "type": "object",
            "description": "A use of a block defined under `blocks:`, with its arguments.",
            "properties": _meta_props(),
            "propertyNames": {"anyOf": [{"enum": list(META_KEYS)}, _ref("BlockName")]},
            "additionalProperties": {
                "title": "block arguments",
                "description": "The block's arguments: a mapping, one value (a one-argument "
                "block) or null.",
                "anyOf": [
                    {"type": "object", "propertyNames": {"pattern": IDENT}},
                    scalar,
                    {"type": "null"},
                ],
            },
            "not": {"propertyNames": {"enum": list(META_KEYS)}},
        },
        "Meta_name": {
            **meta["Meta_name"],
            "anyOf": [
                {"type": "string", "pattern": "^[A-Za-z0-9_]+$"},
                {"type": "integer", "minimum": 0},
            ],
        },
        "Meta_from": {
            **meta["Meta_from"],
            "anyOf": [
                {"type": "string", "minLength": 1},
                {"type": "array", "minItems": 1, "items": {"type": "string", "minLength": 1}},
            ],
        },
        "Meta_repeat": {
            **meta["Meta_repeat"],
            "anyOf": [{"type": "integer", "minimum": 1}, _ref("Expression")],
        },
        "Meta_when": {**meta["Meta_when"], "anyOf": [{"type": "boolean"}, _ref("Expression")]},
        "Meta_outputs": {
            **meta["Meta_outputs"],
            "type": "array",
            "minItems": 1,
            "items": {"type": "string", "pattern": "^[A-Za-z0-9_]+$"},
        },
    }


def _block_def() -> Json:
    block = _model(BlockModel, expressions=False)
    block["properties"]["args"]["propertyNames"] = {"pattern": IDENT}
    block["properties"]["layers"]["items"] = _ref("Layer")
    layers = {"type": "array", "minItems": 1, "items": _ref("Layer")}
    return {
        "description": "A block: `{args, layers, output}`, or just its list of layers.",
        "anyOf": [block, layers],
    }


# ---------------------------------------------------------------------------------- train
def _members(field: str) -> list[type[BaseModel]]:
    annotation = train_models.TrainConfig.model_fields[field].annotation
    return [m for m in get_args(annotation) if isinstance(m, type) and issubclass(m, BaseModel)]


def _union(field: str) -> tuple[Json, Json]:
    """``optimizer``/``schedule``: a name, a tagged mapping, or (under extends) overrides."""
    members = _members(field)
    tags = [get_args(m.model_fields["name"].annotation)[0] for m in members]
    shared: Json = {}
    for member in members:
        shared.update(
            {
                k: v
                for k, v in _model(member)["properties"].items()
                if k != "name" and k not in shared
            }
        )
    override = {
        "type": "object",
        "properties": shared,
        "additionalProperties": False,
        "description": f"In a spec that extends another: {field} settings to override.",
    }
    union = {
        "anyOf": [{"enum": tags}, *(_ref(m.__name__) for m in members), _ref(f"{field}_override")]
    }
    return union, override


def _train_defs() -> Json:
    defs: Json = {}
    nested: list[type[BaseModel]] = [
        train_models.DataConfig,
        train_models.Loss,
        *_members("optimizer"),
        *_members("schedule"),
    ]
    ops = [m for m in get_args(get_args(recipe.AugmentOp)[0]) if issubclass(m, BaseModel)]
    nested += [*ops, recipe.EarlyStop, recipe.Distributed]
    for model in nested:
        defs[model.__name__] = _model(model, expressions=model is not train_models.DataConfig)
    config = _model(train_models.TrainConfig)
    tags = [get_args(m.model_fields["name"].annotation)[0] for m in ops]
    augment = config["properties"]["augment"]
    config["properties"]["augment"] = {k: v for k, v in augment.items() if k in _PASS} | {
        "type": "array",
        "items": {"anyOf": [{"enum": tags}, *(_ref(m.__name__) for m in ops)]},
    }
    config["properties"]["device"]["pattern"] = train_models._DEVICE.pattern
    config.pop("required")  # `data:` may come from the spec this one extends
    for field in ("optimizer", "schedule"):
        union, defs[f"{field}_override"] = _union(field)
        prop = config["properties"][field]
        config["properties"][field] = {k: v for k, v in prop.items() if k in _PASS} | union
    defs["TrainConfig"] = config
    return defs


def _conditions() -> list[Json]:
    named = {"anyOf": [{"type": "string"}, {"required": ["name"]}]}
    complete_train = {
        "title": "train",
        "required": ["data"],
        "properties": {
            "data": {
                "anyOf": [
                    {"required": [key], "properties": {key: {"type": "string"}}}
                    for key in ("dataset", "path")
                ]
            },
            "optimizer": named,
            "schedule": named,
        },
    }
    text_vars = {
        "required": ["vars"],
        "properties": {"vars": {"not": {"additionalProperties": {"not": {"type": "string"}}}}},
    }
    plain = {"not": {"anyOf": [{"required": ["blocks"]}, {"required": ["extends"]}, text_vars]}}
    return [
        {
            "if": {"required": ["extends"]},
            "else": {
                "required": ["layers"],
                "oneOf": [{"required": ["input"]}, {"required": ["inputs"]}],
                "properties": {"train": {"anyOf": [{"type": "null"}, complete_train]}},
            },
        },
        {
            "if": plain,
            "then": {"properties": {"layers": {"items": _ref("StrictLayer")}}},
            "else": {"properties": {"layers": {"items": _ref("Layer")}}},
        },
    ]


def write(path: Path = SCHEMA_FILE) -> None:
    """Write the schema file atomically (what ``ARCHSPEC_UPDATE_SCHEMA=1`` in the tests does)."""
    from archspec.io import write_text

    write_text(path, render())
