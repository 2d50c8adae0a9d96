"""Counting rules: how many operations a layer costs, under a named convention.

Torch-free: a rule reads a Plan node's kind, validated parameters, input and output
shapes, parameter count and MACs, nothing else. One table per convention, keyed by
kind name (a kind without a rule in every table fails ``tests/test_conventions.py``).

Conventions (one sample; every tool below counts one multiply-add as one operation):

- ``archspec`` — multiply-accumulates of conv, conv_transpose and dense (bias and every
  other layer free): the MACs column of ``archspec check``.
- ``torchinfo`` (1.8) — "Mult-Adds": for each module with a ``weight``/``bias``, its
  parameter count times the output's spatial size if its class name contains ``Conv``
  (so a transposed conv counts its weights at every *output* position), else times the
  batch (batch norm: its 2·C affine parameters). Nothing else.
- ``fvcore`` (0.1.5) — traced aten ops: convolutions and linear layers without bias,
  inference batch norm 1 per element (2 if affine), 2-D nearest/bilinear upsampling 1/4
  per output element, 2-D adaptive average pooling 1 per input element. Activations,
  pooling, merges and 1-D/3-D upsampling are ignored.
- ``ptflops`` (0.7.5, its default ``pytorch`` backend) — module hooks matched by exact
  class, plus patched ``torch.nn.functional`` calls, which also fire *inside* those
  modules: ReLU, ELU, GELU, max/avg/adaptive pooling and upsampling are counted twice,
  SiLU and softmax once (through the functional), Lp pooling through the avg pooling,
  ReLU and multiply inside it; sigmoid, tanh and merges never. Conv and linear count
  their bias. archspec's asymmetric-``same`` conv is a subclass of ``nn.ConvNd``, which
  exact-class matching misses: 0 (thop too).
- ``ptflops-aten`` (its ``aten`` backend) — convolutions and matrix products with bias.
- ``thop`` (0.1.1) — module hooks by exact class: conv = output elements × input channels
  per group × kernel (for a transposed conv that is *output* positions), batch norm 2 per
  element, doubled if affine (4), avg pooling 1 per output element, adaptive avg pooling
  (window + 1) per output element, softmax 3·C − 1 per position, upsampling 1/5/11 per
  output element (nearest/linear/bilinear; trilinear 0), linear without bias.

``flops`` is archspec's own FLOP rule (one per arithmetic operation, a transcendental
function counts one): 2 per MAC plus bias adds, normalisation, activations, pooling,
merges and interpolation, per kind as documented in :data:`FLOP_RULES`.

``embedding`` counts 0 MACs and 0 FLOPs under every convention: looking a row up by
its id moves data and computes nothing (its vocab·dim parameters are counted as usual).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

from archspec.shapes.arith import same_pads
from archspec.shapes.geometry import AttentionGeometry, RecurrentGeometry
from archspec.shapes.plan import Plan, PlanNode, numel

Rule = Callable[[PlanNode], int]
CONVENTIONS = ("archspec", "torchinfo", "fvcore", "ptflops", "ptflops-aten", "thop")
DEFAULT = "archspec"


# ---------------------------------------------------------------- small facts about a node


def _fields(node: PlanNode) -> Any:
    """The node's parameters as its own kind's model (each rule here is keyed by kind, so it
    reads that kind's fields)."""
    return node.params


def _out(node: PlanNode) -> int:
    """Output elements of one sample."""
    return numel(node.shape)


def _in(node: PlanNode) -> int:
    """Elements of the first input of one sample."""
    return numel(node.in_shapes[0])


def _spatial_out(node: PlanNode) -> int:
    return math.prod(node.shape[1:])


def _bias(node: PlanNode) -> bool:
    return bool(getattr(node.params, "bias", False))


def _bias_adds(node: PlanNode) -> int:
    """One add per output element when the layer has a bias."""
    return _out(node) if _bias(node) else 0


def _weights(node: PlanNode) -> int:
    """Parameters without the bias (conv, conv_transpose, dense)."""
    return node.num_params - (node.shape[0] if _bias(node) else 0)


def _rank(node: PlanNode) -> int:
    return len(node.in_shapes[0]) - 1


def _per_axis(values: tuple[int, ...], rank: int) -> tuple[int, ...]:
    return values * rank if len(values) == 1 else values


def asymmetric_same(node: PlanNode) -> bool:
    """A conv with ``padding: same`` whose total padding is odd on some axis: compiled as a
    padding wrapper (a subclass of ``nn.ConvNd``), which tools matching exact classes miss."""
    p = _fields(node)
    if node.kind != "conv" or p.padding != "same":
        return False
    rank = _rank(node)
    sizes = node.in_shapes[0][1:]
    kernel, stride, dilation = (_per_axis(v, rank) for v in (p.kernel, p.stride, p.dilation))
    pads = [same_pads(*axis) for axis in zip(sizes, kernel, stride, dilation, strict=True)]
    return any(left != right for left, right in pads)


def _zero(node: PlanNode) -> int:
    return 0


def _macs(node: PlanNode) -> int:
    return node.macs


def _macs_bias(node: PlanNode) -> int:
    return node.macs + _bias_adds(node)


def _times(factor: int, of: Rule) -> Rule:
    return lambda node: factor * of(node)


# ---------------------------------------------------------------- torchinfo


def _torchinfo_conv(node: PlanNode) -> int:
    """Parameters × output spatial positions ("ignore C" for classes named *Conv*)."""
    return node.num_params * _spatial_out(node)


def _params(node: PlanNode) -> int:
    """Parameters × batch (1): linear weights + bias, batch norm's 2·C."""
    return node.num_params


# ---------------------------------------------------------------- fvcore


def _affine_norm(per_element: int) -> Rule:
    def rule(node: PlanNode) -> int:
        affine = bool(getattr(node.params, "affine", True))
        return _out(node) * per_element * (2 if affine else 1)

    return rule


def _fvcore_upsample(node: PlanNode) -> int:
    if _rank(node) != 2:  # only aten::upsample_nearest2d / _bilinear2d have handlers
        return 0
    return _out(node) * (4 if _fields(node).mode == "linear" else 1)


def _fvcore_adaptive(node: PlanNode) -> int:
    return _in(node) if _fields(node).kind == "avg" and _rank(node) == 2 else 0


# ---------------------------------------------------------------- ptflops


def _ptflops_conv(node: PlanNode) -> int:
    return 0 if asymmetric_same(node) else _macs_bias(node)


def _ptflops_pool(node: PlanNode) -> int:
    """max/avg: module hook + the patched functional, each the input's size; lp: no module
    hook, but torch's lp_pool calls the patched avg_pool (input size), relu and
    ``Tensor.mul`` (output size each)."""
    return _in(node) + 2 * _out(node) if _fields(node).kind == "lp" else 2 * _in(node)


# ---------------------------------------------------------------- thop


def _thop_conv(node: PlanNode) -> int:
    return 0 if asymmetric_same(node) else node.macs


def _thop_conv_transpose(node: PlanNode) -> int:
    """Output elements × input channels per group × kernel = weights × output positions."""
    return _weights(node) * _spatial_out(node)


def _thop_avg_pool(node: PlanNode) -> int:
    return _out(node) if _fields(node).kind == "avg" else 0


def _thop_adaptive(node: PlanNode) -> int:
    """``int((Π in/out + 1) × output elements)`` in float64, as thop computes it."""
    if _fields(node).kind != "avg":
        return 0
    kernel = math.prod(i / o for i, o in zip(node.in_shapes[0][1:], node.shape[1:], strict=True))
    return int((kernel + 1) * _out(node))


def _thop_softmax(node: PlanNode) -> int:
    channels = node.in_shapes[0][0]
    return (_in(node) // channels) * (3 * channels - 1)


_THOP_UPSAMPLE = {"nearest": 1, "linear": 5, "bilinear": 11}


def _thop_upsample(node: PlanNode) -> int:
    mode = _fields(node).mode
    if mode == "linear":
        mode = ("linear", "bilinear", "trilinear")[_rank(node) - 1]
    return _out(node) * _THOP_UPSAMPLE.get(mode, 0)


# ---------------------------------------------------------------- archspec FLOPs


def _window(node: PlanNode) -> int:
    return math.prod(_per_axis(_fields(node).size, _rank(node)))


def _flops_pool(node: PlanNode) -> int:
    """max: window − 1 comparisons; avg: window − 1 adds + 1 divide; lp: a power per
    element, window − 1 adds and a root — per output element."""
    per = {"max": _window(node) - 1, "avg": _window(node), "lp": 2 * _window(node)}
    return _out(node) * per[_fields(node).kind]


def _visited(node: PlanNode) -> int:
    """Input elements an adaptive pool reads, windows ``[⌊j·n/o⌋, ⌈(j+1)·n/o⌉)`` per axis."""
    per_channel = 1
    for n, o in zip(node.in_shapes[0][1:], node.shape[1:], strict=True):
        per_channel *= sum(-(-(j + 1) * n // o) - (j * n) // o for j in range(o))
    return node.shape[0] * per_channel


def _flops_adaptive(node: PlanNode) -> int:
    """Like pool, with the real windows: reads − outputs comparisons (max), reads (avg)."""
    return _visited(node) - (_out(node) if _fields(node).kind == "max" else 0)


def _flops_global(node: PlanNode) -> int:
    """avg: every element added, one divide per channel; max: one compare per element."""
    channels = node.shape[0]
    return _in(node) if _fields(node).kind == "avg" else _in(node) - channels


def _flops_merge(node: PlanNode) -> int:
    return (len(node.in_shapes) - 1) * _out(node)


def _flops_upsample(node: PlanNode) -> int:
    """nearest copies; linear interpolates a + t·(b − a) (3 ops) along each axis."""
    return 0 if _fields(node).mode == "nearest" else 3 * _rank(node) * _out(node)


def _flops_softmax(node: PlanNode) -> int:
    """exp, a running sum and a divide per element."""
    return 3 * _out(node)


def _per_element(ops: int) -> Rule:
    return lambda node: ops * _out(node)


def _flops_gelu(node: PlanNode) -> int:
    """0.5·x·(1 + erf(x/√2)): 5 ops; the tanh form 0.5·x·(1 + tanh(√(2/π)(x + 0.044715x³))): 9."""
    return (9 if _fields(node).approximate == "tanh" else 5) * _out(node)


def _computed_norm(node: PlanNode) -> int:
    """Statistics per group: a running sum (1), the variance (3), then (x − μ)/σ (2); ·γ + β
    when affine (2)."""
    affine = bool(getattr(node.params, "affine", True))
    return _out(node) * (6 + (2 if affine else 0))


def _flops_lrn(node: PlanNode) -> int:
    """A square and an add per window element, then scale, add, power and divide."""
    return _out(node) * (2 * int(_fields(node).size) + 4)


def _attention_extra(node: PlanNode) -> int:
    """What attention adds to 2 per MAC: a scale and softmax (1 + 3) per score (heads·T·S),
    and the projections' bias adds (T·D query, S·D key and value each, T·D output)."""
    g = node.geometry
    assert isinstance(g, AttentionGeometry)
    t, s, d = g.query_len, g.key_len, g.embed
    biases = (2 * t * d + 2 * s * d) if getattr(node.params, "bias", True) else 0
    return 4 * g.heads * t * s + biases


def _flops_attention(node: PlanNode) -> int:
    return 2 * node.macs + _attention_extra(node)


def _flops_encoder_layer(node: PlanNode) -> int:
    """Attention (above) + the feed-forward's bias adds (T·F + T·D) and activation (T·F,
    GELU 5) + two layer norms (8 per element) + two residual adds, T·D each."""
    t, d = node.shape
    f = int(_fields(node).feedforward)
    act = 5 if _fields(node).activation == "gelu" else 1
    return 2 * node.macs + _attention_extra(node) + t * f * (1 + act) + t * d * (1 + 16 + 2)


def _flops_recurrent(node: PlanNode) -> int:
    """2 per MAC, then per step, direction, layer and hidden unit: the input and hidden gate
    sums plus their two biases (3 per gate) and the cell update — LSTM: 3 sigmoids (4 each),
    2 tanh, f·c + i·g and o·tanh(c) (3); GRU: 2 sigmoids, a tanh, r·(W·h + b), (1 − z)·n + z·h
    (3 + 1)."""
    g = node.geometry
    assert isinstance(g, RecurrentGeometry)
    gates, update = (4, 3 * 4 + 2 + 3) if node.kind == "lstm" else (3, 2 * 4 + 1 + 4)
    steps = node.in_shapes[0][0] * g.layers * (2 if g.bidirectional else 1)
    return 2 * node.macs + steps * g.hidden * (3 * gates + update)


# Kinds whose count under a tool's convention has not been measured against the tool yet:
# `check --convention TOOL` says so for a spec that uses one (tests/test_conventions.py keeps
# this set exact), instead of guessing what the tool counts.
TOOL_PENDING = frozenset(
    {
        "relu6", "hardsigmoid", "mish", "softplus", "prelu", "identity", "drop_path",
        "layer_scale", "groupnorm", "instancenorm", "layernorm", "local_response_norm",
        "channel_shuffle", "pixel_shuffle", "pixel_unshuffle", "pad", "crop", "reshape",
        "permute", "transpose", "to_tokens", "from_tokens", "select", "slice", "mean", "split",
        "chunk",
        "attention", "transformer_encoder_layer", "lstm", "gru", "parameter",
        "positional_embedding", "embedding",
    }
)  # fmt: skip


FLOP_RULES: dict[str, Rule] = {
    "conv": lambda n: 2 * n.macs + _bias_adds(n),
    "conv_transpose": lambda n: 2 * n.macs + _bias_adds(n),
    "dense": lambda n: 2 * n.macs + _bias_adds(n),
    "batchnorm": _affine_norm(2),  # (x − μ)·(1/σ), then ·γ + β when affine
    "relu": _per_element(1),  # max(0, x)
    "leaky_relu": _per_element(2),  # a compare and a multiply
    "elu": _per_element(4),  # compare, exp, subtract, multiply
    "gelu": _flops_gelu,
    "silu": _per_element(5),  # x / (1 + exp(−x)): negate, exp, add, divide, multiply
    "sigmoid": _per_element(4),  # 1 / (1 + exp(−x))
    "tanh": _per_element(1),
    "hardswish": _per_element(5),  # x · min(max(x + 3, 0), 6) / 6: add, two clamps, ·, /
    "softmax": _flops_softmax,
    "log_softmax": lambda n: 3 * _out(n),  # exp, a running sum, subtract log-sum
    "dropout": _zero,  # identity at inference
    "flatten": _zero,
    # moving or cutting axes is data movement: no arithmetic
    "reshape": _zero,
    "permute": _zero,
    "transpose": _zero,
    "to_tokens": _zero,
    "from_tokens": _zero,
    "select": _zero,
    "slice": _zero,
    "split": _zero,
    "chunk": _zero,
    "mean": lambda n: _in(n),
    # activations added with the modern kinds (per element)
    "relu6": _per_element(2),  # two clamps
    "hardsigmoid": _per_element(4),  # add 3, two clamps, divide by 6
    "mish": _per_element(5),  # x · tanh(log(1 + exp(x))): exp, add, log, tanh, multiply
    "softplus": _per_element(3),  # log(1 + exp(x))
    "prelu": _per_element(2),  # a compare and a multiply
    "identity": _zero,
    "drop_path": _zero,  # identity at inference
    "layer_scale": _per_element(1),  # x · γ
    # normalisations that compute their statistics: mean (1), variance (3), normalise (2)
    "groupnorm": _computed_norm,
    "instancenorm": _computed_norm,
    "layernorm": _computed_norm,
    "local_response_norm": _flops_lrn,
    # moving data
    "channel_shuffle": _zero,
    "pixel_shuffle": _zero,
    "pixel_unshuffle": _zero,
    "pad": _zero,
    "crop": _zero,  # one add per input element, one divide per output (≈ the adds)
    # sequences
    "attention": _flops_attention,
    "transformer_encoder_layer": _flops_encoder_layer,
    "lstm": _flops_recurrent,
    "gru": _flops_recurrent,
    "parameter": _zero,
    "positional_embedding": _per_element(1),  # x + P
    "embedding": _zero,  # a table lookup (ids select rows): no arithmetic
    "add": _flops_merge,
    "multiply": _flops_merge,
    "concat": _zero,
    "upsample": _flops_upsample,
    "pool": _flops_pool,
    "global_pool": _flops_global,
    "adaptive_pool": _flops_adaptive,
}


def _table(**overrides: Rule) -> dict[str, Rule]:
    """A convention's rules: ``_zero`` for every kind it ignores, then ``overrides``."""
    known = {kind: overrides.get(kind, _zero) for kind in FLOP_RULES if kind not in TOOL_PENDING}
    return known | overrides


RULES: dict[str, dict[str, Rule]] = {
    "archspec": {kind: _macs for kind in FLOP_RULES},  # the Plan's own MACs, every kind
    "torchinfo": _table(
        conv=_torchinfo_conv, conv_transpose=_torchinfo_conv, dense=_params, batchnorm=_params
    ),
    "fvcore": _table(
        conv=_macs,
        conv_transpose=_macs,
        dense=_macs,
        batchnorm=_affine_norm(1),
        upsample=_fvcore_upsample,
        adaptive_pool=_fvcore_adaptive,
    ),
    "ptflops": _table(
        conv=_ptflops_conv,
        conv_transpose=_macs_bias,
        dense=_macs_bias,
        batchnorm=_affine_norm(1),
        relu=_times(2, _out),
        elu=_times(2, _out),
        leaky_relu=_out,
        gelu=_times(2, _out),
        silu=_out,
        softmax=_out,
        pool=_ptflops_pool,
        adaptive_pool=_times(2, _in),
        upsample=_times(2, _out),
    ),
    "ptflops-aten": _table(conv=_macs_bias, conv_transpose=_macs_bias, dense=_macs_bias),
    "thop": _table(
        conv=_thop_conv,
        conv_transpose=_thop_conv_transpose,
        dense=_macs,
        batchnorm=_affine_norm(2),
        softmax=_thop_softmax,
        pool=_thop_avg_pool,
        adaptive_pool=_thop_adaptive,
        upsample=_thop_upsample,
    ),
}


class UnknownKindError(KeyError):
    """A kind has no counting rule (the registry test keeps this from happening)."""


def rule(kind: str, convention: str) -> Rule:
    """The counting rule of ``kind`` under ``convention`` (``"flops"``: archspec's FLOPs)."""
    table: Mapping[str, Rule] = FLOP_RULES if convention == "flops" else RULES[convention]
    if kind not in table:
        if kind in TOOL_PENDING:
            raise UnknownKindError(
                f"kind '{kind}' has no counting rule for {convention} yet (not measured against "
                "the tool); use the archspec convention or --flops"
            )
        raise UnknownKindError(f"kind '{kind}' has no counting rule for {convention}")
    return table[kind]


def per_layer(plan: Plan, convention: str = DEFAULT) -> dict[str, int]:
    """Each node's count under ``convention`` (or ``"flops"``), by node name."""
    return {node.name: rule(node.kind, convention)(node) for node in plan.nodes}


def total(plan: Plan, convention: str = DEFAULT) -> int:
    """The network's count under ``convention`` (or ``"flops"``) for one sample.

    >>> import archspec
    >>> plan = archspec.loads("input: [4]\\nlayers: [{dense: 3}, relu]").plan()
    >>> total(plan), total(plan, "torchinfo"), total(plan, "ptflops"), total(plan, "flops")
    (12, 15, 21, 30)
    """
    return sum(per_layer(plan, convention).values())


def describe(convention: str) -> str:
    """The one-line name of what a count means, for table headers."""
    if convention == "flops":
        return "FLOPs"
    return "MACs" if convention == "archspec" else f"MACs ({convention})"


__all__ = ["CONVENTIONS", "FLOP_RULES", "RULES", "Rule", "per_layer", "rule", "total"]
