"""Counting rules: how many operations a layer costs, under a named convention.

Torch-free: a rule reads a Plan node's kind, validated parameters, input and output
shapes, parameter count and MACs, nothing else. One table per convention, keyed by
kind name (a kind without a rule in every table fails ``tests/test_conventions.py``).

Conventions (one sample; every tool below counts one multiply-add as one operation):

- ``archspec`` — multiply-accumulates of the products: conv, conv_transpose, dense, the
  projections, scores and feed-forward of attention and the encoder layer, the LSTM/GRU
  gate products (plus one per input element of ``mean``); bias and every other layer
  free: the MACs column of ``archspec check``. Its products equal half of what
  ``torch.utils.flop_counter`` counts (2 per multiply-add) on the built network.
- ``torchinfo`` (1.8) — "Mult-Adds": for each *leaf* module that runs, its parameters
  named ``weight``/``bias`` times the output's spatial size if its class name contains
  ``Conv`` (so a transposed conv counts its weights at every *output* position), else
  times the batch (batch, group, instance and layer norm, PReLU, embedding, ``parameter``:
  their parameters once); an LSTM/GRU's ``weight_*``/``bias_*`` times the time steps.
  Attention: only ``out_proj`` (D·D + D; the input projections belong to a module with
  children); the encoder layer: its feed-forward linears and norms (``self_attn.out_proj``
  never runs as a module). Parameters named otherwise (layer scale's ``gamma``,
  ``pos_embedding``) and everything else: 0.
- ``fvcore`` (0.1.5) — traced aten ops: convolutions and linear layers without bias,
  inference batch norm 1 per element (2 if affine), group/instance/layer norm 4 per
  element (5 if affine), 2-D nearest/bilinear upsampling 1/4 per output element, 2-D
  adaptive average pooling 1 per input element. ``aten::scaled_dot_product_attention``,
  ``aten::lstm``/``gru``, activations, pooling, means and merges are ignored.
- ``ptflops`` (0.7.5, its default ``pytorch`` backend) — module hooks matched by exact
  class, plus patched ``torch.nn.functional`` calls, which also fire *inside* those
  modules: ReLU, PReLU, ELU, GELU, max/avg/adaptive pooling and upsampling are counted
  twice, ReLU6, SiLU and softmax once, Lp pooling through the avg pooling, ReLU and
  multiply inside it, local response norm through its ``Tensor.mul``/``add`` and avg
  pooling; sigmoid, tanh, hardsigmoid, mish, softplus and merges never. Conv and linear
  count their bias. Batch, group and instance norm 1 per element (2 if affine),
  ``nn.LayerNorm`` 1 (it has no ``affine``). archspec's asymmetric-``same`` conv and
  channel layer norm are subclasses of ``nn.ConvNd``/``nn.LayerNorm``, which exact-class
  matching misses: 0 (thop too); so is a ``causal`` conv (padded left only). Attention:
  only ``out_proj`` (``F.linear`` is not patched); the encoder layer and LSTM/GRU: its
  own hooks for ``nn.MultiheadAttention`` and the recurrent cells.
- ``ptflops-aten`` (its ``aten`` backend) — convolutions and matrix products with bias;
  torch's fused CPU kernels (scaled dot product attention, oneDNN's LSTM) are one op it
  has no handler for, while the CPU GRU runs as matrix products. Its one blind spot
  here: torch adds a linear layer's bias inside ``aten::addmm`` (counted) for a 2-D or a
  *contiguous* 3-D input, but as a separate add (not counted) for a strided one — a
  sequence straight from ``to_tokens``/``transpose``/``permute`` (or through layers that
  keep its strides). Memory layout is not in the Plan: these rules assume contiguous
  inputs, as in every reference network, and so count T·U more per such dense layer
  (attention: per projection; GRU: the input gates' biases) than the tool does.
- ``thop`` (0.1.1) — module hooks by exact class: conv = output elements × input channels
  per group × kernel (for a transposed conv that is *output* positions), batch and
  instance norm and ``nn.LayerNorm`` 2 per element, doubled if affine (4), PReLU 1, avg
  pooling 1 per output element, adaptive avg pooling (window + 1) per output element,
  softmax 3·C − 1 per position, upsampling 1/5/11 per output element
  (nearest/linear/bilinear; trilinear 0), linear without bias (so attention counts only
  ``out_proj``, and the encoder layer its feed-forward and norms), LSTM/GRU by its own
  per-cell formulas. Group norm 0.

The tool rules were measured on each kind in 1-D/2-D/3-D and several sizes, heads,
biases, layers and directions (``tests/test_conventions.py`` runs the tools); a rule that
reads a fused kernel (ptflops-aten's attention and LSTM) holds for torch's CPU build.

``flops`` is archspec's own FLOP rule (one per arithmetic operation, a transcendental
function counts one): 2 per MAC plus bias adds, normalisation, activations, pooling,
merges and interpolation, per kind as documented in :data:`FLOP_RULES`.

``embedding`` counts 0 MACs and 0 FLOPs (looking a row up by its id moves data and
computes nothing; its vocab·dim parameters are counted as usual), and so does every
tool but torchinfo, which counts any ``weight`` once.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

from archspec.shapes.geometry import AttentionGeometry, ConvGeometry, RecurrentGeometry
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
    """A conv padded unequally on some axis (``padding: same`` with an odd total, or
    ``padding: causal``): compiled as a padding wrapper (a subclass of ``nn.ConvNd``),
    which tools matching exact classes miss."""
    return (
        node.kind == "conv"
        and isinstance(node.geometry, ConvGeometry)
        and not (node.geometry.symmetric)
    )


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


# ---------------------------------------------------------------- the modern kinds


def _attention(node: PlanNode) -> AttentionGeometry:
    g = node.geometry
    assert isinstance(g, AttentionGeometry)
    return g


def _recurrent(node: PlanNode) -> RecurrentGeometry:
    g = node.geometry
    assert isinstance(g, RecurrentGeometry)
    return g


def _cells(node: PlanNode) -> int:
    """Cell steps of a recurrent stack: time steps × layers × directions."""
    g = _recurrent(node)
    return node.in_shapes[0][0] * g.layers * (2 if g.bidirectional else 1)


def _rnn_extra(lstm: tuple[int, int], gru: tuple[int, int]) -> Rule:
    """A tool's recurrent count: the MACs plus, per cell step, ``(per, per_bias)`` times
    the hidden size (``per_bias`` only with biases), ``lstm`` or ``gru``'s pair."""

    def rule(node: PlanNode) -> int:
        per, per_bias = lstm if node.kind == "lstm" else gru
        extra = per + (per_bias if _bias(node) else 0)
        return node.macs + _cells(node) * _recurrent(node).hidden * extra

    return rule


