"""``archspec train``: a spec → a run directory with metrics, checkpoints, curves, test results.

Run directory (``runs/<name>-<timestamp>/`` by default)::

    spec.yaml                   the resolved spec (extends merged, overrides applied)
    run.json                    versions, device, data, status, final numbers
    metrics.jsonl               one JSON object per epoch and every ``log_every`` steps
    checkpoints/last.safetensors, checkpoints/best.safetensors
    model.safetensors           final weights only (for export / predict)
    curves.png                  loss and accuracy per epoch
    test.json                   test loss, accuracy and confusion matrix
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import platform
import shutil
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import torch
import yaml
from pydantic import ValidationError

from archspec import __version__
from archspec.api import Spec, load
from archspec.compile.network import Network
from archspec.errors import CheckpointError, DataError, TrainingError, UsageError, WriteError
from archspec.io import write_error, write_text
from archspec.language.load import DEFAULT_MAX_LAYERS
from archspec.language.train import TrainConfig
from archspec.shapes import memory
from archspec.text import slug, terminal
from archspec.train import checkpoint, ema
from archspec.train.augment import with_normalize
from archspec.train.data import Data, part_bytes, prepare
from archspec.train.display import Display
from archspec.train.loop import Interrupted, Progress, Trainer, evaluate
from archspec.train.metrics import MetricsLog, plot_curves
from archspec.train.runtime import Runtime, set_threads, shared_path, start, stop
from archspec.train.support import refuse_unsupported

SKIPPED_SHOWN = 20


@dataclass
class Options:
    """Command-line overrides of the spec's ``train:`` section, and run settings."""

    epochs: int | None = None
    batch_size: int | None = None
    lr: float | None = None
    device: str | None = None
    seed: int | None = None
    threads: int | None = None
    dataset: str | None = None
    data_dir: Path | None = None
    download: bool = True
    out: Path | None = None
    quiet: bool = False
    tensorboard: bool = False
    max_layers: int = DEFAULT_MAX_LAYERS  # the layer limit for the spec (also on --resume)
    argv: list[str] = field(default_factory=list)


def resolve_config(spec: Spec, opts: Options) -> TrainConfig:
    """The spec's training section with the command-line overrides applied and validated."""
    base: dict[str, Any] = spec.train.model_dump() if spec.train is not None else {}
    if not base and opts.dataset is None:
        where = spec.path or spec.name
        raise UsageError(
            f"{where} has no `train:` section",
            "add one (see specs/mnist_cnn.yaml) or pass --dataset mnist",
        )
    if opts.dataset is not None:
        base["data"] = {**base.get("data", {}), "dataset": opts.dataset, "path": None}
    overrides = {
        "epochs": opts.epochs,
        "batch_size": opts.batch_size,
        "device": opts.device,
        "seed": opts.seed,
        "threads": opts.threads,
    }
    base.update({k: v for k, v in overrides.items() if v is not None})
    if opts.lr is not None:
        base["optimizer"] = {**base.get("optimizer", {"name": "adam"}), "lr": opts.lr}
    try:
        return TrainConfig.model_validate(base)
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        where = ".".join(str(p) for p in first["loc"])
        raise UsageError(
            f"invalid training setting {where}: {first['msg']}", "check the command-line overrides"
        ) from None


def resolved_spec(spec: Spec, config: TrainConfig) -> str:
    """The spec as YAML with ``extends`` merged, the final training settings, absolute paths."""
    data = {k: v for k, v in dict(spec.data).items() if k != "extends"}
    train = config.model_dump(mode="json")
    if train["data"]["path"] and spec.path is not None:
        train["data"]["path"] = str((spec.path.parent / train["data"]["path"]).resolve())
    data["name"] = spec.name
    data["train"] = train
    header = f"# resolved by archspec {__version__} from {spec.path or '<string>'}\n"
    return header + yaml.safe_dump(data, sort_keys=False, allow_unicode=True)


