"""Kinds that move, merge, cut or average axes: grids ↔ tokens, reshape, permute, select…

Axes are counted without the batch axis (``0`` is the channels of a grid, the tokens of a
sequence), negative from the end, as in torch. These layers track no per-axis receptive
field: their output's field is shown as global (every token may see the whole input).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Literal

from pydantic import BeforeValidator, Strict
from pydantic import Field as PydanticField

from archspec.shapes.geometry import AxesGeometry, ReshapeGeometry, SliceGeometry, SplitGeometry
from archspec.shapes.kinds.base import (
    Bool,
    In,
    Kind,
    Out,
    Params,
    PerDim,
    PosInt,
    ShapeError,
    dims,
)
from archspec.shapes.params import per_dim
from archspec.shapes.plan import Layout, PlanNode, Shape, format_shape, numel

Axis = Annotated[int, Strict()]
Axes = Annotated[tuple[Axis, ...], BeforeValidator(per_dim)]
LayoutName = Literal["grid", "sequence", "flat", "tensor"]
LAYOUT_FIELD = PydanticField(
    None,
    description="How the result's axes are read: grid, sequence, flat or tensor "
    "(default: flat for one axis, else as the kind says).",
    examples=["sequence", "grid"],
)


def axis_of(axis: int, x: In, what: str = "axis", extra: int = 0) -> int:
    """``axis`` as a non-negative index into ``x``'s axes (``extra``: one past the end is
    allowed, for inserting), or a located error."""
    rank = len(x.shape) + extra
    if not -rank <= axis < rank:
        raise ShapeError(
            f"{what} {axis} is out of range for {x.described()} ({rank} axes, no batch axis)",
            f"use an axis from {-rank} to {rank - 1}",
            field=what,
        )
    return axis % rank


def _layout(x: In, shape: Shape, keeps_channels: bool) -> Layout:
    """The layout after an axis change: flat for one axis; a grid stays a grid while its
    channel axis is untouched; anything else is a plain tensor."""
    if len(shape) == 1:
        return "flat"
    if x.layout == "grid" and keeps_channels:
        return "grid"
    return "tensor"


# --------------------------------------------------------------------------- tokens
class ToTokensParams(Params):
    """A grid ``[C, *spatial]`` → a sequence ``[H·W, C]`` (one token per position, row-major)."""


def infer_to_tokens(p: ToTokensParams, ins: Sequence[In]) -> Out:
    (x,) = ins
    if x.layout != "grid" or len(x.shape) < 2:
        raise ShapeError(
            f"to_tokens needs a grid [channels, *spatial], but receives {x.described()}",
            "use it on a conv's output; a sequence already is tokens",
        )
    return Out(shape=(numel(x.spatial), x.shape[0]), field=None, layout="sequence")


class FromTokensParams(Params):
    """A sequence ``[T, D]`` → a grid ``[D, *size]`` with ``T`` = the product of ``size``."""

    shorthand = "size"
    size: PerDim = PydanticField(
        description="The grid's spatial size, one value per axis (1-D to 3-D).",
        examples=[[14, 14], [7, 7]],
    )


def infer_from_tokens(p: FromTokensParams, ins: Sequence[In]) -> Out:
    (x,) = ins
    if x.layout not in ("sequence", "tensor") or len(x.shape) != 2:
        raise ShapeError(
            f"from_tokens needs a sequence [tokens, features], but receives {x.described()}",
            "use it after to_tokens or on a [T, D] sequence",
        )
    if len(p.size) > 3:
        raise ShapeError("from_tokens makes 1-D, 2-D or 3-D grids", "give 1 to 3 sizes", "size")
    if numel(p.size) != x.shape[0]:
        raise ShapeError(
            f"from_tokens size {dims(p.size)} holds {numel(p.size)} tokens, but the input has "
            f"{x.shape[0]}",
            "give sizes whose product is the number of tokens",
            field="size",
        )
    return Out(shape=(x.shape[1], *p.size), field=None, layout="grid")


# --------------------------------------------------------------------------- reshaping
class ReshapeParams(Params):
    """Reshape to ``shape`` (no batch axis; one entry may be -1: what is left)."""

    shorthand = "shape"
    shape: tuple[Axis, ...] = PydanticField(
        description="The new shape without the batch axis; one -1 is inferred.",
        examples=[[196, 768], [-1, 64]],
    )
    layout: LayoutName | None = LAYOUT_FIELD


def infer_reshape(p: ReshapeParams, ins: Sequence[In]) -> Out:
    (x,) = ins
    total = numel(x.shape)
    unknown = [i for i, n in enumerate(p.shape) if n == -1]
    if not p.shape or len(unknown) > 1 or any(n == 0 or n < -1 for n in p.shape):
        raise ShapeError(
            f"reshape shape {list(p.shape)} is not a shape",
            "give positive sizes and at most one -1",
            field="shape",
        )
    known = numel(tuple(n for n in p.shape if n != -1))
    shape = tuple(total // known if n == -1 else n for n in p.shape)
    if total % known or numel(shape) != total:
        raise ShapeError(
            f"reshape cannot make {list(p.shape)} from {x.described()} ({total:,} elements)",
            "give sizes whose product is the number of elements",
            field="shape",
        )
    layout: Layout = p.layout or ("flat" if len(shape) == 1 else "tensor")
    _check_layout(layout, shape)
    return Out(shape=shape, field=None, geometry=ReshapeGeometry(shape), layout=layout)


def _check_layout(layout: Layout, shape: Shape) -> None:
    ranks = {"flat": (1, 1), "sequence": (2, 2), "grid": (2, 4), "tensor": (1, 8)}
    low, high = ranks[layout]
    if not low <= len(shape) <= high:
        raise ShapeError(
            f"a {'flat vector' if layout == 'flat' else layout} cannot have the shape "
            f"{format_shape(shape)}",
            "flat is [D], sequence [T, D], grid [C, *spatial] with 1 to 3 spatial axes",
            field="layout",
        )


class PermuteParams(Params):
    """Reorder the axes: ``order`` lists the input axes in their new order."""

    shorthand = "order"
    order: tuple[Axis, ...] = PydanticField(
        description="Every input axis once, in the new order (no batch axis).",
        examples=[[1, 2, 0], [1, 0]],
    )
    layout: LayoutName | None = LAYOUT_FIELD


def _permuted(order: Sequence[int], x: In, p_layout: Layout | None) -> Out:
    shape = tuple(x.shape[i] for i in order)
    same = tuple(order) == tuple(range(len(order)))
    layout: Layout = p_layout or (x.layout if same else "flat" if len(shape) == 1 else "tensor")
    _check_layout(layout, shape)
    return Out(
        shape=shape,
        field=x.field if same else None,
        geometry=AxesGeometry(tuple(order)),
        layout=layout,
    )


def infer_permute(p: PermuteParams, ins: Sequence[In]) -> Out:
    (x,) = ins
    order = tuple(axis_of(a, x, "order") for a in p.order)
    if sorted(order) != list(range(len(x.shape))):
        raise ShapeError(
            f"permute order {list(p.order)} must list each of the {len(x.shape)} axes of "
            f"{x.described()} once",
            f"e.g. {list(range(len(x.shape)))[::-1]}",
            field="order",
        )
    return _permuted(order, x, p.layout)


class TransposeParams(Params):
    """Swap two axes (``[T, D]`` → ``[D, T]``)."""

    shorthand = "axes"
    axes: tuple[Axis, Axis] = PydanticField(
        (0, 1), description="The two axes to swap.", examples=[[0, 1], [-1, -2]]
    )
    layout: LayoutName | None = LAYOUT_FIELD


def infer_transpose(p: TransposeParams, ins: Sequence[In]) -> Out:
    (x,) = ins
    a, b = (axis_of(axis, x, "axes") for axis in p.axes)
    order = list(range(len(x.shape)))
    order[a], order[b] = order[b], order[a]
    return _permuted(order, x, p.layout)


# --------------------------------------------------------------------------- cutting
class SelectParams(Params):
    """Take one position along ``axis`` (the class token: ``{axis: 0, index: 0}``); the
    axis is removed."""

    axis: Axis = PydanticField(0, description="The axis to index.", examples=[0, -1])
    index: Axis = PydanticField(
        0, description="The position (negative: from the end).", examples=[0, -1]
    )


def infer_select(p: SelectParams, ins: Sequence[In]) -> Out:
    (x,) = ins
    if len(x.shape) < 2:
        raise ShapeError(
            f"select needs at least two axes, but receives {x.described()}",
            "use slice to keep one feature of a flat vector",
        )
    axis = axis_of(p.axis, x)
    size = x.shape[axis]
    if not -size <= p.index < size:
        raise ShapeError(
            f"select index {p.index} is out of range for axis {p.axis} of size {size}",
            f"use an index from {-size} to {size - 1}",
            field="index",
        )
    shape = x.shape[:axis] + x.shape[axis + 1 :]
    return Out(
        shape=shape,
        field=None,
        geometry=SliceGeometry(axis, p.index % size, p.index % size + 1, 1),
        layout=_layout(x, shape, axis > 0),
    )


class SliceParams(Params):
    """Keep ``start:stop:step`` along ``axis`` (Python's slice rules)."""

    axis: Axis = PydanticField(0, description="The axis to cut.", examples=[0, 1])
    start: Axis | None = PydanticField(
        None, description="First position (default 0).", examples=[1]
    )
    stop: Axis | None = PydanticField(
        None, description="End, exclusive (default: the size).", examples=[-1]
    )
    step: PosInt = PydanticField(1, description="Keep every step-th position.", examples=[2])


def infer_slice(p: SliceParams, ins: Sequence[In]) -> Out:
    (x,) = ins
    axis = axis_of(p.axis, x)
    start, stop, step = slice(p.start, p.stop, p.step).indices(x.shape[axis])
    kept = len(range(start, stop, step))
    if kept == 0:
        raise ShapeError(
            f"slice {p.start}:{p.stop}:{p.step} keeps nothing of axis {p.axis} (size "
            f"{x.shape[axis]})",
            "choose start/stop inside the axis",
        )
    shape = (*x.shape[:axis], kept, *x.shape[axis + 1 :])
    field = x.field if axis == 0 else None  # a grid's channels: positions are unchanged
    return Out(shape=shape, field=field, geometry=SliceGeometry(axis, start, stop, step))


class MeanParams(Params):
    """The mean over ``axes`` (removed unless ``keepdims``)."""

    shorthand = "axes"
    axes: Axes = PydanticField(description="The axes to average.", examples=[0, [1, 2]])
    keepdims: Bool = PydanticField(False, description="Keep them with size 1.", examples=[True])


def infer_mean(p: MeanParams, ins: Sequence[In]) -> Out:
    (x,) = ins
    axes = tuple(sorted({axis_of(a, x, "axes") for a in p.axes}))
    if len(axes) != len(p.axes):
        raise ShapeError(f"mean names an axis twice: {list(p.axes)}", "name each once", "axes")
    if p.keepdims:
        shape = tuple(1 if i in axes else n for i, n in enumerate(x.shape))
        layout: Layout = x.layout
    else:
        shape = tuple(n for i, n in enumerate(x.shape) if i not in axes)
        if not shape:
            raise ShapeError(
                f"mean over every axis of {x.described()} leaves a scalar per example",
                "keep one axis, or set `keepdims: true`",
                field="axes",
            )
        layout = _layout(x, shape, 0 not in axes)
    return Out(
        shape=shape, field=None, macs=numel(x.shape), geometry=AxesGeometry(axes), layout=layout
    )


# --------------------------------------------------------------------------- several outputs
class SplitParams(Params):
    """Cut ``axis`` into consecutive pieces of ``sizes`` (they must add up to the axis):
    one output per piece, named with ``outputs: [a, b]``."""

    shorthand = "sizes"
    sizes: Annotated[tuple[PosInt, ...], PydanticField(min_length=2)] = PydanticField(
        description="The size of each piece, in order; together the whole axis.",
        examples=[[58, 58], [16, 8, 8]],
    )
    axis: Axis = PydanticField(
        0, description="The axis to cut (0: a grid's channels).", examples=[0, -1]
    )


def _pieces(x: In, axis: int, sizes: Sequence[int]) -> Out:
    """The outputs of cutting ``x``'s ``axis`` into ``sizes``."""
    shapes = tuple((*x.shape[:axis], n, *x.shape[axis + 1 :]) for n in sizes)
    field = x.field if axis == 0 else None  # a grid's channels: positions are unchanged
    return Out(
        shape=x.shape,
        field=field,
        geometry=SplitGeometry(axis, tuple(sizes)),
        outputs=shapes,
    )


def infer_split(p: SplitParams, ins: Sequence[In]) -> Out:
    (x,) = ins
    axis = axis_of(p.axis, x)
    if sum(p.sizes) != x.shape[axis]:
        raise ShapeError(
            f"split sizes {list(p.sizes)} add up to {sum(p.sizes)}, but axis {p.axis} of "
            f"{x.described()} has {x.shape[axis]}",
            f"make the sizes add up to {x.shape[axis]}",
            field="sizes",
        )
    return _pieces(x, axis, p.sizes)


class ChunkParams(Params):
    """Cut ``axis`` into ``parts`` pieces as ``torch.chunk`` does (equal, the last one
    smaller if the size does not divide); named with ``outputs: [a, b]``."""

    shorthand = "parts"
    parts: Annotated[int, Strict(), PydanticField(ge=2)] = PydanticField(
        description="How many pieces.", examples=[2, 3]
    )
    axis: Axis = PydanticField(
        0, description="The axis to cut (0: a grid's channels).", examples=[0, -1]
    )


def chunk_sizes(size: int, parts: int) -> tuple[int, ...]:
    """The pieces ``torch.chunk`` makes: ``ceil(size / parts)`` each, the last the rest
    (so sometimes fewer than ``parts``).

    >>> chunk_sizes(116, 2), chunk_sizes(5, 4)
    ((58, 58), (2, 2, 1))
    """
    step = -(-size // parts)
    return tuple(min(step, size - start) for start in range(0, size, step))


def infer_chunk(p: ChunkParams, ins: Sequence[In]) -> Out:
    (x,) = ins
    axis = axis_of(p.axis, x)
    sizes = chunk_sizes(x.shape[axis], p.parts)
    if len(sizes) != p.parts:
        raise ShapeError(
            f"chunk cannot cut axis {p.axis} of {x.described()} into {p.parts} parts: "
            f"torch.chunk makes {len(sizes)} ({', '.join(map(str, sizes))})",
            f"use parts that divide {x.shape[axis]}, or `split:` with the sizes you want",
            field="parts",
        )
    return _pieces(x, axis, sizes)


def describe_split(node: PlanNode) -> str:
    geometry = node.geometry
    if isinstance(geometry, SplitGeometry):
        return f"axis {geometry.axis} → {'+'.join(map(str, geometry.sizes))}"
    return ""


def describe_axes(node: PlanNode) -> str:
    geometry = node.geometry
    if isinstance(geometry, AxesGeometry):
        return f"({', '.join(map(str, geometry.axes))})"
    if isinstance(geometry, SliceGeometry):
        return f"axis {geometry.axis} [{geometry.start}:{geometry.stop}:{geometry.step}]"
    return ""


KINDS = (
    Kind(
        "to_tokens",
        ToTokensParams,
        infer_to_tokens,
        "A grid [C, *spatial] as a sequence of tokens [H·W, C].",
    ),
    Kind(
        "from_tokens",
        FromTokensParams,
        infer_from_tokens,
        "A sequence [H·W, C] back to a grid [C, H, W].",
    ),
    Kind("reshape", ReshapeParams, infer_reshape, "Reshape (no batch axis; one -1 inferred)."),
    Kind("permute", PermuteParams, infer_permute, "Reorder the axes.", describe=describe_axes),
    Kind("transpose", TransposeParams, infer_transpose, "Swap two axes.", describe=describe_axes),
    Kind(
        "select",
        SelectParams,
        infer_select,
        "One position along an axis, the axis removed (a class token).",
        describe=describe_axes,
    ),
    Kind(
        "slice",
        SliceParams,
        infer_slice,
        "start:stop:step along an axis.",
        describe=describe_axes,
    ),
    Kind("mean", MeanParams, infer_mean, "The mean over some axes.", describe=describe_axes),
    Kind(
        "split",
        SplitParams,
        infer_split,
        "Consecutive pieces of given sizes along an axis, one output each (`outputs: [a, b]`).",
        describe=describe_split,
        several_outputs=True,
    ),
    Kind(
        "chunk",
        ChunkParams,
        infer_chunk,
        "An axis cut into equal parts as torch.chunk does, one output each (`outputs: [a, b]`).",
        describe=describe_split,
        several_outputs=True,
    ),
)
