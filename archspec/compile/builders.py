"""The builders: one per kind, a Plan node → its ``nn.Module``, keyed by kind name.

The torch half of a kind; its rule (parameters, shape rule, counts) is in
:mod:`archspec.shapes.kinds` under the same name. A builder reads only the node:
its validated params, its resolved geometry and its input shapes (channels and
features come from inference, never recomputed here).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from torch import nn

from archspec.compile.modules import (
    ChannelLayerNorm,
    DropPath,
    FromTokens,
    GlobalPool,
    LayerScale,
    Mean,
    Merge,
    Pad,
    Permute,
    Reshape,
    Slice,
    Split,
    ToTokens,
    by_rank,
    padded,
)
from archspec.compile.sequence import (
    Attention,
    EncoderLayer,
    LearnedTensor,
    PositionalEmbedding,
    Recurrent,
)
from archspec.shapes.geometry import (
    AdaptivePoolGeometry,
    AttentionGeometry,
    AxesGeometry,
    ConvGeometry,
    ConvTransposeGeometry,
    FlattenGeometry,
    Geometry,
    LearnedGeometry,
    PadGeometry,
    PoolGeometry,
    RecurrentGeometry,
    ReshapeGeometry,
    SliceGeometry,
    SplitGeometry,
    UpsampleGeometry,
)
from archspec.shapes.kinds.attention import AttentionParams, EncoderLayerParams
from archspec.shapes.kinds.conv import ConvParams, ConvTransposeParams
from archspec.shapes.kinds.dense import DenseParams
from archspec.shapes.kinds.elementwise import (
    BatchNormParams,
    DropoutParams,
    DropPathParams,
    EluParams,
    GeluParams,
    LayerScaleParams,
    LeakyReluParams,
    PreluParams,
    SoftplusParams,
)
from archspec.shapes.kinds.learned import (
    EmbeddingParams,
    ParameterParams,
    PositionalEmbeddingParams,
)
from archspec.shapes.kinds.merge import UpsampleParams
from archspec.shapes.kinds.norm import (
    GroupNormParams,
    InstanceNormParams,
    LayerNormParams,
    LocalResponseNormParams,
)
from archspec.shapes.kinds.padding import PadParams
from archspec.shapes.kinds.pool import AdaptivePoolParams, GlobalPoolParams, PoolParams
from archspec.shapes.kinds.recurrent import RecurrentParams
from archspec.shapes.kinds.shuffle import ChannelShuffleParams, PixelShuffleParams
from archspec.shapes.kinds.tensor import FromTokensParams, MeanParams
from archspec.shapes.params import Params
from archspec.shapes.plan import PlanNode

Builder = Callable[[PlanNode], nn.Module]
P = TypeVar("P", bound=Params)
G = TypeVar("G", bound=Geometry)


class NoBuilderError(LookupError):
    """A kind has a rule but no builder: an archspec bug, caught by tests/test_registry.py."""


def params(node: PlanNode, cls: type[P]) -> P:
    """``node.params`` as its kind's Params class (an internal invariant, so asserted)."""
    assert isinstance(node.params, cls), f"{node.name}: {type(node.params).__name__}"
    return node.params


def geometry(node: PlanNode, cls: type[G]) -> G:
    """``node.geometry`` as its kind's record (an internal invariant, so asserted)."""
    assert isinstance(node.geometry, cls), f"{node.name}: {type(node.geometry).__name__}"
    return node.geometry


def build_node(node: PlanNode) -> nn.Module:
    """The module for ``node``, from the builder registered under its kind."""
    try:
        builder = BUILDERS[node.kind]
    except KeyError:
        raise NoBuilderError(f"no builder for kind '{node.kind}'") from None
    return builder(node)


# --------------------------------------------------------------------------- convolutions
def conv(node: PlanNode) -> nn.Module:
    p, g = params(node, ConvParams), geometry(node, ConvGeometry)
    module = by_rank(g.rank, nn.Conv1d, nn.Conv2d, nn.Conv3d)(
        node.in_shapes[0][0],
        p.depth,
        g.kernel,
        g.stride,
        padding=tuple(left for left, _ in g.pads) if g.symmetric else 0,
        dilation=g.dilation,
        groups=g.groups,
        bias=p.bias,
        padding_mode=p.padding_mode,
    )
    return module if g.symmetric else padded(module, g.pads, p.padding_mode)


def conv_transpose(node: PlanNode) -> nn.Module:
    p, g = params(node, ConvTransposeParams), geometry(node, ConvTransposeGeometry)
    return by_rank(g.rank, nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d)(
        node.in_shapes[0][0],
        p.depth,
        g.kernel,
        g.stride,
        padding=g.padding,
        output_padding=g.output_padding,
        groups=g.groups,
        bias=p.bias,
        dilation=g.dilation,
    )


