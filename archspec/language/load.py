"""load → validate: a spec file becomes a :class:`Spec` of validated layer nodes.

Every independent problem is collected (structure, training section, each
layer's parameters, each graph reference) and raised together as one
:class:`SpecError`. Shape inference happens in :mod:`archspec.shapes.infer`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ValidationError

from archspec.errors import DataPath, Location, Problem, SpecError, bounded_suggestions
from archspec.language.expr import ExprError, Scalar, evaluate_tree, resolve
from archspec.language.extends import read_spec
from archspec.language.graph import (
    NO_INPUT,
    Block,
    Expander,
    Node,
    Ref,
    Scope,
    Target,
    is_poison,
    poison,
)
from archspec.language.model import BlockModel, InputModel, SpecModel
from archspec.language.order import (
    dead_nodes,
    resolve_inputs,
    resolve_output,
    topological,
    unread_inputs,
)
from archspec.language.problems import dedupe, from_validation
from archspec.language.variables import declared_value
from archspec.loader.source import DEFAULT_LIMITS, Document, Limits, SourceMap, parse
from archspec.shapes import kinds
from archspec.shapes.plan import Layout, PlanInput, default_layout

if TYPE_CHECKING:
    from archspec.language.train import TrainConfig

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
    inputs: tuple[PlanInput, ...] = ()  # every input (the first is input_shape's)
    outputs: tuple[tuple[str, int], ...] = ()  # every output (the first is `output`)


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
        key: _evaluate(value, (key,), env, source, problems)
        if key in ("input", "inputs", "train")
        else value
        for key, value in data.items()
    }
    train = _train(evaluated.get("train"), source, env, problems)
    try:
        model = SpecModel.model_validate(evaluated)
    except ValidationError as exc:
        problems += from_validation(exc, source, (), SpecModel, env)
        raise SpecError(dedupe(problems)) from None
    inputs = _inputs(model, source)
    layers, outputs = _graph(model, source, env, max_layers, inputs, problems)
    if not layers:
        raise SpecError(dedupe(problems))
    name = model.name or (path.stem if path else "network")
    (output, port), first = outputs[0], inputs[0]
    validated = Validated(
        name,
        first.shape,
        first.layout,
        layers,
        output,
        train,
        data,
        source,
        path,
        port,
        inputs,
        outputs,
    )
    return validated, dedupe(problems)


def _inputs(model: SpecModel, source: SourceMap) -> tuple[PlanInput, ...]:
    """The declared inputs: ``input:`` is one called ``input``; ``inputs:`` names several.
    Exactly one of the two keys (else one located problem)."""
    if model.input is not None and model.inputs is not None:
        raise SpecError(
            [
                Problem(
                    "a spec has `input:` or `inputs:`, not both",
                    "keep `inputs:` (several named inputs) or `input:` (one)",
                    source.locate(("inputs",), key=True),
                    ("inputs",),
                )
            ]
        )
    if model.input is None and model.inputs is None:
        raise SpecError(
            [
                Problem(
                    "missing required key 'input'",
                    "add e.g. `input: [1, 28, 28]` (or several named inputs under `inputs:`)",
                    source.locate(()),
                    ("input",),
                )
            ]
        )
    declared = {"input": model.input} if model.inputs is None else model.inputs
    out = []
    for name, entry in declared.items():
        assert entry is not None
        if isinstance(entry, InputModel):
            shape, layout = entry.shape, entry.layout or default_layout(entry.shape)
            vocab = entry.vocab
        else:
            shape, layout, vocab = entry, default_layout(entry), None
        out.append(PlanInput(name, shape, layout, vocab))
    return tuple(out)


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
    from archspec.language.train import TrainConfig  # only a spec with `train:` needs it

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
    inputs: tuple[PlanInput, ...],
    problems: list[Problem],
) -> tuple[tuple[Layer, ...], tuple[tuple[str, int], ...]]:
    """The validated layers, and each output as (node, which of its outputs)."""
    blocks = _blocks(model, source, problems)
    named = tuple(i.name for i in inputs) if model.inputs is not None else ()
    expander = Expander(source, blocks, max_layers, frozenset(named))
    if named:  # several inputs: each is read by name, none is read by default
        top = Scope(prefix="", input=NO_INPUT, env=env, names={n: n for n in named})
        top.taken.update(named)
    else:
        top = Scope(prefix="", input="input", env=env)
    last = expander.expand(model.layers, ("layers",), top)
    problems += expander.problems
    if expander.overflowed:  # validating and inferring every layer is what the limit prevents
        return (), (("input", 0),)
    several = expander.several
    problems += resolve_inputs(expander.nodes, expander.full_names, source, several, named)
    outputs = _outputs(model, top, last, expander, source, named, problems)
    if not outputs:
        return (), (("input", 0),)
    ordered, cycle = topological(expander.nodes, source)
    problems += cycle
    ends = [name for name, _ in outputs]
    if not problems and not any(map(is_poison, ends)):  # a broken chain would look dead
        problems += dead_nodes(ordered, ends, source)
        problems += unread_inputs(ordered, named, source)
    layers = [_validate_layer(node, source, problems) for node in ordered]
    return tuple(layer for layer in layers if layer is not None), outputs


def _outputs(
    model: SpecModel,
    top: Scope,
    last: Target,
    expander: Expander,
    source: SourceMap,
    inputs: tuple[str, ...],
    problems: list[Problem],
) -> tuple[tuple[str, int], ...]:
    """Resolve `output:` (one), `outputs:` (several) or the last layer; () when nothing
    runs. Each unknown, repeated or input-naming entry is one located problem."""
    if model.output is not None and model.outputs is not None:
        problems.append(
            Problem(
                "a spec has `output:` or `outputs:`, not both",
                "list every output under `outputs:`",
                source.locate(("outputs",), key=True),
                ("outputs",),
            )
        )
    targets: list[tuple[Target, DataPath]]
    if model.outputs is not None:
        targets = [
            (Ref(top, n, ("outputs", i)), ("outputs", i)) for i, n in enumerate(model.outputs)
        ]
    elif model.output is not None:
        targets = [(Ref(top, model.output, ("output",)), ("output",))]
    else:
        targets = [(last, ("layers", len(model.layers) - 1))]
    resolved: list[tuple[str, int]] = []
    for i, (target, at) in enumerate(targets):
        if model.outputs is not None and model.outputs.index(model.outputs[i]) < i:
            problems.append(
                Problem(
                    f"outputs lists '{model.outputs[i]}' twice",
                    "list each output once",
                    source.locate(at),
                    at,
                )
            )
            continue
        output, port, found = resolve_output(
            target, expander.full_names, source, expander.several, at, str(at[0])
        )
        problems += found
        if output in inputs:
            problems.append(
                Problem(
                    f"{at[0]} names '{output}', which is an input, not a layer",
                    "return a layer's result (add `- identity` reading it, if need be)",
                    source.locate(at),
                    at,
                )
            )
            output = poison(at)
        elif output in ("input", NO_INPUT):
            problems.append(
                Problem(
                    "the network has no layers that run",
                    "add layers under `layers:`",
                    source.locate(("layers",)),
                    ("layers",),
                )
            )
            return ()
        resolved.append((output, port))
    return tuple(resolved) or ((poison(("outputs",)), 0),)


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
