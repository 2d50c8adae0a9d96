"""Convolutions: ``conv`` (1-D/2-D/3-D by the input's rank) and ``conv_transpose``."""

from __future__ import annotations

import difflib
import math
from collections.abc import Sequence
from typing import Annotated, Any, Literal

from pydantic import AliasChoices, PlainValidator, WithJsonSchema
from pydantic import Field as PydanticField
from pydantic_core import PydanticCustomError

from archspec.shapes.arith import conv_out, effective_kernel, same_pads, transpose_out
from archspec.shapes.geometry import ConvGeometry, ConvTransposeGeometry
from archspec.shapes.kinds.base import (
    Bool,
    In,
    Kind,
    Out,
    Params,
    PerDim,
    PerDimOrZero,
    PosInt,
    ShapeError,
    dims,
    expand,
    need_spatial,
    through,
)
from archspec.shapes.plan import PlanNode

_PADDING_WORDS = ("same", "valid", "causal")
DEPTH = "Number of filters (output channels); `filters` also accepted."
KERNEL = "Kernel size: an int or one per spatial axis."
STRIDE = "Step between windows: an int or one per spatial axis."
DILATION = "Spacing between kernel elements: an int or one per spatial axis."
GROUPS = "Split the channels into groups (must divide both channel counts)."
BIAS = "Learn an additive bias."


def _padding(value: Any) -> tuple[int, ...] | str:
    """An int, a list of ints (one per spatial axis), ``same`` or ``valid``."""
    if isinstance(value, str) and value.lower() in _PADDING_WORDS:
        return value.lower()
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return (value,)
    if (
        isinstance(value, list | tuple)
        and value
        and all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in value)
    ):
        return tuple(value)
    raise PydanticCustomError(
        "padding",
        "padding must be a non-negative int, a list of them (one per spatial axis), "
        "'same', 'valid' or 'causal'; received {received}",
        {"received": repr(value), "hint": _padding_hint(value)},
    )


def _padding_hint(value: Any) -> str:
    """The fix for a bad padding: the closest word, else the three spellings."""
    close = difflib.get_close_matches(value, _PADDING_WORDS, n=1) if isinstance(value, str) else []
    if close:
        return f"did you mean '{close[0]}'?"
    return "write e.g. `padding: 1`, `padding: [1, 2]` or `padding: same`"


_PADDING_SCHEMA = {
    "anyOf": [
        {"type": "integer", "minimum": 0},
        {"type": "array", "items": {"type": "integer", "minimum": 0}, "minItems": 1},
        {"enum": ["same", "valid", "causal"]},
    ],
    "description": "Zero padding per side: an int, one int per spatial axis, 'same' "
    "(output = ceil(input / stride), extra padding on the right as in Keras), 'valid' (0) "
    "or 'causal' (1-D only: dilation·(kernel-1) on the left, none on the right, so an output "
    "never sees a later time step).",
}
Padding = Annotated[
    tuple[int, ...] | str, PlainValidator(_padding), WithJsonSchema(_PADDING_SCHEMA)
]


class ConvParams(Params):
    """A convolution: ``depth`` filters of size ``kernel`` sliding with ``stride``."""

    depth: PosInt = PydanticField(
        validation_alias=AliasChoices("depth", "filters"),
        description=DEPTH,
        examples=[32, 64],
    )
    kernel: PerDim = PydanticField(description=KERNEL, examples=[3, 5, [3, 1]])
    stride: PerDim = PydanticField((1,), description=STRIDE, examples=[1, 2])
    padding: Padding = PydanticField((0,), examples=[0, 1, "same"])  # description: _PADDING_SCHEMA
    dilation: PerDim = PydanticField((1,), description=DILATION, examples=[1, 2])
    groups: PosInt = PydanticField(1, description=GROUPS, examples=[1, 4])
    bias: Bool = PydanticField(True, description=BIAS, examples=[True, False])
    padding_mode: Literal["zeros", "reflect", "replicate", "circular"] = PydanticField(
        "zeros",
        description="How to pad: zeros, reflect, replicate or circular.",
        examples=["zeros", "reflect"],
    )