# --------------------------------------------------------------------------- pooling
def pool(node: PlanNode) -> nn.Module:
    p, g = params(node, PoolParams), geometry(node, PoolGeometry)
    if p.kind == "max":
        return by_rank(g.rank, nn.MaxPool1d, nn.MaxPool2d, nn.MaxPool3d)(
            g.size, g.stride, g.padding, g.dilation, ceil_mode=p.ceil_mode
        )
    if p.kind == "avg":
        return by_rank(g.rank, nn.AvgPool1d, nn.AvgPool2d, nn.AvgPool3d)(
            g.size,
            g.stride,
            g.padding,
            ceil_mode=p.ceil_mode,
            count_include_pad=p.count_include_pad,
        )
    lp = by_rank(g.rank, nn.LPPool1d, nn.LPPool2d, nn.LPPool3d)
    # torch's lp_pool1d multiplies by kernel_size, so 1-D needs ints, not 1-tuples
    if g.rank == 1:
        return lp(float(p.norm or 2), g.size[0], g.stride[0], ceil_mode=p.ceil_mode)
    return lp(float(p.norm or 2), g.size, g.stride, ceil_mode=p.ceil_mode)


def global_pool(node: PlanNode) -> nn.Module:
    return GlobalPool(params(node, GlobalPoolParams).kind)


def adaptive_pool(node: PlanNode) -> nn.Module:
    size = geometry(node, AdaptivePoolGeometry).size
    if params(node, AdaptivePoolParams).kind == "avg":
        avg = by_rank(len(size), nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d, nn.AdaptiveAvgPool3d)
        return avg(size)
    return by_rank(len(size), nn.AdaptiveMaxPool1d, nn.AdaptiveMaxPool2d, nn.AdaptiveMaxPool3d)(
        size
    )


# --------------------------------------------------------------------------- shape-keeping
def batchnorm(node: PlanNode) -> nn.Module:
    p = params(node, BatchNormParams)
    rank = max(len(node.shape) - 1, 1)  # a flat [C] input is BatchNorm1d's (N, C)
    bn = by_rank(rank, nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)
    return bn(node.shape[0], eps=p.eps, momentum=p.momentum, affine=p.affine)


def prelu(node: PlanNode) -> nn.Module:
    p = params(node, PreluParams)
    return nn.PReLU(node.shape[0] if p.per_channel else 1, init=p.init)


def layer_scale(node: PlanNode) -> nn.Module:
    p = params(node, LayerScaleParams)
    return LayerScale(node.shape[0], len(node.shape) - 1, p.init)


def groupnorm(node: PlanNode) -> nn.Module:
    p = params(node, GroupNormParams)
    return nn.GroupNorm(p.groups, node.shape[0], eps=p.eps, affine=p.affine)


def instancenorm(node: PlanNode) -> nn.Module:
    p = params(node, InstanceNormParams)
    norm = by_rank(len(node.shape) - 1, nn.InstanceNorm1d, nn.InstanceNorm2d, nn.InstanceNorm3d)
    return norm(node.shape[0], eps=p.eps, affine=p.affine)


def layernorm(node: PlanNode) -> nn.Module:
    p = params(node, LayerNormParams)
    if p.over == "last":
        return nn.LayerNorm(node.shape[-1], eps=p.eps, elementwise_affine=p.affine)
    return ChannelLayerNorm(node.shape[0], eps=p.eps, elementwise_affine=p.affine)


def local_response_norm(node: PlanNode) -> nn.Module:
    p = params(node, LocalResponseNormParams)
    return nn.LocalResponseNorm(p.size, alpha=p.alpha, beta=p.beta, k=p.k)


def pad(node: PlanNode) -> nn.Module:
    p = params(node, PadParams)
    return Pad(geometry(node, PadGeometry).pads, p.mode, p.value)


def crop(node: PlanNode) -> nn.Module:
    return Pad([(-a, -b) for a, b in geometry(node, PadGeometry).pads], "zeros")


def _plain(cls: Callable[[], nn.Module]) -> Builder:
    """A builder for a parameterless torch module."""
    return lambda node: cls()


def _over_channels(cls: Callable[..., nn.Module]) -> Builder:
    return lambda node: cls(dim=1)  # dim 1 = channels (dim 0 is the batch)


# --------------------------------------------------------------------------- dense, merges
def dense(node: PlanNode) -> nn.Module:
    p = params(node, DenseParams)
    return nn.Linear(node.in_shapes[0][-1], p.units, bias=p.bias)  # the last axis


def flatten(node: PlanNode) -> nn.Module:
    g = geometry(node, FlattenGeometry)
    return nn.Flatten(g.start + 1, g.end + 1)  # + 1: the batch axis


def concat(node: PlanNode) -> nn.Module:
    return Merge("concat", geometry(node, AxesGeometry).axes[0] + 1)


def _slice(drop: bool) -> Builder:
    def build(node: PlanNode) -> nn.Module:
        g = geometry(node, SliceGeometry)
        return Slice(g.axis, g.start, g.stop, g.step, drop)

    return build


def split(node: PlanNode) -> nn.Module:
    g = geometry(node, SplitGeometry)
    return Split(g.axis, g.sizes)


