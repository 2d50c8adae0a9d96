"""Resolved geometry: what a shape rule decided, handed to the builder as a typed record.

Every per-axis value is already expanded to the input's spatial rank (``kernel: 3`` on a
2-D input is ``(3, 3)``) and ``padding: same`` is already turned into ``(left, right)``
pairs, so the compile stage never recomputes or re-reads a parameter's spelling.
"""

from __future__ import annotations

from dataclasses import dataclass

Ints = tuple[int, ...]


@dataclass(frozen=True)
class Geometry:
    """Base of the per-kind records; kinds with nothing to resolve have none (``None``)."""


@dataclass(frozen=True)
class ConvGeometry(Geometry):
    kernel: Ints
    stride: Ints
    pads: tuple[tuple[int, int], ...]  # (left, right) per axis; asymmetric for Keras' `same`
    dilation: Ints
    groups: int

    @property
    def rank(self) -> int:
        return len(self.kernel)

    @property
    def symmetric(self) -> bool:
        return all(left == right for left, right in self.pads)

    @property
    def zero_padding(self) -> bool:
        return all(pad == (0, 0) for pad in self.pads)


@dataclass(frozen=True)
class ConvTransposeGeometry(Geometry):
    kernel: Ints
    stride: Ints
    padding: Ints  # removed from each side of the output
    output_padding: Ints
    dilation: Ints
    groups: int

    @property
    def rank(self) -> int:
        return len(self.kernel)


@dataclass(frozen=True)
class PoolGeometry(Geometry):
    size: Ints
    stride: Ints
    padding: Ints
    dilation: Ints

    @property
    def rank(self) -> int:
        return len(self.size)


@dataclass(frozen=True)
class AdaptivePoolGeometry(Geometry):
    size: Ints  # the output size per axis

    @property
    def rank(self) -> int:
        return len(self.size)


@dataclass(frozen=True)
class UpsampleGeometry(Geometry):
    scale: Ints

    @property
    def rank(self) -> int:
        return len(self.scale)


@dataclass(frozen=True)
class PadGeometry(Geometry):
    """``pad``/``crop``: (before, after) per spatial axis, expanded to the input's rank."""

    pads: tuple[tuple[int, int], ...]

    @property
    def rank(self) -> int:
        return len(self.pads)


@dataclass(frozen=True)
class AttentionGeometry(Geometry):
    """Multi-head attention of a ``[T, D]`` query over a ``[S, K]`` key/value sequence."""

    embed: int  # D, the query's (and output's) features
    key_features: int  # K (= D for self-attention)
    heads: int
    query_len: int  # T
    key_len: int  # S

    @property
    def same_features(self) -> bool:
        """One packed ``in_proj_weight`` (like nn.MultiheadAttention) when K = D."""
        return self.embed == self.key_features


@dataclass(frozen=True)
class RecurrentGeometry(Geometry):
    """An LSTM/GRU stack over a ``[T, D]`` sequence."""

    input_size: int  # D
    hidden: int
    layers: int
    bidirectional: bool
    last: bool  # return the final hidden state(s) instead of the whole sequence


@dataclass(frozen=True)
class LearnedGeometry(Geometry):
    shape: Ints  # the learned tensor's shape, without the leading 1 torch stores


__all__ = [
    "AdaptivePoolGeometry",
    "AttentionGeometry",
    "ConvGeometry",
    "ConvTransposeGeometry",
    "Geometry",
    "LearnedGeometry",
    "PadGeometry",
    "PoolGeometry",
    "RecurrentGeometry",
    "UpsampleGeometry",
]


@dataclass(frozen=True)
class AxesGeometry(Geometry):
    """Axes without the batch axis, non-negative: a permutation, or the axes a mean reduces."""

    axes: Ints


@dataclass(frozen=True)
class ReshapeGeometry(Geometry):
    shape: Ints  # the target shape without the batch axis, -1 resolved


@dataclass(frozen=True)
class SliceGeometry(Geometry):
    """``start:stop:step`` along ``axis`` (no batch axis), resolved to non-negative bounds."""

    axis: int
    start: int
    stop: int
    step: int


@dataclass(frozen=True)
class FlattenGeometry(Geometry):
    start: int  # first and last axis merged, no batch axis, non-negative
    end: int


@dataclass(frozen=True)
class SplitGeometry(Geometry):
    """Consecutive pieces along ``axis`` (no batch axis, non-negative): one output each."""

    axis: int
    sizes: Ints
