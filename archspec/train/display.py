"""What a user sees while training: a rich progress bar on a terminal, plain lines otherwise."""

from __future__ import annotations

import sys
import time
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)


class Display:
    """Receives trainer events; shows loss, accuracy, images/s and ETA."""

    def __init__(
        self, steps_per_epoch: int, epochs: int, batch_size: int, quiet: bool = False
    ) -> None:
        self.steps = steps_per_epoch
        self.epochs = epochs
        self.batch = batch_size
        self.quiet = quiet
        self.console = Console(stderr=True)
        self.live = sys.stderr.isatty() and not quiet
        self.bar: Progress | None = None
        self.task: Any = None
        self._started = 0.0
        self._images = 0
        self._last_refresh = 0.0

    def __call__(self, event: str, data: dict[str, Any]) -> None:
        getattr(self, f"_{event}")(data)

    def _epoch_start(self, data: dict[str, Any]) -> None:
        self._started, self._images = time.perf_counter(), 0
        if not self.live:
            return
        if self.bar is None:
            self.bar = Progress(
                TextColumn("epoch {task.fields[epoch]}/{task.fields[epochs]}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("loss {task.fields[loss]:.4f}"),
                TextColumn("acc {task.fields[acc]:.2%}"),
                TextColumn("{task.fields[ips]:,.0f} img/s"),
                TimeElapsedColumn(),
                TextColumn("ETA"),
                TimeRemainingColumn(),
                console=self.console,
                transient=False,
            )
            self.bar.start()
        self.task = self.bar.add_task(
            "train",
            total=self.steps,
            completed=data["done"],
            epoch=data["epoch"],
            epochs=self.epochs,
            loss=float("nan"),
            acc=float("nan"),
            ips=0.0,
        )

    def _step(self, data: dict[str, Any]) -> None:
        self._images += self.batch
        now = time.perf_counter()
        if self.bar is None or now - self._last_refresh < 0.1:
            return
        self._last_refresh = now
        ips = self._images / max(now - self._started, 1e-9)
        self.bar.update(
            self.task, completed=data["step"], loss=data["loss"], acc=data["acc"], ips=ips
        )

    def _epoch_end(self, record: dict[str, Any]) -> None:
        if self.bar is not None:
            self.bar.update(
                self.task,
                completed=self.steps,
                loss=record["train_loss"],
                acc=record["train_acc"],
                ips=record["images_per_s"],
            )
        if self.quiet:
            return
        val = ""
        if "val_acc" in record:
            val = f"  val loss {record['val_loss']:.4f}  val acc {record['val_acc']:.2%}"
        line = (
            f"epoch {record['epoch']}/{self.epochs}  loss {record['train_loss']:.4f}  "
            f"acc {record['train_acc']:.2%}{val}  lr {record['lr']:.3g}  "
            f"{record['images_per_s']:,.0f} img/s"
        )
        if self.bar is not None:
            self.bar.console.print(line)
        else:
            print(line, file=sys.stderr, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.stop()
            self.bar = None
