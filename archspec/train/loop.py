"""The training loop: epochs of shuffled in-memory batches, validation, checkpoints.

Cross-entropy is computed on the logits: when a spec ends in ``softmax`` (or
``log_softmax``) the network runs with ``logits_only`` while training and
evaluating the loss — ``CrossEntropyLoss`` applies log-softmax itself, so the
maths is the same without a double softmax; predictions (``eval``, ``predict``)
keep the final softmax and report probabilities.
"""

from __future__ import annotations

import math
import signal
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

import torch
from torch import nn

from archspec import signals
from archspec.compile.network import Network
from archspec.data.load import Split
from archspec.data.stream import Samples
from archspec.errors import TrainingError
from archspec.language.train import SGD, TrainConfig
from archspec.train import checkpoint
from archspec.train.data import (
    Data,
    IndexBatches,
    Part,
    batches,
    epoch_order,
    eval_batches,
    make_loader,
    settle,
    shard,
)
from archspec.train.metrics import MetricsLog, Tally
from archspec.train.runtime import Runtime
from archspec.train.schedule import learning_rate, momentum

Listener = Callable[[str, dict[str, Any]], None]


class Interrupted(Exception):
    """Ctrl-C, SIGTERM or SIGHUP: a final checkpoint was written; the run can be resumed
    from ``run_dir`` (``None`` until the caller that knows the run directory fills it in)."""

    def __init__(self, run_dir: Path | None = None, signum: int = signal.SIGINT) -> None:
        super().__init__(str(run_dir or ""))
        self.run_dir = run_dir
        self.signum = signum


@dataclass
class Progress:
    """Where the run stands; saved in every checkpoint."""

    epoch: int = 0  # the epoch in progress (0-based)
    step_in_epoch: int = 0  # batches of it already done
    global_step: int = 0
    tally: Tally = field(default_factory=Tally)
    best: float | None = None
    best_epoch: int | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "epoch": self.epoch,
            "step_in_epoch": self.step_in_epoch,
            "global_step": self.global_step,
            "tally": self.tally.to_list(),
            "best": self.best,
            "best_epoch": self.best_epoch,
        }

    @staticmethod
    def from_json(data: dict[str, Any]) -> Progress:
        return Progress(
            data["epoch"],
            data["step_in_epoch"],
            data["global_step"],
            Tally.from_list(data["tally"]),
            data["best"],
            data["best_epoch"],
        )


def make_optimizer(config: TrainConfig, params: Any) -> torch.optim.Optimizer:
    opt = config.optimizer
    if isinstance(opt, SGD):
        return torch.optim.SGD(
            params,
            lr=opt.lr,
            momentum=opt.momentum,
            nesterov=opt.nesterov,
            weight_decay=opt.weight_decay,
        )
    cls = torch.optim.Adam if opt.name == "adam" else torch.optim.AdamW
    return cls(params, lr=opt.lr, betas=opt.betas, eps=opt.eps, weight_decay=opt.weight_decay)


