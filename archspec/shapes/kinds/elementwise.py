"""Layers that keep the shape: activations (the "detector" stage), batch norm, dropout."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Literal

from annotated_types import Ge, Gt, Lt
from pydantic import AliasChoices, Strict
from pydantic import Field as PydanticField

from archspec.shapes.kinds.base import Bool, FiniteFloat, In, Kind, Out, Params
from archspec.shapes.plan import PlanNode

Float = Annotated[FiniteFloat, Strict()]


def keep_shape(p: Params, ins: Sequence[In]) -> Out:
    """Element-wise: same shape, same receptive field, no parameters."""
    (x,) = ins
    return Out(shape=x.shape, field=x.field)


class NoParams(Params):
    """This layer takes no parameters."""


class LeakyReluParams(Params):
    shorthand = "slope"
    slope: Float = PydanticField(
        0.01,
        validation_alias=AliasChoices("slope", "negative_slope"),
        description="Slope for negative inputs; `negative_slope` also accepted.",
        examples=[0.01, 0.2],
    )


class EluParams(Params):
    shorthand = "alpha"
    alpha: Float = PydanticField(
        1.0, description="Scale of the negative saturation.", examples=[1.0]
    )


class GeluParams(Params):
    shorthand = "approximate"
    approximate: Literal["none", "tanh"] = PydanticField(
        "none", description="none (exact) or tanh approximation.", examples=["none", "tanh"]
    )


class BatchNormParams(Params):
    """Batch normalisation over channels (1-D/2-D/3-D by the input's rank)."""

    eps: Annotated[FiniteFloat, Gt(0)] = PydanticField(
        1e-5, description="Added to the denominator for stability.", examples=[1e-5]
    )
    momentum: Annotated[FiniteFloat, Ge(0), Lt(1)] = PydanticField(
        0.1, description="Running-statistics update factor, in [0, 1).", examples=[0.1, 0.9]
    )
    affine: Bool = PydanticField(
        True, description="Learn a per-channel scale and shift.", examples=[True, False]
    )


def infer_batchnorm(p: BatchNormParams, ins: Sequence[In]) -> Out:
    (x,) = ins
    return Out(shape=x.shape, field=x.field, params=2 * x.shape[0] if p.affine else 0)


class DropoutParams(Params):
    """Zero each activation with probability ``p`` while training."""

    shorthand = "p"
    p: Annotated[FiniteFloat, Ge(0), Lt(1)] = PydanticField(
        0.5,
        validation_alias=AliasChoices("p", "rate"),
        description="Probability of zeroing an activation, in [0, 1); `rate` also accepted.",
        examples=[0.5, 0.2],
    )


class SoftplusParams(Params):
    """``log(1 + exp(beta·x)) / beta``, linear above ``threshold``."""

    shorthand = "beta"
    beta: Annotated[float, Gt(0)] = PydanticField(
        1.0, description="Sharpness of the curve (> 0).", examples=[1.0, 2.0]
    )
    threshold: Annotated[float, Gt(0)] = PydanticField(
        20.0,
        description="Above beta·x > threshold the layer returns x (numerical stability).",
        examples=[20.0],
    )


class PreluParams(Params):
    """A learned negative slope: one per channel, or one shared by all."""

    shorthand = "per_channel"
    per_channel: Bool = PydanticField(
        True,
        description="One slope per channel (true) or a single shared slope (false).",
        examples=[True, False],
    )
    init: Float = PydanticField(0.25, description="Initial slope.", examples=[0.25])


def infer_prelu(p: PreluParams, ins: Sequence[In]) -> Out:
    (x,) = ins
    return Out(shape=x.shape, field=x.field, params=x.shape[0] if p.per_channel else 1)


def describe_prelu(node: PlanNode) -> str:
    assert isinstance(node.params, PreluParams)
    return "per channel" if node.params.per_channel else "shared"


class DropPathParams(Params):
    """Stochastic depth: drop the whole example's branch with probability ``p`` while
    training (scaling the kept ones by 1/(1-p)); the identity in evaluation."""

    shorthand = "p"
    p: Annotated[float, Ge(0), Lt(1)] = PydanticField(
        0.1,
        validation_alias=AliasChoices("p", "rate"),
        description="Probability of dropping the branch for an example, in [0, 1).",
        examples=[0.1, 0.2],
    )


class LayerScaleParams(Params):
    """A learned per-channel scale ``gamma`` (ConvNeXt, CaiT), stored as [C, 1, …]."""

    shorthand = "init"
    init: Float = PydanticField(
        1e-6, description="Initial value of every gamma.", examples=[1e-6, 0.1]
    )


def infer_per_channel(p: Params, ins: Sequence[In]) -> Out:
    """Same shape, one learned value per channel."""
    (x,) = ins
    return Out(shape=x.shape, field=x.field, params=x.shape[0], macs=0)


def describe_dropout(node: PlanNode) -> str:
    assert isinstance(node.params, DropoutParams | DropPathParams)
    return f"p={node.params.p:g}"


_ACTIVATIONS: tuple[tuple[str, type[Params], str], ...] = (
    ("relu", NoParams, "Rectified linear unit max(0, x)."),
    ("leaky_relu", LeakyReluParams, "max(0, x) + slope·min(0, x)."),
    ("elu", EluParams, "Exponential linear unit."),
    ("gelu", GeluParams, "Gaussian error linear unit."),
    ("silu", NoParams, "x·sigmoid(x) (swish)."),
    ("sigmoid", NoParams, "Logistic sigmoid."),
    ("tanh", NoParams, "Hyperbolic tangent."),
    ("hardswish", NoParams, "x·relu6(x + 3)/6, a cheap swish (MobileNetV3)."),
    ("relu6", NoParams, "min(max(0, x), 6) (MobileNetV2)."),
    ("hardsigmoid", NoParams, "relu6(x + 3)/6, a cheap sigmoid (MobileNetV3's gates)."),
    ("mish", NoParams, "x·tanh(softplus(x))."),
    ("softplus", SoftplusParams, "log(1 + exp(beta·x))/beta, a smooth relu."),
    ("identity", NoParams, "Returns its input unchanged (a placeholder)."),
)

KINDS = (
    *(Kind(name, params, keep_shape, summary) for name, params, summary in _ACTIVATIONS),
    Kind(
        "softmax",
        NoParams,
        keep_shape,
        "Softmax over channels/classes.",
        output_activation=True,
    ),
    Kind(
        "log_softmax",
        NoParams,
        keep_shape,
        "Log of the softmax over channels/classes.",
        output_activation=True,
    ),
    Kind(
        "batchnorm",
        BatchNormParams,
        infer_batchnorm,
        "Batch normalisation over channels.",
        aliases=("batch_norm",),
    ),
    Kind(
        "prelu",
        PreluParams,
        infer_prelu,
        "Leaky relu with a learned slope, per channel or shared.",
        describe=describe_prelu,
    ),
    Kind(
        "drop_path",
        DropPathParams,
        keep_shape,
        "Stochastic depth: drop a residual branch per example while training.",
        aliases=("stochastic_depth",),
        describe=describe_dropout,
    ),
    Kind(
        "layer_scale",
        LayerScaleParams,
        infer_per_channel,
        "Multiply each channel by a learned gamma (ConvNeXt).",
    ),
    Kind(
        "dropout",
        DropoutParams,
        keep_shape,
        "Randomly zero activations with probability p while training.",
        describe=describe_dropout,
    ),
)
