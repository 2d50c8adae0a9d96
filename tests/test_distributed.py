"""Data-parallel training on torch.distributed (gloo on loopback), launched via torchrun."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from realdata import MNIST, needs_mnist
from safetensors.torch import load_file

import archspec
from archspec.train import checkpoint

pytestmark = [
    needs_mnist,
    pytest.mark.skipif(
        not torch.distributed.is_available(), reason="torch.distributed unavailable"
    ),
]

# No dropout or batch norm: their randomness/statistics legitimately differ per rank.
SPEC = f"""
name: tiny-ddp
input: [1, 28, 28]
layers:
  - conv: {{depth: 4, kernel: 3, padding: same}}
  - relu
  - pool: 4
  - flatten
  - dense: 10
train:
  data:
    {{dataset: mnist, path: {MNIST}, train: "test[:{{n}}]", val: "test[8000:8200]",
     test: "test[8200:8400]"}}
  batch_size: 50
  epochs: {{epochs}}
  optimizer: {{name: sgd, lr: 0.05, momentum: 0.9}}
  schedule: {{name: onecycle}}
  seed: 3
  checkpoint_every: 5
"""


def archspec_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "archspec", *args]


def write_spec(tmp_path: Path, n: int = 1003, epochs: int = 2) -> Path:
    path = tmp_path / "tiny.yaml"
    path.write_text(SPEC.replace("{n}", str(n)).replace("{epochs}", str(epochs)))
    return path


def test_two_gloo_workers_match_one_process(tmp_path: Path) -> None:
    spec = write_spec(tmp_path)  # 1003 examples: the last global batch (3) splits 2/1
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    single = subprocess.run(
        archspec_cmd("train", str(spec), "--out", str(tmp_path / "one"), "--quiet"),
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert single.returncode == 0, single.stderr
    runs = tmp_path / "runs_here"
    runs.mkdir()
    double = subprocess.run(
        archspec_cmd("train", str(spec), "--nproc-per-node", "2", "--quiet"),
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        cwd=runs,
    )
    assert double.returncode == 0, double.stderr
    assert "Traceback" not in double.stderr
    written = list((runs / "runs").iterdir())
    assert len(written) == 1, written  # one run directory, written by rank 0 only
    one, two = (
        load_file(str(tmp_path / "one" / "model.safetensors")),
        load_file(str(written[0] / "model.safetensors")),
    )
    assert one.keys() == two.keys()
    for key in one:
        torch.testing.assert_close(two[key], one[key], rtol=1e-4, atol=1e-5, msg=key)
    assert '"world_size": 2' in (written[0] / "run.json").read_text()


def _children(pid: int) -> list[int]:
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                out.append(int(entry.name))
    return out


def _workers(launcher: int) -> list[int]:
    """The archspec worker processes under the launcher (torchrun may add a layer)."""
    found = []
    for child in _children(launcher):
        cmdline = Path(f"/proc/{child}/cmdline").read_bytes().split(b"\0")
        if b"archspec" in b" ".join(cmdline):
            found.append(child)
        found += _workers(child)
    return found


def test_a_dead_worker_stops_the_run_and_the_checkpoint_survives(tmp_path: Path) -> None:
    spec = write_spec(tmp_path, n=8000, epochs=20)
    out = tmp_path / "run"
    launcher = subprocess.Popen(
        archspec_cmd("train", str(spec), "--nproc-per-node", "2", "--out", str(out), "--quiet"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    last = out / "checkpoints" / "last.safetensors"
    deadline = time.monotonic() + 120
    while not last.exists() and time.monotonic() < deadline and launcher.poll() is None:
        time.sleep(0.2)
    assert last.exists(), launcher.communicate(timeout=30)
    workers = _workers(launcher.pid)
    assert len(workers) >= 2, workers
    os.kill(workers[-1], signal.SIGKILL)
    killed = time.monotonic()
    _, stderr = launcher.communicate(timeout=90)
    assert time.monotonic() - killed < 60
    assert launcher.returncode == 1, stderr
    assert "failed" in stderr and "--resume" in stderr
    assert "Traceback" not in stderr
    ckpt = checkpoint.load(last)
    network = archspec.load(out / "spec.yaml").build()
    checkpoint.load_weights(network, ckpt, last)  # the previous checkpoint still loads
    assert ckpt.meta["world"] == 2


def test_max_restarts_resumes_the_group_from_its_checkpoint(tmp_path: Path) -> None:
    spec = write_spec(tmp_path, n=8000, epochs=12)
    out = tmp_path / "run"
    launcher = subprocess.Popen(
        archspec_cmd(
            "train",
            str(spec),
            "--nproc-per-node",
            "2",
            "--max-restarts",
            "1",
            "--out",
            str(out),
            "--quiet",
        ),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    last = out / "checkpoints" / "last.safetensors"
    deadline = time.monotonic() + 120
    while not last.exists() and time.monotonic() < deadline and launcher.poll() is None:
        time.sleep(0.2)
    assert last.exists(), launcher.communicate(timeout=30)
    os.kill(_workers(launcher.pid)[-1], signal.SIGKILL)
    _, stderr = launcher.communicate(timeout=300)
    assert launcher.returncode == 0, stderr
    info = (out / "run.json").read_text()
    assert '"status": "completed"' in info
    epochs = [
        line
        for line in (out / "metrics.jsonl").read_text().splitlines()
        if '"type": "epoch"' in line
    ]
    assert len(epochs) == 12  # resumed, not restarted from scratch, and nothing logged twice


@pytest.mark.parametrize("static", [True, False], ids=["node-rank", "dynamic"])
def test_two_machines_on_loopback(tmp_path: Path, static: bool) -> None:
    """Two "machines" (launchers) × one worker each, meeting at a rendezvous endpoint."""
    spec = write_spec(tmp_path, n=403, epochs=1)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    single = subprocess.run(
        archspec_cmd("train", str(spec), "--out", str(tmp_path / "one"), "--quiet"),
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert single.returncode == 0, single.stderr
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    nodes = []
    for rank in (0, 1):
        args = [
            "train",
            str(spec),
            "--nproc-per-node",
            "1",
            "--nnodes",
            "2",
            "--quiet",
            "--rdzv-endpoint",
            f"127.0.0.1:{port}",
            "--out",
            str(tmp_path / f"node{rank}"),
        ]
        if static:
            args += ["--node-rank", str(rank)]
        nodes.append(
            subprocess.Popen(
                archspec_cmd(*args),
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                env=env,
            )
        )
    results = [node.communicate(timeout=300) for node in nodes]
    assert [node.returncode for node in nodes] == [0, 0], results
    written = [p for p in (tmp_path / "node0", tmp_path / "node1") if p.exists()]
    assert len(written) == 1  # the global rank 0's machine wrote the one run directory
    one = load_file(str(tmp_path / "one" / "model.safetensors"))
    two = load_file(str(written[0] / "model.safetensors"))
    for key in one:
        torch.testing.assert_close(two[key], one[key], rtol=1e-4, atol=1e-5, msg=key)
