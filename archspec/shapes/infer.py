"""infer: validated layers → :class:`Plan`, torch-free.

Walks the graph in order, applies each kind's shape rule, and collects every
problem with its location. A layer after a failed one is skipped (its input
shape is unknown), so each reported problem is a real, independent one.
"""

from __future__ import annotations

from collections.abc import Sequence
from fractions import Fraction
from typing import cast

from archspec.errors import Problem, SpecError
from archspec.language.load import Layer, Validated
from archspec.loader.source import SourceMap
from archspec.shapes import kinds
from archspec.shapes.arith import input_field
from archspec.shapes.kinds.base import In, Out, ShapeError
from archspec.shapes.params import Params
from archspec.shapes.plan import (
    Layout,
    Output,
    Plan,
    PlanInput,
    PlanNode,
    RField,
    Shape,
    default_layout,
    format_shape,
    numel,
)


def infer(
    name: str,
    input_shape: Shape,
    layers: Sequence[Layer],
    output: str,
    source: SourceMap,
    input_layout: Layout | None = None,
    output_port: int = 0,
    inputs: Sequence[PlanInput] = (),
    returns: Sequence[tuple[str, int]] = (),
) -> Plan:
    """The Plan of a validated network at ``input_shape``; raises :class:`SpecError`.
    ``output_port``: which output of ``output`` the network returns (one of a split's).
    ``inputs``/``returns``: every input and output of a network with several (or an int
    input); ``input_shape`` is then the first input's."""
    plan, _, problems = infer_partial(
        name, input_shape, layers, output, source, input_layout, output_port, inputs, returns
    )
    if plan is None:
        raise SpecError(problems)
    return plan


def infer_partial(
    name: str,
    input_shape: Shape,
    layers: Sequence[Layer],
    output: str,
    source: SourceMap,
    input_layout: Layout | None = None,
    output_port: int = 0,
    inputs: Sequence[PlanInput] = (),
    returns: Sequence[tuple[str, int]] = (),
) -> tuple[Plan | None, tuple[PlanNode, ...], list[Problem]]:
    """As :func:`infer` in one pass, for an editor: the Plan (None when some layer fails),
    the nodes that infer, and the problems."""
    layout = input_layout or default_layout(input_shape)
    declared = tuple(inputs) or (PlanInput("input", input_shape, layout),)
    nodes, problems = infer_nodes(input_shape, layers, source, layout, declared)
    if problems:
        return None, nodes, problems
    keep = tuple(inputs) if len(declared) > 1 or declared[0].vocab is not None else ()
    several = tuple(returns) if len(returns) > 1 else ()
    return Plan(name, input_shape, nodes, output, layout, output_port, keep, several), nodes, []


def infer_validated(v: Validated, input_shape: Shape | None = None) -> Plan:
    """The Plan of a validated spec (at ``input_shape``, for a spec with one input)."""
    inputs = v.inputs
    if input_shape is not None and tuple(input_shape) != v.input_shape:
        if len(inputs) > 1:
            raise SpecError(
                [
                    Problem(
                        f"this network has {len(inputs)} inputs "
                        f"({', '.join(i.name for i in inputs)}); another input shape "
                        "applies to a network with one",
                        "change the shapes under `inputs:` instead",
                        v.source.locate(("inputs",), key=True),
                        ("inputs",),
                    )
                ]
            )
        first = inputs[0]
        inputs = (PlanInput(first.name, tuple(input_shape), first.layout, first.vocab),)
    shape = tuple(input_shape) if input_shape is not None else v.input_shape
    return infer(
        v.name, shape, v.layers, v.output, v.source, v.input_layout, v.output_port,
        inputs, v.outputs,
    )  # fmt: skip


