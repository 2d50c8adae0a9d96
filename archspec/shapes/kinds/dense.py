"""``flatten`` and ``dense`` (fully connected)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated

from pydantic import AliasChoices, Strict
from pydantic import Field as PydanticField

from archspec.shapes.geometry import FlattenGeometry
from archspec.shapes.kinds.base import Bool, In, Kind, Out, Params, PosInt, ShapeError
from archspec.shapes.plan import Layout, PlanNode, format_shape, numel


class FlattenParams(Params):
    """Merge axes ``start``…``end`` into one (default all: ``[C, H, W]`` → ``[C·H·W]``,
    channels-first order, like torch). Axes are counted without the batch axis."""

    start: Annotated[int, Strict()] = PydanticField(
        0, description="First axis merged (no batch axis).", examples=[0, 1]
    )
    end: Annotated[int, Strict()] = PydanticField(
        -1, description="Last axis merged (negative: from the end).", examples=[-1, 1]
    )


def infer_flatten(p: FlattenParams, ins: Sequence[In]) -> Out:
    (x,) = ins
    rank = len(x.shape)
    start, end = p.start, p.end
    for what, axis in (("start", start), ("end", end)):
        if not -rank <= axis < rank:
            raise ShapeError(
                f"flatten {what} {axis} is out of range for {x.described()} ({rank} axes, "
                "no batch axis)",
                f"use an axis from {-rank} to {rank - 1}",
                field=what,
            )
    start, end = start % rank, end % rank
    if start > end:
        raise ShapeError(
            f"flatten start {p.start} comes after end {p.end}",
            "give start ≤ end",
            field="start",
        )
    shape = (*x.shape[:start], numel(x.shape[start : end + 1]), *x.shape[end + 1 :])
    field = x.field if len(shape) == 1 else None  # a full flatten keeps what it saw
    if len(shape) == 1:
        layout: Layout = "flat"
    elif x.layout == "grid" and start > 0:
        layout = "grid"  # spatial axes merged, channels kept: [C, H·W]
    else:
        layout = "tensor" if len(shape) != len(x.shape) else x.layout
    return Out(shape=shape, field=field, geometry=FlattenGeometry(start, end), layout=layout)


class DenseParams(Params):
    """A fully connected layer with ``units`` outputs."""

    shorthand = "units"
    units: PosInt = PydanticField(
        validation_alias=AliasChoices("units", "features"),
        description="Number of outputs; `features` also accepted.",
        examples=[10, 128],
    )
    bias: Bool = PydanticField(True, description="Learn an additive bias.", examples=[True, False])


def infer_dense(p: DenseParams, ins: Sequence[In]) -> Out:
    """On a flat vector as always; on a sequence or other tensor, the same weights apply
    to the last axis at every position (token-wise MLPs): MACs grow with the positions."""
    (x,) = ins
    if x.layout == "grid":  # a per-position dense on a grid: `- to_tokens` first
        raise ShapeError(
            f"dense needs a flat input, but receives {format_shape(x.shape)}",
            f"insert `- flatten` before it ({numel(x.shape):,} features), "
            "or `- global_pool` (one value per channel)",
        )
    weights = x.shape[-1] * p.units
    return Out(
        shape=(*x.shape[:-1], p.units),
        field=None,
        params=weights + (p.units if p.bias else 0),
        macs=weights * numel(x.shape[:-1]),
    )


def describe_dense(node: PlanNode) -> str:
    assert isinstance(node.params, DenseParams)
    return f"{node.params.units}"


KINDS = (
    Kind(
        "flatten",
        FlattenParams,
        infer_flatten,
        "Flatten axes start…end into one (default: every axis but the batch).",
    ),
    Kind(
        "dense",
        DenseParams,
        infer_dense,
        "Fully connected layer (torch's Linear).",
        aliases=("linear",),
        describe=describe_dense,
    ),
)
