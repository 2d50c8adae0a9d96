"""What a layer kind is in the shape stage: its parameters, shape rule and description.

A kind module defines a :class:`Params` model (docs on its fields), an ``infer``
function (input shapes and receptive fields → :class:`Out`, with the parameter and
MAC counts and a typed :class:`~archspec.shapes.geometry.Geometry` for the builder)
and registers them as one :class:`Kind`. It never imports torch: the builder that
turns a Plan node into an ``nn.Module`` lives in :mod:`archspec.compile.builders`,
keyed by the same name.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from archspec.shapes.arith import Field
from archspec.shapes.geometry import Geometry
from archspec.shapes.params import (
    Bool,
    FiniteFloat,
    NonNegInt,
    Params,
    PerDim,
    PerDimOrZero,
    PosInt,
)
from archspec.shapes.plan import Layout, PlanNode, RField, Shape, describe_layout


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
    layout: Layout = "grid"
    vocab: int | None = None  # int token ids in [0, vocab) (an int input); None: floats

    @property
    def spatial(self) -> Shape:
        return self.shape[1:]

    def described(self) -> str:
        """``a sequence 196×768``: what the layer received, for error messages."""
        return describe_layout(self.layout, self.shape)


@dataclass(frozen=True)
class Out:
    """A shape rule's result."""

    shape: Shape
    field: RField
    params: int = 0  # the counting rule: learnable parameters…
    macs: int = 0  # …and multiply-accumulates per example
    geometry: Geometry | None = None
    # None: the input's layout when the rank is kept, else a flat vector ([D]) or a grid
    layout: Layout | None = None
    # a layer with several outputs (split, chunk): each output's shape, in order; ``shape``
    # is then all of them together (what the memory estimate counts)
    outputs: tuple[Shape, ...] = ()


Infer = Callable[[Any, Sequence[In]], Out]


def _no_detail(node: PlanNode) -> str:
    return ""


@dataclass(frozen=True)
class Kind:
    """A kind's torch-free rule. Its builder is ``archspec.compile.builders.BUILDERS[name]``."""

    name: str
    params: type[Params]
    infer: Infer
    summary: str  # one line for docs and the schema
    inputs: tuple[int, int | None] = (1, 1)  # min, max number of inputs (None: any)
    aliases: tuple[str, ...] = ()
    describe: Callable[[PlanNode], str] = _no_detail  # e.g. "5×5 /1 same"
    output_activation: bool = False  # a final one is skipped when training on logits
    several_outputs: bool = False  # returns a tuple; the spec names each with `outputs:`
    reads_ids: bool = False  # reads int token ids (embedding); every other kind refuses them


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
    """Spatial rank of ``inp``; a kind that needs a grid refuses a flat vector, a
    sequence and any other non-grid tensor."""
    if inp.layout in ("sequence", "tensor"):
        raise ShapeError(
            f"{kind} needs a grid [channels, length…], but receives {inp.described()}",
            "turn tokens back into a grid with `- from_tokens: [H, W]`"
            if inp.layout == "sequence"
            else "permute the axes back to channels-first (`- permute: ...`)",
        )
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