def _pads(
    p: ConvParams, sizes: Sequence[int], k: Sequence[int], s: Sequence[int], d: Sequence[int]
) -> tuple[tuple[int, int], ...]:
    if p.padding == "same":
        return tuple(same_pads(n, kk, ss, dd) for n, kk, ss, dd in zip(sizes, k, s, d, strict=True))
    if p.padding == "valid":
        return ((0, 0),) * len(sizes)
    if p.padding == "causal":
        if len(sizes) != 1:
            raise ShapeError(
                f"padding: causal is for 1-D (temporal) inputs, but the input has {len(sizes)} "
                "spatial axes",
                "use `padding: same` or explicit padding on images and volumes",
                field="padding",
            )
        return ((d[0] * (k[0] - 1), 0),)
    assert isinstance(p.padding, tuple)
    return tuple((q, q) for q in expand(p.padding, len(sizes), "padding"))


def _check_groups(channels: int, depth: int, groups: int) -> None:
    if channels % groups:
        raise ShapeError(
            f"groups must divide the input channels: {channels} % {groups} = {channels % groups}",
            f"use a divisor of {channels}"
            + (f" such as 1 or {channels}" if channels > 1 else ": 1"),
            field="groups",
        )
    if depth % groups:
        raise ShapeError(
            f"groups must divide depth: {depth} % {groups} = {depth % groups}",
            f"make depth a multiple of {groups}",
            field="groups",
        )


def _check_mode(p: ConvParams, sizes: Sequence[int], pads: Sequence[tuple[int, int]]) -> None:
    if p.padding_mode in ("reflect", "circular"):
        limit_ok = all(
            max(pad) < n if p.padding_mode == "reflect" else max(pad) <= n
            for n, pad in zip(sizes, pads, strict=True)
        )
        if not limit_ok:
            raise ShapeError(
                f"{p.padding_mode} padding {[max(x) for x in pads]} needs an input larger than "
                f"the padding, but the input is {list(sizes)}",
                "use padding_mode: zeros or smaller padding",
                field="padding_mode",
            )


