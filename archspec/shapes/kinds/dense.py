"""``flatten`` and ``dense`` (fully connected)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from pydantic import AliasChoices
from pydantic import Field as PydanticField

from archspec.shapes.kinds.base import Bool, In, Kind, Out, Params, PosInt, ShapeError
from archspec.shapes.plan import PlanNode, format_shape, numel

if TYPE_CHECKING:
    from torch import nn


class FlattenParams(Params):
    """Flatten ``[C, H, W]`` to ``[C·H·W]`` (channels-first order, like torch)."""


def infer_flatten(p: FlattenParams, ins: Sequence[In]) -> Out:
    (x,) = ins
    return Out(shape=(numel(x.shape),), field=x.field)


def build_flatten(node: PlanNode) -> nn.Module:
    from torch import nn

    return nn.Flatten()


class DenseParams(Params):
    """A fully connected layer with ``units`` outputs."""

    shorthand = "units"
    units: PosInt = PydanticField(validation_alias=AliasChoices("units", "features"))
    bias: Bool = True


def infer_dense(p: DenseParams, ins: Sequence[In]) -> Out:
    (x,) = ins
    if len(x.shape) != 1:
        raise ShapeError(
            f"dense needs a flat input, but receives {format_shape(x.shape)}",
            f"insert `- flatten` before it ({numel(x.shape):,} features), "
            "or `- global_pool` (one value per channel)",
        )
    weights = x.shape[0] * p.units
    return Out(
        shape=(p.units,), field=None, params=weights + (p.units if p.bias else 0), macs=weights
    )


def build_dense(node: PlanNode) -> nn.Module:
    from torch import nn

    return nn.Linear(node.in_shapes[0][0], node.params.units, bias=node.params.bias)


KINDS = (
    Kind(
        "flatten",
        FlattenParams,
        infer_flatten,
        build_flatten,
        "Flatten every axis but the batch into one.",
    ),
    Kind(
        "dense",
        DenseParams,
        infer_dense,
        build_dense,
        "Fully connected layer (torch's Linear).",
        aliases=("linear",),
        describe=lambda n: f"{n.params.units}",
    ),
)
