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

from archspec.language import recipe
from archspec.language import train as train_models
from archspec.language.graph import META_KEYS
from archspec.language.model import BlockModel, SpecModel
from archspec.shapes import kinds
from archspec.shapes.kinds.base import _per_dim

DRAFT = "https://json-schema.org/draft/2020-12/schema"
SCHEMA_FILE = Path(__file__).parent / "archspec.schema.json"
SPEC_COMMENT = "# yaml-language-server: $schema=../archspec/outputs/archspec.schema.json"
IDENT = r"^[A-Za-z_][A-Za-z0-9_]*$"
Json = dict[str, Any]

# Descriptions and examples of fields: "owner.field" (owner: a kind or a model) first, then
# "field". A Pydantic description wins over the one here. Every field needs an entry.
DOCS: dict[str, tuple[str, list[Any]]] = {
    "depth": ("Number of filters (output channels); `filters` also accepted.", [32, 64]),
    "kernel": ("Kernel size: an int or one per spatial axis.", [3, 5, [3, 1]]),
    "stride": ("Step between windows: an int or one per spatial axis.", [1, 2]),
    "padding": ("Zero padding per side: an int, one per axis, same or valid.", [0, 1, "same"]),
    "pool.stride": ("Step between windows; default: the window size.", [2, [2, 1]]),
    "conv_transpose.stride": ("Upsampling factor: an int or one per spatial axis.", [2]),
    "conv_transpose.padding": ("Padding removed from each side of the output.", [0, 1]),
    "pool.padding": ("Implicit padding per side (at most half the window).", [0, 1]),
    "output_padding": ("Extra size added to one side of the output (< stride).", [0, 1]),
    "dilation": ("Spacing between kernel elements: an int or one per spatial axis.", [1, 2]),
    "groups": ("Split the channels into groups (must divide both channel counts).", [1, 4]),
    "bias": ("Learn an additive bias.", [True, False]),
    "padding_mode": ("How to pad: zeros, reflect, replicate or circular.", ["zeros", "reflect"]),
    "pool.kind": ("max, avg, or lp (power-average / Lp-norm pooling).", ["max", "avg", "lp"]),
    "pool.size": ("Window size: an int or one per spatial axis.", [2, 3]),
    "ceil_mode": ("Round the output size up instead of down.", [False, True]),
    "norm": ("p of lp pooling: 2 is L2-norm pooling, 1 the window sum.", [2, 1]),
    "count_include_pad": ("avg pooling: count padded zeros in the average.", [True, False]),
    "global_pool.kind": ("avg or max over every spatial position.", ["avg", "max"]),
    "adaptive_pool.kind": ("avg or max pooling.", ["avg", "max"]),
    "adaptive_pool.size": ("Output size: an int or one per spatial axis.", [1, 4, [4, 4]]),
    "slope": ("Slope for negative inputs; `negative_slope` also accepted.", [0.01, 0.2]),
    "alpha": ("Scale of the negative saturation.", [1.0]),
    "approximate": ("none (exact) or tanh approximation.", ["none", "tanh"]),
    "eps": ("Added to the denominator for stability.", [1e-5]),
    "momentum": ("Running-statistics update factor, in [0, 1).", [0.1, 0.9]),
    "affine": ("Learn a per-channel scale and shift.", [True, False]),
    "p": ("Probability of zeroing an activation, in [0, 1); `rate` also accepted.", [0.5, 0.2]),
    "units": ("Number of outputs; `features` also accepted.", [10, 128]),
    "scale": ("Integer upsampling factor: an int or one per spatial axis.", [2, [2, 1]]),
    "mode": ("nearest (repeat) or linear (interpolate).", ["nearest", "linear"]),
    # top level and blocks
    "SpecModel.name": ("Network name; default: the file name.", ["mnist-cnn"]),
    "SpecModel.description": ("Free text about the network.", ["LeNet-5 on 32×32 digits"]),
    "SpecModel.extends": ("A spec file (relative path) this one overrides.", ["mnist_cnn.yaml"]),
    "SpecModel.vars": ("Variables for arithmetic expressions.", [{"width": 32, "deep": True}]),
    "SpecModel.input": ("[channels, *spatial] or [features].", [[1, 28, 28], [3, 128]]),
    "SpecModel.blocks": ("Sub-networks, used by name like a kind.", [{"unit": ["relu"]}]),
    "SpecModel.layers": ("The layers, in order.", [["flatten", {"dense": 10}]]),
    "SpecModel.output": ("The output layer; default: the last one.", ["fc"]),
    "SpecModel.train": ("How `archspec train` trains it.", [{"data": {"dataset": "mnist"}}]),
    "BlockModel.args": ("Arguments and defaults (null: required).", [{"depth": None, "stride": 1}]),
    "BlockModel.layers": ("The block's layers; `from: input` reads its input.", [["relu"]]),
    "BlockModel.output": ("The layer the block returns; default: its last.", ["relu2"]),
    # train
    "data": ("Where the examples come from and how they are split.", [{"dataset": "mnist"}]),
    "dataset": ("A named dataset.", ["mnist", "fashion-mnist"]),
    "path": ("A folder of IDX files, a .npz file or an image folder.", ["data/digits"]),
    "DataConfig.train": ("Training split.", ["train", "test[:8000]"]),
    "val": ("Validation: a held-out fraction, 0, or a split.", [0.1, 0, "test[8000:]"]),
    "test": ("Test split evaluated after training; null: none.", ["test", "test[8000:]"]),
    "normalize": ("auto: standardise per channel; none: as is.", ["auto", "none"]),
    "batch_size": ("Examples per optimisation step (the global batch).", [64, 128]),
    "epochs": ("Passes over the training split.", [10]),
    "optimizer": ("A name, or `name:` with settings.", ["adam", {"name": "sgd", "lr": 0.1}]),
    "schedule": ("A name, or `name:` with settings.", ["cosine", {"name": "step", "every": 3}]),
    "loss": ("The loss function.", [{"name": "cross_entropy", "label_smoothing": 0.1}]),
    "seed": ("Random seed for initialisation, shuffling and dropout.", [0, 42]),
    "device": ("auto (CUDA when present), cpu, cuda, cuda:N or mps.", ["auto", "cuda:0"]),
    "log_every": ("Write step metrics every this many steps.", [100]),
    "checkpoint_every": ("Also checkpoint every this many steps.", [1000]),
    "eval_batch_size": ("Batch size for evaluation.", [512]),
    "threads": ("CPU threads; default: the cores available.", [4]),
    "name": ("Which one (selects the other settings).", ["adam"]),
    "lr": ("Learning rate.", [0.001, 0.1]),
    "nesterov": ("Nesterov momentum (needs momentum > 0).", [False, True]),
    "SGD.momentum": ("Momentum factor, in [0, 1).", [0.9]),
    "weight_decay": ("L2 penalty (decoupled for adamw).", [0.0, 0.01]),
    "betas": ("Running-average factors of the gradient and its square.", [[0.9, 0.999]]),
    "warmup": ("Linear warm-up from 0, in epochs.", [0, 1]),
    "every": ("Multiply the lr by gamma every this many epochs.", [3]),
    "gamma": ("Factor applied every `every` epochs, in (0, 1].", [0.1, 0.5]),
    "min_lr": ("Learning rate at the end of the cosine.", [0.0, 1e-5]),
    "max_lr": ("Peak lr; default: the optimizer's lr.", [0.01]),
    "pct_start": ("Fraction of the run spent increasing the lr.", [0.3]),
    "div_factor": ("Initial lr = max_lr / div_factor.", [25.0]),
    "final_div_factor": ("Final lr = initial lr / final_div_factor.", [10000.0]),
    "label_smoothing": ("Label smoothing in [0, 1).", [0.0, 0.1]),
    # train.augment ops (archspec/language/recipe.py) where a layer's key has the same name
    "RandomCrop.padding": ("Pixels added on each side.", [4, 2]),
    "RandomCrop.padding_mode": ("constant (zeros), reflect or replicate.", ["reflect"]),
    "Affine.scale": ("[min, max] zoom factor.", [[0.9, 1.1]]),
    "RandomResizedCrop.scale": ("[min, max] cropped area, a fraction.", [[0.08, 1.0]]),
    "RandomErasing.scale": ("[min, max] erased area, a fraction.", [[0.02, 0.33]]),
}


