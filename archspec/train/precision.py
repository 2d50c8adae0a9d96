"""Speed settings of the step: autocast precision, the fp16 grad scaler, channels-last,
``torch.compile`` — each falls back to plain fp32 eager with a one-line warning where
this machine cannot do it."""

from __future__ import annotations

import contextlib
import os
import shutil
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import torch
from torch import nn


def warn(message: str) -> None:
    print(f"archspec: warning: {message}", file=sys.stderr, flush=True)


class Precision:
    """``precision: fp32 | bf16 | fp16`` on ``device``: autocast, and fp16's grad scaler."""

    def __init__(self, name: str, device: torch.device) -> None:
        self.device = device
        self.name = name
        if name == "fp16" and device.type != "cuda":
            warn(
                f"precision fp16 needs CUDA (its grad scaler); training in fp32 on {device} — "
                "use precision: bf16 on CPU"
            )
            self.name = "fp32"
        if self.name == "bf16" and device.type == "cuda" and not torch.cuda.is_bf16_supported():
            warn(f"{device} does not support bf16; training in fp32")
            self.name = "fp32"
        dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(self.name)
        self.dtype = dtype
        self.scaler = torch.amp.GradScaler("cuda") if self.name == "fp16" else None

    @contextlib.contextmanager
    def autocast(self) -> Iterator[None]:
        if self.dtype is None:
            yield
            return
        with torch.autocast(self.device.type, dtype=self.dtype):
            yield

    def backward(self, loss: torch.Tensor) -> None:
        scaled = self.scaler.scale(loss) if self.scaler is not None else loss
        scaled.backward()  # type: ignore[no-untyped-call]

    def step(
        self, optimizer: torch.optim.Optimizer, clip: float | None, params: list[nn.Parameter]
    ) -> None:
        """Unscale (fp16), clip the gradient norm, step; a scaler skips inf/NaN steps."""
        if self.scaler is not None:
            self.scaler.unscale_(optimizer)
        if clip is not None:
            torch.nn.utils.clip_grad_norm_(params, clip)
        if self.scaler is not None:
            self.scaler.step(optimizer)
            self.scaler.update()
        else:
            optimizer.step()


def channels_last(network: nn.Module, input_rank: int) -> bool:
    """Put a 2-D convnet's weights in channels-last order; False where it does not apply."""
    if input_rank != 3:
        warn("channels_last applies to 2-D (C, H, W) inputs; ignored")
        return False
    network.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
    return True


def compiled(model: nn.Module, cache_dir: Path | None) -> Callable[..., Any] | None:
    """``torch.compile(model)`` with inductor's cache in ``cache_dir``; None (with a
    warning) where it cannot compile here."""
    if not hasattr(torch, "compile"):
        warn("this torch has no torch.compile; running eagerly")
        return None
    if sys.version_info >= (3, 14) and torch.__version__ < "2.10":
        warn("torch.compile does not support this Python; running eagerly")
        return None
    if not any(shutil.which(cc) for cc in ("cc", "gcc", "clang")):
        warn("torch.compile needs a C compiler (cc/gcc/clang) on the PATH; running eagerly")
        return None
    if cache_dir is not None:
        cache_dir.mkdir(parents=True, exist_ok=True)
        os.environ.setdefault("TORCHINDUCTOR_CACHE_DIR", str(cache_dir))
    return torch.compile(model)


def compile_failed(exc: Exception) -> None:
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    warn(f"torch.compile failed ({type(exc).__name__}: {first[:200]}); running eagerly")
