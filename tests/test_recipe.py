"""The training recipe (issue 15, items 3-4): augmentation, precision, channels-last,
compile fallback, accumulation, clipping, EMA, early stopping, TensorBoard.

`check` errors are located and torch-free; the torch side is compared with torch itself
(mixed images against their weights, accumulated against whole batches) and with the
run it must equal (resume, fp16 falling back to fp32 on CPU).
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
from archspec.errors import CheckpointError, SpecError
from archspec.language.recipe import EarlyStop
from archspec.language.train import TrainConfig
from archspec.train import checkpoint
from archspec.train.augment import Augmenter
from archspec.train.data import Normalizer
from archspec.train.loop import Interrupted
from archspec.train.run import Options, resume, train
from archspec.train.stopping import EarlyStopState

BASE = tiny_spec(batch_size=32)
try:
    import kornia  # noqa: F401  (the augment extra)

    HAS_KORNIA = True
except ImportError:
    HAS_KORNIA = False
needs_kornia = pytest.mark.skipif(not HAS_KORNIA, reason="pip install 'archspec[augment]'")


def with_recipe(recipe: str, base: str = BASE) -> archspec.Spec:
    return archspec.loads(base + recipe, "tiny.yaml")


def errors(recipe: str) -> list[str]:
    with pytest.raises(SpecError) as info:
        with_recipe(recipe)
    return [p.render() for p in info.value.problems]


def weights(run_dir: Path, name: str = "model.safetensors") -> dict[str, torch.Tensor]:
    return load_file(str(run_dir / name))


# ------------------------------------------------------------------ check (torch-free)
def test_crop_larger_than_the_padded_image_is_located() -> None:
    (message,) = errors("  augment:\n    - {name: random_crop, padding: 2, size: [40, 28]}\n")
    assert message.startswith("tiny.yaml:")
    assert "train.augment[0].size: crop 40×28 is larger than the 32×32 padded image" in message
    assert "use size [28, 28] or more padding" in message


def test_crop_that_does_not_match_the_input_is_an_error() -> None:
    (message,) = errors("  augment:\n    - {name: random_crop, padding: 2, size: [24, 24]}\n")
    assert "crop 24×24 differs from the network's 28×28 input" in message


def test_unknown_op_and_unknown_key_suggest_the_right_name() -> None:
    found = errors("  augment:\n    - hflipp\n    - {name: rotate, degree: 10}\n")
    assert any("train.augment[0]" in m and "did you mean 'hflip'?" in m for m in found)
    assert any("train.augment[1].degree: unknown key" in m and "'degrees'" in m for m in found)


def test_colour_ops_on_grey_input_and_bad_normalize_are_errors() -> None:
    found = errors(
        "  augment:\n    - {name: color_jitter, hue: 0.1}\n"
        "    - {name: normalize, mean: [0.5, 0.5, 0.5], std: [0.2, 0.2, 0.2]}\n"
    )
    assert any("saturation and hue need 3 colour channels; the input has 1" in m for m in found)
    assert any("normalize has 3 mean/std values but the input has 1 channel" in m for m in found)


def test_augmenting_a_vector_input_is_an_error() -> None:
    base = BASE.replace("input: [1, 28, 28]", "input: [784]").replace(
        "  - conv: {depth: 4, kernel: 3, padding: same}\n  - relu\n  - pool: 4\n", ""
    )
    with pytest.raises(SpecError, match=r"augmentation needs image input \(C, H, W\)"):
        with_recipe("  augment: [hflip]\n", base)


@pytest.mark.parametrize(
    ("recipe", "expected"),
    [
        ("  precision: bf17\n", r"train.precision: must be .*did you mean 'bf16'\?"),
        ("  accumulate: 0\n", r"train.accumulate: must be greater than 0"),
        ("  accumulate: 64\n", r"train.accumulate: accumulate 64 .* at most batch_size"),
        ("  ema: 1.5\n", r"train.ema: must be less than 1"),
        ("  early_stop: {metric: val_f1}\n", r"train.early_stop.metric: must be 'val_acc'"),
        ("  distributed: {strategy: zero}\n", r"train.distributed.strategy: must be 'ddp'"),
        (
            "  augment:\n    - {name: mixup, lambda_range: [0.6, 0.2]}\n",
            r"train.augment\[0\]: lambda_range is a \[min, max\] range; "
            r"received \[0.6, 0.2\] — write \[0.2, 0.6\]",
        ),
    ],
)
def test_bad_recipe_values_are_located(recipe: str, expected: str) -> None:
    with pytest.raises(SpecError, match=r"tiny\.yaml:\d+:\d+: " + expected):
        with_recipe(recipe)


# ------------------------------------------------------------------ augmentation (torch)
def _augmenter(ops: list[object], normalizer: Normalizer) -> Augmenter:
    config = TrainConfig.model_validate({"data": {"dataset": "mnist"}, "augment": ops})
    return Augmenter(config.augment, normalizer, 2)


@needs_kornia
@pytest.mark.parametrize("op", ["mixup", "cutmix"])
def test_mixed_images_carry_the_weight_the_loss_uses(op: str) -> None:
    """Image i is the constant i; its mix with image j must hold j's value in the share
    ``weight`` (by area for cutmix, by blend for mixup)."""
    augment = _augmenter([op], Normalizer((0.0,), (1.0,), False))
    x = torch.arange(16.0).view(16, 1, 1, 1).expand(16, 1, 28, 28).contiguous()
    torch.manual_seed(0)
    out, y, mixed = augment(x, torch.arange(16))
    assert mixed is not None and torch.equal(y, torch.arange(16))
    for i in range(16):
        j, w = int(mixed.other[i]), float(mixed.weight[i])
        if j == i:
            continue
        share = (out[i] == j).float().mean() if op == "cutmix" else (out[i].mean() - i) / (j - i)
        assert float(share) == pytest.approx(w, abs=1e-4)


@needs_kornia
def test_image_ops_keep_the_shape_and_are_seeded() -> None:
    ops = [
        {"name": "random_crop", "padding": 2},
        "hflip",
        {"name": "random_resized_crop", "scale": [0.5, 1.0]},
        {"name": "affine", "degrees": 10, "translate": [0.1, 0.1]},
        {"name": "color_jitter", "brightness": 0.2, "contrast": 0.2},
        "randaugment",
        "trivialaugment",
        {"name": "random_erasing", "p": 1.0},
    ]
    augment = _augmenter(ops, Normalizer((0.5,), (0.25,), True))
    x = torch.randint(0, 256, (8, 1, 28, 28), dtype=torch.uint8)
    torch.manual_seed(1)
    a, _, _ = augment(x, torch.zeros(8, dtype=torch.int64))
    torch.manual_seed(1)
    b, _, _ = augment(x, torch.zeros(8, dtype=torch.int64))
    assert a.shape == (8, 1, 28, 28) and torch.equal(a, b)
    plain = (x.float() / 255 - 0.5) / 0.25
    assert not torch.allclose(a, plain)


def test_without_image_ops_inputs_are_only_standardised() -> None:
    augment = _augmenter([], Normalizer((0.5,), (0.25,), True))
    x = torch.randint(0, 256, (4, 1, 28, 28), dtype=torch.uint8)
    out, _, mixed = augment(x, torch.zeros(4, dtype=torch.int64))
    assert mixed is None
    assert torch.allclose(out, (x.float() / 255 - 0.5) / 0.25, atol=1e-5)


def test_early_stop_counts_epochs_without_improvement() -> None:
    state, rule = EarlyStopState(), EarlyStop(metric="val_loss", patience=2, min_delta=0.01)
    stops = [state.update(rule, {"val_loss": v}) for v in (1.0, 0.5, 0.495, 0.6)]
    assert stops == [False, False, False, True] and state.best == 0.5
    with pytest.raises(CheckpointError, match="early-stopping state"):
        EarlyStopState.from_json({"best": "x", "stale": 0, "stopped": False})


# ------------------------------------------------------------------ training (real digits)
RECIPE = """  augment:
    - {name: random_crop, padding: 2}
    - {name: random_erasing, p: 0.5}
    - {name: mixup, p: 0.5}
  accumulate: 2
  clip_grad_norm: 1.0
  ema: 0.9
