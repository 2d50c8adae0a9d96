"""load → validate: a spec file becomes a :class:`Spec` of validated layer nodes.

Every independent problem is collected (structure, training section, each
layer's parameters, each graph reference) and raised together as one
:class:`SpecError`. Shape inference happens in :mod:`archspec.shapes.infer`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from archspec.errors import DataPath, Location, Problem, SpecError, bounded_suggestions
from archspec.language.expr import ExprError, Scalar, evaluate_tree, resolve
from archspec.language.extends import read_spec
from archspec.language.graph import Block, Expander, Node, Ref, Scope, is_poison
from archspec.language.model import BlockModel, InputModel, SpecModel
from archspec.language.order import dead_nodes, resolve_inputs, resolve_output, topological
from archspec.language.problems import dedupe, from_validation
from archspec.language.train import TrainConfig
from archspec.language.variables import declared_value
from archspec.loader.source import DEFAULT_LIMITS, Document, Limits, SourceMap, parse
from archspec.shapes import kinds
from archspec.shapes.plan import Layout, default_layout

# The largest real networks (ResNet-152, DenseNet-264, ViT-H) have under 2,000 layers; 10,000
# keeps every command on a spec at the limit under 5 s of CPU (issue #13, tests/worst_cases.py:
# 100,000 trivial layers took 7.5 s to check and 22 s to verify). `--max-layers` raises it.
DEFAULT_MAX_LAYERS = 10_000


@dataclass(frozen=True)
class Layer:
    """A validated layer node, ready for shape inference."""

    name: str
    kind: str
    params: BaseModel
    inputs: tuple[str, ...]
    params_path: DataPath  # where its parameters are written
    location: Location | None
    group: tuple[str, ...]
    notes: tuple[str, ...]
    ports: tuple[int, ...] = ()  # which output of each input (() : each input's only one)
    outputs: tuple[str, ...] = ()  # the names of its outputs, for a layer with several


@dataclass(frozen=True)
class Validated:
    name: str
    input_shape: tuple[int, ...]
    input_layout: Layout
    layers: tuple[Layer, ...]
    output: str
    train: TrainConfig | None
    data: Any
    source: SourceMap
    path: Path | None
    output_port: int = 0  # which output of `output` (one of a split's)


def validate_file(
    path: Path, limits: Limits = DEFAULT_LIMITS, max_layers: int = DEFAULT_MAX_LAYERS
) -> tuple[Validated, list[Problem]]:
    return validate_document(read_spec(path, limits), path, max_layers)


def validate_text(
    text: str,
    file: str = "<spec>",
    limits: Limits = DEFAULT_LIMITS,
    max_layers: int = DEFAULT_MAX_LAYERS,
) -> tuple[Validated, list[Problem]]:
    return validate_document(parse(text, file, limits), None, max_layers)


def validate_document(
    doc: Document, path: Path | None, max_layers: int
) -> tuple[Validated, list[Problem]]:
    """The validated spec and the problems found; raises when nothing can be inferred.

    Layers whose parameters are invalid are left out of ``layers`` (their
    problems are returned), so shape inference can still check the others. The
    "did you mean" searches of one spec share a bounded budget (:func:`bounded_suggestions`).
    """
    with bounded_suggestions():
        return _validate_document(doc, path, max_layers)


def _validate_document(
    doc: Document, path: Path | None, max_layers: int
) -> tuple[Validated, list[Problem]]:
    source = doc.source
    data = doc.data
    if not isinstance(data, dict):
        raise SpecError(
            [
                Problem(
                    f"a spec is a mapping with `input:` and `layers:`; this file holds "
                    f"{type(data).__name__ if data is not None else 'nothing'}",
                    "see specs/mnist_cnn.yaml for the layout",
                    source.locate(()),
                )
            ]
        )
    problems: list[Problem] = []
    if "extends" in data:  # a file's `extends:` is merged away by read_spec; text has no folder
        problems.append(
            Problem(
                "extends needs the spec to be a file (its path is relative to it)",
                "save the spec and load it with archspec.load(path)",
                source.locate(("extends",)),
                ("extends",),
            )
        )
    env = _variables(data.get("vars"), source, problems)
    evaluated = {
        key: _evaluate(value, (key,), env, source, problems) if key in ("input", "train") else value
        for key, value in data.items()
    }
    train = _train(evaluated.get("train"), source, env, problems)
    try:
        model = SpecModel.model_validate(evaluated)
    except ValidationError as exc:
        problems += from_validation(exc, source, (), SpecModel, env)
        raise SpecError(dedupe(problems)) from None
    layers, output, port = _graph(model, source, env, max_layers, problems)
    if not layers:
        raise SpecError(dedupe(problems))
    name = model.name or (path.stem if path else "network")
    if isinstance(model.input, InputModel):
        shape, layout = model.input.shape, model.input.layout or default_layout(model.input.shape)
    else:
        shape, layout = model.input, default_layout(model.input)
    validated = Validated(name, shape, layout, layers, output, train, data, source, path, port)
    return validated, dedupe(problems)


def _variables(raw: Any, source: SourceMap, problems: list[Problem]) -> dict[str, Scalar]:
    """Evaluate ``vars:`` in order; each may use the ones before it."""
    env: dict[str, Scalar] = {}
    if not isinstance(raw, dict):
        return env
    for key, value in raw.items():
        if isinstance(value, dict):  # declared: {value: 32, multiple_of: 8, ...}
            value = declared_value(str(key), value, env, source, problems)
        if isinstance(value, str):
            try:
                value = resolve(value, env)
            except ExprError as exc:
                problems.append(
                    Problem(exc.message, exc.hint, source.locate(("vars", key)), ("vars", key))
                )
        if isinstance(value, int | float | bool | str):
            env[str(key)] = value
    return env


# Text, never arithmetic: file paths and dataset names such as `data/set-2` or `cifar-10`.
_TEXT_ONLY: tuple[DataPath, ...] = (("train", "data"),)


def _evaluate(
    value: Any,
    path: DataPath,
    env: Mapping[str, Scalar],
    source: SourceMap,
    problems: list[Problem],
) -> Any:
    def report(at: DataPath, exc: ExprError) -> None:
        problems.append(Problem(exc.message, exc.hint, source.locate(at), at))

    return evaluate_tree(value, path, env, report, _TEXT_ONLY)


def _train(
    raw: Any, source: SourceMap, env: Mapping[str, Scalar], problems: list[Problem]
) -> TrainConfig | None:
    if not isinstance(raw, dict):
        return None  # `train: 5` is reported once, by SpecModel
    try:
        return TrainConfig.model_validate(raw)
    except ValidationError as exc:
        problems += from_validation(exc, source, ("train",), TrainConfig, env)
        return None


def _blocks(model: SpecModel, source: SourceMap, problems: list[Problem]) -> dict[str, Block]:
    blocks = {}
    for name, raw in model.blocks.items():
        if kinds.canonical(name) is not None:
            problems.append(
                Problem(
                    f"block name '{name}' is also a layer kind",
                    "rename the block",
                    source.locate(("blocks", name), key=True),
                    ("blocks", name),
                )
            )
            continue
        block = raw if isinstance(raw, BlockModel) else BlockModel(layers=raw)
        path: DataPath = ("blocks", name)
        layers_path = (*path, "layers") if isinstance(raw, BlockModel) else path
        blocks[name] = Block(dict(block.args), block.layers, block.output, path, layers_path)
    return blocks


def _graph(
    model: SpecModel,
    source: SourceMap,
    env: dict[str, Scalar],
    max_layers: int,
    problems: list[Problem],
) -> tuple[tuple[Layer, ...], str, int]:
    blocks = _blocks(model, source, problems)
    expander = Expander(source, blocks, max_layers)
    top = Scope(prefix="", input="input", env=env)
    last = expander.expand(model.layers, ("layers",), top)
    problems += expander.problems
    if expander.overflowed:  # validating and inferring every layer is what the limit prevents
        return (), "input", 0
    if model.output is not None:
        last = Ref(top, model.output, ("output",))
    several = expander.several
    problems += resolve_inputs(expander.nodes, expander.full_names, source, several)
    output, port, output_problems = resolve_output(
        last, expander.full_names, source, several, ("layers", len(model.layers) - 1)
    )
    problems += output_problems
    if output == "input":
        problems.append(
            Problem(
                "the network has no layers that run",
                "add layers under `layers:`",
                source.locate(("layers",)),
                ("layers",),
            )
        )
        return (), output, 0
    ordered, cycle = topological(expander.nodes, source)
    problems += cycle
    if not problems and not is_poison(output):  # a broken chain would look dead
        problems += dead_nodes(ordered, output, source)
    layers = [_validate_layer(node, source, problems) for node in ordered]
    return tuple(layer for layer in layers if layer is not None), output, port


def _validate_layer(node: Node, source: SourceMap, problems: list[Problem]) -> Layer | None:
    base = (*node.entry, node.op)
    try:
        params = _params(node.kind, node.raw)
    except ValidationError as exc:
        kind = kinds.get(node.kind)
        problems += from_validation(exc, source, base, kind.params, node.env, node.notes)
        return None
    return Layer(
        node.name,
        node.kind,
        params,
        node.inputs,
        base,
        source.locate(node.entry),
        node.group,
        node.notes,
        node.ports,
        node.outputs,
    )


# Memo of validated parameters: (Params model, the raw value's exact content) → its Params.
# Validation is a pure function of the raw value (plain YAML data, expressions already
# evaluated), and Params are frozen, so layers written alike share one object: the
# repeated layers of a spec, and every unchanged layer when an editor re-checks a buffer
# (outputs/lsp). Shape inference memoizes its rules by that object (shapes/infer.py).
# The key tells apart what only compares equal (1, 1.0 and True; 0.0 and -0.0); a value
# that fails is validated afresh each time (its problems carry the layer's location).
_PARAMS_MEMO: dict[tuple[type[BaseModel], Any], BaseModel] = {}
PARAMS_MEMO_SIZE = 50_000  # entries; emptied when full


def _params(kind: str, raw: Any) -> BaseModel:
    """``raw`` validated by ``kind``'s Params model (raises ValidationError)."""
    model = kinds.get(kind).params
    try:
        key: tuple[type[BaseModel], Any] | None = (model, _content(raw))
    except TypeError:  # not plain data: validate without the memo
        key = None
    if key is not None:
        hit = _PARAMS_MEMO.get(key)
        if hit is not None:
            return hit
    params = model.model_validate(raw)
    if key is not None:
        if len(_PARAMS_MEMO) >= PARAMS_MEMO_SIZE:
            _PARAMS_MEMO.clear()
        _PARAMS_MEMO[key] = params
    return params


def _content(value: Any) -> Any:
    """A hashable key equal for two values only when they are the same plain data, types
    included (raises TypeError for anything else)."""
    kind = type(value)
    if kind is str or kind is int or kind is bool or value is None:
        return (kind, value)
    if kind is float:
        return (kind, repr(value))  # -0.0 and nan as written
    if kind is dict:
        return (kind, tuple((_content(k), _content(v)) for k, v in value.items()))
    if kind is list:
        return (kind, tuple(_content(v) for v in value))
    raise TypeError(f"not plain data: {kind.__name__}")