def generate() -> Json:
    """The whole schema as a JSON-able dict (deterministic: same models, same output)."""
    defs: Json = {**_meta_defs(), **_train_defs()}
    for loose in (False, True):
        defs.update(_layer_defs(loose))
    top = _model(SpecModel, "SpecModel", expressions=False)
    props = top["properties"]
    props["input"]["items"] = _expressions(props["input"]["items"])
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
    return {
        "$schema": DRAFT,
        "title": "archspec spec",
        "description": "A neural network as YAML: input, layers, blocks and training. "
        "Validate with `archspec check`; regenerate with `archspec schema`.",
        **top,
        "allOf": _conditions(),
        "$defs": dict(sorted(defs.items())),
    }


def render() -> str:
    """The schema as the text of the shipped file (sorted keys, two-space indent)."""
    return json.dumps(generate(), indent=2, ensure_ascii=False) + "\n"


# --------------------------------------------------------------------------- documentation
def _doc(owner: str, field: str) -> tuple[str, list[Any]] | None:
    return DOCS.get(f"{owner}.{field}") or DOCS.get(field)


def _model(model: type[BaseModel], owner: str, *, expressions: bool = True) -> Json:
    """A model's schema with descriptions, examples, alias names and (optionally) expressions.

    ``owner`` picks the documentation: a kind name (``pool``) or the model's class name.
    """
    schema = model.model_json_schema(mode="validation", ref_template="#/$defs/{model}")
    schema.pop("$defs", None)
    schema.pop("title", None)
    props: Json = schema.get("properties", {})
    for name, info in model.model_fields.items():
        prop = props[name]
        if _per_dim_field([*info.metadata, info.annotation]):
            prop = _per_axis(prop)
        prop["title"] = name  # editors show it in hovers and messages
        doc = _doc(owner, name)
        if doc is not None:
            prop.setdefault("description", doc[0])
            prop["examples"] = [prop["const"]] if "const" in prop else doc[1]
        if isinstance(prop.get("default"), list) and len(prop["default"]) == 1:
            prop["default"] = prop["default"][0]  # `stride: 1`, as a spec writes it
        props[name] = _expressions(prop) if expressions else prop
        _aliases(schema, name, info.validation_alias)
    return schema


def _per_dim_field(parts: list[Any]) -> bool:
    """True when a field (or a member of its union) is ``PerDim``-like: ``5`` means ``(5,)``."""
    for part in parts:
        if getattr(part, "func", None) is _per_dim:
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
        params = _model(kind.params, kind.name)
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
    }


def _block_def() -> Json:
    block = _model(BlockModel, "BlockModel", expressions=False)
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
                for k, v in _model(member, member.__name__)["properties"].items()
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
        defs[model.__name__] = _model(
            model, model.__name__, expressions=model is not train_models.DataConfig
        )
    config = _model(train_models.TrainConfig, "TrainConfig")
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
                "required": ["input", "layers"],
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
