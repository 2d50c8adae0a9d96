"""A memory estimate for training, checked before anything large is allocated."""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import ResourceError
from ..shapes.plan import Plan, numel
from ..spec.train import SGD, TrainConfig

BYTES = 4  # float32


@dataclass(frozen=True)
class Estimate:
    weights: int
    optimizer: int
    activations: int
    data: int

    @property
    def total(self) -> int:
        return self.weights + self.optimizer + self.activations + self.data


def estimate(plan: Plan, config: TrainConfig, data_bytes: int = 0) -> Estimate:
    """Bytes needed: weights + gradients, optimizer state, activations kept for backward
    (every layer's output for one batch, and its gradient), and the in-memory dataset."""
    params = plan.total_params
    slots = (1 if config.optimizer.momentum else 0) if isinstance(config.optimizer, SGD) else 2
    activations = sum(numel(node.shape) for node in plan.nodes) + numel(plan.input_shape)
    return Estimate(
        weights=2 * params * BYTES,
        optimizer=slots * params * BYTES,
        activations=2 * activations * config.batch_size * BYTES,
        data=data_bytes,
    )


def available_bytes() -> int | None:
    """MemAvailable from /proc/meminfo (None where unknown)."""
    try:
        with open("/proc/meminfo", encoding="ascii") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def gib(n: int) -> str:
    return f"{n / 2**30:.2f} GiB"


def check(
    plan: Plan, config: TrainConfig, available: int | None, where: str, data_bytes: int = 0
) -> Estimate:
    """Raise :class:`ResourceError` with the numbers when the estimate exceeds ``available``."""
    est = estimate(plan, config, data_bytes)
    if available is not None and est.total > available:
        raise ResourceError(
            f"training {plan.name} needs about {gib(est.total)} but {where} has {gib(available)} "
            f"available ({plan.total_params:,} parameters: {gib(est.weights)} weights+gradients, "
            f"{gib(est.optimizer)} optimizer state; {gib(est.activations)} activations for batch "
            f"{config.batch_size}; {gib(est.data)} data)",
            "lower --batch-size, or make the layers smaller")  # fmt: skip
    return est
