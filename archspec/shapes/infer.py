"""infer: validated layers → :class:`Plan`, torch-free.

Walks the graph in order, applies each kind's shape rule, and collects every
problem with its location. A layer after a failed one is skipped (its input
shape is unknown), so each reported problem is a real, independent one.
"""

from __future__ import annotations

from collections.abc import Sequence

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
    layout = input_layout or default_layout(input_shape)
    declared = tuple(inputs) or (PlanInput("input", input_shape, layout),)
    nodes, problems = infer_nodes(input_shape, layers, source, layout, declared)
    if problems:
        raise SpecError(problems)
    keep = tuple(inputs) if len(declared) > 1 or declared[0].vocab is not None else ()
    several = tuple(returns) if len(returns) > 1 else ()
    return Plan(name, input_shape, nodes, output, layout, output_port, keep, several)


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
        wanted = list(zip(layer.inputs, layer.ports or (0,) * len(layer.inputs), strict=True))
        if any(x not in known for x in wanted):
            continue  # an input failed: nothing to say about this layer that is not said
        ins = [known[x] for x in wanted]
        assert isinstance(layer.params, Params)  # validated by the kind's Params model
        kind = kinds.get(layer.kind)
        origins[layer.name] = frozenset().union(*(origins[x] for x in layer.inputs))
        try:
            _check_sizes(layer.params)
            if not kind.reads_ids and any(x.vocab is not None for x in ins):
                raise ShapeError(
                    f"{kind.name} receives token ids (an int input), not float values",
                    "add an `embedding` first: `- embedding: {vocab: N, dim: D}`",
                )
            out = kind.infer(layer.params, ins)
            _check_counts(out)
        except ShapeError as exc:
            problems.append(_problem(layer, exc, ins, source))
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


def _problem(layer: Layer, exc: ShapeError, ins: Sequence[In], source: SourceMap) -> Problem:
    path = (*layer.params_path, exc.field) if exc.field else layer.params_path
    shapes = ", ".join(
        "×".join(map(str, x.shape))
        + (f" ({x.layout})" if x.layout in ("sequence", "tensor") else "")
        for x in ins
    )
    notes = (f"{layer.name}: input {shapes}", *layer.notes)
    return Problem(exc.message, exc.hint, source.locate(path), path, notes)
