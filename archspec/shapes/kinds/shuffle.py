"""Layers that rearrange values between channels and positions: channel_shuffle (ShuffleNet),
pixel_shuffle / pixel_unshuffle (sub-pixel convolution, space-to-depth)."""

from __future__ import annotations

from collections.abc import Sequence

from pydantic import Field as PydanticField

from archspec.shapes.kinds.base import (
    In,
    Kind,
    Out,
    Params,
    PosInt,
    ShapeError,
    need_spatial,
    through,
)
from archspec.shapes.plan import PlanNode, format_shape


class ChannelShuffleParams(Params):
    """Interleave the channels of ``groups`` groups (ShuffleNet)."""

    shorthand = "groups"
    groups: PosInt = PydanticField(
        description="Number of groups; must divide the channels.", examples=[2, 3]
    )


def infer_channel_shuffle(p: ChannelShuffleParams, ins: Sequence[In]) -> Out:
    (x,) = ins
    need_spatial(x, "channel_shuffle")
    if x.shape[0] % p.groups:
        raise ShapeError(
            f"groups must divide the channels: {x.shape[0]} % {p.groups} = {x.shape[0] % p.groups}",
            f"use a divisor of {x.shape[0]}",
            field="groups",
        )
    return Out(shape=x.shape, field=x.field)


class PixelShuffleParams(Params):
    """Rearrange ``[C·r², H, W]`` into ``[C, H·r, W·r]`` (or back, for unshuffle)."""

    shorthand = "factor"
    factor: PosInt = PydanticField(description="The upscaling factor r.", examples=[2, 3])


def _need_image(x: In, kind: str) -> None:
    if need_spatial(x, kind) != 2:
        raise ShapeError(
            f"{kind} works on images [C, H, W], but receives {format_shape(x.shape)}",
            "use it on a 2-D feature map",
        )


def infer_pixel_shuffle(p: PixelShuffleParams, ins: Sequence[In]) -> Out:
    (x,) = ins
    _need_image(x, "pixel_shuffle")
    r2 = p.factor**2
    if x.shape[0] % r2:
        raise ShapeError(
            f"pixel_shuffle by {p.factor} needs channels divisible by {r2}, but there are "
            f"{x.shape[0]}",
            f"give the layer before a multiple of {r2} channels",
            field="factor",
        )
    field = x.field
    if field is not None:
        field = tuple(axis.upsampled(p.factor) for axis in field)
    shape = (x.shape[0] // r2, *(n * p.factor for n in x.spatial))
    return Out(shape=shape, field=field)


def infer_pixel_unshuffle(p: PixelShuffleParams, ins: Sequence[In]) -> Out:
    (x,) = ins
    _need_image(x, "pixel_unshuffle")
    bad = [n for n in x.spatial if n % p.factor]
    if bad:
        raise ShapeError(
            f"pixel_unshuffle by {p.factor} needs height and width divisible by {p.factor}, "
            f"but the input is {format_shape(x.shape)}",
            "crop or pad the input to a multiple of the factor",
            field="factor",
        )
    r = p.factor
    shape = (x.shape[0] * r * r, *(n // r for n in x.spatial))
    return Out(shape=shape, field=through(x.field, [r, r], [r, r], [0, 0]))


def describe_factor(node: PlanNode) -> str:
    assert isinstance(node.params, PixelShuffleParams)
    return f"×{node.params.factor}"


KINDS = (
    Kind(
        "channel_shuffle",
        ChannelShuffleParams,
        infer_channel_shuffle,
        "Interleave channel groups (ShuffleNet).",
    ),
    Kind(
        "pixel_shuffle",
        PixelShuffleParams,
        infer_pixel_shuffle,
        "Move channels into space: [C·r², H, W] → [C, H·r, W·r].",
        describe=describe_factor,
    ),
    Kind(
        "pixel_unshuffle",
        PixelShuffleParams,
        infer_pixel_unshuffle,
        "Move space into channels: [C, H·r, W·r] → [C·r², H, W].",
        describe=describe_factor,
    ),
)
