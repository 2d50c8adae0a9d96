"""The one-screen summary printed when a run ends."""

from __future__ import annotations

from pathlib import Path
from typing import IO, Any

from archspec.text import terminal
from archspec.train.loop import Progress
from archspec.train.metrics import confusion_text


def print_summary(
    run_dir: Path,
    name: str,
    records: list[dict[str, Any]],
    test: dict[str, Any] | None,
    progress: Progress,
    seconds: float,
    out: IO[str],
) -> None:
    epochs = [r for r in records if r.get("type") == "epoch"]
    plural = "" if progress.epoch == 1 else "s"
    name = terminal(name)
    lines = [f"{name}: trained {progress.epoch} epoch{plural} in {seconds:.1f} s"]
    if epochs:
        last = epochs[-1]
        lines.append(
            f"  last epoch   loss {last['train_loss']:.4f}  acc {last['train_acc']:.2%}"
            + (f"  val acc {last['val_acc']:.2%}" if "val_acc" in last else "")
        )
        speed = sum(r["images_per_s"] for r in epochs) / len(epochs)
        lines.append(f"  throughput   {speed:,.0f} images/s (mean over epochs)")
    if progress.best is not None:
        lines.append(
            f"  best         {progress.best:.2%} at epoch {progress.best_epoch} "
            "(validation accuracy, or training accuracy without a validation split)"
        )
    if test is not None:
        lines.append(
            f"  test         acc {test['accuracy']:.2%}  loss {test['loss']:.4f}  "
            f"on {test['examples']:,} examples ({terminal(test['split'])})"
        )
        if len(test["classes"]) <= 20:
            classes = tuple(terminal(c) for c in test["classes"])
            lines.append(confusion_text(test["confusion"], classes))
    lines.append(
        f"  run          {terminal(str(run_dir))}  (spec.yaml, metrics.jsonl, checkpoints/, "
        "curves.png, test.json, model.safetensors)"
    )
    print("\n".join(lines), file=out, flush=True)
