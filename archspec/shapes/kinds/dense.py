"""``flatten`` and ``dense`` (fully connected)."""

from __future__ import annotations

from collections.abc import Sequence

from pydantic import AliasChoices
from pydantic import Field as PydanticField

from archspec.shapes.kinds.base import Bool, In, Kind, Out, Params, PosInt, ShapeError
from archspec.shapes.plan import PlanNode, format_shape, numel


class FlattenParams(Params):
    """Flatten ``[C, H, W]`` to ``[C·H·W]`` (channels-first order, like torch)."""


def infer_flatten(p: FlattenParams, ins: Sequence[In]) -> Out:
    (x,) = ins
    return Out(shape=(numel(x.shape),), field=x.field)


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


def describe_dense(node: PlanNode) -> str:
    assert isinstance(node.params, DenseParams)
    return f"{node.params.units}"


KINDS = (
    Kind(
        "flatten",
        FlattenParams,
        infer_flatten,
        "Flatten every axis but the batch into one.",
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
