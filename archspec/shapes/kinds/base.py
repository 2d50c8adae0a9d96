"""What a layer kind is: its parameters, its shape rule and its torch builder, together.

A kind module defines a :class:`Params` model, an ``infer`` function (input shapes
and receptive fields → :class:`Out`) and a ``build`` function (a Plan node → an
``nn.Module``; torch is imported inside it, never at module level), then
registers them as one :class:`Kind`. Adding a kind is one small module.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any, ClassVar

from annotated_types import Ge, Gt
from pydantic import AllowInfNan, BaseModel, BeforeValidator, ConfigDict, Strict, model_validator

from archspec.shapes.arith import Field
from archspec.shapes.plan import PlanNode, RField, Shape

if TYPE_CHECKING:
    from torch import nn

PosInt = Annotated[int, Strict(), Gt(0)]
NonNegInt = Annotated[int, Strict(), Ge(0)]
Bool = Annotated[bool, Strict()]
# every float parameter of a kind: `.nan`/`.inf` are refused (issue #13: `elu: {alpha: .inf}`
# built a module that outputs NaN); tests/test_hostile_frontend.py walks every kind's fields
FiniteFloat = Annotated[float, AllowInfNan(False)]


def _per_dim(value: Any) -> Any:
    """``5`` → ``(5,)`` (applies to every spatial axis); lists become tuples."""
    if isinstance(value, int) and not isinstance(value, bool):
        return (value,)
    if isinstance(value, list):
        return tuple(value)
    return value


PerDim = Annotated[tuple[PosInt, ...], BeforeValidator(_per_dim)]
PerDimOrZero = Annotated[tuple[NonNegInt, ...], BeforeValidator(_per_dim)]


class Params(BaseModel):
    """Base of every kind's parameters: unknown keys are errors."""

    model_config = ConfigDict(
        extra="forbid", frozen=True, populate_by_name=True, defer_build=True, allow_inf_nan=False
    )
    shorthand: ClassVar[str | None] = None  # the field a bare value fills: `dense: 10`

    @model_validator(mode="before")
    @classmethod
    def _expand_shorthand(cls, value: Any) -> Any:
        if value is None:
            return {}
        if not isinstance(value, dict) and cls.shorthand is not None:
            return {cls.shorthand: value}
        return value


class ShapeError(Exception):
    """A shape rule's verdict that the layer cannot work on its input.

    ``field`` names the parameter to point the location at (``None``: the layer).
    """

    def __init__(self, message: str, hint: str = "", field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.field = field


@dataclass(frozen=True)
class In:
    """What a shape rule sees of one input."""

    shape: Shape
    field: RField

    @property
    def spatial(self) -> Shape:
        return self.shape[1:]


@dataclass(frozen=True)
class Out:
    """A shape rule's result."""

    shape: Shape
    field: RField
    params: int = 0
    macs: int = 0
    attrs: Mapping[str, Any] = dataclasses.field(default_factory=dict)


Infer = Callable[[Any, Sequence[In]], Out]
Build = Callable[[PlanNode], "nn.Module"]


@dataclass(frozen=True)
class Kind:
    name: str
    params: type[Params]
    infer: Infer
    build: Build
    summary: str  # one line for docs and the schema
    inputs: tuple[int, int | None] = (1, 1)  # min, max number of inputs (None: any)
    aliases: tuple[str, ...] = ()
    describe: Callable[[PlanNode], str] = dataclasses.field(
        default=lambda node: ""
    )  # e.g. "5×5 /1 same"


def expand(values: tuple[int, ...], rank: int, what: str) -> tuple[int, ...]:
    """Broadcast a per-dim parameter to ``rank`` axes, or explain why not.

    >>> expand((3,), 2, "kernel"), expand((3, 5), 2, "kernel")
    ((3, 3), (3, 5))
    """
    if len(values) == 1:
        return values * rank
    if len(values) != rank:
        raise ShapeError(
            f"{what} has {len(values)} values but the input has {rank} spatial "
            f"dimension{'s' if rank != 1 else ''}",
            f"give one value, or exactly {rank}",
            field=what,
        )
    return values


def need_spatial(inp: In, kind: str, minimum: int = 1) -> int:
    """Spatial rank of ``inp``; a kind that needs a grid refuses a flat vector."""
    rank = len(inp.spatial)
    if rank < minimum:
        raise ShapeError(
            f"{kind} needs a [channels, length…] input, but receives a flat vector of "
            f"shape {list(inp.shape)}",
            "move it before the flatten/dense layers, or give `input:` spatial dimensions",
        )
    if rank > 3:
        raise ShapeError(f"{kind} supports 1-D, 2-D and 3-D inputs, not {rank}-D")
    return rank


def through(
    rf: RField, kernels: Sequence[int], strides: Sequence[int], pads: Sequence[int]
) -> RField:
    """Receptive field after a sliding window (per axis)."""
    if rf is None:
        return None
    return tuple(
        axis.through(k, s, p) for axis, k, s, p in zip(rf, kernels, strides, pads, strict=True)
    )


def widest(fields: Sequence[RField]) -> RField:
    """The receptive field of a merge: the largest of its inputs' (global wins)."""
    if any(rf is None for rf in fields):
        return None
    return max(fields, key=lambda rf: [axis.size for axis in rf or ()])


def dims(values: Sequence[int]) -> str:
    """``5×5`` — per-axis values joined the way shapes are written."""
    return "×".join(map(str, values))


__all__ = [
    "Bool",
    "Build",
    "Field",
    "FiniteFloat",
    "In",
    "Infer",
    "Kind",
    "NonNegInt",
    "Out",
    "Params",
    "PerDim",
    "PerDimOrZero",
    "PosInt",
    "ShapeError",
    "dims",
    "expand",
    "need_spatial",
    "through",
    "widest",
]