def upsample(node: PlanNode) -> nn.Module:
    scale = geometry(node, UpsampleGeometry).scale
    mode = params(node, UpsampleParams).mode
    if mode == "linear":
        mode = ("linear", "bilinear", "trilinear")[len(scale) - 1]  # type: ignore[assignment]
    return nn.Upsample(scale_factor=tuple(float(s) for s in scale), mode=mode)


def _merge(op: str) -> Builder:
    return lambda node: Merge(op)


# --------------------------------------------------------------------------- sequences
def attention(node: PlanNode) -> nn.Module:
    p = params(node, AttentionParams)
    g = geometry(node, AttentionGeometry)
    return Attention(g, dropout=p.dropout, causal=p.causal, bias=p.bias)


def transformer_encoder_layer(node: PlanNode) -> nn.Module:
    p = params(node, EncoderLayerParams)
    g = geometry(node, AttentionGeometry)
    return EncoderLayer(
        g.embed,
        p.heads,
        p.feedforward,
        p.dropout,
        activation=p.activation,
        batch_first=True,
        norm_first=p.norm_first,
        causal=p.causal,
    )


def _recurrent(cls: type[nn.LSTM] | type[nn.GRU]) -> Builder:
    def build(node: PlanNode) -> nn.Module:
        p = params(node, RecurrentParams)
        return Recurrent(cls, geometry(node, RecurrentGeometry), p.dropout, p.bias)

    return build


def parameter(node: PlanNode) -> nn.Module:
    p = params(node, ParameterParams)
    shape = geometry(node, LearnedGeometry).shape
    return LearnedTensor(shape, p.init, std=p.std, value=p.value, batch_axis=p.batch_axis)


def positional_embedding(node: PlanNode) -> nn.Module:
    std = params(node, PositionalEmbeddingParams).std
    return PositionalEmbedding(geometry(node, LearnedGeometry).shape, std)


def embedding(node: PlanNode) -> nn.Module:
    p = params(node, EmbeddingParams)
    return nn.Embedding(p.vocab, p.dim, padding_idx=p.padding_idx)


BUILDERS: dict[str, Builder] = {
    "conv": conv,
    "conv_transpose": conv_transpose,
    "pool": pool,
    "global_pool": global_pool,
    "adaptive_pool": adaptive_pool,
    "relu": _plain(nn.ReLU),
    "leaky_relu": lambda node: nn.LeakyReLU(params(node, LeakyReluParams).slope),
    "elu": lambda node: nn.ELU(params(node, EluParams).alpha),
    "gelu": lambda node: nn.GELU(params(node, GeluParams).approximate),
    "silu": _plain(nn.SiLU),
    "sigmoid": _plain(nn.Sigmoid),
    "tanh": _plain(nn.Tanh),
    "hardswish": _plain(nn.Hardswish),
    "relu6": _plain(nn.ReLU6),
    "hardsigmoid": _plain(nn.Hardsigmoid),
    "mish": _plain(nn.Mish),
    "softplus": lambda node: nn.Softplus(
        params(node, SoftplusParams).beta, params(node, SoftplusParams).threshold
    ),
    "identity": _plain(nn.Identity),
    "prelu": prelu,
    "drop_path": lambda node: DropPath(params(node, DropPathParams).p),
    "layer_scale": layer_scale,
    "groupnorm": groupnorm,
    "instancenorm": instancenorm,
    "layernorm": layernorm,
    "local_response_norm": local_response_norm,
    "channel_shuffle": lambda node: nn.ChannelShuffle(params(node, ChannelShuffleParams).groups),
    "pixel_shuffle": lambda node: nn.PixelShuffle(params(node, PixelShuffleParams).factor),
    "pixel_unshuffle": lambda node: nn.PixelUnshuffle(params(node, PixelShuffleParams).factor),
    "pad": pad,
    "crop": crop,
    "softmax": _over_channels(nn.Softmax),
    "log_softmax": _over_channels(nn.LogSoftmax),
    "batchnorm": batchnorm,
    "dropout": lambda node: nn.Dropout(params(node, DropoutParams).p),
    "flatten": flatten,
    "dense": dense,
    "add": _merge("add"),
    "multiply": _merge("multiply"),
    "concat": concat,
    "upsample": upsample,
    "to_tokens": _plain(ToTokens),
    "from_tokens": lambda node: FromTokens(params(node, FromTokensParams).size),
    "reshape": lambda node: Reshape(geometry(node, ReshapeGeometry).shape),
    "permute": lambda node: Permute(geometry(node, AxesGeometry).axes),
    "transpose": lambda node: Permute(geometry(node, AxesGeometry).axes),
    "select": _slice(drop=True),
    "slice": _slice(drop=False),
    "split": split,
    "chunk": split,
    "mean": lambda node: Mean(geometry(node, AxesGeometry).axes, params(node, MeanParams).keepdims),
    "attention": attention,
    "transformer_encoder_layer": transformer_encoder_layer,
    "lstm": _recurrent(nn.LSTM),
    "gru": _recurrent(nn.GRU),
    "parameter": parameter,
    "positional_embedding": positional_embedding,
    "embedding": embedding,
}

__all__ = ["BUILDERS", "Builder", "NoBuilderError", "build_node", "by_rank", "geometry", "params"]