def infer_conv(p: ConvParams, ins: Sequence[In]) -> Out:
    (x,) = ins
    rank = need_spatial(x, "conv")
    k, s, d = (
        expand(v, rank, name)
        for v, name in ((p.kernel, "kernel"), (p.stride, "stride"), (p.dilation, "dilation"))
    )
    channels, sizes = x.shape[0], x.spatial
    _check_groups(channels, p.depth, p.groups)
    pads = _pads(p, sizes, k, s, d)
    _check_mode(p, sizes, pads)
    out = tuple(
        conv_out(n, kk, ss, sum(pad), dd)
        for n, kk, ss, pad, dd in zip(sizes, k, s, pads, d, strict=True)
    )
    if min(out) < 1:
        axis = out.index(min(out))
        span = effective_kernel(k[axis], d[axis])
        raise ShapeError(
            f"the kernel spans {span} but the input is only {sizes[axis]} "
            f"(+{sum(pads[axis])} padding) along axis {axis}: "
            f"({sizes[axis]} + {sum(pads[axis])} - {span}) // {s[axis]} + 1 = {out[axis]} outputs",
            "use a smaller kernel, `padding: same`, or remove an earlier pool",
            field="kernel",
        )
    weights = p.depth * (channels // p.groups) * math.prod(k)
    return Out(
        shape=(p.depth, *out),
        field=through(
            x.field,
            [effective_kernel(a, b) for a, b in zip(k, d, strict=True)],
            s,
            [pad[0] for pad in pads],
        ),
        params=weights + (p.depth if p.bias else 0),
        macs=weights * math.prod(out),
        geometry=ConvGeometry(k, s, pads, d, p.groups),
    )


def describe_conv(node: PlanNode) -> str:
    assert isinstance(node.params, ConvParams) and isinstance(node.geometry, ConvGeometry)
    p, g = node.params, node.geometry
    if isinstance(p.padding, str):
        pad = p.padding
    elif g.zero_padding:
        pad = "valid"
    else:
        pad = "pad " + dims([left for left, _ in g.pads])
    extra = "" if set(g.dilation) == {1} else f" dil {dims(g.dilation)}"
    extra += "" if p.groups == 1 else f" groups {p.groups}"
    return f"{dims(g.kernel)} /{max(g.stride)} {pad}{extra}"


class ConvTransposeParams(Params):
    """A transposed convolution (``deconv``): upsamples by ``stride``."""

    depth: PosInt = PydanticField(
        validation_alias=AliasChoices("depth", "filters"), description=DEPTH, examples=[32, 64]
    )
    kernel: PerDim = PydanticField(description=KERNEL, examples=[3, 5, [3, 1]])
    stride: PerDim = PydanticField(
        (1,), description="Upsampling factor: an int or one per spatial axis.", examples=[2]
    )
    padding: PerDimOrZero = PydanticField(
        (0,), description="Padding removed from each side of the output.", examples=[0, 1]
    )
    output_padding: PerDimOrZero = PydanticField(
        (0,), description="Extra size added to one side of the output (< stride).", examples=[0, 1]
    )
    dilation: PerDim = PydanticField((1,), description=DILATION, examples=[1, 2])
    groups: PosInt = PydanticField(1, description=GROUPS, examples=[1, 4])
    bias: Bool = PydanticField(True, description=BIAS, examples=[True, False])


def infer_conv_transpose(p: ConvTransposeParams, ins: Sequence[In]) -> Out:
    (x,) = ins
    rank = need_spatial(x, "conv_transpose")
    k, s, pad, op, d = (
        expand(v, rank, name)
        for v, name in (
            (p.kernel, "kernel"),
            (p.stride, "stride"),
            (p.padding, "padding"),
            (p.output_padding, "output_padding"),
            (p.dilation, "dilation"),
        )
    )
    _check_groups(x.shape[0], p.depth, p.groups)
    for oo, ss, dd in zip(op, s, d, strict=True):
        if oo >= max(ss, dd):
            raise ShapeError(
                f"output_padding {oo} must be smaller than stride {ss} or dilation {dd}",
                "lower output_padding",
                field="output_padding",
            )
    out = tuple(transpose_out(*args) for args in zip(x.spatial, k, s, pad, op, d, strict=True))
    if min(out) < 1:
        raise ShapeError(
            f"padding {list(pad)} removes the whole output: output size would be {list(out)}",
            "lower the padding",
            field="padding",
        )
    weights = x.shape[0] * (p.depth // p.groups) * math.prod(k)
    field = x.field
    if field is not None:
        field = tuple(
            axis.upsampled(ss, effective_kernel(kk, dd), pp)
            for axis, ss, kk, dd, pp in zip(field, s, k, d, pad, strict=True)
        )
    return Out(
        shape=(p.depth, *out),
        field=field,
        params=weights + (p.depth if p.bias else 0),
        macs=weights * math.prod(x.spatial),
        geometry=ConvTransposeGeometry(k, s, pad, op, d, p.groups),
    )


def describe_conv_transpose(node: PlanNode) -> str:
    assert isinstance(node.geometry, ConvTransposeGeometry)
    return f"{dims(node.geometry.kernel)} /{max(node.geometry.stride)} up"


KINDS = (
    Kind(
        "conv",
        ConvParams,
        infer_conv,
        "Convolution over a 1-D, 2-D or 3-D grid (rank from the input).",
        aliases=("convolution",),
        describe=describe_conv,
    ),
    Kind(
        "conv_transpose",
        ConvTransposeParams,
        infer_conv_transpose,
        "Transposed convolution: learnable upsampling by `stride`.",
        aliases=("deconv",),
        describe=describe_conv_transpose,
    ),
)
