"""The CLI under signals, as a user meets it: real ``python -m archspec`` processes.

- One Ctrl-C (SIGINT) during ``archspec train``: a final checkpoint, exit 130, one line
  saying how to resume; ``run.json`` says interrupted; ``--resume`` completes the run.
- Two Ctrl-C in quick succession: exit 130 at once, no traceback, and every file left is
  complete (at most a stray ``.*.tmp``, never a half-written checkpoint).
- ``archspec check … | head -1``: the reader goes away; archspec exits quietly (141).

tests/test_train.py covers the in-process side (a SIGINT at a given step, and that the
resumed run equals an uninterrupted one); these tests cover the process boundary.
"""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from realdata import needs_mnist, tiny_spec

import archspec
from archspec.train import checkpoint

ROOT = Path(__file__).resolve().parents[1]
# tests/test_train.py's tiny conv net on real MNIST digits (test[:384]), smaller batches so
# that an epoch has 48 steps and a run is still going when the signal comes
SPEC = tiny_spec(batch_size=8)


def start_training(tmp_path: Path, epochs: int) -> tuple[subprocess.Popen[str], Path]:
    spec = tmp_path / "tiny.yaml"
    spec.write_text(SPEC)
    run_dir = tmp_path / "run"
    cmd = [
        sys.executable,
        "-m",
        "archspec",
        "train",
        str(spec),
        "--out",
        str(run_dir),
        "--quiet",
        "--threads",
        "1",
        "--epochs",
        str(epochs),
    ]
    proc = subprocess.Popen(
        cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    return proc, run_dir


def wait_until_training(proc: subprocess.Popen[str], run_dir: Path, timeout: float = 120) -> None:
    """Until the first checkpoint exists: the loop (and its Ctrl-C handler) is running."""
    last = run_dir / "checkpoints" / "last.safetensors"
    deadline = time.monotonic() + timeout
    while not last.exists():
        if proc.poll() is not None:
            _, err = proc.communicate()
            pytest.fail(f"training ended before it could be interrupted ({proc.returncode}): {err}")
        if time.monotonic() > deadline:
            proc.kill()
            pytest.fail("training did not start in time")
        time.sleep(0.01)


def finish(proc: subprocess.Popen[str], timeout: float) -> tuple[int, str, float]:
    started = time.monotonic()
    try:
        _, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        pytest.fail(f"no exit within {timeout} s of the signal")
    return proc.returncode, err, time.monotonic() - started


def assert_every_file_complete(run_dir: Path) -> None:
    """Each safetensors file loads, each JSON file parses; only `.*.tmp` may be stray."""
    for path in run_dir.rglob("*"):
        if path.is_dir():
            continue
        if path.suffix == ".safetensors":
            checkpoint.load(path)
        elif path.name == "run.json":
            json.loads(path.read_text())
        elif path.name == "metrics.jsonl":
            for line in path.read_text().splitlines():
                json.loads(line)
        elif path.name == "spec.yaml":
            yaml.safe_load(path.read_text())
        else:
            assert re.match(r"^\..*\.tmp$", path.name) or path.name in (
                "curves.png",
                "test.json",
            ), path


@needs_mnist
def test_one_ctrl_c_saves_exits_130_and_the_run_resumes(tmp_path: Path) -> None:
    proc, run_dir = start_training(tmp_path, epochs=6)
    wait_until_training(proc, run_dir)
    proc.send_signal(signal.SIGINT)  # early in epoch 2 of 6
    code, err, _ = finish(proc, timeout=60)
    assert code == 130, err
    assert err.splitlines() == [
        "archspec: interrupted — checkpoint saved; continue with: "
        f"archspec train --resume {run_dir}"
    ]
    assert json.loads((run_dir / "run.json").read_text())["status"] == "interrupted"
    saved = checkpoint.load(run_dir / "checkpoints" / "last.safetensors")
    assert saved.meta["progress"]["global_step"] >= 48  # at least epoch 1's 48 steps
    assert_every_file_complete(run_dir)

    again = subprocess.run(
        [
            sys.executable,
            "-m",
            "archspec",
            "train",
            "--resume",
            str(run_dir),
            "--quiet",
            "--threads",
            "1",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert again.returncode == 0, again.stderr
    info = json.loads((run_dir / "run.json").read_text())
    assert info["status"] == "completed"
    final = checkpoint.load(run_dir / "checkpoints" / "last.safetensors")
    assert final.meta["progress"]["epoch"] == 6
    assert (run_dir / "test.json").is_file()


@needs_mnist
@pytest.mark.parametrize("gap", [0.0, 0.03])
def test_two_ctrl_c_exit_at_once_and_leave_no_half_written_file(tmp_path: Path, gap: float) -> None:
    proc, run_dir = start_training(tmp_path, epochs=1000)
    wait_until_training(proc, run_dir)
    proc.send_signal(signal.SIGINT)
    time.sleep(gap)
    proc.send_signal(signal.SIGINT)
    code, err, seconds = finish(proc, timeout=60)
    assert code == 130, err
    assert seconds < 20.0, seconds  # generous: CI runs other tests beside it
    assert "Traceback" not in err and "internal error" not in err, err
    (line,) = err.splitlines()  # "interrupted", with or without the resume hint
    assert line.startswith("archspec: interrupted")
    assert_every_file_complete(run_dir)
    archspec.load(run_dir / "spec.yaml")  # the resolved spec is intact


def test_a_closed_pipe_exits_quietly(tmp_path: Path) -> None:
    """`archspec check … | head -1`: more output than a pipe holds, and the reader leaves."""
    specs = [str(ROOT / "specs" / "resnet18.yaml")] * 80  # ~0.5 MB of tables
    proc = subprocess.Popen(
        [sys.executable, "-m", "archspec", "check", *specs],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stdout is not None and proc.stderr is not None
    first = proc.stdout.readline()
    proc.stdout.close()  # what `head -1` does after its line
    err = proc.stderr.read().decode()
    code = proc.wait(timeout=60)
    assert first == b"resnet18\n"
    assert err == ""  # no "internal error", no "Exception ignored … BrokenPipeError"
    assert code == 141  # 128 + SIGPIPE, as a shell reports a writer whose reader left


def test_a_closed_pipe_through_a_shell(tmp_path: Path) -> None:
    specs = " ".join([str(ROOT / "specs" / "resnet18.yaml")] * 80)
    run = subprocess.run(
        ["bash", "-c", f"{sys.executable} -m archspec check {specs} | head -1"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert (run.returncode, run.stdout, run.stderr) == (0, "resnet18\n", "")
