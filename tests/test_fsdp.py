"""``distributed: {strategy: fsdp}``: FSDP2 on 2 gloo processes (CPU) trains the weights a
single process trains, and its checkpoint resumes on a different number of processes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from realdata import MNIST, needs_mnist
from safetensors.torch import load_file

import archspec
from archspec.errors import UsageError

pytestmark = pytest.mark.skipif(
    not torch.distributed.is_available(), reason="torch.distributed unavailable"
)

# No dropout or batch norm: their randomness/statistics legitimately differ per rank.
SPEC = f"""
name: tiny-fsdp
input: [1, 28, 28]
layers:
  - conv: {{depth: 4, kernel: 3, padding: same}}
  - relu
  - pool: 4
  - flatten
  - dense: 10
train:
  data:
    {{dataset: mnist, path: {MNIST}, train: "test[:1003]", val: "test[8000:8200]",
     test: "test[8200:8400]"}}
  batch_size: 50
  epochs: {{epochs}}
  optimizer: {{name: adam, lr: 0.01}}
  seed: 3
  distributed: {{strategy: fsdp}}
"""


def archspec_run(*args: str, cwd: Path) -> None:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(
        [sys.executable, "-m", "archspec", *args, "--quiet"],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
        cwd=cwd,
    )
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr


def assert_same_weights(a: Path, b: Path) -> None:
    one, two = load_file(str(a / "model.safetensors")), load_file(str(b / "model.safetensors"))
    assert one.keys() == two.keys()
    for key in one:
        torch.testing.assert_close(two[key], one[key], rtol=1e-4, atol=1e-5, msg=key)


@needs_mnist
def test_fsdp_on_two_processes_matches_one_and_resumes_on_one(tmp_path: Path) -> None:
    for epochs in (1, 2):
        (tmp_path / f"e{epochs}.yaml").write_text(SPEC.replace("{epochs}", str(epochs)))
    archspec_run("train", "e1.yaml", "--out", "one", cwd=tmp_path)
    archspec_run("train", "e1.yaml", "--out", "two", "--nproc-per-node", "2", cwd=tmp_path)
    assert_same_weights(tmp_path / "one", tmp_path / "two")
    assert '"world_size": 2' in (tmp_path / "two" / "run.json").read_text()
    # the sharded run's checkpoint continues on 1 process: as if it had been one all along
    spec = tmp_path / "two" / "spec.yaml"
    spec.write_text(spec.read_text().replace("  epochs: 1\n", "  epochs: 2\n"))
    archspec_run("train", "--resume", "two", cwd=tmp_path)
    archspec_run("train", "e2.yaml", "--out", "whole", cwd=tmp_path)
    assert_same_weights(tmp_path / "whole", tmp_path / "two")


def test_blocks_are_the_sharding_units() -> None:
    from archspec.train import fsdp

    network = archspec.load("specs/cifar_resnet.yaml").build()
    groups = fsdp.blocks(network)
    assert list(groups) == ["conv1", "bn1", "layer1", "layer2", "layer3", "fc"]
    assert len(groups["layer2"]) == 3 * 4 + 2  # 3 blocks × (2 convs + 2 bns) + projection
    total = sum(p.numel() for modules in groups.values() for m in modules for p in m.parameters())
    assert total == sum(p.numel() for p in network.parameters())


def test_fsdp_with_ema_is_refused_clearly() -> None:
    from archspec.language.train import TrainConfig
    from archspec.train import fsdp

    config = TrainConfig.model_validate(
        {"data": {"dataset": "mnist"}, "ema": 0.99, "distributed": {"strategy": "fsdp"}}
    )
    with pytest.raises(UsageError, match=r"ema is not supported with distributed\.strategy fsdp"):
        fsdp.check_supported(config)
