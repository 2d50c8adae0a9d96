"""Small torch modules the kinds need beyond ``torch.nn``'s own."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TypeVar

import torch
import torch.nn.functional as F
from torch import nn

M = TypeVar("M", bound=nn.Module)


def by_rank(
    rank: int, one: Callable[..., M], two: Callable[..., M], three: Callable[..., M]
) -> Callable[..., M]:
    """The 1-D, 2-D or 3-D member of a torch family for a ``rank``-D input.

    >>> by_rank(2, nn.Conv1d, nn.Conv2d, nn.Conv3d)
    <class 'torch.nn.modules.conv.Conv2d'>
    """
    if not 1 <= rank <= 3:
        raise ValueError(f"torch has 1-D, 2-D and 3-D layers, not {rank}-D")
    return one if rank == 1 else two if rank == 2 else three


class _Padded:
    """Mixin: pad the input (possibly asymmetrically) before the wrapped conv's forward."""

    pad: tuple[int, ...]
    pad_mode: str

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mode = "constant" if self.pad_mode == "zeros" else self.pad_mode
        out: torch.Tensor = super().forward(F.pad(x, self.pad, mode=mode))  # type: ignore[misc]
        return out


class PaddedConv1d(_Padded, nn.Conv1d):
    pass


class PaddedConv2d(_Padded, nn.Conv2d):
    pass


class PaddedConv3d(_Padded, nn.Conv3d):
    pass


def padded(conv: nn.Module, pads: Sequence[tuple[int, int]], mode: str) -> nn.Module:
    """Turn ``conv`` (built with padding 0) into one that pads ``pads`` (per axis, left/right)
    first — Keras' asymmetric ``same``. The parameters, and so ``state_dict`` keys, are unchanged.
    """
    conv.__class__ = by_rank(len(pads), PaddedConv1d, PaddedConv2d, PaddedConv3d)  # type: ignore[assignment]
    flat: list[int] = []
    for left, right in reversed(pads):  # F.pad wants the last axis first
        flat += [left, right]
    conv.pad = tuple(flat)  # type: ignore[assignment]
    conv.pad_mode = mode  # type: ignore[assignment]
    return conv


class GlobalPool(nn.Module):
    """Average or max over every spatial axis: ``(N, C, *S) → (N, C)``."""

    def __init__(self, kind: str) -> None:
        super().__init__()
        self.kind = kind

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        flat = x.flatten(2)
        return flat.mean(dim=2) if self.kind == "avg" else flat.amax(dim=2)

    def extra_repr(self) -> str:
        return self.kind


class Merge(nn.Module):
    """``add``, ``multiply`` or ``concat`` (along ``dim``, with the batch axis) of inputs."""

    def __init__(self, op: str, dim: int = 1) -> None:
        super().__init__()
        self.op = op
        self.dim = dim

    def forward(self, *xs: torch.Tensor) -> torch.Tensor:
        if self.op == "concat":
            return torch.cat(xs, dim=self.dim)
        out = xs[0]
        for x in xs[1:]:
            out = out + x if self.op == "add" else out * x
        return out

    def extra_repr(self) -> str:
        return self.op