"""


def _interrupt_at(step: int, monkeypatch: pytest.MonkeyPatch) -> None:
    from archspec.train import loop

    original = loop.Trainer._step

    def patched(self: loop.Trainer, *batch: Any) -> None:
        original(self, *batch)
        if self.progress.global_step == step:
            os.kill(os.getpid(), signal.SIGINT)

    monkeypatch.setattr(loop.Trainer, "_step", patched)


@needs_kornia
@needs_mnist
def test_resume_is_exact_with_augmentation_accumulation_and_ema(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    whole = train(with_recipe(RECIPE), Options(out=tmp_path / "whole", quiet=True))
    with monkeypatch.context() as patch:
        _interrupt_at(7, patch)
        with pytest.raises(Interrupted):
            train(with_recipe(RECIPE), Options(out=tmp_path / "cut", quiet=True))
    ckpt = checkpoint.load(tmp_path / "cut" / "checkpoints" / "last.safetensors")
    assert any(k.startswith("ema/") for k in ckpt.tensors)
    resume(tmp_path / "cut", Options(quiet=True))
    for name in ("model.safetensors", "model_ema.safetensors"):
        a, b = weights(whole, name), weights(tmp_path / "cut", name)
        assert a.keys() == b.keys()
        assert all(torch.equal(a[k], b[k]) for k in a), name
    test = json.loads((whole / "test.json").read_text())
    assert 0 <= test["ema_accuracy"] <= 1
    epochs = [json.loads(line) for line in (whole / "metrics.jsonl").read_text().splitlines()]
    assert all("ema_val_acc" in r for r in epochs if r["type"] == "epoch")


@needs_mnist
def test_accumulation_keeps_the_global_batch(tmp_path: Path) -> None:
    """No dropout/batchnorm in the tiny net: 4 micro-batches of 8 give the update of one
    batch of 32, up to float rounding."""
    one = train(with_recipe(""), Options(out=tmp_path / "one", quiet=True, epochs=1))
    four = train(
        with_recipe("  accumulate: 4\n"), Options(out=tmp_path / "4", quiet=True, epochs=1)
    )
    a, b = weights(one), weights(four)
    assert all(torch.allclose(a[k], b[k], atol=1e-5) for k in a)
    assert not all(torch.equal(a[k], b[k]) for k in a)  # really summed in parts


@needs_mnist
def test_fp16_on_cpu_falls_back_to_fp32_with_a_warning(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fp32 = train(with_recipe(""), Options(out=tmp_path / "fp32", quiet=True, epochs=1))
    fp16 = train(
        with_recipe("  precision: fp16\n"), Options(out=tmp_path / "fp16", quiet=True, epochs=1)
    )
    assert "precision fp16 needs CUDA" in capsys.readouterr().err
    a, b = weights(fp32), weights(fp16)
    assert all(torch.equal(a[k], b[k]) for k in a)


@needs_mnist
def test_bf16_channels_last_and_clipping_train(tmp_path: Path) -> None:
    recipe = "  precision: bf16\n  channels_last: true\n  clip_grad_norm: 0.5\n"
    run = train(with_recipe(recipe), Options(out=tmp_path / "r", quiet=True))
    test = json.loads((run / "test.json").read_text())
    assert test["accuracy"] > 0.3  # 10 classes: chance is 0.1
    assert all(v.dtype == torch.float32 for v in weights(run).values())


@needs_mnist
def test_compile_without_a_compiler_runs_eagerly(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import shutil

    eager = train(with_recipe(""), Options(out=tmp_path / "eager", quiet=True, epochs=1))
    monkeypatch.setattr(shutil, "which", lambda name: None)
    fallback = train(
        with_recipe("  compile: true\n"), Options(out=tmp_path / "c", quiet=True, epochs=1)
    )
    assert "torch.compile needs a C compiler" in capsys.readouterr().err
    a, b = weights(eager), weights(fallback)
    assert all(torch.equal(a[k], b[k]) for k in a)


@needs_mnist
def test_a_compiled_network_trains(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Regression: `compile: true` crashed at start ("Network does not support len()"):
    the compiled module was tested for truth. Here torch.compile really wraps the network
    (dynamo traces it) with its eager backend, so no C compiler or inductor run is needed."""

    def compile_eager(model: torch.nn.Module, cache: Path | None) -> object:
        return torch.compile(model, backend="eager")

    monkeypatch.setattr("archspec.train.loop.compiled", compile_eager)
    run = train(with_recipe("  compile: true\n"), Options(out=tmp_path / "c", quiet=True, epochs=1))
    assert json.loads((run / "run.json").read_text())["status"] == "completed"
    assert json.loads((run / "test.json").read_text())["accuracy"] > 0.3


