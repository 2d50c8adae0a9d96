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
    """``add``, ``multiply`` or ``concat`` (along channels) of several inputs."""

    def __init__(self, op: str) -> None:
        super().__init__()
        self.op = op

    def forward(self, *xs: torch.Tensor) -> torch.Tensor:
        if self.op == "concat":
            return torch.cat(xs, dim=1)
        out = xs[0]
        for x in xs[1:]:
            out = out + x if self.op == "add" else out * x
        return out

    def extra_repr(self) -> str:
        return self.op