class Trainer:
    def __init__(
        self,
        network: Network,
        config: TrainConfig,
        data: Data,
        runtime: Runtime,
        log: MetricsLog | None,
        save: Callable[[str, Progress], None],
    ) -> None:
        self.network = network
        self.config = config
        self.data = data
        self.rt = runtime
        self.log = log
        self.save = save
        self.listeners: list[Listener] = []
        network.to(runtime.device)
        network.logits_only = True
        self.model: nn.Module = network
        if runtime.distributed:
            ids = [runtime.device.index] if runtime.device.type == "cuda" else None
            self.model = nn.parallel.DistributedDataParallel(network, device_ids=ids)
        self.optimizer = make_optimizer(config, network.parameters())
        self.loss_fn = nn.CrossEntropyLoss(
            label_smoothing=config.loss.label_smoothing, reduction="sum"
        )
        self.rank = len(network.plan.input_shape) - 1
        self.scale, self.shift = data.normalizer.coefficients(self.rank, runtime.device)
        self.stream: IndexBatches | None = None
        if isinstance(data.train, Samples):  # decoded in loader workers, batch by batch
            self.train_y = data.train.y
            self.stream = IndexBatches(config.batch_size, runtime.rank, runtime.world)
            self.loader = make_loader(data.train, self.stream, runtime.device, persistent=True)
        else:
            self.train_x, self.train_y = self._on_device(data.train.x, data.train.y)
        self.steps_per_epoch = math.ceil(len(self.train_y) / config.batch_size)
        self.total_steps = self.steps_per_epoch * config.epochs
        self.progress = Progress()
        self._stop_requested = False
        self._stop_signal: int = signal.SIGINT

    def _on_device(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Keep the dataset where the model is (one copy, uint8), so a batch is one gather."""
        return x.to(self.rt.device), y.to(self.rt.device)

    def inputs(self, x: torch.Tensor) -> torch.Tensor:
        return torch.addcmul(self.shift, x.float(), self.scale)

    # ----------------------------------------------------------------- state
    def state(self) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
        tensors = checkpoint.model_tensors(self.network)
        optim, optim_meta = checkpoint.optimizer_tensors(self.optimizer)
        tensors.update(optim)
        tensors.update(checkpoint.rng_tensors())
        return tensors, {"progress": self.progress.to_json(), "optimizer": optim_meta}

    def restore(self, ckpt: checkpoint.Checkpoint, origin: Any) -> None:
        checkpoint.load_weights(self.network, ckpt, origin)
        checkpoint.restore_optimizer(self.optimizer, ckpt)
        checkpoint.restore_rng(ckpt)
        self.progress = Progress.from_json(ckpt.meta["progress"])

    # ------------------------------------------------------------------ loop
    def run(self) -> Progress:
        previous = self._install_interrupt_handler()
        try:
            while self.progress.epoch < self.config.epochs:
                self._epoch()
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)
        return self.progress

    def _epoch(self) -> None:
        p = self.progress
        self.model.train()
        order = epoch_order(len(self.train_y), self.config.seed, p.epoch)
        started, seen_at_start = time.perf_counter(), p.tally.seen
        self._emit("epoch_start", {"epoch": p.epoch + 1, "done": p.step_in_epoch})
        for batch in self._batches(order, p.step_in_epoch):
            self._step(*batch)
            if self._stop_requested:
                self.save("last", p)
                raise Interrupted(signum=self._stop_signal)
            if self.config.checkpoint_every and p.global_step % self.config.checkpoint_every == 0:
                self.save("last", p)
        elapsed = time.perf_counter() - started
        self._end_epoch((p.tally.seen - seen_at_start) / max(elapsed, 1e-9))

    def _batches(
        self, order: torch.Tensor, start: int
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor, int]]:
        """This rank's ``(x, y)`` of each global batch from batch ``start`` on, and its size."""
        if self.stream is None:
            for idx in batches(order, self.config.batch_size, start):
                local = shard(idx, self.rt.rank, self.rt.world).to(self.rt.device)
                yield self.train_x[local], self.train_y[local], len(idx)
            return
        assert isinstance(self.data.train, Samples)
        self.stream.set_epoch(order, start)
        for n_global, (x, y, bad) in zip(self.stream.global_sizes(), self.loader, strict=True):
            settle(bad, self.data.train)
            dev = self.rt.device
            yield x.to(dev, non_blocking=True), y.to(dev, non_blocking=True), n_global

    def _step(self, x_raw: torch.Tensor, y: torch.Tensor, n_global: int) -> None:
        """One optimisation step on this rank's part of a global batch of ``n_global``."""
        p = self.progress
        x = self.inputs(x_raw)
        lr = self._set_hyperparameters(p.global_step)
        out = self.model(x)
        loss_sum = self.loss_fn(out, y)
        # Each rank's summed loss over the global batch size, times world (DDP averages
        # gradients): the update is exactly the single-process mean over the global batch.
        (loss_sum * (self.rt.world / n_global)).backward()
        correct_here = (out.argmax(1) == y).sum().to(loss_sum.dtype)
        stats = torch.stack([loss_sum.detach(), correct_here, loss_sum.new_tensor(len(y))])
        loss_value, correct, n_seen = self.rt.sum(stats.tolist())  # n_seen < n_global: skipped
        if not math.isfinite(loss_value):
            self.optimizer.zero_grad(set_to_none=True)
            raise TrainingError(
                f"the loss became {loss_value} at epoch {p.epoch + 1}, step {p.step_in_epoch + 1} "
                f"(lr {lr:.3g}); training stopped and nothing was saved after the last checkpoint",
                "lower the learning rate (--lr), add batchnorm, or check the data for NaNs",
            )
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        p.tally.add(loss_value, correct, int(n_seen))
        p.step_in_epoch += 1
        p.global_step += 1
        self._emit(
            "step",
            {
                "loss": loss_value / n_global,
                "acc": correct / n_global,
                "lr": lr,
                "epoch": p.epoch + 1,
                "step": p.step_in_epoch,
            },
        )
        if self.log is not None and p.global_step % self.config.log_every == 0:
            self.log.write(
                {
                    "type": "step",
                    "epoch": p.epoch + 1,
                    "step": p.global_step,
                    "loss": loss_value / n_global,
                    "acc": correct / n_global,
                    "lr": lr,
                }
            )

    def _set_hyperparameters(self, step: int) -> float:
        c = self.config
        lr = learning_rate(c.schedule, c.optimizer.lr, step, self.steps_per_epoch, self.total_steps)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
            if "betas" in group:
                group["betas"] = (
                    momentum(c.schedule, group["betas"][0], step, self.total_steps),
                    group["betas"][1],
                )
            elif group.get("momentum"):
                group["momentum"] = momentum(c.schedule, group["momentum"], step, self.total_steps)
        return lr

    def _end_epoch(self, images_per_s: float) -> None:
        p = self.progress
        record: dict[str, Any] = {
            "type": "epoch",
            "epoch": p.epoch + 1,
            "step": p.global_step,
            "train_loss": p.tally.mean_loss,
            "train_acc": p.tally.accuracy,
            "lr": self.optimizer.param_groups[0]["lr"],
            "images_per_s": images_per_s,
        }
        if self.data.val is not None:
            val = self.evaluate(self.data.val, self.data.val.y)
            record.update(val_loss=val.mean_loss, val_acc=val.accuracy)
        metric = record.get("val_acc", record["train_acc"])
        improved = p.best is None or metric > p.best
        if improved:
            p.best, p.best_epoch = metric, p.epoch + 1
        if self.log is not None:
            self.log.write(record)
        p.epoch += 1
        p.step_in_epoch = 0
        p.tally = Tally()
        self.save("last", p)
        if improved:
            self.save("best", p)
        self._emit("epoch_end", record)

    # ------------------------------------------------------------ evaluation
    @torch.no_grad()
    def evaluate(self, x: Part, y: torch.Tensor, classes: int | None = None) -> Tally:
        return evaluate(
            self.network,
            x,
            y,
            self.inputs,
            self.loss_fn,
            self.rt,
            self.config.eval_batch_size or max(self.config.batch_size * 4, 256),
            classes,
        )[0]

    # ------------------------------------------------------------- signals
    def _install_interrupt_handler(self) -> dict[int, Any]:
        """Ctrl-C, SIGTERM and SIGHUP: checkpoint at the next step boundary, then stop."""
        if not self.rt.is_main and self.rt.distributed:
            return {}

        def handler(signum: int, frame: FrameType | None) -> None:
            self._stop_requested = True
            self._stop_signal = signum
            signals.immediate(signum)  # a second one: now

        previous: dict[int, Any] = {}
        for signum in signals.STOP:
            try:
                previous[signum] = signal.signal(signum, handler)
            except ValueError:  # not in the main thread
                break
        return previous

    def _emit(self, event: str, data: dict[str, Any]) -> None:
        for listener in self.listeners:
            listener(event, data)


@torch.no_grad()
def evaluate(
    network: Network,
    x: Part | torch.Tensor,
    y: torch.Tensor,
    prepare: Callable[[torch.Tensor], torch.Tensor],
    loss_fn: nn.Module,
    rt: Runtime,
    batch_size: int,
    classes: int | None = None,
) -> tuple[Tally, torch.Tensor | None]:
    """Loss/accuracy (and a confusion matrix when ``classes`` is given) over ``x, y``
    (or a split, in memory or streamed, given as ``x``), each rank taking its share;
    the totals are summed over ranks."""
    was_training = network.training
    network.eval()
    mine = torch.arange(len(y)).tensor_split(rt.world)[rt.rank]
    stats = torch.zeros(3, dtype=torch.float64)
    k = classes or 0
    confusion = torch.zeros((k, k), dtype=torch.int64) if k else None
    part = Split(x, y, (), "") if isinstance(x, torch.Tensor) else x
    for x_raw, yb in eval_batches(part, mine, batch_size, rt.device):
        xb = prepare(x_raw)
        out = network(xb)
        pred = out.argmax(1)
        stats += torch.tensor(
            [loss_fn(out, yb).item(), (pred == yb).sum().item(), len(yb)], dtype=torch.float64
        )
        if confusion is not None:
            flat = (yb * k + pred).cpu()
            confusion += torch.bincount(flat, minlength=k * k).view(k, k)
    network.train(was_training)
    total = rt.sum(stats.tolist())
    if confusion is not None:
        confusion = rt.sum_tensor(confusion)
    return Tally(*total), confusion