def infer_nodes(
    input_shape: Shape,
    layers: Sequence[Layer],
    source: SourceMap,
    input_layout: Layout | None = None,
    inputs: Sequence[PlanInput] = (),
) -> tuple[tuple[PlanNode, ...], list[Problem]]:
    """Every layer that infers, and the problems of those that do not (an editor shows
    both: hints for the first, diagnostics for the second). A value that several inputs
    reach has no receptive field (it is relative to one input): it shows as global."""
    declared = tuple(inputs) or (
        PlanInput("input", input_shape, input_layout or default_layout(input_shape)),
    )
    # (layer, which output) → what a reader of it sees
    known: dict[tuple[str, int], In] = {}
    origins: dict[str, frozenset[str]] = {}
    problems: list[Problem] = []
    for inp in declared:
        rank = len(inp.shape) - 1
        grid = rank and inp.layout == "grid" and inp.vocab is None
        field = tuple(input_field() for _ in range(rank)) if grid else None
        known[inp.name, 0] = In(inp.shape, field, inp.layout, inp.vocab)
        origins[inp.name] = frozenset((inp.name,))
        at = ("input",) if len(declared) == 1 and inp.name == "input" else ("inputs", inp.name)
        problems += _input_too_big(inp.shape, source, at)
    nodes: list[PlanNode] = []
    for layer in layers if not problems else ():
        wanted = zip(layer.inputs, layer.ports or (0,) * len(layer.inputs), strict=True)
        try:
            ins = [known[x] for x in wanted]
        except KeyError:
            continue  # an input failed: nothing to say about this layer that is not said
        assert isinstance(layer.params, Params)  # validated by the kind's Params model
        kind = kinds.get(layer.kind)
        origins[layer.name] = (
            origins[layer.inputs[0]]
            if len(layer.inputs) == 1
            else frozenset().union(*(origins[x] for x in layer.inputs))
        )
        try:
            if not kind.reads_ids and any(x.vocab is not None for x in ins):
                raise ShapeError(
                    f"{kind.name} receives token ids (an int input), not float values",
                    "add an `embedding` first: `- embedding: {vocab: N, dim: D}`",
                )
            out = _rule(layer.kind, layer.params, ins)
        except ShapeError as exc:
            problems.append(_problem(layer, exc, ins, source, _producers(layer, nodes)))
            continue
        if len(out.outputs) != len(layer.outputs):
            problems.append(_outputs_problem(layer, out, source))
            continue
        layout = out.layout or (
            ins[0].layout if len(out.shape) == len(ins[0].shape) else default_layout(out.shape)
        )
        rf = out.field if len(origins[layer.name]) <= 1 else None
        known[layer.name, 0] = In(out.shape, rf, layout)
        outputs = tuple(
            Output(label, shape, layout)
            for label, shape in zip(layer.outputs, out.outputs, strict=True)
        )
        for i, o in enumerate(outputs):
            known[layer.name, i] = In(o.shape, rf, o.layout)
        nodes.append(
            PlanNode(
                layer.name,
                layer.kind,
                layer.params,
                layer.inputs,
                tuple(x.shape for x in ins),
                out.shape,
                out.params,
                out.macs,
                rf,
                out.geometry,
                layer.location,
                layer.group,
                layout,
                outputs,
                layer.ports,
            )
        )
    return tuple(nodes), problems


# Memo of the shape rules: (rule, id of its Params, inputs) → (the Params, the verdict).
# A kind's rule (with the size checks around it) is a pure function of its validated
# parameters and what it reads, so a layer that repeats one already seen — the 16
# identical convs of a stage, or every unchanged layer when an editor re-checks a buffer
# (outputs/lsp) — gets the verdict computed the first time. Keyed by the Params object's
# identity (``language.load`` hands out one object per distinct parameter content; the
# entry holds it, so its id cannot be reused) and by the inputs' values, only when every
# receptive-field number is an int or a Fraction that is not whole: equal keys then mean
# identical arguments, and the verdict is the one a fresh call would give.
_RULE_MEMO: dict[tuple[object, int, tuple[In, ...]], tuple[object, object]] = {}
RULE_MEMO_SIZE = 50_000  # entries; the memo is emptied when full (a few MB at most)


def _rule(kind: str, params: Params, ins: list[In]) -> Out:
    """The kind's verdict on ``params`` reading ``ins``: its :class:`Out`, or the
    :class:`ShapeError` it raises (the size checks included)."""
    rule = kinds.get(kind).infer
    exact = all(_exact(x.field) for x in ins)
    key = (rule, id(params), tuple(ins))
    if exact:
        hit = _RULE_MEMO.get(key)
        if hit is not None and hit[0] is params:
            verdict = hit[1]
            if isinstance(verdict, ShapeError):
                raise ShapeError(verdict.message, verdict.hint, verdict.field)
            return cast(Out, verdict)
    try:
        _check_sizes(params)
        out = rule(params, ins)
        _check_counts(out)
    except ShapeError as exc:
        if exact:  # a copy: the raised one will hold its traceback (and the spec) alive
            _remember(key, params, ShapeError(exc.message, exc.hint, exc.field))
        raise
    if exact:
        _remember(key, params, out)
    return out


def _remember(key: tuple[object, int, tuple[In, ...]], params: Params, verdict: object) -> None:
    if len(_RULE_MEMO) >= RULE_MEMO_SIZE:
        _RULE_MEMO.clear()
    _RULE_MEMO[key] = (params, verdict)