def default_run_dir(name: str, root: Path = Path("runs")) -> Path:
    """``runs/<slug>-<timestamp>``, created here so that it is this run's alone: the name
    becomes a safe path component (:func:`archspec.text.slug`: never ``..``, ``/`` or NUL,
    at most 64 characters), and two runs started in the same second get ``-2``, ``-3``…
    (``mkdir`` either creates the directory or fails, so no two processes share one)."""
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    base = f"{slug(name)}-{stamp}"
    for suffix in range(1, 10_000):
        path = root / (base if suffix == 1 else f"{base}-{suffix}")
        try:
            path.mkdir(parents=True)
        except FileExistsError:
            continue
        except OSError as exc:
            hint = "run from a folder you can write, or pass --out DIR"
            raise write_error(path, exc, hint) from None
        return path
    raise UsageError(f"{root} holds 10,000 runs named {base}", "choose another --out")


def check_new_run_dir(path: Path) -> None:
    """A new run never writes into an existing run (nothing is ever overwritten)."""
    if path.exists() and (not path.is_dir() or any(path.iterdir())):
        raise UsageError(
            f"run directory {path} already exists and is not empty",
            f"continue it with --resume {path}, or choose another --out",
        )


class RunLock:
    """An exclusive ``flock`` on the run directory itself, held while a run trains into it,
    so that two ``train`` (or ``--resume``) processes can never write one run directory.
    The kernel drops it when the process ends, however it ends: no stale lock files."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            self.fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
        except OSError as exc:
            raise write_error(path, exc, "check that --out is a directory you can write") from None
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(self.fd)
            raise TrainingError(
                f"run directory {path} is in use by another archspec train process",
                "wait for it to finish, or choose another --out",
            ) from None

    def release(self) -> None:
        # Unlock explicitly before closing: DataLoader workers forked while the run held the
        # lock share its open file description, and closing only our descriptor would leave
        # the lock held until they exit (tests/test_data_stream.py resumes in-process).
        with contextlib.suppress(OSError):
            fcntl.flock(self.fd, fcntl.LOCK_UN)
        with contextlib.suppress(OSError):
            os.close(self.fd)


def claim_run_dir(path: Path, fresh: bool) -> tuple[RunLock, bool]:
    """Create (if needed) and lock a new run's directory; ``fresh`` when
    :func:`default_run_dir` made it just now. Returns the lock and whether the
    directory is ours to remove if the run fails before it starts."""
    created = fresh
    if not fresh:
        try:
            path.mkdir(parents=True)
            created = True
        except FileExistsError:
            pass
        except OSError as exc:
            raise write_error(path, exc, "choose an --out in a folder you can write") from None
    lock = RunLock(path)
    try:
        check_new_run_dir(path)  # again, under the lock
        if not os.access(path, os.W_OK):
            denied = PermissionError(13, "Permission denied")
            raise write_error(path, denied, "choose another --out")
    except BaseException:
        lock.release()
        if created:
            _remove(path, created=True)
        raise
    return lock, created


def _remove(path: Path, *, created: bool) -> None:
    """Undo a run that failed before it started: the directory if this run created it,
    else what it wrote there (it was empty: :func:`check_new_run_dir`)."""
    with contextlib.suppress(OSError):
        if created:
            shutil.rmtree(path)
            return
        for entry in path.iterdir():
            shutil.rmtree(entry) if entry.is_dir() and not entry.is_symlink() else entry.unlink()


@dataclass
class Run:
    """Everything one training run needs, created fresh or rebuilt from a run directory."""

    dir: Path
    spec: Spec
    config: TrainConfig
    spec_text: str
    runtime: Runtime
    data: Data
    network: Network
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def checkpoints(self) -> Path:
        return self.dir / "checkpoints"

    def meta(self) -> dict[str, Any]:
        return {
            "spec": self.spec_text,
            "name": self.spec.name,
            "classes": list(self.data.train.classes),
            "normalizer": self.data.normalizer.to_json(),
            "archspec": __version__,
            "world": self.runtime.world,
        }

    def write_info(self, **updates: Any) -> None:
        self.info.update(updates)
        if self.runtime.is_main:
            write_text(self.dir / "run.json", json.dumps(self.info, indent=2) + "\n")


def _setup(
    spec: Spec, spec_text: str, config: TrainConfig, run_dir: Path, opts: Options, runtime: Runtime
) -> Run:
    threads = set_threads(config.threads, int(os.environ.get("LOCAL_WORLD_SIZE", "1")))
    base = spec.path.parent if spec.path is not None else None
    data = prepare(
        config.data,
        spec.input_shape,
        config.seed,
        base=base,
        data_dir=opts.data_dir,
        download=opts.download,
    )
    data = with_normalize(data, config.augment)  # a `normalize` op's statistics, if any
    _check_classes(spec, data)
    plan = spec.plan()
    free = memory.available_bytes() if runtime.device.type == "cpu" else _cuda_free(runtime)
    memory.check(plan, config, free, str(runtime.device), part_bytes(data.train))
    torch.manual_seed(config.seed)
    network = spec.build()
    torch.manual_seed(config.seed + runtime.rank)  # per-rank dropout streams
    info = {
        "archspec": __version__,
        "torch": torch.__version__,
        "python": platform.python_version(),
        "command": opts.argv,
        "spec": str(spec.path) if spec.path else None,
        "name": spec.name,
        "device": str(runtime.device),
        "world_size": runtime.world,
        "threads": threads,
        "data": {
            "train": data.train.origin,
            "val": data.val.origin if data.val else None,
            "test": data.test.origin if data.test else None,
            "train_examples": len(data.train.y),
            "val_examples": len(data.val.y) if data.val else 0,
            "streaming": data.streaming,
        },
        "classes": list(data.train.classes),
        "status": "running",
        "created": datetime.now().isoformat(timespec="seconds"),
    }
    return Run(run_dir, spec, config, spec_text, runtime, data, network, info)


def _cuda_free(runtime: Runtime) -> int | None:
    if runtime.device.type != "cuda":
        return None
    free, _ = torch.cuda.mem_get_info(runtime.device)
    return int(free)


def _check_classes(spec: Spec, data: Data) -> None:
    out = spec.plan().output_shape
    classes = len(data.train.classes)
    if len(out) != 1:
        raise DataError(
            f"{spec.name} outputs {'×'.join(map(str, out))} per example, but "
            "classification needs one score per class",
            f"end the network with `- dense: {classes}`",
        )
    if out[0] < classes:
        raise DataError(
            f"{spec.name} outputs {out[0]} scores but {data.train.origin} has {classes} classes",
            f"make the last dense layer `dense: {classes}`",
        )


def train(spec: Spec, opts: Options) -> Path:
    """Train ``spec`` from scratch; returns the run directory.

    Under torchrun every worker calls this; they agree on one run directory (rank 0's),
    only rank 0 writes (and locks) it, and a group restarted by torchrun resumes its
    checkpoint. A run that fails before training starts leaves no run directory behind.
    """
    refuse_unsupported(spec.plan(), "training")
    config = resolve_config(spec, opts)
    runtime = start(config.device)
    fresh = opts.out is None and runtime.is_main
    chosen = opts.out or (default_run_dir(spec.name) if runtime.is_main else Path())
    run_dir = shared_path(runtime, chosen)
    if restarted() and (run_dir / "checkpoints" / "last.safetensors").is_file():
        return resume(run_dir, opts, runtime)
    lock: RunLock | None = None
    created = False
    if runtime.is_main:
        lock, created = claim_run_dir(run_dir, fresh)
    else:
        check_new_run_dir(run_dir)
    try:
        runtime.barrier()  # every rank has checked before rank 0 writes anything
        text = resolved_spec(spec, config)
        run = _setup(spec, text, config, run_dir, opts, runtime)
        if run.runtime.is_main:
            _create_files(run, text)
    except BaseException:
        if lock is not None:
            _remove(run_dir, created=created)
            lock.release()
        raise
    try:
        return _execute(run, None, opts)
    finally:
        if lock is not None:
            lock.release()


def _create_files(run: Run, text: str) -> None:
    """The run directory's first files: from here on it can be resumed."""
    try:
        run.checkpoints.mkdir(parents=True, exist_ok=True)
        (run.dir / "metrics.jsonl").touch()
    except OSError as exc:
        raise write_error(run.checkpoints, exc) from None
    write_text(run.dir / "spec.yaml", text)
    run.write_info()


def restarted() -> bool:
    """True in a worker group that torchrun restarted after a failure."""
    return int(os.environ.get("TORCHELASTIC_RESTART_COUNT", "0")) > 0


def resume(run_dir: Path, opts: Options, runtime: Runtime | None = None) -> Path:
    """Continue the run in ``run_dir`` from its last checkpoint (from the start when it
    stopped before its first one, e.g. on a full disk)."""
    spec_file = run_dir / "spec.yaml"
    last = run_dir / "checkpoints" / "last.safetensors"
    if not spec_file.is_file():
        raise CheckpointError(
            f"{run_dir} is not a resumable run directory (it has no spec.yaml)",
            "give the directory `archspec train` created",
        )
    # the bounded, validated loader: a run directory is input too
    spec = load(spec_file, max_layers=opts.max_layers)
    text = spec_file.read_text(encoding="utf-8")
    config = resolve_config(spec, Options(device=opts.device, threads=opts.threads))
    runtime = runtime or start(config.device)
    lock = RunLock(run_dir) if runtime.is_main else None
    try:
        run = _setup(spec, text, config, run_dir, opts, runtime)
        info_file = run_dir / "run.json"
        if info_file.is_file():
            run.info = {
                **_read_info(info_file),
                "device": run.info["device"],
                "world_size": runtime.world,
            }
        ckpt = checkpoint.load(last) if last.is_file() else None
        if ckpt is None and runtime.is_main:
            _create_files(run, text)  # nothing was saved: start the run again, in place
            write_text(run_dir / "metrics.jsonl", "")
        return _execute(run, ckpt, opts)
    finally:
        if lock is not None:
            lock.release()


def _read_info(path: Path) -> dict[str, Any]:
    """run.json as a dict; a crafted or damaged one is a CheckpointError, never a crash."""
    try:
        info = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        info = None
    if not isinstance(info, dict):
        raise CheckpointError(
            f"{path} is not the JSON object archspec writes",
            "restore it from a backup, or delete it (it is rewritten on resume)",
        )
    return info


def _execute(run: Run, ckpt: checkpoint.Checkpoint | None, opts: Options) -> Path:
    log = MetricsLog(run.dir / "metrics.jsonl") if run.runtime.is_main else None

    def save(which: str, progress: Progress) -> None:
        if run.runtime.is_main or trainer.sharded:  # FSDP: every rank joins the gather
            tensors, meta = trainer.state()
        if run.runtime.is_main:
            checkpoint.save(
                run.checkpoints / f"{which}.safetensors", tensors, {**meta, **run.meta()}
            )

    trainer = Trainer(run.network, run.config, run.data, run.runtime, log, save, run.dir)
    if opts.tensorboard and run.runtime.is_main:
        from archspec.train.tensorboard import TensorBoard

        trainer.listeners.append(TensorBoard(run.dir / "tensorboard", trainer.steps_per_epoch))
    if ckpt is not None:
        last = run.checkpoints / "last.safetensors"
        checkpoint.check_optimizer(trainer.optimizer, ckpt)  # checked against the spec
        checkpoint.check_progress(ckpt.meta, run.config.epochs, trainer.steps_per_epoch, last)
        trainer.restore(ckpt, last)
        if log is not None:
            log.truncate_after(trainer.progress.global_step, trainer.progress.epoch)
    display = Display(
        trainer.steps_per_epoch,
        run.config.epochs,
        run.config.batch_size,
        opts.quiet or not run.runtime.is_main,
    )
    trainer.listeners.append(display)
    started = time.perf_counter()
    try:
        trainer.run()
    except RuntimeError as exc:
        if not run.runtime.distributed:
            raise
        display.close()  # a collective failed: a peer died or the network went away
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise TrainingError(
            f"lost contact with the other workers ({first})",
            f"the last checkpoint in {run.dir} is intact: resume with --resume {run.dir}",
        ) from None
    except Interrupted as exc:
        display.close()
        _record_skipped(run)
        run.write_info(status="interrupted")
        raise Interrupted(run.dir, exc.signum) from None
    except (TrainingError, WriteError):
        display.close()
        with contextlib.suppress(OSError):  # on a full disk, run.json may not fit either
            run.write_info(status="failed")
        raise
    finally:
        display.close()
    _finish(run, trainer, time.perf_counter() - started, opts)
    stop(run.runtime)
    return run.dir


def _ema_test(run: Run, trainer: Trainer) -> float:
    """Test accuracy of the EMA weights (``ema:``), next to the trained weights'."""
    assert run.data.test is not None and trainer.ema is not None
    tally = trainer.evaluate(run.data.test, run.data.test.y, network=trainer.ema.module)
    return tally.accuracy


def _record_skipped(run: Run) -> None:
    """Bad files left out (data.on_bad_file: skip): how many, and the first few paths."""
    skipped = run.data.skipped
    if skipped or "skipped_files" in run.info.get("data", {}):
        data = run.info.setdefault("data", {})
        data["skipped_files"] = len(skipped)
        data["skipped"] = [item.reason for item in skipped[:SKIPPED_SHOWN]]


def _finish(run: Run, trainer: Trainer, seconds: float, opts: Options) -> None:
    test: dict[str, Any] | None = None
    if run.data.test is not None:
        # a network may score more classes than the data has: the matrix covers its outputs
        names = run.data.train.classes
        classes = max(len(names), run.spec.plan().output_shape[0])
        tally, confusion = evaluate(
            run.network,
            run.data.test,
            run.data.test.y,
            trainer.inputs,
            trainer.loss_fn,
            run.runtime,
            max(run.config.batch_size * 4, 256),
            classes,
            run.config.tta,
        )
        assert confusion is not None
        test = {
            "split": run.data.test.origin,
            "examples": int(tally.seen),
            "loss": tally.mean_loss,
            "accuracy": tally.accuracy,
            "classes": [
                *run.data.train.classes,
                *map(str, range(len(run.data.train.classes), classes)),
            ],
            "confusion": confusion.tolist(),
        }
    if trainer.ema is not None and test is not None:
        test["ema_accuracy"] = _ema_test(run, trainer)
    weights = trainer.state()[0] if trainer.sharded else checkpoint.model_tensors(run.network)
    if not run.runtime.is_main:
        return
    if trainer.ema is not None:
        checkpoint.save(run.dir / "model_ema.safetensors", ema.weights(trainer.ema), run.meta())
    checkpoint.save(
        run.dir / "model.safetensors",
        {
            k[len(checkpoint.MODEL) :]: v
            for k, v in weights.items()
            if k.startswith(checkpoint.MODEL)
        },
        run.meta(),
    )
    if test is not None:
        write_text(run.dir / "test.json", json.dumps(test, indent=2) + "\n")
    records = trainer.log.records if trainer.log is not None else []
    plot_curves(records, run.dir / "curves.png", terminal(run.spec.name))
    p = trainer.progress
    _record_skipped(run)
    run.write_info(
        status="completed",
        seconds=round(seconds, 1),
        best_epoch=p.best_epoch,
        best_metric=p.best,
        test_accuracy=test["accuracy"] if test else None,
        stopped_early=p.stop.stopped,
    )
    if not opts.quiet:
        from archspec.train.summary import print_summary

        print_summary(run.dir, run.spec.name, records, test, p, seconds, sys.stdout)
