"""What the tests that train on real data share: where the real MNIST test set is, and
the tiny conv net they train on slices of it (test[:384] train, 64 val, 64 test)."""

from __future__ import annotations

from pathlib import Path

import pytest

MNIST = Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist"
needs_mnist = pytest.mark.skipif(not MNIST.is_dir(), reason="../shared/data/mnist is missing")


def tiny_spec(batch_size: int = 32, schedule: str | None = None) -> str:
    """The tiny network with a two-epoch SGD `train:` section on real MNIST digits."""
    scheduled = f"\n  schedule: {{name: {schedule}}}" if schedule else ""
    return f"""
name: tiny
input: [1, 28, 28]
layers:
  - conv: {{depth: 4, kernel: 3, padding: same}}
  - relu
  - pool: 4
  - flatten
  - dense: 10
  - softmax
train:
  data:
    dataset: mnist
    path: {MNIST}
    train: "test[:384]"
    val: "test[384:448]"
    test: "test[448:512]"
  batch_size: {batch_size}
  epochs: 2
  optimizer: {{name: sgd, lr: 0.05, momentum: 0.9}}{scheduled}
  log_every: 4
  seed: 3
"""
