"""Torch modules of the sequence kinds: attention, LSTM/GRU, learned tensors.

Sequences are batch first, ``(N, T, D)``. Parameter names and their order follow torch's
own modules (``nn.MultiheadAttention``, ``nn.LSTM``/``nn.GRU``) and torchvision's ViT
(``class_token``/``pos_embedding`` are ``[1, …]``), so weights copy over by order.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from archspec.shapes.geometry import AttentionGeometry, RecurrentGeometry


class Attention(nn.Module):
    """Multi-head attention with ``nn.MultiheadAttention``'s parameters, run by
    ``F.scaled_dot_product_attention``. ``forward(x)`` is self-attention,
    ``forward(x, context)`` cross-attention."""

    def __init__(self, g: AttentionGeometry, *, dropout: float, causal: bool, bias: bool) -> None:
        super().__init__()
        d, k = g.embed, g.key_features
        self.heads, self.dropout, self.causal = g.heads, dropout, causal
        self.packed = g.same_features
        if self.packed:
            self.in_proj_weight = nn.Parameter(torch.empty(3 * d, d))
        else:
            self.q_proj_weight = nn.Parameter(torch.empty(d, d))
            self.k_proj_weight = nn.Parameter(torch.empty(d, k))
            self.v_proj_weight = nn.Parameter(torch.empty(d, k))
        self.in_proj_bias = nn.Parameter(torch.zeros(3 * d)) if bias else None
        self.out_proj = nn.Linear(d, d, bias=bias)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """nn.MultiheadAttention's initialisation."""
        for weight in self._proj_weights():
            nn.init.xavier_uniform_(weight)
        if self.in_proj_bias is not None:
            nn.init.zeros_(self.in_proj_bias)
            nn.init.zeros_(self.out_proj.bias)

    def _proj_weights(self) -> list[torch.Tensor]:
        if self.packed:
            return [self.in_proj_weight]
        return [self.q_proj_weight, self.k_proj_weight, self.v_proj_weight]

    def forward(self, x: torch.Tensor, context: torch.Tensor | None = None) -> torch.Tensor:
        c = x if context is None else context
        d = x.shape[-1]
        if self.packed:
            wq, wk, wv = torch.split(self.in_proj_weight, d)
        else:
            wq, wk, wv = self.q_proj_weight, self.k_proj_weight, self.v_proj_weight
        bq = bk = bv = None
        if self.in_proj_bias is not None:
            bq, bk, bv = torch.split(self.in_proj_bias, d)
        q, k, v = F.linear(x, wq, bq), F.linear(c, wk, bk), F.linear(c, wv, bv)
        n, t, s, h = x.shape[0], x.shape[1], c.shape[1], self.heads
        q = q.view(n, t, h, d // h).transpose(1, 2)
        k = k.view(n, s, h, d // h).transpose(1, 2)
        v = v.view(n, s, h, d // h).transpose(1, 2)
        out = F.scaled_dot_product_attention(
            q,
            k,
            v,
            dropout_p=self.dropout if self.training else 0.0,
            is_causal=self.causal,
            scale=1.0 / math.sqrt(d // h),
        )
        out = out.transpose(1, 2).reshape(n, t, d)
        result: torch.Tensor = self.out_proj(out)
        return result

    def extra_repr(self) -> str:
        return f"heads={self.heads}, dropout={self.dropout}, causal={self.causal}"


class EncoderLayer(nn.TransformerEncoderLayer):
    """``nn.TransformerEncoderLayer`` (its parameters, in its order), optionally causal."""

    def __init__(self, *args: object, causal: bool, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.causal = causal

    def forward(self, src: torch.Tensor, *args: object, **kwargs: object) -> torch.Tensor:
        if not self.causal:
            return super().forward(src)
        t = src.shape[1]
        mask = torch.ones(t, t, dtype=torch.bool, device=src.device).triu(1)
        return super().forward(src, src_mask=mask, is_causal=True)


class Recurrent(nn.Module):
    """``nn.LSTM``/``nn.GRU`` (batch first) returning the sequence or the last hidden state.

    The torch module is this module's only child and holds every parameter under torch's
    names (``rnn.weight_ih_l0``…), in torch's order.
    """

    def __init__(
        self, cls: type[nn.LSTM] | type[nn.GRU], g: RecurrentGeometry, dropout: float, bias: bool
    ):
        super().__init__()
        self.rnn = cls(
            g.input_size,
            g.hidden,
            num_layers=g.layers,
            bias=bias,
            batch_first=True,
            dropout=dropout,
            bidirectional=g.bidirectional,
        )
        self.last, self.bidirectional = g.last, g.bidirectional

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out, state = self.rnn(x)
        if not self.last:
            result: torch.Tensor = out
            return result
        h = state[0] if isinstance(state, tuple) else state  # LSTM: (h_n, c_n)
        if self.bidirectional:
            return torch.cat([h[-2], h[-1]], dim=-1)
        last: torch.Tensor = h[-1]
        return last


class LearnedTensor(nn.Module):
    """A learned ``[1, *shape]`` tensor (or ``shape`` itself without ``batch_axis``),
    repeated over the input's batch."""

    def __init__(
        self, shape: tuple[int, ...], init: str, *, std: float, value: float, batch_axis: bool
    ) -> None:
        super().__init__()
        self.shape = shape
        self.weight = nn.Parameter(torch.zeros((1, *shape) if batch_axis else shape))
        if init == "normal":
            nn.init.normal_(self.weight, std=std)
        elif init == "constant":
            nn.init.constant_(self.weight, value)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.weight.expand(x.shape[0], *self.shape)


class PositionalEmbedding(nn.Module):
    """``x + pos_embedding`` with a learned ``[1, *shape]`` tensor (torchvision ViT's)."""

    def __init__(self, shape: tuple[int, ...], std: float) -> None:
        super().__init__()
        self.pos_embedding = nn.Parameter(torch.empty(1, *shape).normal_(std=std))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.pos_embedding
