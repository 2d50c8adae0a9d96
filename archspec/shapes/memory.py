"""A memory estimate for training, checked before anything large is allocated.

Torch-free: ``archspec check`` refuses a spec that cannot train on this machine
(:func:`check_plan`), and ``archspec train`` checks again with the real dataset size
and device before it builds the module (:func:`check`).

Bytes needed, all float32 (4 bytes each):

* parameters and their gradients: ``2 × params``;
* optimizer state: ``slots × params`` (Adam/AdamW 2, SGD with momentum 1, without 0);
* activations kept for backward: every layer's output and its gradient for one batch,
  ``2 × batch × Σ numel(output)`` (plus the input);
* the in-memory dataset (training only).
"""

from __future__ import annotations

from dataclasses import dataclass

from archspec.errors import Problem, ResourceError
from archspec.language.train import SGD, TrainConfig
from archspec.shapes.plan import Plan, PlanNode, numel

BYTES = 4  # float32
_UNITS = ("bytes", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB", "ZiB", "YiB")


@dataclass(frozen=True)
class Estimate:
    weights: int  # parameters + gradients
    optimizer: int
    activations: int
    data: int
    batch_size: int = 1
    heaviest: PlanNode | None = None  # the layer that holds the most bytes
    heaviest_bytes: int = 0

    @property
    def total(self) -> int:
        return self.weights + self.optimizer + self.activations + self.data


def optimizer_slots(config: TrainConfig | None) -> int:
    """Tensors of optimizer state per parameter (no ``train:`` section: Adam's 2)."""
    if config is not None and isinstance(config.optimizer, SGD):
        return 1 if config.optimizer.momentum else 0
    return 2


def layer_bytes(node: PlanNode, slots: int, batch_size: int) -> int:
    """What one layer holds: its parameters, gradients, optimizer state and activations."""
    return (2 + slots) * node.num_params * BYTES + 2 * numel(node.shape) * batch_size * BYTES


def estimate(
    plan: Plan, config: TrainConfig | None, data_bytes: int = 0, batch_size: int | None = None
) -> Estimate:
    """Bytes needed to train ``plan`` with ``config`` (``None``: Adam, batch 1)."""
    batch = batch_size or (config.batch_size if config is not None else 1)
    slots = optimizer_slots(config)
    params = plan.total_params
    activations = sum(numel(node.shape) for node in plan.nodes) + numel(plan.input_shape)
    heaviest, most = None, -1
    for node in plan.nodes:
        held = layer_bytes(node, slots, batch)
        if held > most:
            heaviest, most = node, held
    return Estimate(
        weights=2 * params * BYTES,
        optimizer=slots * params * BYTES,
        activations=2 * activations * batch * BYTES,
        data=data_bytes,
        batch_size=batch,
        heaviest=heaviest,
        heaviest_bytes=max(most, 0),
    )


def training_estimate(plan: Plan, config: TrainConfig | None) -> Estimate:
    """The estimate ``archspec check`` uses: the spec's batch size (1 without ``train:``)."""
    return estimate(plan, config)


def available_bytes() -> int | None:
    """MemAvailable from /proc/meminfo (None where unknown)."""
    try:
        with open("/proc/meminfo", encoding="ascii") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def human(n: int) -> str:
    """``12.50 GiB`` — binary units, integer arithmetic (``n`` may be astronomically large).

    >>> human(3 * 2**30 // 2), human(512), human(5 * 2**40)
    ('1.50 GiB', '512 bytes', '5.00 TiB')
    """
    if n < 1024:
        return f"{n} bytes"
    unit = 0
    while n >= 1024 * 1024**unit and unit < len(_UNITS) - 1:
        unit += 1
    if n.bit_length() > 1000:  # beyond a float
        return f"about 2^{n.bit_length() - 1} bytes"
    return f"{n / 1024**unit:,.2f} {_UNITS[unit]}"


def gib(n: int) -> str:
    return human(n)


def count(n: int) -> str:
    """``3,136,000,001,000``; an astronomically large count as a power of two."""
    return f"{n:,}" if n.bit_length() <= 128 else f"about 2^{n.bit_length() - 1}"


def _breakdown(plan: Plan, est: Estimate) -> str:
    return (
        f"{count(plan.total_params)} parameters: {human(est.weights)} weights+gradients, "
        f"{human(est.optimizer)} optimizer state; {human(est.activations)} activations for "
        f"batch {est.batch_size}"
    )


def _heaviest(est: Estimate) -> str:
    node = est.heaviest
    if node is None:
        return ""
    return (
        f"; layer '{node.name}' holds most of it ({count(node.num_params)} parameters, "
        f"{human(est.heaviest_bytes)})"
    )


def check_plan(plan: Plan, config: TrainConfig | None, available: int | None) -> Problem | None:
    """For ``archspec check``: a problem located at the heaviest layer when training the
    spec would need more memory than ``available`` (``None``: unknown, no check)."""
    est = training_estimate(plan, config)
    if available is None or est.total <= available:
        return None
    node = est.heaviest
    return Problem(
        f"training {plan.name} needs about {human(est.total)} but this machine has "
        f"{human(available)} available ({_breakdown(plan, est)}){_heaviest(est)}",
        "make that layer smaller or lower train.batch_size; for a spec meant for a bigger "
        "machine, pass --no-memory-check",
        node.location if node is not None else None,
    )


def check(
    plan: Plan, config: TrainConfig, available: int | None, where: str, data_bytes: int = 0
) -> Estimate:
    """Raise :class:`ResourceError` with the numbers when the estimate exceeds ``available``."""
    est = estimate(plan, config, data_bytes)
    if available is not None and est.total > available:
        raise ResourceError(
            f"training {plan.name} needs about {human(est.total)} but {where} has "
            f"{human(available)} available ({_breakdown(plan, est)}; {human(est.data)} data)"
            f"{_heaviest(est)}",
            "lower --batch-size, or make the layers smaller",
        )
    return est