@needs_mnist
def test_compile_failure_at_the_first_step_falls_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def broken(model: torch.nn.Module, cache: Path | None) -> object:
        def fail(x: torch.Tensor) -> torch.Tensor:
            raise RuntimeError("inductor: no backend for this op")

        return fail

    monkeypatch.setattr("archspec.train.loop.compiled", broken)
    run = train(with_recipe("  compile: true\n"), Options(out=tmp_path / "c", quiet=True, epochs=1))
    assert "torch.compile failed (RuntimeError: inductor: no backend" in capsys.readouterr().err
    assert json.loads((run / "run.json").read_text())["status"] == "completed"


@needs_mnist
def test_early_stop_ends_the_run_and_says_so(tmp_path: Path) -> None:
    recipe = "  early_stop: {metric: val_loss, patience: 1, min_delta: 100}\n"
    run = train(with_recipe(recipe), Options(out=tmp_path / "r", quiet=True, epochs=5))
    info = json.loads((run / "run.json").read_text())
    epochs = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    epochs = [r for r in epochs if r["type"] == "epoch"]
    assert info["stopped_early"] is True and len(epochs) == 2
    assert epochs[-1]["early_stop"] is True


@needs_kornia
@needs_mnist
def test_evaluation_never_augments(tmp_path: Path) -> None:
    """The run's test accuracy is what plain `eval` of the final weights gives."""
    from archspec.train.evaluate import run_eval

    run = train(
        with_recipe("  augment: [{name: random_crop, padding: 4}, hflip, randaugment]\n"),
        Options(out=tmp_path / "r", quiet=True, epochs=1),
    )
    test = json.loads((run / "test.json").read_text())
    again = run_eval(run, which="final", device="cpu")
    assert again["accuracy"] == test["accuracy"] and again["loss"] == pytest.approx(test["loss"])


