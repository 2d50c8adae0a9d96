"""``archspec train --tensorboard``: the step and epoch metrics also as TensorBoard scalars
(``RUN_DIR/tensorboard``), next to ``metrics.jsonl``; needs the ``tensorboard`` extra."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from archspec.errors import UsageError


class TensorBoard:
    """A trainer listener writing scalars with torch's ``SummaryWriter``."""

    def __init__(self, folder: Path, steps_per_epoch: int) -> None:
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError as exc:
            raise UsageError(
                f"--tensorboard needs the tensorboard package ({exc})",
                "pip install 'archspec[tensorboard]', or leave --tensorboard out",
            ) from None
        self.writer = SummaryWriter(str(folder))
        self.steps_per_epoch = steps_per_epoch

    def __call__(self, event: str, data: dict[str, Any]) -> None:
        if event == "step":
            step = (data["epoch"] - 1) * self.steps_per_epoch + data["step"]
            for key in ("loss", "acc", "lr"):
                self.writer.add_scalar(f"train/{key}", data[key], step)
        elif event == "epoch_end":
            for key, value in data.items():
                if key not in ("type", "epoch", "step") and isinstance(value, int | float):
                    self.writer.add_scalar(f"epoch/{key}", value, data["epoch"])
            self.writer.flush()
