"""Early stopping (``early_stop: {metric, patience}``): its state travels in checkpoints,
so a resumed run stops exactly where an uninterrupted one would."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from archspec.errors import CheckpointError
from archspec.language.recipe import EarlyStop


@dataclass
class EarlyStopState:
    best: float | None = None
    stale: int = 0  # epochs since the metric last improved
    stopped: bool = False

    def update(self, rule: EarlyStop, record: dict[str, Any]) -> bool:
        """Account for one epoch's ``record``; True when training should stop now."""
        value = record.get(rule.metric)
        if value is None:
            return False
        sign = -1.0 if rule.metric.endswith("loss") else 1.0
        if self.best is None or sign * (value - self.best) > rule.min_delta:
            self.best, self.stale = value, 0
        else:
            self.stale += 1
        self.stopped = self.stale >= rule.patience
        return self.stopped

    def to_json(self) -> dict[str, Any]:
        return {"best": self.best, "stale": self.stale, "stopped": self.stopped}

    @staticmethod
    def from_json(data: Any) -> EarlyStopState:
        if data is None:  # a checkpoint written before early stopping existed
            return EarlyStopState()
        best, stale, stopped = (
            (data.get("best"), data.get("stale"), data.get("stopped"))
            if isinstance(data, dict)
            else (None, None, None)
        )
        best_ok = best is None or (isinstance(best, int | float) and not isinstance(best, bool))
        stale_ok = isinstance(stale, int) and not isinstance(stale, bool) and stale >= 0
        if not (best_ok and stale_ok and isinstance(stopped, bool)):
            raise CheckpointError(
                "the checkpoint's early-stopping state is not what archspec writes",
                "the file is corrupt: use another checkpoint",
            )
        assert isinstance(stale, int)
        return EarlyStopState(best, stale, stopped)
