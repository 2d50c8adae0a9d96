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
from contextlib import nullcontext
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
from archspec.language.recipe import FLIP_DIMS
from archspec.language.train import SGD, TrainConfig
from archspec.train import checkpoint
from archspec.train.augment import Augmenter, mixed_loss, with_normalize
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
from archspec.train.ema import EMA
from archspec.train.metrics import MetricsLog, Tally
from archspec.train.precision import Precision, channels_last, compile_failed, compiled, warn
from archspec.train.runtime import Runtime
from archspec.train.schedule import learning_rate, momentum
from archspec.train.stopping import EarlyStopState

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
    stop: EarlyStopState = field(default_factory=EarlyStopState)

    def to_json(self) -> dict[str, Any]:
        return {
            "epoch": self.epoch,
            "step_in_epoch": self.step_in_epoch,
            "global_step": self.global_step,
            "tally": self.tally.to_list(),
            "best": self.best,
            "best_epoch": self.best_epoch,
            "early_stop": self.stop.to_json(),
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
            EarlyStopState.from_json(data.get("early_stop")),
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
        workdir: Path | None = None,
    ) -> None:
        self.network = network
        self.config = config
        data = with_normalize(data, config.augment)
        self.data = data
        self.rt = runtime
        self.log = log
        self.save = save
        self.listeners: list[Listener] = []
        network.to(runtime.device)
        network.logits_only = True
        self.rank = len(network.plan.input_shape) - 1
        self.memory_format = torch.contiguous_format
        if config.channels_last and channels_last(network, len(network.plan.input_shape)):
            self.memory_format = torch.channels_last
        self.ema = EMA(network, config.ema) if config.ema is not None else None
        self.model: nn.Module = network
        self.sharded = runtime.distributed and config.distributed.strategy == "fsdp"
        if self.sharded:
            from archspec.train import fsdp

            fsdp.check_supported(config)
            fsdp.shard(network)
        elif runtime.distributed:
            ids = [runtime.device.index] if runtime.device.type == "cuda" else None
            self.model = nn.parallel.DistributedDataParallel(network, device_ids=ids)
        self.eager = self.model
        self.forward: Callable[..., torch.Tensor] = self.model
        if config.compile:
            cache = workdir / "compile_cache" if workdir is not None else None
            fast = compiled(self.model, cache)  # never `or`: a compiled module has no truth
            if fast is not None:  # value (it forwards len() to a module that has none)
                self.forward = fast
        self.precision = Precision(config.precision, runtime.device)
        self.augment = Augmenter(config.augment, data.normalizer, self.rank)
        self.optimizer = make_optimizer(config, network.parameters())
        self.loss_fn = nn.CrossEntropyLoss(
            label_smoothing=config.loss.label_smoothing, reduction="sum"
        )
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
        """Full tensors and metadata; with FSDP a collective that every rank joins."""
        if self.sharded:
            from archspec.train import fsdp

            tensors = {checkpoint.MODEL + k: v for k, v in fsdp.model_tensors(self.network).items()}
            full = fsdp.optimizer_state(self.network, self.optimizer)
            optim, optim_meta = checkpoint.split_optimizer_state(full)
        else:
            tensors = checkpoint.model_tensors(self.network)
            optim, optim_meta = checkpoint.optimizer_tensors(self.optimizer)
        tensors.update(optim)
        tensors.update(checkpoint.rng_tensors())
        if self.ema is not None:
            tensors.update(self.ema.tensors())
        return tensors, {"progress": self.progress.to_json(), "optimizer": optim_meta}

    def restore(self, ckpt: checkpoint.Checkpoint, origin: Any) -> None:
        if self.sharded:
            from archspec.train import fsdp

            checkpoint.check_optimizer(self.optimizer, ckpt)
            state = checkpoint.optimizer_state(ckpt)
            fsdp.load(self.network, self.optimizer, ckpt.model_state(), state)
        else:
            checkpoint.load_weights(self.network, ckpt, origin)
            checkpoint.restore_optimizer(self.optimizer, ckpt)
        checkpoint.restore_rng(ckpt)
        if self.ema is not None:
            self.ema.restore(ckpt.tensors, origin)
        self.progress = Progress.from_json(ckpt.meta["progress"])

    # ------------------------------------------------------------------ loop
    def run(self) -> Progress:
        previous = self._install_interrupt_handler()
        try:
            while self.progress.epoch < self.config.epochs and not self.progress.stop.stopped:
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
        lr = self._set_hyperparameters(p.global_step)
        stats = torch.zeros(3, dtype=torch.float64)
        micro = list(
            zip(
                x_raw.tensor_split(self.config.accumulate),
                y.tensor_split(self.config.accumulate),
                strict=True,
            )
        )
        for i, (xm, ym) in enumerate(micro):
            # gradients of all but the last micro-batch stay local (no DDP all-reduce)
            last = i == len(micro) - 1
            sync = self._no_sync() if self.rt.distributed and not last else nullcontext()
            with sync:
                stats += self._micro_step(xm, ym, n_global)
        loss_value, correct, n_seen = self.rt.sum(stats.tolist())  # n_seen < n_global: skipped
        if not math.isfinite(loss_value):
            self.optimizer.zero_grad(set_to_none=True)
            raise TrainingError(
                f"the loss became {loss_value} at epoch {p.epoch + 1}, step {p.step_in_epoch + 1} "
                f"(lr {lr:.3g}); training stopped and nothing was saved after the last checkpoint",
                "lower the learning rate (--lr), add batchnorm, or check the data for NaNs",
            )
        self.precision.step(self.optimizer, self.config.clip_grad_norm, self._params)
        self.optimizer.zero_grad(set_to_none=True)
        if self.ema is not None:
            self.ema.update(self.network)
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

    def _micro_step(self, x_raw: torch.Tensor, y_raw: torch.Tensor, n_global: int) -> torch.Tensor:
        """Forward and backward of one micro-batch; returns its (loss sum, correct, size).
        An empty share (a tiny last batch) still runs: every rank joins the collectives."""
        x, y, mixed = self.augment(x_raw, y_raw)
        x = x.contiguous(memory_format=self.memory_format)
        with self.precision.autocast():
            out = self._forward(x)
            loss_sum = mixed_loss(
                self.loss_fn, self.config.loss.label_smoothing, out.float(), y, mixed
            )
        # Each rank's summed loss over the global batch size, times world (DDP averages
        # gradients): the update is exactly the single-process mean over the global batch.
        self.precision.backward(loss_sum * (self.rt.world / n_global))
        correct = (out.argmax(1) == y).sum()
        size = loss_sum.new_tensor(len(y_raw))
        return torch.stack([loss_sum.detach(), correct.to(loss_sum.dtype), size]).double().cpu()

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        try:
            return self.forward(x)
        except Exception as exc:  # torch.compile fails at the first call, in many ways
            if self.forward is self.eager:
                raise
            compile_failed(exc)
            self.forward = self.eager
            out: torch.Tensor = self.eager(x)
            return out

    def _no_sync(self) -> Any:
        """DDP's no_sync; FSDP reduces each micro-batch's gradients (still exact)."""
        ddp: Any = self.model
        return ddp.no_sync() if hasattr(ddp, "no_sync") else nullcontext()

    @property
    def _params(self) -> list[nn.Parameter]:
        return list(self.network.parameters())

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
            if self.ema is not None:
                ema = self.evaluate(self.data.val, self.data.val.y, network=self.ema.module)
                record.update(ema_val_loss=ema.mean_loss, ema_val_acc=ema.accuracy)
        rule = self.config.early_stop
        if rule is not None and rule.metric not in record and p.epoch == 0:
            warn(f"early_stop watches {rule.metric} but there is no validation set; ignored")
        if rule is not None and p.stop.update(rule, record):
            record["early_stop"] = True
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
    def evaluate(
        self,
        x: Part | torch.Tensor,
        y: torch.Tensor,
        classes: int | None = None,
        network: nn.Module | None = None,
    ) -> Tally:
        return evaluate(
            network or self.network,
            x,
            y,
            self.inputs,
            self.loss_fn,
            self.rt,
            self.config.eval_batch_size or max(self.config.batch_size * 4, 256),
            classes,
            self.config.tta,
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
    network: nn.Module,
    x: Part | torch.Tensor,
    y: torch.Tensor,
    prepare: Callable[[torch.Tensor], torch.Tensor],
    loss_fn: nn.Module,
    rt: Runtime,
    batch_size: int,
    classes: int | None = None,
    tta: tuple[str, ...] = (),
) -> tuple[Tally, torch.Tensor | None]:
    """Loss/accuracy (and a confusion matrix when ``classes`` is given) over ``x, y``
    (or a split, in memory or streamed, given as ``x``), each rank taking its share;
    the totals are summed over ranks. ``tta`` (test-time flips, ``hflip``/``vflip``):
    the scores are the log of the class probabilities averaged over the input and
    its flipped copies."""
    was_training = network.training
    network.eval()
    mine = torch.arange(len(y)).tensor_split(rt.world)[rt.rank]
    longest = -(-len(y) // rt.world)  # every rank runs as many batches (FSDP gathers in each)
    stats = torch.zeros(3, dtype=torch.float64)
    k = classes or 0
    confusion = torch.zeros((k, k), dtype=torch.int64) if k else None
    part = Split(x, y, (), "") if isinstance(x, torch.Tensor) else x
    needed, done = -(-longest // batch_size), 0
    for x_raw, yb in eval_batches(part, mine, batch_size, rt.device):
        done += 1
        out = _scores(network, prepare(x_raw), tta)
        pred = out.argmax(1)
        stats += torch.tensor(
            [loss_fn(out, yb).item(), (pred == yb).sum().item(), len(yb)], dtype=torch.float64
        )
        if confusion is not None:
            flat = (yb * k + pred).cpu()
            confusion += torch.bincount(flat, minlength=k * k).view(k, k)
    if done < needed:  # a shorter share: empty batches keep the ranks' collectives in step
        empty = _empty_batch(part, rt.device)
        for _ in range(done, needed):
            _scores(network, prepare(empty), tta)  # as many forwards (FSDP gathers) as the rest
    network.train(was_training)
    total = rt.sum(stats.tolist())
    if confusion is not None:
        confusion = rt.sum_tensor(confusion)
    return Tally(*total), confusion


def _scores(network: nn.Module, x: torch.Tensor, flips: tuple[str, ...]) -> torch.Tensor:
    """The network's logits for ``x``; with test-time ``flips``, the log of the class
    probabilities averaged over ``x`` and its flipped copies (read like logits by a
    cross-entropy loss and an argmax)."""
    if not flips:
        return network(x)  # type: ignore[no-any-return]
    views = [x, *(x.flip(FLIP_DIMS[name]) for name in flips)]
    probs = torch.stack([network(view).float().softmax(1) for view in views]).mean(0)
    return probs.clamp_min(torch.finfo(probs.dtype).tiny).log()


def _empty_batch(part: Part, device: torch.device) -> torch.Tensor:
    """A batch of no samples of ``part``, shaped like its samples."""
    if isinstance(part, Samples):
        return torch.empty((0, *part.sample_shape), dtype=part.dtype, device=device)
    return part.x[:0].to(device)
