"""Merges of several inputs (``from: [a, b]``) and ``upsample``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Literal

from pydantic import Field as PydanticField
from pydantic import Strict

from archspec.shapes.geometry import AxesGeometry, UpsampleGeometry
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


def _mismatch(kind: str, ins: Sequence[In], skip_channels: bool, broadcast: bool = False) -> None:
    first = ins[0].shape
    for i, x in enumerate(ins[1:], start=1):
        if len(x.shape) != len(first):
            raise ShapeError(
                f"{kind} needs inputs of the same rank: input 0 is {format_shape(first)}, "
                f"input {i} is {format_shape(x.shape)}",
                "flatten both or neither",
            )
        for axis, (a, b) in enumerate(zip(first, x.shape, strict=True)):
            if a != b and not (skip_channels and axis == 0) and not (broadcast and 1 in (a, b)):
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


def broadcast_shape(shapes: Sequence[tuple[int, ...]]) -> tuple[int, ...]:
    """The usual broadcasting of same-rank shapes: each axis equal, or 1 (then stretched).

    >>> broadcast_shape([(8, 1, 1), (8, 5, 7)])
    (8, 5, 7)
    """
    return tuple(max(axis) for axis in zip(*shapes, strict=True))


def infer_elementwise_merge(kind: str) -> Infer:
    def infer(p: MergeParams, ins: Sequence[In]) -> Out:
        _mismatch(kind, ins, skip_channels=False, broadcast=True)
        shape = broadcast_shape([x.shape for x in ins])
        # a stretched [C, 1, 1] gate usually saw the whole input: its field (global) wins
        return Out(shape=shape, field=widest([x.field for x in ins]))

    return infer


class ConcatParams(Params):
    """Concatenate along ``axis`` (no batch axis): channels of a grid, tokens of a sequence."""

    shorthand = "axis"
    axis: Annotated[int, Strict()] = PydanticField(
        0,
        description="The axis to join along (0: channels/tokens; -1: features).",
        examples=[0, -1],
    )


def infer_concat(p: ConcatParams, ins: Sequence[In]) -> Out:
    rank = len(ins[0].shape)
    if not -rank <= p.axis < rank:
        raise ShapeError(
            f"concat axis {p.axis} is out of range for {ins[0].described()} ({rank} axes, "
            "no batch axis)",
            f"use an axis from {-rank} to {rank - 1}",
            field="axis",
        )
    axis = p.axis % rank
    layouts = {x.layout for x in ins}
    if len(layouts) > 1:
        raise ShapeError(
            "concat needs inputs of one layout, but receives "
            + " and ".join(x.described() for x in ins),
            "turn them into the same layout first (to_tokens/from_tokens)",
        )
    if axis == 0:
        _mismatch("concat", ins, skip_channels=True)
    else:
        _mismatch_except("concat", ins, axis)
    joined = sum(x.shape[axis] for x in ins)
    shape = (*ins[0].shape[:axis], joined, *ins[0].shape[axis + 1 :])
    field = widest([x.field for x in ins]) if axis == 0 else None
    return Out(shape=shape, field=field, geometry=AxesGeometry((axis,)))


def _mismatch_except(kind: str, ins: Sequence[In], axis: int) -> None:
    first = ins[0].shape
    for i, x in enumerate(ins[1:], start=1):
        if len(x.shape) != len(first) or any(
            a != b for j, (a, b) in enumerate(zip(first, x.shape, strict=True)) if j != axis
        ):
            raise ShapeError(
                f"{kind} along axis {axis} needs every other axis to match, but input 0 is "
                f"{format_shape(first)} and input {i} is {format_shape(x.shape)}",
                "reshape or project the branches so only the joined axis differs",
            )


def describe_merge(node: PlanNode) -> str:
    """``broadcast [8, 1, 1] → [8, 5, 7]`` when an input is stretched, else nothing."""
    stretched = [s for s in node.in_shapes if s != node.shape]
    if not stretched:
        return ""
    shown = ", ".join(format_shape(s) for s in dict.fromkeys(stretched))
    return f"broadcast {shown} → {format_shape(node.shape)}"


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
        "Element-wise sum of its inputs (residual connections); size-1 axes broadcast.",
        inputs=(2, None),
        describe=describe_merge,
    ),
    Kind(
        "multiply",
        MergeParams,
        infer_elementwise_merge("multiply"),
        "Element-wise product of its inputs (gating); size-1 axes broadcast ([C, 1, 1] × "
        "[C, H, W]).",
        inputs=(2, None),
        describe=describe_merge,
    ),
    Kind(
        "concat",
        ConcatParams,
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
