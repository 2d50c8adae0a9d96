"""The training data: held in memory (decoded once, indexed directly) or streamed.

In memory, samples stay uint8 (images) or float32 tensors; each batch is gathered
with one index operation and normalised on the fly (``x·a + b`` per channel), so
there is no per-sample Python in the loop and no second float copy of the dataset.

Streamed (image folders, ``.npy`` pairs, ``.tar`` shards too large for memory, or
``data.stream: true``), samples are decoded in ``DataLoader`` workers from the
very same index batches: the order is ``epoch_order(seed, epoch)``, each rank
reads its contiguous part of every global batch, and a resumed run starts at the
batch it stopped at — so streaming and in-memory training see identical batches.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from archspec.data import load_split
from archspec.data.load import Split
from archspec.data.splits import parse_split, select
from archspec.data.stream import (
    BadSample,
    Loading,
    Samples,
    as_built,
    is_streamable,
    open_samples,
)
from archspec.errors import DataError, printable
from archspec.language.train import DataConfig

STATS_CHUNK = 4096
STATS_SAMPLES = 10_000  # a streamed split's normalisation statistics come from this many
STREAM_BYTES = 2 << 30  # auto: stream a split whose decoded size exceeds this ...
STREAM_MEMORY_SHARE = 4  # ... or a quarter of the available memory
MAX_WORKERS = 8
Part = Split | Samples  # one split, in memory or streamed


@dataclass(frozen=True)
class Normalizer:
    """``x → x·scale + shift`` per channel: ``(x/255 - mean)/std`` for uint8 images."""

    mean: tuple[float, ...]
    std: tuple[float, ...]
    scale_uint8: bool

    def coefficients(self, rank: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        shape = (1, len(self.mean), *([1] * rank))
        mean = torch.tensor(self.mean, dtype=torch.float32, device=device).view(shape)
        std = torch.tensor(self.std, dtype=torch.float32, device=device).view(shape)
        unit = 1 / 255 if self.scale_uint8 else 1.0
        return unit / std, -mean / std

    def to_json(self) -> dict[str, object]:
        return {"mean": list(self.mean), "std": list(self.std), "scale_uint8": self.scale_uint8}

    @staticmethod
    def from_json(data: dict[str, object]) -> Normalizer:
        mean = data["mean"]
        std = data["std"]
        assert isinstance(mean, list) and isinstance(std, list)
        return Normalizer(tuple(mean), tuple(std), bool(data["scale_uint8"]))


def channel_stats(x: torch.Tensor) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean and std of ``x`` (N, C, ...), in float64, a chunk at a time."""
    channels = x.shape[1]
    total = torch.zeros(channels, dtype=torch.float64)
    squares = torch.zeros(channels, dtype=torch.float64)
    count = 0
    for start in range(0, len(x), STATS_CHUNK):
        chunk = (
            x[start : start + STATS_CHUNK].to(torch.float64).transpose(0, 1).reshape(channels, -1)
        )
        total += chunk.sum(dim=1)
        squares += (chunk * chunk).sum(dim=1)
        count += chunk.shape[1]
    mean = total / count
    std = (squares / count - mean * mean).clamp_min(1e-12).sqrt()
    return tuple(mean.tolist()), tuple(std.tolist())


def stream_stats(
    chunks: Iterable[torch.Tensor],
) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean and std over batches (N, C, ...) in float64, one batch in memory."""
    total = squares = torch.zeros(0, dtype=torch.float64)
    count = 0
    for x in chunks:
        chunk = x.to(torch.float64).transpose(0, 1).reshape(x.shape[1], -1)
        if not count:
            total = squares = torch.zeros(x.shape[1], dtype=torch.float64)
        total = total + chunk.sum(dim=1)
        squares = squares + (chunk * chunk).sum(dim=1)
        count += chunk.shape[1]
    if not count:
        raise DataError("no training sample could be decoded", "check the data files")
    mean = total / count
    std = (squares / count - mean * mean).clamp_min(1e-12).sqrt()
    return tuple(mean.tolist()), tuple(std.tolist())


def make_normalizer(train: Part, mode: str, seed: int = 0) -> Normalizer:
    if isinstance(train, Samples):
        is_uint8, channels = train.itemsize == 1, train.sample_shape[0]
    else:
        is_uint8, channels = train.x.dtype == torch.uint8, train.x.shape[1]
    if mode == "none":
        return Normalizer((0.0,) * channels, (1.0,) * channels, is_uint8)
    if isinstance(train, Samples):  # a seeded random sample, a batch at a time
        count = min(len(train), STATS_SAMPLES)
        picked = torch.randperm(len(train), generator=torch.Generator().manual_seed(seed))[:count]
        cpu = torch.device("cpu")
        mean, std = stream_stats(
            x for x, _ in stream_batches(train, picked.sort().values, 256, cpu)
        )
    else:
        mean, std = channel_stats(train.x)
    if is_uint8:
        mean, std = tuple(m / 255 for m in mean), tuple(s / 255 for s in std)
    return Normalizer(mean, tuple(s if s > 1e-6 else 1.0 for s in std), is_uint8)


@dataclass(frozen=True)
class Data:
    train: Part
    val: Part | None
    test: Part | None
    normalizer: Normalizer
    skipped: list[BadSample] = field(default_factory=list)  # bad files left out (skip)

    @property
    def streaming(self) -> bool:
        return isinstance(self.train, Samples)


def default_workers() -> int:
    """Loader workers per training process: its share of the cores minus one, at most 8."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    per_process = (cores or 1) // max(int(os.environ.get("LOCAL_WORLD_SIZE", "1")), 1)
    return max(0, min(MAX_WORKERS, per_process - 1))