def _scores(node: PlanNode) -> int:
    """The MACs of attention's two score products, Q·Kᵀ and A·V (T·S·D each)."""
    g = _attention(node)
    return 2 * g.query_len * g.key_len * g.embed


def _encoder_dims(node: PlanNode) -> tuple[int, int, int, int]:
    """T, D, feed-forward F and heads of a transformer_encoder_layer."""
    t, d = node.shape
    return t, d, int(_fields(node).feedforward), int(_fields(node).heads)


def _is_last_layernorm(node: PlanNode) -> bool:
    """``layernorm: last`` is ``nn.LayerNorm``; over channels a subclass of it, which tools
    matching exact classes miss."""
    return node.kind == "layernorm" and _fields(node).over == "last"


# torchinfo


def _torchinfo_attention(node: PlanNode) -> int:
    """Only ``out_proj`` (a leaf ``nn.Linear``) counts: D·D + D parameters; the input
    projections are the attention module's own, and a module with children is not a leaf."""
    d = _attention(node).embed
    return d * d + (d if _bias(node) else 0)


def _torchinfo_encoder(node: PlanNode) -> int:
    """linear1, linear2 and the two layer norms' parameters; ``self_attn.out_proj`` is never
    called as a module (``F.multi_head_attention_forward`` reads its weight), so not counted."""
    _, d, f, _ = _encoder_dims(node)
    return 2 * d * f + f + d + 2 * 2 * d


