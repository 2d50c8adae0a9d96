"""``attention``: multi-head scaled dot-product attention over ``[T, D]`` sequences.

Self-attention reads one sequence; cross-attention (``from: [query, context]``) lets a
``[T, D]`` query attend over a ``[S, K]`` context. The learned parameters are laid out
like ``torch.nn.MultiheadAttention``'s (``in_proj_weight``/``in_proj_bias``/``out_proj``,
or ``q_proj_weight``/``k_proj_weight``/``v_proj_weight`` when K ≠ D), so its weights copy
over by order.

Counting rule (per example, ``h`` heads of ``D/h`` features each)::

    params = D·D (query) + 2·K·D (key, value) + D·D (output) [+ 3·D + D biases]
    MACs   = T·D·D            query projection
           + 2·S·K·D          key and value projections
           + T·S·D            scores Q·Kᵀ (h heads × T·S·D/h)
           + T·S·D            weights × values
           + T·D·D            output projection

Softmax, scaling and masking are not multiply-accumulates and are not counted.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Literal

from annotated_types import Ge, Lt
from pydantic import Field as PydanticField

from archspec.shapes.geometry import AttentionGeometry
from archspec.shapes.kinds.base import Bool, In, Kind, Out, Params, PosInt, ShapeError
from archspec.shapes.plan import PlanNode


def need_sequence(x: In, kind: str, what: str = "input") -> tuple[int, int]:
    """``(T, D)`` of a sequence input, or a located explanation of what is needed.

    A grid ``[C, L]`` is refused even though it is 2-D: torch would read its channels as
    time. ``to_tokens`` turns a grid into the sequence ``[L, C]``."""
    if x.layout == "grid":
        raise ShapeError(
            f"{kind} needs a [tokens, features] sequence as its {what}, but receives "
            f"{x.described()}",
            "add `- to_tokens` before it (a grid [C, *S] becomes the sequence [S, C]), "
            "or declare `input: {shape: [T, D], layout: sequence}`",
        )
    if len(x.shape) != 2:
        raise ShapeError(
            f"{kind} needs a [tokens, features] sequence as its {what}, but receives "
            f"{x.described()}",
            "give the network `input: {shape: [T, D], layout: sequence}` (time or tokens "
            "first, features last), or feed it the output of another sequence layer",
        )
    return x.shape[0], x.shape[1]


class AttentionParams(Params):
    """Multi-head attention (torch's scaled_dot_product_attention once built)."""

    shorthand = "heads"
    heads: PosInt = PydanticField(
        1, description="Number of attention heads; must divide the features D.", examples=[1, 8]
    )
    dropout: Annotated[float, Ge(0), Lt(1)] = PydanticField(
        0.0,
        description="Dropout on the attention weights while training, in [0, 1).",
        examples=[0.0, 0.1],
    )
    causal: Bool = PydanticField(
        False,
        description="Mask future positions: token t attends to positions ≤ t only.",
        examples=[False, True],
    )
    bias: Bool = PydanticField(
        True, description="Learn biases on the four projections.", examples=[True, False]
    )


def infer_attention(p: AttentionParams, ins: Sequence[In]) -> Out:
    t, d = need_sequence(ins[0], "attention", "query")
    s, k = need_sequence(ins[-1], "attention", "context") if len(ins) == 2 else (t, d)
    if d % p.heads:
        raise ShapeError(
            f"attention with {p.heads} heads needs features divisible by {p.heads}, "
            f"but the query has {d}",
            f"use heads that divide {d}, or project the features first",
            field="heads",
        )
    weights = d * d + 2 * k * d + d * d
    params = weights + (4 * d if p.bias else 0)
    macs = t * d * d + 2 * s * k * d + 2 * t * s * d + t * d * d
    geometry = AttentionGeometry(embed=d, key_features=k, heads=p.heads, query_len=t, key_len=s)
    return Out(
        shape=(t, d), field=None, params=params, macs=macs, geometry=geometry, layout="sequence"
    )


def describe_attention(node: PlanNode) -> str:
    assert isinstance(node.params, AttentionParams)
    extra = " causal" if node.params.causal else ""
    cross = " cross" if len(node.inputs) == 2 else ""
    return f"{node.params.heads} heads{cross}{extra}"


class EncoderLayerParams(Params):
    """torch's nn.TransformerEncoderLayer (batch first): self-attention and a feed-forward
    network, each with a residual connection and a layer norm."""

    shorthand = "heads"
    heads: PosInt = PydanticField(
        1, description="Number of attention heads; must divide the features D.", examples=[4]
    )
    feedforward: PosInt = PydanticField(
        2048,
        description="Hidden units of the feed-forward network (torch's dim_feedforward).",
        examples=[64, 2048],
    )
    dropout: Annotated[float, Ge(0), Lt(1)] = PydanticField(
        0.1, description="Dropout (attention weights and residual branches).", examples=[0.1]
    )
    activation: Literal["relu", "gelu"] = PydanticField(
        "relu", description="The feed-forward network's activation.", examples=["relu", "gelu"]
    )
    norm_first: Bool = PydanticField(
        False,
        description="Pre-norm (layer norm before each sub-block) instead of post-norm.",
        examples=[False, True],
    )
    causal: Bool = PydanticField(
        False, description="Mask future positions in the self-attention.", examples=[True]
    )


def infer_encoder_layer(p: EncoderLayerParams, ins: Sequence[In]) -> Out:
    """Counting: attention (above, S = T, K = D) + D·F + F + F·D + D + two layer norms 4·D;
    MACs: attention + 2·T·D·F."""
    (x,) = ins
    attention = infer_attention(AttentionParams(heads=p.heads), ins)
    t, d = x.shape
    f = p.feedforward
    return Out(
        shape=(t, d),
        field=None,
        params=attention.params + 2 * d * f + f + d + 4 * d,
        macs=attention.macs + 2 * t * d * f,
        geometry=attention.geometry,
    )


def describe_encoder_layer(node: PlanNode) -> str:
    assert isinstance(node.params, EncoderLayerParams)
    p = node.params
    return f"{p.heads} heads ff {p.feedforward}{' pre-norm' if p.norm_first else ''}"


KINDS = (
    Kind(
        "attention",
        AttentionParams,
        infer_attention,
        "Multi-head self-attention over a [T, D] sequence, or cross-attention over a second input.",
        inputs=(1, 2),
        describe=describe_attention,
    ),
    Kind(
        "transformer_encoder_layer",
        EncoderLayerParams,
        infer_encoder_layer,
        "A transformer encoder layer over a [T, D] sequence (torch's "
        "nn.TransformerEncoderLayer, batch first).",
        describe=describe_encoder_layer,
    ),
)