def available_memory() -> int | None:
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def should_stream(choice: str | bool, decoded_bytes: int) -> bool:
    """``stream: auto`` streams what would take over 2 GiB or a quarter of the free memory."""
    if isinstance(choice, bool):
        return choice
    free = available_memory()
    limit = STREAM_BYTES if free is None else min(STREAM_BYTES, free // STREAM_MEMORY_SHARE)
    return decoded_bytes > limit


def _open_stream(
    config: DataConfig, path: Path, expr: str, shape: tuple[int, ...], skipped: list[BadSample]
) -> Part:
    name, start, stop = parse_split(expr)
    samples = open_samples(path, name, shape)
    chosen = select(len(samples), name, start, stop, str(path))
    if len(chosen) != len(samples):
        samples = samples.subset(np.arange(chosen.start, chosen.stop), f"{samples.origin} {expr}")
    workers = config.workers if config.workers is not None else default_workers()
    samples.loading = Loading(workers, config.prefetch, config.on_bad_file)
    samples.skipped = skipped
    if should_stream(config.stream, samples.decoded_bytes):
        return samples
    return materialize(samples, skipped)


def _data_path(config: DataConfig, base: Path | None) -> Path | None:
    if config.path is None:
        return None
    path = Path(config.path).expanduser()
    return base / path if not path.is_absolute() and base is not None else path


def load_part(
    config: DataConfig,
    split: str,
    input_shape: tuple[int, ...],
    base: Path | None,
    data_dir: Path | None,
    download: bool,
    skipped: list[BadSample] | None = None,
) -> Part:
    """Split ``split`` of the data ``config`` names: streamed or in memory (see prepare)."""
    path = _data_path(config, base)
    if path is not None and config.dataset is None and is_streamable(path):
        return _open_stream(config, path, split, input_shape, [] if skipped is None else skipped)
    if config.stream is True:
        raise DataError(
            f"data.stream is true, but {path or config.dataset} is read whole: streaming reads "
            "image folders, x_NAME.npy/y_NAME.npy pairs and .tar shards",
            "set data.stream: auto, or convert the data to .npy pairs",
        )
    return load_split(
        dataset=config.dataset,
        path=path,
        split=split,
        input_shape=input_shape,
        data_dir=data_dir,
        download=download,
    )


def holdout(split: Part, fraction: float, seed: int) -> tuple[Part, Part]:
    """Split off ``fraction`` of ``split`` at random (seeded) as a validation set."""
    n = len(split.y)
    n_val = round(n * fraction)
    if n_val < 1 or n_val >= n:
        raise DataError(
            f"val: {fraction} of {n} examples leaves {n_val} for validation and "
            f"{n - n_val} for training",
            "choose a fraction that leaves both non-empty",
        )
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    val_idx, train_idx = order[:n_val].sort().values, order[n_val:].sort().values
    return _subset(split, train_idx, "train"), _subset(split, val_idx, "val")


def _subset(split: Part, idx: torch.Tensor, role: str) -> Part:
    if isinstance(split, Samples):
        return split.subset(idx.numpy(), f"{split.origin} ({role} part)")
    return Split(split.x[idx], split.y[idx], split.classes, f"{split.origin} ({role} part)")


def prepare(
    config: DataConfig,
    input_shape: tuple[int, ...],
    seed: int,
    *,
    base: Path | None,
    data_dir: Path | None = None,
    download: bool = True,
) -> Data:
    """Load the train/val/test splits the spec asks for, each decoded once or streamed."""
    skipped: list[BadSample] = []
    train = load_part(config, config.train, input_shape, base, data_dir, download, skipped)
    val: Part | None = None
    if isinstance(config.val, str):
        val = load_part(config, config.val, input_shape, base, data_dir, download, skipped)
    elif config.val > 0:
        train, val = holdout(train, config.val, seed)
    test = (
        load_part(config, config.test, input_shape, base, data_dir, download, skipped)
        if config.test
        else None
    )
    return Data(train, val, test, make_normalizer(train, config.normalize, seed), skipped)


def epoch_order(n: int, seed: int, epoch: int) -> torch.Tensor:
    """The shuffled sample order of ``epoch``: a function of (seed, epoch) only, so a
    resumed or distributed run sees exactly the batches an uninterrupted one sees."""
    return torch.randperm(n, generator=torch.Generator().manual_seed(seed * 100_003 + epoch))


def batches(order: torch.Tensor, batch_size: int, start: int = 0) -> Iterator[torch.Tensor]:
    """Global batches of indices from batch number ``start`` on (the last may be smaller)."""
    for first in range(start * batch_size, len(order), batch_size):
        yield order[first : first + batch_size]


def shard(indices: torch.Tensor, rank: int, world: int) -> torch.Tensor:
    """This rank's contiguous part of a global batch (sizes differ by at most one)."""
    return indices.tensor_split(world)[rank]


# ------------------------------------------------------------------ streaming
def _worker_init(worker_id: int) -> None:
    torch.set_num_threads(1)  # decoding is per-sample Python + Pillow: one thread per worker


class IndexBatches:
    """The loader's batch sampler: this rank's part of each global batch of one epoch.

    ``set_epoch`` (like ``DistributedSampler.set_epoch``) chooses the order and the
    batch to start at; the order is ``epoch_order(seed, epoch)`` — the in-memory order.
    """

    def __init__(self, batch_size: int, rank: int, world: int) -> None:
        self.batch_size, self.rank, self.world = batch_size, rank, world
        self.order = torch.empty(0, dtype=torch.int64)
        self.start = 0

    def set_epoch(self, order: torch.Tensor, start: int) -> None:
        self.order, self.start = order, start

    def global_sizes(self) -> list[int]:
        return [len(idx) for idx in batches(self.order, self.batch_size, self.start)]

    def __iter__(self) -> Iterator[list[int]]:
        for idx in batches(self.order, self.batch_size, self.start):
            yield shard(idx, self.rank, self.world).tolist()

    def __len__(self) -> int:
        return len(self.global_sizes())


def make_loader(
    samples: Samples, sampler: Iterable[list[int]], device: torch.device, *, persistent: bool
) -> torch.utils.data.DataLoader[Any]:
    """A DataLoader over ``samples`` reading the index lists ``sampler`` yields."""
    loading = samples.loading
    workers = loading.workers
    return torch.utils.data.DataLoader(
        samples,
        batch_sampler=sampler,
        num_workers=workers,
        collate_fn=as_built,
        pin_memory=device.type == "cuda",
        persistent_workers=persistent and workers > 0,
        prefetch_factor=loading.prefetch if workers > 0 else None,
        worker_init_fn=_worker_init if workers > 0 else None,
    )


def settle(bad: list[BadSample], samples: Samples) -> None:
    """Stop at the first bad file (``on_bad_file: error``) or warn and count it (``skip``)."""
    for item in bad:
        if samples.loading.on_bad_file == "error":
            raise DataError(
                item.reason,
                "fix or remove the file, or set data.on_bad_file: skip to leave it out",
            )
        samples.skipped.append(item)
        print(printable(f"warning: skipped {item.reason}"), file=sys.stderr)


def stream_batches(
    samples: Samples,
    positions: torch.Tensor,
    batch_size: int,
    device: torch.device,
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """``(x, y)`` on ``device`` for ``positions`` of ``samples`` in order (evaluation)."""
    chunks = [positions[i : i + batch_size].tolist() for i in range(0, len(positions), batch_size)]
    for x, y, bad in make_loader(samples, chunks, device, persistent=False):
        settle(bad, samples)
        yield x.to(device, non_blocking=True), y.to(device, non_blocking=True)


def materialize(samples: Samples, skipped: list[BadSample]) -> Split:
    """Decode every sample once (in the loader's workers) into one in-memory Split."""
    samples.skipped = skipped
    x = torch.empty((len(samples), *samples.sample_shape), dtype=samples.dtype)
    y = torch.empty(len(samples), dtype=torch.int64)
    filled = 0
    cpu = torch.device("cpu")
    for xb, yb in stream_batches(samples, torch.arange(len(samples)), 256, cpu):
        x[filled : filled + len(yb)] = xb
        y[filled : filled + len(yb)] = yb
        filled += len(yb)
    if filled == 0:
        raise DataError(f"{samples.origin}: every file failed to decode", "check the files")
    return Split(x[:filled], y[:filled], samples.classes, samples.origin)


def part_bytes(part: Part) -> int:
    """Memory the split holds in this process (a streamed one: none to speak of)."""
    return 0 if isinstance(part, Samples) else part.x.nbytes


def eval_batches(
    part: Part, positions: torch.Tensor, batch_size: int, device: torch.device
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Batches ``(x, y)`` on ``device`` of the samples at ``positions``, in order."""
    if isinstance(part, Samples):
        yield from stream_batches(part, positions, batch_size, device)
        return
    for first in range(0, len(positions), batch_size):
        idx = positions[first : first + batch_size].to(part.x.device)
        yield part.x[idx].to(device), part.y[idx].to(device)
