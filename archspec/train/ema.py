"""EMA weights (``ema: 0.999``): torch's ``AveragedModel`` with an exponential average,
buffers included, stored in checkpoints as ``ema/<state_dict key>`` tensors."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from archspec.errors import CheckpointError

PREFIX = "ema/"


class EMA:
    """An exponential moving average of ``network``'s weights and buffers."""

    def __init__(self, network: nn.Module, decay: float) -> None:
        self.decay = decay
        # AveragedModel deep-copies the module; the copy stays in fp32 eager mode
        self.averaged = AveragedModel(
            network,
            multi_avg_fn=get_ema_multi_avg_fn(decay),  # type: ignore[no-untyped-call]
            use_buffers=True,
        )

    @property
    def module(self) -> nn.Module:
        return self.averaged.module

    def update(self, network: nn.Module) -> None:
        self.averaged.update_parameters(network)

    def tensors(self) -> dict[str, torch.Tensor]:
        state = self.averaged.state_dict()
        return {PREFIX + k: v.detach().cpu().contiguous() for k, v in state.items()}

    def restore(self, tensors: dict[str, torch.Tensor], origin: Path) -> None:
        state = {k[len(PREFIX) :]: v for k, v in tensors.items() if k.startswith(PREFIX)}
        expected = self.averaged.state_dict()
        if set(state) != set(expected) or any(
            state[k].shape != expected[k].shape or state[k].dtype != expected[k].dtype
            for k in expected
        ):
            raise CheckpointError(
                f"{origin}: its EMA weights do not fit this spec's `ema:` and architecture",
                "resume with the spec the run was started with",
            )
        self.averaged.load_state_dict(state)


def weights(ema: EMA) -> dict[str, torch.Tensor]:
    """The averaged network's own state dict (for ``model_ema.safetensors``)."""
    return {k: v.detach().cpu().contiguous() for k, v in ema.module.state_dict().items()}
