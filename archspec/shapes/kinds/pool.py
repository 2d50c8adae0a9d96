"""Pooling: ``pool`` (max, avg, lp — the L1/L2-norm pooling), ``global_pool``, ``adaptive_pool``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Literal

from archspec.shapes.arith import adaptive_window, effective_kernel, pool_out
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

if TYPE_CHECKING:
    from torch import nn

PoolKind = Literal["max", "avg", "lp"]


class PoolParams(Params):
    """A pooling window of ``size`` moving with ``stride`` (default: ``size``).

    ``lp`` is power-average pooling ``(Σ xᵖ)^(1/p)`` over the window — ``norm: 2`` is
    L2-norm pooling; ``norm: 1`` is the window sum, the L1 norm of non-negative input.
    """

    shorthand = "size"
    kind: PoolKind = "max"
    size: PerDim
    stride: PerDim | None = None
    padding: PerDimOrZero = (0,)
    dilation: PerDim = (1,)
    ceil_mode: Bool = False
    norm: Literal[1, 2] | None = None
    count_include_pad: Bool = True


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
        attrs={"size": k, "stride": s, "padding": pad, "dilation": d},
    )


def build_pool(node: PlanNode) -> nn.Module:
    from torch import nn

    p: PoolParams = node.params
    a = node.attrs
    rank = len(a["size"])
    if p.kind == "max":
        cls = (nn.MaxPool1d, nn.MaxPool2d, nn.MaxPool3d)[rank - 1]
        return cls(a["size"], a["stride"], a["padding"], a["dilation"], ceil_mode=p.ceil_mode)
    if p.kind == "avg":
        avg = (nn.AvgPool1d, nn.AvgPool2d, nn.AvgPool3d)[rank - 1]
        return avg(
            a["size"],
            a["stride"],
            a["padding"],
            ceil_mode=p.ceil_mode,
            count_include_pad=p.count_include_pad,
        )
    lp = (nn.LPPool1d, nn.LPPool2d, nn.LPPool3d)[rank - 1]
    # torch's lp_pool1d multiplies by kernel_size, so 1-D needs ints, not 1-tuples
    size, stride = (a["size"][0], a["stride"][0]) if rank == 1 else (a["size"], a["stride"])
    return lp(float(p.norm or 2), size, stride, ceil_mode=p.ceil_mode)


def describe_pool(node: PlanNode) -> str:
    p: PoolParams = node.params
    a = node.attrs
    name = f"L{p.norm or 2}" if p.kind == "lp" else p.kind
    stride = "" if a["stride"] == a["size"] else f" /{max(a['stride'])}"
    return f"{name} {dims(a['size'])}{stride}"


class GlobalPoolParams(Params):
    """Pool every spatial position of each channel into one value: ``[C, …] → [C]``."""

    shorthand = "kind"
    kind: Literal["avg", "max"] = "avg"


def infer_global_pool(p: GlobalPoolParams, ins: Sequence[In]) -> Out:
    (x,) = ins
    need_spatial(x, "global_pool")
    return Out(shape=(x.shape[0],), field=None)


def build_global_pool(node: PlanNode) -> nn.Module:
    from archspec.compile.modules import GlobalPool

    return GlobalPool(node.params.kind)


class AdaptivePoolParams(Params):
    """Pool to a fixed output ``size`` whatever the input size (torch's AdaptiveAvgPool)."""

    shorthand = "size"
    kind: Literal["avg", "max"] = "avg"
    size: PerDim


def infer_adaptive_pool(p: AdaptivePoolParams, ins: Sequence[In]) -> Out:
    (x,) = ins
    rank = need_spatial(x, "adaptive_pool")
    out = expand(p.size, rank, "size")
    windows = [adaptive_window(n, o) for n, o in zip(x.spatial, out, strict=True)]
    strides = [max(n // o, 1) for n, o in zip(x.spatial, out, strict=True)]
    return Out(
        shape=(x.shape[0], *out),
        field=through(x.field, windows, strides, [0] * rank),
        attrs={"size": out},
    )


def build_adaptive_pool(node: PlanNode) -> nn.Module:
    from torch import nn

    size = node.attrs["size"]
    if node.params.kind == "avg":
        return (nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d, nn.AdaptiveAvgPool3d)[len(size) - 1](
            size
        )
    return (nn.AdaptiveMaxPool1d, nn.AdaptiveMaxPool2d, nn.AdaptiveMaxPool3d)[len(size) - 1](size)


KINDS = (
    Kind(
        "pool",
        PoolParams,
        infer_pool,
        build_pool,
        "Max, average or Lp-norm pooling over a sliding window.",
        aliases=("pooling",),
        describe=describe_pool,
    ),
    Kind(
        "global_pool",
        GlobalPoolParams,
        infer_global_pool,
        build_global_pool,
        "Average or max over all spatial positions: [C, ...] → [C].",
        describe=lambda n: n.params.kind,
    ),
    Kind(
        "adaptive_pool",
        AdaptivePoolParams,
        infer_adaptive_pool,
        build_adaptive_pool,
        "Average or max pooling to a fixed output size.",
        describe=lambda n: f"{n.params.kind} → {dims(n.attrs['size'])}",
    ),
)
