"""Training: run directory contents, resume equivalence, checkpoints, NaN, CLI behaviour.

All on small real data: slices of the real MNIST test set in ../shared/data/mnist.
"""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path
from typing import Any

import pytest
import torch
from realdata import needs_mnist, tiny_spec
from safetensors.torch import load_file

import archspec
from archspec.errors import CheckpointError, TrainingError
from archspec.train import checkpoint
from archspec.train.loop import Interrupted
from archspec.train.run import Options, resume, train

pytestmark = needs_mnist

SPEC = tiny_spec(batch_size=32, schedule="onecycle")


def spec(text: str = SPEC) -> archspec.Spec:
    return archspec.loads(text, "tiny.yaml")


def weights(run_dir: Path, name: str = "model.safetensors") -> dict[str, torch.Tensor]:
    return load_file(str(run_dir / name))


def test_run_directory_has_every_artifact(tmp_path: Path) -> None:
    run = train(spec(), Options(out=tmp_path / "run", quiet=True))
    names = {p.name for p in run.iterdir()}
    assert {
        "spec.yaml",
        "run.json",
        "metrics.jsonl",
        "checkpoints",
        "model.safetensors",
        "curves.png",
        "test.json",
    } <= names
    assert {p.name for p in (run / "checkpoints").iterdir()} == {
        "last.safetensors",
        "best.safetensors",
    }
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    epochs = [r for r in records if r["type"] == "epoch"]
    steps = [r for r in records if r["type"] == "step"]
    assert [r["epoch"] for r in epochs] == [1, 2]
    assert all(
        {"train_loss", "train_acc", "val_loss", "val_acc", "lr", "images_per_s"} <= r.keys()
        for r in epochs
    )
    assert [r["step"] for r in steps] == [4, 8, 12, 16, 20, 24]  # 12 steps per epoch, every 4
    test = json.loads((run / "test.json").read_text())
    assert test["examples"] == 64 and len(test["confusion"]) == 10
    assert sum(map(sum, test["confusion"])) == 64
    info = json.loads((run / "run.json").read_text())
    assert info["status"] == "completed" and info["data"]["train_examples"] == 384
    assert (run / "curves.png").read_bytes()[:4] == b"\x89PNG"
    # the resolved spec reloads to the same network
    again = archspec.load(run / "spec.yaml")
    assert again.plan().total_params == spec().plan().total_params


def test_training_learns_real_digits(tmp_path: Path) -> None:
    run = train(spec(), Options(out=tmp_path / "run", quiet=True, epochs=4))
    test = json.loads((run / "test.json").read_text())
    assert test["accuracy"] > 0.5  # chance is 0.1; 4 short epochs on 384 digits


def test_same_seed_same_weights(tmp_path: Path) -> None:
    a = train(spec(), Options(out=tmp_path / "a", quiet=True, epochs=1))
    b = train(spec(), Options(out=tmp_path / "b", quiet=True, epochs=1))
    wa, wb = weights(a), weights(b)
    assert all(torch.equal(wa[k], wb[k]) for k in wa)


def _interrupt_at(step: int) -> None:
    """Deliver a real SIGINT to this process when the trainer reaches ``step``."""
    from archspec.train import loop

    original = loop.Trainer._step

    def patched(self: loop.Trainer, *batch: Any) -> None:
        original(self, *batch)
        if self.progress.global_step == step:
            os.kill(os.getpid(), signal.SIGINT)

    loop.Trainer._step = patched  # type: ignore[method-assign]


