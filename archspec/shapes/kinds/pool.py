"""Pooling: ``pool`` (max, avg, lp — the L1/L2-norm pooling), ``global_pool``, ``adaptive_pool``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from pydantic import Field as PydanticField

from archspec.shapes.arith import adaptive_window, effective_kernel, pool_out
from archspec.shapes.geometry import AdaptivePoolGeometry, PoolGeometry
from archspec.shapes.kinds.base import (
    Bool,
    In,
    Kind,
    Out,
    Params,
    PerDim,
    PerDimOrZero,
    ShapeError,
    dims,
    expand,
    need_spatial,
    through,
)
from archspec.shapes.plan import PlanNode

PoolKind = Literal["max", "avg", "lp"]


class PoolParams(Params):
    """A pooling window of ``size`` moving with ``stride`` (default: ``size``).

    ``lp`` is power-average pooling ``(Σ xᵖ)^(1/p)`` over the window — ``norm: 2`` is
    L2-norm pooling; ``norm: 1`` is the window sum, the L1 norm of non-negative input.
    """

    shorthand = "size"
    kind: PoolKind = PydanticField(
        "max",
        description="max, avg, or lp (power-average / Lp-norm pooling).",
        examples=["max", "avg", "lp"],
    )
    size: PerDim = PydanticField(
        description="Window size: an int or one per spatial axis.", examples=[2, 3]
    )
    stride: PerDim | None = PydanticField(
        None, description="Step between windows; default: the window size.", examples=[2, [2, 1]]
    )
    padding: PerDimOrZero = PydanticField(
        (0,), description="Implicit padding per side (at most half the window).", examples=[0, 1]
    )
    dilation: PerDim = PydanticField(
        (1,),
        description="Spacing between kernel elements: an int or one per spatial axis.",
        examples=[1, 2],
    )
    ceil_mode: Bool = PydanticField(
        False, description="Round the output size up instead of down.", examples=[False, True]
    )
    norm: Literal[1, 2] | None = PydanticField(
        None,
        description="p of lp pooling: 2 is L2-norm pooling, 1 the window sum.",
        examples=[2, 1],
    )
    count_include_pad: Bool = PydanticField(
        True,
        description="avg pooling: count padded zeros in the average.",
        examples=[True, False],
    )


def _check_options(p: PoolParams) -> None:
    if p.dilation != (1,) and p.kind != "max":
        raise ShapeError(
            f"dilation applies only to max pooling, not {p.kind}",
            "remove dilation or use kind: max",
            field="dilation",
        )
    if p.norm is not None and p.kind != "lp":
        raise ShapeError(
            f"norm applies only to lp pooling, not {p.kind}",
            "remove norm or use kind: lp",
            field="norm",
        )
    if p.kind == "lp" and p.padding != (0,):
        raise ShapeError(
            "lp pooling has no padding (torch's LPPool pads nothing)",
            "remove padding, or pad the previous conv",
            field="padding",
        )
    if not p.count_include_pad and p.kind != "avg":
        raise ShapeError(
            f"count_include_pad applies only to avg pooling, not {p.kind}",
            "remove count_include_pad",
            field="count_include_pad",
        )


def _check_avg3d(p: PoolParams, sizes: Sequence[int], k: Sequence[int]) -> None:
    """torch's avg_pool3d (behind 3-D avg and lp pooling) wants the window inside the
    *unpadded* input, even where padding or ceil_mode would make room."""
    if len(sizes) != 3 or p.kind == "max":
        return
    for axis, (n, kk) in enumerate(zip(sizes, k, strict=True)):
        if kk > n:
            raise ShapeError(
                f"3-D {p.kind} pooling needs the window within the unpadded input, but window "
                f"{kk} > input {n} along axis {axis}",
                "use a smaller window (torch's avg_pool3d refuses this, padding or not)",
                field="size",
            )


def infer_pool(p: PoolParams, ins: Sequence[In]) -> Out:
    (x,) = ins
    _check_options(p)
    rank = need_spatial(x, "pool")
    k = expand(p.size, rank, "size")
    s = expand(p.stride or p.size, rank, "stride")
    pad = expand(p.padding, rank, "padding")
    d = expand(p.dilation, rank, "dilation")
    for kk, pp in zip(k, pad, strict=True):
        if 2 * pp > kk:  # torch compares with the window size before dilation
            raise ShapeError(
                f"padding {pp} is more than half the window {kk}",
                f"use padding ≤ {kk // 2} (torch refuses more)",
                field="padding",
            )
    _check_avg3d(p, x.spatial, k)
    out = tuple(
        pool_out(n, kk, ss, pp, dd, p.ceil_mode)
        for n, kk, ss, pp, dd in zip(x.spatial, k, s, pad, d, strict=True)
    )
    if min(out) < 1:
        axis = out.index(min(out))
        raise ShapeError(
            f"window {effective_kernel(k[axis], d[axis])} is larger than its input "
            f"{dims(x.spatial)} (+{2 * pad[axis]} padding) along axis {axis}",
            "remove the pool or pad the previous conv",
            field="size",
        )
    return Out(
        shape=(x.shape[0], *out),
        field=through(x.field, [effective_kernel(a, b) for a, b in zip(k, d, strict=True)], s, pad),
        geometry=PoolGeometry(k, s, pad, d),
    )


def describe_pool(node: PlanNode) -> str:
    assert isinstance(node.params, PoolParams) and isinstance(node.geometry, PoolGeometry)
    p, g = node.params, node.geometry
    name = f"L{p.norm or 2}" if p.kind == "lp" else p.kind
    stride = "" if g.stride == g.size else f" /{max(g.stride)}"
    return f"{name} {dims(g.size)}{stride}"


class GlobalPoolParams(Params):
    """Pool every spatial position of each channel into one value: ``[C, …] → [C]``."""

    shorthand = "kind"
    kind: Literal["avg", "max"] = PydanticField(
        "avg", description="avg or max over every spatial position.", examples=["avg", "max"]
    )


def infer_global_pool(p: GlobalPoolParams, ins: Sequence[In]) -> Out:
    (x,) = ins
    need_spatial(x, "global_pool")
    return Out(shape=(x.shape[0],), field=None)


class AdaptivePoolParams(Params):
    """Pool to a fixed output ``size`` whatever the input size (torch's AdaptiveAvgPool)."""

    shorthand = "size"
    kind: Literal["avg", "max"] = PydanticField(
        "avg", description="avg or max pooling.", examples=["avg", "max"]
    )
    size: PerDim = PydanticField(
        description="Output size: an int or one per spatial axis.", examples=[1, 4, [4, 4]]
    )


def infer_adaptive_pool(p: AdaptivePoolParams, ins: Sequence[In]) -> Out:
    (x,) = ins
    rank = need_spatial(x, "adaptive_pool")
    out = expand(p.size, rank, "size")
    windows = [adaptive_window(n, o) for n, o in zip(x.spatial, out, strict=True)]
    strides = [max(n // o, 1) for n, o in zip(x.spatial, out, strict=True)]
    return Out(
        shape=(x.shape[0], *out),
        field=through(x.field, windows, strides, [0] * rank),
        geometry=AdaptivePoolGeometry(out),
    )


def describe_global_pool(node: PlanNode) -> str:
    assert isinstance(node.params, GlobalPoolParams)
    return node.params.kind


def describe_adaptive_pool(node: PlanNode) -> str:
    assert isinstance(node.params, AdaptivePoolParams)
    assert isinstance(node.geometry, AdaptivePoolGeometry)
    return f"{node.params.kind} → {dims(node.geometry.size)}"


KINDS = (
    Kind(
        "pool",
        PoolParams,
        infer_pool,
        "Max, average or Lp-norm pooling over a sliding window.",
        aliases=("pooling",),
        describe=describe_pool,
    ),
    Kind(
        "global_pool",
        GlobalPoolParams,
        infer_global_pool,
        "Average or max over all spatial positions: [C, ...] → [C].",
        describe=describe_global_pool,
    ),
    Kind(
        "adaptive_pool",
        AdaptivePoolParams,
        infer_adaptive_pool,
        "Average or max pooling to a fixed output size.",
        describe=describe_adaptive_pool,
    ),
)
