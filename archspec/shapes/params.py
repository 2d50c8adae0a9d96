"""The base of every kind's parameters, and the field types they share.

Docs live on the fields: ``Field(description=..., examples=[...])``; the JSON
schema (:mod:`archspec.outputs.schema`) reads them from here.
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar

from annotated_types import Ge, Gt
from pydantic import (
    AllowInfNan,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Strict,
    field_validator,
    model_validator,
)

PosInt = Annotated[int, Strict(), Gt(0)]
NonNegInt = Annotated[int, Strict(), Ge(0)]
Bool = Annotated[bool, Strict()]
# every float parameter of a kind: `.nan`/`.inf` are refused (issue #13: `elu: {alpha: .inf}`
# built a module that outputs NaN); tests/test_hostile_frontend.py walks every kind's fields
FiniteFloat = Annotated[float, AllowInfNan(False)]
# ...and within float32's range, which networks compute in: `leaky_relu: 1.0e+308` is finite
# as a Python float but torch cannot turn it into a float32 scalar (an internal error)
FLOAT32_MAX = 3.4028234663852886e38


def per_dim(value: Any) -> Any:
    """``5`` → ``(5,)`` (applies to every spatial axis); lists become tuples."""
    if isinstance(value, int) and not isinstance(value, bool):
        return (value,)
    if isinstance(value, list):
        return tuple(value)
    return value


PerDim = Annotated[tuple[PosInt, ...], BeforeValidator(per_dim)]
PerDimOrZero = Annotated[tuple[NonNegInt, ...], BeforeValidator(per_dim)]


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

    @field_validator("*")
    @classmethod
    def _float32(cls, value: Any) -> Any:
        """Every float of every kind (alone or in a list) fits a float32."""
        for v in value if isinstance(value, tuple) else (value,):
            if isinstance(v, float) and abs(v) > FLOAT32_MAX:
                raise ValueError(
                    f"{v:g} is beyond float32's range (±3.4e38), which the network computes "
                    "in — use a smaller value"
                )
        return value


__all__ = ["Bool", "NonNegInt", "Params", "PerDim", "PerDimOrZero", "PosInt", "per_dim"]