@pytest.mark.parametrize("stop_step", [5, 12])  # mid-epoch, and exactly at an epoch boundary
def test_interrupted_and_resumed_run_equals_uninterrupted(
    tmp_path: Path, stop_step: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    whole = train(spec(), Options(out=tmp_path / "whole", quiet=True))
    from archspec.train import loop

    monkeypatch.setattr(loop.Trainer, "_step", loop.Trainer._step)
    _interrupt_at(stop_step)
    with pytest.raises(Interrupted):
        train(spec(), Options(out=tmp_path / "cut", quiet=True))
    ckpt = checkpoint.load(tmp_path / "cut" / "checkpoints" / "last.safetensors")
    assert ckpt.meta["progress"]["global_step"] == stop_step
    assert json.loads((tmp_path / "cut" / "run.json").read_text())["status"] == "interrupted"
    monkeypatch.undo()
    resume(tmp_path / "cut", Options(quiet=True))
    final_whole, final_cut = weights(whole), weights(tmp_path / "cut")
    assert final_whole.keys() == final_cut.keys()
    for key in final_whole:
        assert torch.equal(final_whole[key], final_cut[key]), key
    # metrics were not duplicated by the resume
    steps = [
        json.loads(line)["step"]
        for line in (tmp_path / "cut" / "metrics.jsonl").read_text().splitlines()
        if json.loads(line)["type"] == "step"
    ]
    assert steps == sorted(set(steps))


def test_failed_checkpoint_write_keeps_previous(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run = train(spec(), Options(out=tmp_path / "run", quiet=True, epochs=1))
    last = run / "checkpoints" / "last.safetensors"
    before = last.read_bytes()

    def disk_full(
        tensors: dict[str, torch.Tensor], filename: str, metadata: dict[str, str]
    ) -> None:
        Path(filename).write_bytes(b"\x00" * 100)  # half-written
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(checkpoint, "save_file", disk_full)
    with pytest.raises(OSError, match="No space left"):
        tensors, meta = {"model/x": torch.zeros(3)}, {"progress": {}}
        checkpoint.save(last, tensors, meta)
    assert last.read_bytes() == before
    assert [p.name for p in last.parent.iterdir() if p.name.endswith(".tmp")] == []
    checkpoint.load(last)  # still loadable


def test_corrupted_and_truncated_checkpoints_are_rejected(tmp_path: Path) -> None:
    run = train(spec(), Options(out=tmp_path / "run", quiet=True, epochs=1))
    good = (run / "checkpoints" / "last.safetensors").read_bytes()
    truncated = tmp_path / "truncated.safetensors"
    truncated.write_bytes(good[: len(good) // 2])
    with pytest.raises(
        CheckpointError, match=r"truncated\.safetensors: not a readable safetensors"
    ):
        checkpoint.load(truncated)
    garbage = tmp_path / "garbage.safetensors"
    garbage.write_bytes(b"PK\x03\x04 this is a zip, maybe a pickle")
    with pytest.raises(CheckpointError, match="not a readable safetensors"):
        checkpoint.load(garbage)


def test_mismatched_architecture_names_the_tensor(tmp_path: Path) -> None:
    run = train(spec(), Options(out=tmp_path / "run", quiet=True, epochs=1))
    other = spec(SPEC.replace("depth: 4", "depth: 6")).build()
    ckpt = checkpoint.load(run / "model.safetensors")
    with pytest.raises(
        CheckpointError,
        match=r"tensor 'conv1\.weight' has shape \[4, 1, 3, 3\] in the "
        r"checkpoint but \[6, 1, 3, 3\] in the model",
    ):
        checkpoint.load_weights(other, ckpt, run / "model.safetensors")


def test_nan_loss_stops_with_clear_message_and_keeps_last_checkpoint(tmp_path: Path) -> None:
    bad = SPEC.replace("lr: 0.05", "lr: 1.0e+30").replace("name: onecycle", "name: constant")
    with pytest.raises(TrainingError, match=r"the loss became (nan|inf) at epoch 1, step \d+"):
        train(spec(bad), Options(out=tmp_path / "run", quiet=True, epochs=2))
    info = json.loads((tmp_path / "run" / "run.json").read_text())
    assert info["status"] == "failed"


def test_softmax_is_not_applied_twice() -> None:
    net = spec().build()
    x = torch.randn(5, 1, 28, 28)
    net.eval()
    probs = net(x)
    net.logits_only = True
    logits = net(x)
    assert torch.allclose(probs, torch.softmax(logits, dim=1))
    assert torch.allclose(probs.sum(1), torch.ones(5))


def test_cli_train_eval_and_resume_usage(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from archspec.cli import main

    spec_file = tmp_path / "tiny.yaml"
    spec_file.write_text(SPEC)
    out = tmp_path / "run"
    assert main(["train", str(spec_file), "--epochs", "1", "--out", str(out), "--quiet"]) == 0
    assert main(["eval", str(out), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["examples"] == 64 and 0 <= result["accuracy"] <= 1
    assert main(["train", "--resume", str(out), "--epochs", "3"]) == 2
    assert "cannot change" in capsys.readouterr().err
    assert main(["train", str(spec_file), "--out", str(out)]) == 2  # would overwrite a run
    assert "already exists" in capsys.readouterr().err
    assert main(["train", str(spec_file), "--lr", "-1", "--out", str(tmp_path / "x")]) == 2


def test_data_that_does_not_fit_the_spec_is_a_clear_error(tmp_path: Path) -> None:
    from archspec.cli import main

    spec_file = tmp_path / "wide.yaml"
    spec_file.write_text(SPEC.replace("input: [1, 28, 28]", "input: [3, 28, 28]"))
    assert main(["train", str(spec_file), "--out", str(tmp_path / "r"), "--quiet"]) == 1
    spec_file.write_text(SPEC.replace("dense: 10", "dense: 6"))
    assert main(["train", str(spec_file), "--out", str(tmp_path / "r2"), "--quiet"]) == 1