@needs_mnist
def test_tensorboard_writes_event_files(tmp_path: Path) -> None:
    pytest.importorskip("tensorboard")
    run = train(
        with_recipe(""), Options(out=tmp_path / "r", quiet=True, epochs=1, tensorboard=True)
    )
    assert list((run / "tensorboard").glob("events.out.tfevents.*"))


def test_train_help_documents_the_new_flags(capsys: pytest.CaptureFixture[str]) -> None:
    from archspec.cli import main

    with pytest.raises(SystemExit):
        main(["train", "--help"])
    out = capsys.readouterr().out
    assert "--tensorboard" in out and "precision" in out and "augment" in out and "tta" in out


def test_augmentation_without_kornia_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    from archspec.errors import UsageError

    for name in ("kornia", "kornia.augmentation", "kornia.augmentation.auto"):
        monkeypatch.setitem(sys.modules, name, None)  # `import kornia…` raises ImportError
    with pytest.raises(UsageError, match=r"train.augment needs kornia, which is not installed"):
        _augmenter(["hflip"], Normalizer((0.5,), (0.25,), True))


# ------------------------------------------------------------------ test-time flips
def test_tta_flips_are_checked_and_located() -> None:
    assert with_recipe("  tta: [hflip, vflip]\n").train.tta == ("hflip", "vflip")
    assert any("train.tta[0]: must be 'hflip' or 'vflip'" in e for e in errors("  tta: [hflipp]\n"))
    assert any("hflip appears twice in tta" in e for e in errors("  tta: [hflip, hflip]\n"))
    base = BASE.replace("input: [1, 28, 28]", "input: [784]").replace(
        "  - conv: {depth: 4, kernel: 3, padding: same}\n  - relu\n  - pool: 4\n", ""
    )
    with pytest.raises(SpecError, match=r"tiny\.yaml:\d+:\d+: .*test-time flips need image"):
        with_recipe("  tta: [hflip]\n", base)


