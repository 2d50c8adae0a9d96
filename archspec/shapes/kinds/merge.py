"""Merges of several inputs (``from: [a, b]``) and ``upsample``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from pydantic import Field as PydanticField

from archspec.shapes.geometry import UpsampleGeometry
from archspec.shapes.kinds.base import (
    In,
    Infer,
    Kind,
    Out,
    Params,
    PerDim,
    ShapeError,
    dims,
    expand,
    need_spatial,
    widest,
)
from archspec.shapes.plan import PlanNode, format_shape


class MergeParams(Params):
    """Merges take their inputs from `from:` and have no parameters."""


def _mismatch(kind: str, ins: Sequence[In], skip_channels: bool) -> None:
    first = ins[0].shape
    for i, x in enumerate(ins[1:], start=1):
        if len(x.shape) != len(first):
            raise ShapeError(
                f"{kind} needs inputs of the same rank: input 0 is {format_shape(first)}, "
                f"input {i} is {format_shape(x.shape)}",
                "flatten both or neither",
            )
        for axis, (a, b) in enumerate(zip(first, x.shape, strict=True)):
            if a != b and not (skip_channels and axis == 0):
                what = "channels" if axis == 0 else f"axis {axis}"
                raise ShapeError(
                    f"{kind} needs matching shapes, but input 0 is {format_shape(first)} and "
                    f"input {i} is {format_shape(x.shape)} ({what}: {a} ≠ {b})",
                    _merge_hint(kind, axis),
                )


def _merge_hint(kind: str, axis: int) -> str:
    if axis == 0:
        return "project one branch with a 1×1 conv to the other's channels"
    return "give both branches the same stride/pooling, or upsample the smaller one"


def infer_elementwise_merge(kind: str) -> Infer:
    def infer(p: MergeParams, ins: Sequence[In]) -> Out:
        _mismatch(kind, ins, skip_channels=False)
        return Out(shape=ins[0].shape, field=widest([x.field for x in ins]))

    return infer


def infer_concat(p: MergeParams, ins: Sequence[In]) -> Out:
    _mismatch("concat", ins, skip_channels=True)
    channels = sum(x.shape[0] for x in ins)
    return Out(shape=(channels, *ins[0].shape[1:]), field=widest([x.field for x in ins]))


class UpsampleParams(Params):
    """Repeat (nearest) or interpolate (linear) by an integer ``scale`` per axis."""

    shorthand = "scale"
    scale: PerDim = PydanticField(
        (2,),
        description="Integer upsampling factor: an int or one per spatial axis.",
        examples=[2, [2, 1]],
    )
    mode: Literal["nearest", "linear"] = PydanticField(
        "nearest",
        description="nearest (repeat) or linear (interpolate).",
        examples=["nearest", "linear"],
    )


def infer_upsample(p: UpsampleParams, ins: Sequence[In]) -> Out:
    (x,) = ins
    rank = need_spatial(x, "upsample")
    scale = expand(p.scale, rank, "scale")
    field = x.field
    if field is not None:
        field = tuple(
            axis.upsampled(s, 2 if p.mode == "linear" else 1)
            for axis, s in zip(field, scale, strict=True)
        )
    shape = (x.shape[0], *(n * s for n, s in zip(x.spatial, scale, strict=True)))
    return Out(shape=shape, field=field, geometry=UpsampleGeometry(scale))


def describe_upsample(node: PlanNode) -> str:
    assert isinstance(node.params, UpsampleParams)
    assert isinstance(node.geometry, UpsampleGeometry)
    return f"×{dims(node.geometry.scale)} {node.params.mode}"


KINDS = (
    Kind(
        "add",
        MergeParams,
        infer_elementwise_merge("add"),
        "Element-wise sum of its inputs (residual connections).",
        inputs=(2, None),
    ),
    Kind(
        "multiply",
        MergeParams,
        infer_elementwise_merge("multiply"),
        "Element-wise product of its inputs (gating).",
        inputs=(2, None),
    ),
    Kind(
        "concat",
        MergeParams,
        infer_concat,
        "Concatenate its inputs along channels (U-Net skips).",
        inputs=(2, None),
    ),
    Kind(
        "upsample",
        UpsampleParams,
        infer_upsample,
        "Upsample by an integer factor per axis (nearest or linear).",
        describe=describe_upsample,
    ),
)
