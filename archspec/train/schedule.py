"""Learning-rate (and momentum) schedules as pure functions of the step.

Being a function of the global step, a schedule needs no state of its own: a
resumed run recomputes exactly the values an uninterrupted one would have used.
"""

from __future__ import annotations

import math

from archspec.language.train import Constant, Cosine, OneCycle, Schedule, Step


def _cos(start: float, end: float, frac: float) -> float:
    """Cosine annealing from ``start`` to ``end`` as ``frac`` goes 0 → 1."""
    return end + (start - end) * (1 + math.cos(math.pi * min(max(frac, 0.0), 1.0))) / 2


def learning_rate(
    schedule: Schedule, base_lr: float, step: int, steps_per_epoch: int, total_steps: int
) -> float:
    """The lr for optimizer step ``step`` (0-based) of ``total_steps``.

    >>> from archspec.language.train import Step
    >>> learning_rate(Step(name="step", every=2, gamma=0.1), 1.0, 250, 100, 1000)
    0.1
    """
    if isinstance(schedule, OneCycle):
        return _one_cycle(schedule, base_lr, step, total_steps)[0]
    warmup = round(schedule.warmup * steps_per_epoch)
    if step < warmup:
        return base_lr * (step + 1) / warmup
    if isinstance(schedule, Constant):
        return base_lr
    if isinstance(schedule, Step):
        return base_lr * schedule.gamma ** (step // (schedule.every * steps_per_epoch))
    assert isinstance(schedule, Cosine)
    span = max(total_steps - warmup, 1)
    return _cos(base_lr, schedule.min_lr, (step - warmup) / span)


def momentum(schedule: Schedule, base: float, step: int, total_steps: int) -> float:
    """Momentum (SGD) or beta1 (Adam) for ``step``: cycled 0.95 → 0.85 → 0.95 by one-cycle,
    as torch's ``OneCycleLR(cycle_momentum=True)`` does; otherwise the optimizer's own."""
    if isinstance(schedule, OneCycle):
        return _one_cycle(schedule, 1.0, step, total_steps)[1]
    return base


def _one_cycle(s: OneCycle, base_lr: float, step: int, total_steps: int) -> tuple[float, float]:
    """torch's OneCycleLR (two phases, cosine): lr warms from max/div to max, anneals to
    max/(div·final_div); momentum moves the opposite way between 0.95 and 0.85."""
    peak = s.max_lr or base_lr
    initial = peak / s.div_factor
    final = initial / s.final_div_factor
    rise = float(s.pct_start * total_steps) - 1
    if step <= rise:
        frac = step / rise if rise > 0 else 1.0
        return _cos(initial, peak, frac), _cos(0.95, 0.85, frac)
    frac = (step - rise) / max(total_steps - 1 - rise, 1)
    return _cos(peak, final, frac), _cos(0.85, 0.95, frac)