def _exact(field: RField) -> bool:
    """Whether equal receptive fields here are identical ones: every number an int or a
    Fraction that is not whole (a whole Fraction equals an int without being one, and a
    rule could tell them apart; the memo leaves such inputs alone)."""
    if field is None:
        return True
    for f in field:
        for v in (f.size, f.jump, f.start):
            if type(v) is not int and (type(v) is not Fraction or v.denominator == 1):
                return False
    return True


def _outputs_problem(layer: Layer, out: Out, source: SourceMap) -> Problem:
    """``outputs:`` names as many outputs as the layer makes."""
    made, named = len(out.outputs), len(layer.outputs)
    path = (*layer.params_path[:-1], "outputs")
    return Problem(
        f"{layer.kind} makes {made} outputs here, but `outputs:` names {named}",
        f"name {made}: `outputs: [{', '.join(f'out{i}' for i in range(made))}]`",
        source.locate(path),
        path,
        (f"{layer.name}: outputs {', '.join(map(format_shape, out.outputs))}", *layer.notes),
    )


# torch counts a tensor's bytes in int64: a batch of 2 (check --verify) in float64 of a
# per-example tensor (or one parameter tensor) must stay below 2⁶³ bytes
MAX_ELEMENTS = (2**63 - 1) // 16  # 2⁵⁹−1
_LIMIT = "2⁵⁹−1 (torch counts a batch's bytes in int64)"


def _big(n: int) -> str:
    """``2.400e+19``; beyond a float, a power of two."""
    return f"{n:.3e}" if n.bit_length() < 1000 else f"about 2^{n.bit_length() - 1}"


def _input_too_big(shape: Shape, source: SourceMap, at: tuple[str, ...]) -> list[Problem]:
    """Issue #13: `--input 99999999999999999999999` or `input: [2**40, 2**40]` reached
    torch's allocator (exit 3); refused here, located at `input:`."""
    if numel(shape) <= MAX_ELEMENTS:
        return []
    return [
        Problem(
            f"the input has {_big(numel(shape))} elements per example, more than {_LIMIT}",
            "use a smaller input size",
            source.locate(at),
            at,
        )
    ]


def _check_sizes(params: object) -> None:
    """Every integer parameter (kernel, stride, padding…) within what torch takes."""
    for key, value in vars(params).items():
        values = value if isinstance(value, tuple) else (value,)
        if any(isinstance(v, int) and v > MAX_ELEMENTS for v in values):
            shown = values[0] if len(values) == 1 else list(values)
            raise ShapeError(
                f"{key} {shown} is larger than {_LIMIT}", f"use a smaller {key}", field=key
            )


def _check_counts(out: Out) -> None:
    """Found by tests/test_fuzz.py: repeated upsampling made sizes beyond int64 (and beyond
    what Python prints); issue #13: `conv: {kernel: 999999999, padding: same}` passed the
    plan with a weight of 2.4·10¹⁹ elements and died in torch's allocator."""
    if numel(out.shape) > MAX_ELEMENTS:
        raise ShapeError(
            f"the output would have {_big(numel(out.shape))} elements per example, more than "
            f"{_LIMIT}",
            "use smaller scales, strides or layer sizes",
        )
    if out.params > MAX_ELEMENTS:
        raise ShapeError(
            f"the layer would have {_big(out.params)} parameters, more than {_LIMIT}",
            "use a smaller kernel or layer size",
        )


def _producers(layer: Layer, nodes: Sequence[PlanNode]) -> str:
    """``input 0 from b (specs/x.yaml:7:5), input 1 from c (specs/x.yaml:10:5)``: where a
    merge's inputs come from, so a mismatch names both lines (empty for one input)."""
    if len(layer.inputs) < 2:
        return ""
    where = {node.name: node.location for node in nodes if node.name in layer.inputs}
    return ", ".join(
        f"input {i} from {name}" + (f" ({where[name]})" if where.get(name) else "")
        for i, name in enumerate(layer.inputs)
    )


def _problem(
    layer: Layer, exc: ShapeError, ins: Sequence[In], source: SourceMap, producers: str = ""
) -> Problem:
    path = (*layer.params_path, exc.field) if exc.field else layer.params_path
    shapes = ", ".join(
        "×".join(map(str, x.shape))
        + (f" ({x.layout})" if x.layout in ("sequence", "tensor") else "")
        for x in ins
    )
    notes = (*((producers,) if producers else ()), f"{layer.name}: input {shapes}", *layer.notes)
    return Problem(exc.message, exc.hint, source.locate(path), path, notes)
