"""Metrics: accumulation, the metrics.jsonl log, the curves plot, the confusion matrix."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from archspec.errors import WriteError
from archspec.io import write_text, write_with


@dataclass
class Tally:
    """Running sums for loss and accuracy over some examples."""

    loss: float = 0.0
    correct: float = 0.0
    seen: float = 0.0

    def add(self, loss_sum: float, correct: float, count: float) -> None:
        self.loss += loss_sum
        self.correct += correct
        self.seen += count

    @property
    def mean_loss(self) -> float:
        return self.loss / self.seen if self.seen else math.nan

    @property
    def accuracy(self) -> float:
        return self.correct / self.seen if self.seen else math.nan

    def to_list(self) -> list[float]:
        return [self.loss, self.correct, self.seen]

    @staticmethod
    def from_list(values: list[float]) -> Tally:
        return Tally(*values)


@dataclass
class MetricsLog:
    """Appends one JSON object per line; each write is flushed, so a crash loses nothing logged."""

    path: Path
    records: list[dict[str, Any]] = field(default_factory=list)

    def write(self, record: dict[str, Any]) -> None:
        self.records.append(record)
        try:
            with self.path.open("a", encoding="utf-8") as handle:
                handle.write(json.dumps(record) + "\n")
        except OSError as exc:
            raise WriteError(
                f"{self.path}: cannot append metrics ({exc.strerror or exc})",
                "free some disk space, then continue with --resume",
            ) from None

    def truncate_after(self, global_step: int, epochs_done: int) -> None:
        """On resume: drop what was logged after the checkpoint (it will be redone)."""
        kept = []
        if self.path.exists():
            for line in self.path.read_text(encoding="utf-8").splitlines():
                try:
                    record = json.loads(line)
                except json.JSONDecodeError:
                    continue  # a line cut short by a crash
                if _before(record, global_step, epochs_done):
                    kept.append(record)
        self.records = kept
        write_text(self.path, "".join(json.dumps(r) + "\n" for r in kept))


def _before(record: dict[str, Any], global_step: int, epochs_done: int) -> bool:
    if record.get("type") == "epoch":
        return int(record.get("epoch", 0)) <= epochs_done
    return int(record.get("step", 0)) <= global_step


def confusion_text(matrix: list[list[int]], classes: tuple[str, ...]) -> str:
    """The confusion matrix as aligned text (rows: true class, columns: predicted)."""
    numbered = list(classes) == [str(i) for i in range(len(classes))]
    names = [] if numbered else [c[:12] for c in classes]
    name_width = max((len(n) for n in names), default=0)
    width = max(len(str(v)) for row in matrix for v in row) + 2
    head = " " * (3 + name_width) + "".join(f"{i:>{width}}" for i in range(len(classes)))
    lines = ["rows: true class, columns: predicted", head]
    for i, row in enumerate(matrix):
        label = f" {names[i]:<{name_width}}" if names else ""
        lines.append(f"{i:>2}{label} " + "".join(f"{v:>{width}}" for v in row))
    return "\n".join(lines)


def plot_curves(records: list[dict[str, Any]], dest: Path, title: str) -> None:
    """Loss and accuracy per epoch (train and validation) as a PNG, written atomically."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    epochs = [r for r in records if r.get("type") == "epoch"]
    if not epochs:
        return
    x = [r["epoch"] for r in epochs]
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(10, 4))
    for key, label in (("train_loss", "train"), ("val_loss", "validation")):
        ys = [r.get(key) for r in epochs]
        if any(y is not None for y in ys):
            ax_loss.plot(x, ys, marker="o", label=label)
    for key, label in (("train_acc", "train"), ("val_acc", "validation")):
        ys = [r.get(key) for r in epochs]
        if any(y is not None for y in ys):
            ax_acc.plot(x, ys, marker="o", label=label)
    ax_loss.set(xlabel="epoch", ylabel="loss", title="loss")
    ax_acc.set(xlabel="epoch", ylabel="accuracy", title="accuracy")
    for ax in (ax_loss, ax_acc):
        ax.grid(alpha=0.3)
        ax.legend()
    fig.suptitle(title)
    fig.tight_layout()
    write_with(dest, lambda tmp: fig.savefig(tmp, format="png", dpi=100))
    plt.close(fig)
