"""Layers that keep the shape: activations (the "detector" stage), batch norm, dropout."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Annotated, Literal

from annotated_types import Ge, Gt, Lt
from pydantic import AliasChoices, Strict
from pydantic import Field as PydanticField

from archspec.shapes.kinds.base import Bool, FiniteFloat, In, Kind, Out, Params
from archspec.shapes.plan import PlanNode

if TYPE_CHECKING:
    from torch import nn

Float = Annotated[FiniteFloat, Strict()]


def keep_shape(p: Params, ins: Sequence[In]) -> Out:
    """Element-wise: same shape, same receptive field, no parameters."""
    (x,) = ins
    return Out(shape=x.shape, field=x.field)


class NoParams(Params):
    """This layer takes no parameters."""


class LeakyReluParams(Params):
    shorthand = "slope"
    slope: Float = PydanticField(0.01, validation_alias=AliasChoices("slope", "negative_slope"))


class EluParams(Params):
    shorthand = "alpha"
    alpha: Float = 1.0


class GeluParams(Params):
    shorthand = "approximate"
    approximate: Literal["none", "tanh"] = "none"


def _torch_nn(name: str, **kwargs: str) -> Callable[[PlanNode], nn.Module]:
    def build(node: PlanNode) -> nn.Module:
        from torch import nn

        params = {key: getattr(node.params, attr) for key, attr in kwargs.items()}
        cls: type[nn.Module] = getattr(nn, name)
        return cls(**params)

    return build


def _channel_softmax(name: str) -> Callable[[PlanNode], nn.Module]:
    def build(node: PlanNode) -> nn.Module:
        from torch import nn

        cls: type[nn.Module] = getattr(nn, name)
        return cls(dim=1)  # dim 1 = channels (dim 0 is the batch)

    return build


class BatchNormParams(Params):
    """Batch normalisation over channels (1-D/2-D/3-D by the input's rank)."""

    eps: Annotated[FiniteFloat, Gt(0)] = 1e-5
    momentum: Annotated[FiniteFloat, Ge(0), Lt(1)] = 0.1
    affine: Bool = True


def infer_batchnorm(p: BatchNormParams, ins: Sequence[In]) -> Out:
    (x,) = ins
    return Out(shape=x.shape, field=x.field, params=2 * x.shape[0] if p.affine else 0)


def build_batchnorm(node: PlanNode) -> nn.Module:
    from torch import nn

    p: BatchNormParams = node.params
    rank = max(len(node.shape) - 1, 1)
    cls = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)[rank - 1]
    return cls(node.shape[0], eps=p.eps, momentum=p.momentum, affine=p.affine)


class DropoutParams(Params):
    """Zero each activation with probability ``p`` while training."""

    shorthand = "p"
    p: Annotated[FiniteFloat, Ge(0), Lt(1)] = PydanticField(
        0.5, validation_alias=AliasChoices("p", "rate")
    )


_ACTIVATIONS = (
    ("relu", NoParams, _torch_nn("ReLU"), "Rectified linear unit max(0, x)."),
    (
        "leaky_relu",
        LeakyReluParams,
        _torch_nn("LeakyReLU", negative_slope="slope"),
        "max(0, x) + slope·min(0, x).",
    ),
    ("elu", EluParams, _torch_nn("ELU", alpha="alpha"), "Exponential linear unit."),
    (
        "gelu",
        GeluParams,
        _torch_nn("GELU", approximate="approximate"),
        "Gaussian error linear unit.",
    ),
    ("silu", NoParams, _torch_nn("SiLU"), "x·sigmoid(x) (swish)."),
    ("sigmoid", NoParams, _torch_nn("Sigmoid"), "Logistic sigmoid."),
    ("tanh", NoParams, _torch_nn("Tanh"), "Hyperbolic tangent."),
    ("softmax", NoParams, _channel_softmax("Softmax"), "Softmax over channels/classes."),
    (
        "log_softmax",
        NoParams,
        _channel_softmax("LogSoftmax"),
        "Log of the softmax over channels/classes.",
    ),
)

KINDS = (
    *(
        Kind(name, params, keep_shape, build, summary)
        for name, params, build, summary in _ACTIVATIONS
    ),
    Kind(
        "batchnorm",
        BatchNormParams,
        infer_batchnorm,
        build_batchnorm,
        "Batch normalisation over channels.",
        aliases=("batch_norm",),
    ),
    Kind(
        "dropout",
        DropoutParams,
        keep_shape,
        _torch_nn("Dropout", p="p"),
        "Randomly zero activations with probability p while training.",
        describe=lambda n: f"p={n.params.p:g}",
    ),
)