class ToTokens(nn.Module):
    """``(N, C, *S) → (N, prod(S), C)``: one token per position, row-major."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.flatten(2).transpose(1, 2)


class FromTokens(nn.Module):
    """``(N, T, D) → (N, D, *size)``, the inverse of :class:`ToTokens`."""

    def __init__(self, size: Sequence[int]) -> None:
        super().__init__()
        self.size = tuple(size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.transpose(1, 2).reshape(x.shape[0], x.shape[2], *self.size)

    def extra_repr(self) -> str:
        return f"size={self.size}"


class Reshape(nn.Module):
    """Reshape every example to ``shape`` (the batch axis kept)."""

    def __init__(self, shape: Sequence[int]) -> None:
        super().__init__()
        self.shape = tuple(shape)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.reshape(x.shape[0], *self.shape)

    def extra_repr(self) -> str:
        return f"shape={self.shape}"


class Permute(nn.Module):
    """Reorder the axes after the batch axis (``order`` counts them from 0)."""

    def __init__(self, order: Sequence[int]) -> None:
        super().__init__()
        self.order = tuple(order)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.permute(0, *(i + 1 for i in self.order))

    def extra_repr(self) -> str:
        return f"order={self.order}"


class Slice(nn.Module):
    """``start:stop:step`` along ``axis`` (after the batch axis); ``drop`` removes the axis
    (``select``)."""

    def __init__(self, axis: int, start: int, stop: int, step: int, drop: bool) -> None:
        super().__init__()
        self.axis, self.start, self.stop, self.step, self.drop = axis, start, stop, step, drop

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.drop:
            return x.select(self.axis + 1, self.start)
        index = [slice(None)] * x.dim()
        index[self.axis + 1] = slice(self.start, self.stop, self.step)
        return x[tuple(index)]

    def extra_repr(self) -> str:
        return f"axis={self.axis}, {self.start}:{self.stop}:{self.step}, drop={self.drop}"


class Split(nn.Module):
    """Consecutive pieces of ``sizes`` along ``axis`` (after the batch axis), as a tuple:
    ``split`` and ``chunk`` (whose sizes the rule resolved as ``torch.chunk`` makes them)."""

    def __init__(self, axis: int, sizes: tuple[int, ...]) -> None:
        super().__init__()
        self.axis, self.sizes = axis, tuple(sizes)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return tuple(torch.split(x, list(self.sizes), dim=self.axis + 1))

    def extra_repr(self) -> str:
        return f"axis={self.axis}, sizes={self.sizes}"


class Mean(nn.Module):
    """The mean over ``axes`` (after the batch axis)."""

    def __init__(self, axes: Sequence[int], keepdims: bool) -> None:
        super().__init__()
        self.axes = tuple(a + 1 for a in axes)
        self.keepdims = keepdims

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mean(dim=self.axes, keepdim=self.keepdims)

    def extra_repr(self) -> str:
        return f"dims={self.axes}, keepdims={self.keepdims}"


class ChannelLayerNorm(nn.LayerNorm):
    """Layer norm over the channels at each position of ``(N, C, *S)`` (ConvNeXt's
    LayerNorm2d); its ``weight``/``bias`` are ``nn.LayerNorm``'s, of shape ``(C,)``."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() == 2:
            return super().forward(x)
        moved = x.movedim(1, -1)
        return super().forward(moved).movedim(-1, 1)


class DropPath(nn.Module):
    """Stochastic depth: zero the whole example with probability ``p`` while training,
    scaling the kept ones by ``1/(1-p)`` (torchvision's ``StochasticDepth(p, "row")``)."""

    def __init__(self, p: float) -> None:
        super().__init__()
        self.p = p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0.0:
            return x
        keep = 1.0 - self.p
        mask = x.new_empty((x.shape[0],) + (1,) * (x.dim() - 1)).bernoulli_(keep)
        return x * mask / keep

    def extra_repr(self) -> str:
        return f"p={self.p}"


class LayerScale(nn.Module):
    """Multiply each channel by a learned ``gamma`` of shape ``(C, 1, …)``."""

    def __init__(self, channels: int, rank: int, init: float) -> None:
        super().__init__()
        self.gamma = nn.Parameter(torch.full((channels,) + (1,) * rank, init))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gamma


class Pad(nn.Module):
    """``F.pad`` with ``(before, after)`` per spatial axis; negative amounts crop."""

    def __init__(self, pads: Sequence[tuple[int, int]], mode: str, value: float = 0.0) -> None:
        super().__init__()
        flat: list[int] = []
        for before, after in reversed(pads):  # F.pad wants the last axis first
            flat += [before, after]
        self.pad = tuple(flat)
        self.mode = "constant" if mode == "zeros" else mode
        self.value = value

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.mode == "constant":
            return F.pad(x, self.pad, mode="constant", value=self.value)
        return F.pad(x, self.pad, mode=self.mode)

    def extra_repr(self) -> str:
        return f"{self.pad}, {self.mode}"