def _torchinfo_recurrent(node: PlanNode) -> int:
    """Parameters named ``weight_*``/``bias_*`` count × batch × time steps (of the LSTM/GRU's
    sequence output, also for ``return: last``)."""
    return node.in_shapes[0][0] * node.num_params


# fvcore


def _fvcore_norm(node: PlanNode) -> int:
    """aten::group_norm / instance_norm / layer_norm: 5 per element when affine, else 4."""
    return _out(node) * (5 if bool(getattr(node.params, "affine", True)) else 4)


def _fvcore_attention(node: PlanNode) -> int:
    """The four projections (aten::linear, no bias); aten::scaled_dot_product_attention has
    no handler."""
    return node.macs - _scores(node)


def _fvcore_encoder(node: PlanNode) -> int:
    """The projections and feed-forward linears (no bias), not the scaled dot product, plus
    the two affine layer norms (5 per element)."""
    t, d, _, _ = _encoder_dims(node)
    return node.macs - _scores(node) + 2 * 5 * t * d


# ptflops


def _ptflops_layernorm(node: PlanNode) -> int:
    """``nn.LayerNorm`` (over last): 1 per element (it has no ``affine`` attribute); over
    channels: a subclass, missed."""
    return _out(node) if _is_last_layernorm(node) else 0


def _ptflops_lrn(node: PlanNode) -> int:
    """Inside torch's ``local_response_norm``: ``Tensor.mul`` (x·x, then ·α), ``Tensor.add``
    (+k), each the input's size, and the patched avg pool over the channel-padded squares,
    (C + size − 1) × positions."""
    channels, size = node.shape[0], int(_fields(node).size)
    return 3 * _out(node) + (channels + size - 1) * _spatial_out(node)


def _ptflops_attention(node: PlanNode) -> int:
    """``out_proj`` (``nn.Linear``, T·D·D + bias T·D); the functional ``F.linear`` and the
    scaled dot product are not counted."""
    g = _attention(node)
    return g.query_len * g.embed * (g.embed + (1 if _bias(node) else 0))


def _ptflops_encoder(node: PlanNode) -> int:
    """Its ``nn.MultiheadAttention`` hook: q scaling T·D, the three projections 3·T·D·D with
    biases 3·T·D, per head Q·Kᵀ, softmax T·T and A·V, the output projection T·D·(D + 1);
    linear1 and linear2 with biases; the layer norms 1 per element (the activation is the
    function torch saved before ptflops patched it: not counted)."""
    t, d, f, heads = _encoder_dims(node)
    return node.macs + heads * t * t + 8 * t * d + t * f


# ptflops-aten


def _aten_attention(node: PlanNode) -> int:
    """The four projections with biases (aten::addmm); the scaled dot product runs as torch's
    fused CPU kernel, which has no handler."""
    g = _attention(node)
    biases = 2 * (g.query_len + g.key_len) * g.embed if _bias(node) else 0
    return node.macs - _scores(node) + biases


def _aten_encoder(node: PlanNode) -> int:
    """Projections and feed-forward linears with their biases (3·T·D in, T·D out, T·F and T·D
    feed-forward); not the fused scaled dot product."""
    t, d, f, _ = _encoder_dims(node)
    return node.macs - _scores(node) + 5 * t * d + t * f


