"""infer: validated layers → :class:`Plan`, torch-free.

Walks the graph in order, applies each kind's shape rule, and collects every
problem with its location. A layer after a failed one is skipped (its input
shape is unknown), so each reported problem is a real, independent one.
"""

from __future__ import annotations

from collections.abc import Sequence

from archspec.errors import Problem, SpecError
from archspec.language.load import Layer
from archspec.loader.source import SourceMap
from archspec.shapes import kinds
from archspec.shapes.arith import input_field
from archspec.shapes.kinds.base import In, ShapeError
from archspec.shapes.params import Params
from archspec.shapes.plan import Layout, Plan, PlanNode, Shape, default_layout, numel


def infer(
    name: str,
    input_shape: Shape,
    layers: Sequence[Layer],
    output: str,
    source: SourceMap,
    input_layout: Layout | None = None,
) -> Plan:
    """The Plan of a validated network at ``input_shape``; raises :class:`SpecError`."""
    rank = len(input_shape) - 1
    layout = input_layout or default_layout(input_shape)
    field = tuple(input_field() for _ in range(rank)) if rank and layout == "grid" else None
    known: dict[str, In] = {"input": In(input_shape, field, layout)}
    nodes: list[PlanNode] = []
    problems: list[Problem] = []
    for layer in layers:
        if any(x not in known for x in layer.inputs):
            continue  # an input failed: nothing to say about this layer that is not said
        ins = [known[x] for x in layer.inputs]
        assert isinstance(layer.params, Params)  # validated by the kind's Params model
        try:
            out = kinds.get(layer.kind).infer(layer.params, ins)
        except ShapeError as exc:
            problems.append(_problem(layer, exc, ins, source))
            continue
        if numel(out.shape) > MAX_ELEMENTS:
            problems.append(_too_big(layer, out.shape, ins, source))
            continue
        layout = out.layout or (
            ins[0].layout if len(out.shape) == len(ins[0].shape) else default_layout(out.shape)
        )
        known[layer.name] = In(out.shape, out.field, layout)
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
                out.field,
                out.geometry,
                layer.location,
                layer.group,
                layout,
            )
        )
    if problems:
        raise SpecError(problems)
    return Plan(name, input_shape, tuple(nodes), output, known["input"].layout)


MAX_ELEMENTS = 2**63 - 1  # torch indexes tensors with int64


def _too_big(layer: Layer, shape: Shape, ins: Sequence[In], source: SourceMap) -> Problem:
    """Found by tests/test_fuzz.py: repeated upsampling made sizes beyond int64 (and
    beyond what Python prints), an internal error instead of a located one."""
    exc = ShapeError(
        f"the output would have {numel(shape):.3e} elements per example, more than "
        "any tensor can hold (2⁶³−1)",
        "use smaller scales, strides or layer sizes",
    )
    return _problem(layer, exc, ins, source)


def _problem(layer: Layer, exc: ShapeError, ins: Sequence[In], source: SourceMap) -> Problem:
    path = (*layer.params_path, exc.field) if exc.field else layer.params_path
    shapes = ", ".join(
        "×".join(map(str, x.shape))
        + (f" ({x.layout})" if x.layout in ("sequence", "tensor") else "")
        for x in ins
    )
    notes = (f"{layer.name}: input {shapes}", *layer.notes)
    return Problem(exc.message, exc.hint, source.locate(path), path, notes)
