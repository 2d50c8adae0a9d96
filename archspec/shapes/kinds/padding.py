"""``pad`` (zeros/constant, reflect, replicate, circular) and ``crop``, per side of each axis."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from pydantic import Field as PydanticField

from archspec.shapes.geometry import PadGeometry
from archspec.shapes.kinds.base import (
    In,
    Kind,
    Out,
    Params,
    PerDimOrZero,
    ShapeError,
    expand,
    need_spatial,
    through,
)
from archspec.shapes.plan import PlanNode, format_shape


class SidesParams(Params):
    """How much to add (pad) or remove (crop) on each side of each spatial axis."""

    shorthand = "size"
    size: PerDimOrZero = PydanticField(
        (0,),
        description="Both sides: an int, or one per spatial axis (before/after override it).",
        examples=[1, [2, 1]],
    )
    before: PerDimOrZero | None = PydanticField(
        None,
        description="The start of each axis (left/top/front): an int or one per axis.",
        examples=[2, [1, 0]],
    )
    after: PerDimOrZero | None = PydanticField(
        None,
        description="The end of each axis (right/bottom/back): an int or one per axis.",
        examples=[0, [0, 1]],
    )


class PadParams(SidesParams):
    mode: Literal["zeros", "reflect", "replicate", "circular"] = PydanticField(
        "zeros",
        description="zeros (or `value`), reflect, replicate or circular.",
        examples=["zeros", "reflect"],
    )
    value: float = PydanticField(
        0.0, description="The fill value in zeros mode.", examples=[0.0, -1.0]
    )


def _sides(p: SidesParams, x: In, kind: str) -> tuple[tuple[int, int], ...]:
    rank = need_spatial(x, kind)
    size = expand(p.size, rank, "size")
    before = size if p.before is None else expand(p.before, rank, "before")
    after = size if p.after is None else expand(p.after, rank, "after")
    return tuple(zip(before, after, strict=True))


def infer_pad(p: PadParams, ins: Sequence[In]) -> Out:
    (x,) = ins
    pads = _sides(p, x, "pad")
    if p.mode in ("reflect", "circular"):
        for n, (a, b) in zip(x.spatial, pads, strict=True):
            if max(a, b) >= n + (p.mode == "circular"):
                limit = "smaller than" if p.mode == "reflect" else "at most"
                raise ShapeError(
                    f"{p.mode} padding {max(a, b)} must be {limit} the input size, but the "
                    f"input is {format_shape(x.shape)}",
                    "pad less, or use mode: zeros or replicate",
                    field="mode",
                )
    shape = (x.shape[0], *(n + a + b for n, (a, b) in zip(x.spatial, pads, strict=True)))
    rank = len(pads)
    field = through(x.field, [1] * rank, [1] * rank, [a for a, _ in pads])
    return Out(shape=shape, field=field, geometry=PadGeometry(pads))


def infer_crop(p: SidesParams, ins: Sequence[In]) -> Out:
    (x,) = ins
    pads = _sides(p, x, "crop")
    out = tuple(n - a - b for n, (a, b) in zip(x.spatial, pads, strict=True))
    if min(out) < 1:
        raise ShapeError(
            f"crop {[list(s) for s in pads]} removes the whole input {format_shape(x.shape)}",
            "crop less",
            field="size",
        )
    rank = len(pads)
    field = through(x.field, [1] * rank, [1] * rank, [-a for a, _ in pads])
    return Out(shape=(x.shape[0], *out), field=field, geometry=PadGeometry(pads))


def describe_sides(node: PlanNode) -> str:
    assert isinstance(node.geometry, PadGeometry)
    text = " ".join(f"{a}+{b}" for a, b in node.geometry.pads)
    if isinstance(node.params, PadParams) and node.params.mode != "zeros":
        text += f" {node.params.mode}"
    return text


KINDS = (
    Kind(
        "pad",
        PadParams,
        infer_pad,
        "Pad each spatial axis before/after (zeros, reflect, replicate or circular).",
        describe=describe_sides,
    ),
    Kind(
        "crop",
        SidesParams,
        infer_crop,
        "Remove positions from each side of each spatial axis.",
        describe=describe_sides,
    ),
)