def _aten_recurrent(node: PlanNode) -> int:
    """GRU: torch's CPU GRU runs its cells as aten::linear (MACs + 6·H biases per cell step);
    LSTM: one fused oneDNN op with no handler (0)."""
    if node.kind == "lstm":
        return 0
    return node.macs + (_cells(node) * 6 * _recurrent(node).hidden if _bias(node) else 0)


# thop


def _thop_layernorm(node: PlanNode) -> int:
    """``nn.LayerNorm``: 2 per element, doubled when affine; over channels: a subclass, 0."""
    return _affine_norm(2)(node) if _is_last_layernorm(node) else 0


def _thop_attention(node: PlanNode) -> int:
    """``out_proj`` (``nn.Linear``): input features × output elements, T·D·D."""
    g = _attention(node)
    return g.query_len * g.embed * g.embed


def _thop_encoder(node: PlanNode) -> int:
    """linear1 and linear2 (T·D·F each, no bias) and the layer norms (4 per element)."""
    t, d, f, _ = _encoder_dims(node)
    return 2 * t * d * f + 2 * 4 * t * d


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


# Kinds whose count under a tool's convention has not been measured against the tool:
# `check --convention TOOL` says so for a spec that uses one (tests/test_conventions.py keeps
# this set exact), instead of guessing what the tool counts. Every kind is measured now.
TOOL_PENDING: frozenset[str] = frozenset()


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
    "mean": lambda n: _in(n),  # one add per input element, one divide per output (≈ the adds)
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
    "crop": _zero,
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
        conv=_torchinfo_conv,
        conv_transpose=_torchinfo_conv,
        dense=_params,
        batchnorm=_params,
        prelu=_params,
        groupnorm=_params,
        instancenorm=_params,
        layernorm=_params,
        parameter=_params,
        embedding=_params,
        attention=_torchinfo_attention,
        transformer_encoder_layer=_torchinfo_encoder,
        lstm=_torchinfo_recurrent,
        gru=_torchinfo_recurrent,
    ),
    "fvcore": _table(
        conv=_macs,
        conv_transpose=_macs,
        dense=_macs,
        batchnorm=_affine_norm(1),
        upsample=_fvcore_upsample,
        adaptive_pool=_fvcore_adaptive,
        groupnorm=_fvcore_norm,
        instancenorm=_fvcore_norm,
        layernorm=_fvcore_norm,
        attention=_fvcore_attention,
        transformer_encoder_layer=_fvcore_encoder,
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
        relu6=_out,
        prelu=_times(2, _out),
        groupnorm=_affine_norm(1),
        instancenorm=_affine_norm(1),
        layernorm=_ptflops_layernorm,
        local_response_norm=_ptflops_lrn,
        attention=_ptflops_attention,
        transformer_encoder_layer=_ptflops_encoder,
        lstm=_rnn_extra(lstm=(10, 8), gru=(7, 6)),
        gru=_rnn_extra(lstm=(10, 8), gru=(7, 6)),
    ),
    "ptflops-aten": _table(
        conv=_macs_bias,
        conv_transpose=_macs_bias,
        dense=_macs_bias,
        attention=_aten_attention,
        transformer_encoder_layer=_aten_encoder,
        lstm=_aten_recurrent,
        gru=_aten_recurrent,
    ),
    "thop": _table(
        conv=_thop_conv,
        conv_transpose=_thop_conv_transpose,
        dense=_macs,
        batchnorm=_affine_norm(2),
        softmax=_thop_softmax,
        pool=_thop_avg_pool,
        adaptive_pool=_thop_adaptive,
        upsample=_thop_upsample,
        prelu=_out,
        instancenorm=_affine_norm(2),
        layernorm=_thop_layernorm,
        attention=_thop_attention,
        transformer_encoder_layer=_thop_encoder,
        lstm=_rnn_extra(lstm=(8, 8), gru=(7, 6)),
        gru=_rnn_extra(lstm=(8, 8), gru=(7, 6)),
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
