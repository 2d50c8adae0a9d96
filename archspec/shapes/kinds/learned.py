"""Learned tensors: ``parameter`` (e.g. a class token) and ``positional_embedding``.

``parameter: {shape: [1, 768]}`` outputs a learned tensor of that shape for every example
(its input only gives the batch size); torch stores it as ``[1, *shape]``, like
torchvision's ViT ``class_token`` ``[1, 1, 768]``, or as ``shape`` itself with
``batch_axis: false``, like ConvNeXt's ``layer_scale`` ``[C, 1, 1]`` (registered before the
block it scales, so a spec writes it first and multiplies later). ``positional_embedding``
adds a learned tensor of its input's shape — for a ``[T, D]`` sequence torchvision ViT's
``pos_embedding`` ``[1, T, D]``. Counting: the tensor's elements; MACs 0 (an addition).

``embedding: {vocab: N, dim: D}`` looks token ids up in a learned ``N × D`` table
(``nn.Embedding``): int ids ``[T]`` (an input declared `dtype: int, vocab: N`) become the
sequence ``[T, D]``. Counting: N·D parameters; MACs 0 (a lookup, no arithmetic). It is the
only kind that reads ids (``Kind.reads_ids``); every other kind refuses them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Literal

from annotated_types import Gt, Le
from pydantic import Field as PydanticField

from archspec.shapes.geometry import LearnedGeometry
from archspec.shapes.kinds.base import (
    Bool,
    In,
    Kind,
    NonNegInt,
    Out,
    Params,
    PerDim,
    PosInt,
    ShapeError,
)
from archspec.shapes.plan import Layout, PlanNode, format_shape, numel


class ParameterParams(Params):
    """A learned tensor, repeated over the batch."""

    shorthand = "shape"
    shape: PerDim = PydanticField(
        description="Its shape without the batch axis: [1, 768] for a class token.",
        examples=[[1, 768], [16]],
    )
    init: Literal["zeros", "normal", "constant"] = PydanticField(
        "zeros",
        description="Initial values: zeros (torchvision's class token), normal(0, std), or "
        "every element `value` (ConvNeXt's layer scale: 1e-6).",
        examples=["zeros", "normal", "constant"],
    )
    std: Annotated[float, Gt(0), Le(10)] = PydanticField(
        0.02, description="Standard deviation when init is normal.", examples=[0.02]
    )
    value: float = PydanticField(
        0.0, description="Every element's initial value when init is constant.", examples=[1e-6]
    )
    batch_axis: Bool = PydanticField(
        True,
        description="Store it as [1, *shape] (torchvision ViT's class token [1, 1, 768]); "
        "false stores exactly `shape` (ConvNeXt's layer scale [C, 1, 1]). Either way the "
        "output is repeated over the batch.",
        examples=[True, False],
    )


def infer_parameter(p: ParameterParams, ins: Sequence[In]) -> Out:
    """Its layout follows its shape: ``[D]`` flat, ``[T, D]`` a sequence, else a tensor."""
    rank = len(p.shape)
    layout: Layout = "flat" if rank == 1 else "sequence" if rank == 2 else "tensor"
    return Out(
        shape=p.shape,
        field=None,
        params=numel(p.shape),
        geometry=LearnedGeometry(p.shape),
        layout=layout,
    )


class PositionalEmbeddingParams(Params):
    """A learned tensor of the input's shape, added to it."""

    std: Annotated[float, Gt(0), Le(10)] = PydanticField(
        0.02,
        description="Standard deviation of the normal initialisation (ViT: 0.02).",
        examples=[0.02],
    )


def infer_positional_embedding(p: PositionalEmbeddingParams, ins: Sequence[In]) -> Out:
    (x,) = ins
    return Out(
        shape=x.shape, field=x.field, params=numel(x.shape), geometry=LearnedGeometry(x.shape)
    )


class EmbeddingParams(Params):
    """A learned table of `vocab` vectors of size `dim`, indexed by token ids."""

    vocab: PosInt = PydanticField(
        description="Rows of the table: ids are in [0, vocab) (at least the input's vocab).",
        examples=[30522],
    )
    dim: PosInt = PydanticField(description="The size of each vector.", examples=[768])
    padding_idx: NonNegInt | None = PydanticField(
        None,
        description="An id whose vector stays zero and gets no gradient (torch's padding_idx).",
        examples=[0],
    )


def infer_embedding(p: EmbeddingParams, ins: Sequence[In]) -> Out:
    """Ids ``[T]`` → the sequence ``[T, D]`` (ids of any other shape: ``[*shape, D]``)."""
    (x,) = ins
    if x.vocab is None:
        raise ShapeError(
            f"embedding reads token ids (an int input), but receives {x.described()} of "
            "float values",
            "declare the input as ids: `{shape: [T], dtype: int, vocab: N}` (an embedding "
            "comes first)",
        )
    if x.vocab > p.vocab:
        raise ShapeError(
            f"the input's ids reach {x.vocab - 1}, but the table has {p.vocab} rows",
            f"use `vocab: {x.vocab}` or more",
            field="vocab",
        )
    if p.padding_idx is not None and p.padding_idx >= p.vocab:
        raise ShapeError(
            f"padding_idx {p.padding_idx} is not an id of a table of {p.vocab} rows",
            f"use an id from 0 to {p.vocab - 1}",
            field="padding_idx",
        )
    layout: Layout = "sequence" if len(x.shape) == 1 else "tensor"
    return Out(shape=(*x.shape, p.dim), field=None, params=p.vocab * p.dim, layout=layout)


def describe_embedding(node: PlanNode) -> str:
    assert isinstance(node.params, EmbeddingParams)
    return f"{node.params.vocab:,}×{node.params.dim}"


def describe_learned(node: PlanNode) -> str:
    return format_shape(node.shape)


KINDS = (
    Kind(
        "parameter",
        ParameterParams,
        infer_parameter,
        "A learned tensor (e.g. a class token), repeated over the batch.",
        describe=describe_learned,
    ),
    Kind(
        "positional_embedding",
        PositionalEmbeddingParams,
        infer_positional_embedding,
        "Add a learned tensor of the input's shape (learned positions of a [T, D] sequence).",
        aliases=("pos_embedding",),
        describe=describe_learned,
    ),
    Kind(
        "embedding",
        EmbeddingParams,
        infer_embedding,
        "Look int token ids up in a learned table: ids [T] → a sequence [T, dim].",
        describe=describe_embedding,
        reads_ids=True,
    ),
)