def test_tta_scores_are_the_flip_averaged_probabilities() -> None:
    """``evaluate`` with ``tta`` scores each input by the mean of the softmaxes of the
    input and its flips, computed here by hand; a left-right asymmetric network makes
    it differ from plain evaluation."""
    from archspec.train.loop import evaluate
    from archspec.train.runtime import Runtime

    torch.manual_seed(0)
    network = torch.nn.Sequential(
        torch.nn.Conv2d(1, 3, 3), torch.nn.Flatten(), torch.nn.Linear(3 * 6 * 6, 4)
    )
    x, y = torch.rand(10, 1, 8, 8), torch.arange(10) % 4
    loss = torch.nn.CrossEntropyLoss(reduction="sum")
    rt = Runtime(torch.device("cpu"))

    def run(tta: tuple[str, ...]) -> Any:
        return evaluate(network, x, y, lambda t: t, loss, rt, 4, 4, tta)

    with torch.no_grad():
        probs = (network(x).softmax(1) + network(x.flip(-1)).softmax(1)) / 2
    flipped, confusion = run(("hflip",))
    assert flipped.mean_loss == pytest.approx(torch.nn.functional.nll_loss(probs.log(), y).item())
    assert flipped.correct == (probs.argmax(1) == y).sum().item()
    assert int(confusion.sum()) == 10
    plain, _ = run(())
    assert plain.mean_loss != pytest.approx(flipped.mean_loss)


@needs_mnist
def test_tta_applies_to_the_run_and_to_eval_alike(tmp_path: Path) -> None:
    from archspec.train.evaluate import run_eval

    run = train(with_recipe("  tta: [hflip]\n"), Options(out=tmp_path / "r", quiet=True, epochs=1))
    test = json.loads((run / "test.json").read_text())
    again = run_eval(run, which="final", device="cpu")
    assert again["accuracy"] == test["accuracy"] and again["loss"] == pytest.approx(test["loss"])
    without = tmp_path / "plain.yaml"  # the same network, evaluated without flips
    without.write_text(BASE)
    plain = run_eval(run, which="final", device="cpu", spec_file=without)
    assert plain["loss"] != pytest.approx(test["loss"])  # the run's test did flip


def test_tta_keeps_every_rank_running_as_many_forwards() -> None:
    """A rank with a shorter share of the evaluation runs empty batches so that FSDP's
    per-forward gathers stay in step; with flips each of those is 1 + len(tta) forwards
    too, as on the ranks with data."""
    from types import SimpleNamespace

    from archspec.train.loop import evaluate

    calls = []

    class Counting(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            calls.append(len(x))
            return x.flatten(1)[:, :4]

    def rank(r: int) -> list[int]:
        calls.clear()
        rt = SimpleNamespace(
            rank=r,
            world=2,
            device=torch.device("cpu"),
            sum=lambda values: values,
            sum_tensor=lambda t: t,
        )
        x, y = torch.rand(5, 1, 2, 2), torch.zeros(5, dtype=torch.int64)
        loss = torch.nn.CrossEntropyLoss(reduction="sum")
        evaluate(Counting(), x, y, lambda t: t, loss, rt, 1, None, ("hflip",))  # type: ignore[arg-type]
        return calls[:]

    assert len(rank(0)) == len(rank(1)) == 6  # 3 batches × (input + its flip) on each rank
    assert rank(1)[-2:] == [0, 0]  # rank 1's third batch is empty
