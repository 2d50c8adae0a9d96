"""Normalisation layers beyond batch norm: group, instance, layer (over channels) and
local response normalisation. All keep the shape and the receptive field."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Literal

from annotated_types import Gt
from pydantic import Field as PydanticField

from archspec.shapes.kinds.base import Bool, In, Kind, Out, Params, PosInt, ShapeError, need_spatial
from archspec.shapes.plan import PlanNode, format_shape

Eps = Annotated[float, Gt(0)]
EPS = "Added to the variance for stability."
AFFINE = "Learn a per-channel scale and shift."


class GroupNormParams(Params):
    """Normalise each group of channels of each example (Wu & He, 2018)."""

    shorthand = "groups"
    groups: PosInt = PydanticField(
        description="Number of channel groups; must divide the channels.", examples=[32, 8]
    )
    eps: Eps = PydanticField(1e-5, description=EPS, examples=[1e-5])
    affine: Bool = PydanticField(True, description=AFFINE, examples=[True, False])


def infer_groupnorm(p: GroupNormParams, ins: Sequence[In]) -> Out:
    (x,) = ins
    channels = x.shape[0]
    if channels % p.groups:
        raise ShapeError(
            f"groups must divide the channels: {channels} % {p.groups} = {channels % p.groups}",
            f"use a divisor of {channels}",
            field="groups",
        )
    return Out(shape=x.shape, field=x.field, params=2 * channels if p.affine else 0)


class InstanceNormParams(Params):
    """Normalise each channel of each example over its spatial axes (no running statistics)."""

    eps: Eps = PydanticField(1e-5, description=EPS, examples=[1e-5])
    affine: Bool = PydanticField(False, description=AFFINE, examples=[False, True])


def infer_instancenorm(p: InstanceNormParams, ins: Sequence[In]) -> Out:
    (x,) = ins
    need_spatial(x, "instancenorm")
    if all(n == 1 for n in x.spatial):
        raise ShapeError(
            f"instancenorm needs more than one position per channel, but the input is "
            f"{format_shape(x.shape)}",
            "normalise before the global pooling, or use batchnorm/layernorm",
        )
    return Out(shape=x.shape, field=x.field, params=2 * x.shape[0] if p.affine else 0)


class LayerNormParams(Params):
    """Layer normalisation: over the channels at each position (ConvNeXt's LayerNorm2d;
    on a flat vector, over its features) or over the last axis only."""

    shorthand = "over"
    over: Literal["channels", "last"] = PydanticField(
        "channels",
        description="channels: normalise the C values at each position; last: the last axis.",
        examples=["channels", "last"],
    )
    eps: Eps = PydanticField(1e-5, description=EPS, examples=[1e-6, 1e-5])
    affine: Bool = PydanticField(
        True, description="Learn a scale and shift per normalised element.", examples=[True]
    )


def infer_layernorm(p: LayerNormParams, ins: Sequence[In]) -> Out:
    (x,) = ins
    size = x.shape[0] if p.over == "channels" else x.shape[-1]
    return Out(shape=x.shape, field=x.field, params=2 * size if p.affine else 0)


def describe_layernorm(node: PlanNode) -> str:
    assert isinstance(node.params, LayerNormParams)
    return f"over {node.params.over}"


class LocalResponseNormParams(Params):
    """Divide by the activity of ``size`` neighbouring channels (AlexNet, GoogLeNet v1):
    ``x / (k + alpha/size · Σ x²)^beta``."""

    shorthand = "size"
    size: PosInt = PydanticField(description="Channels in the window.", examples=[5, 2])
    alpha: float = PydanticField(1e-4, description="Scale of the sum.", examples=[1e-4, 2e-5])
    beta: float = PydanticField(0.75, description="Exponent.", examples=[0.75])
    k: float = PydanticField(1.0, description="Additive constant.", examples=[1.0, 2.0])


def infer_lrn(p: LocalResponseNormParams, ins: Sequence[In]) -> Out:
    (x,) = ins
    need_spatial(x, "local_response_norm")
    return Out(shape=x.shape, field=x.field)


KINDS = (
    Kind(
        "groupnorm",
        GroupNormParams,
        infer_groupnorm,
        "Group normalisation over channel groups.",
        aliases=("group_norm",),
    ),
    Kind(
        "instancenorm",
        InstanceNormParams,
        infer_instancenorm,
        "Instance normalisation: each channel over its spatial axes.",
        aliases=("instance_norm",),
    ),
    Kind(
        "layernorm",
        LayerNormParams,
        infer_layernorm,
        "Layer normalisation over the channels (or the last axis).",
        aliases=("layer_norm",),
        describe=describe_layernorm,
    ),
    Kind(
        "local_response_norm",
        LocalResponseNormParams,
        infer_lrn,
        "Local response normalisation across neighbouring channels.",
        aliases=("lrn",),
    ),
)
