"""The training data held in memory: decoded once, normalised per batch, indexed directly.

Samples stay uint8 (images) or float32 tensors; each batch is gathered with one
index operation and normalised on the fly (``x·a + b`` per channel), so there is
no per-sample Python in the loop and no second float copy of the dataset.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import torch

from archspec.data import load_split
from archspec.data.load import Split
from archspec.errors import DataError
from archspec.language.train import DataConfig

STATS_CHUNK = 4096


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


def make_normalizer(train: Split, mode: str) -> Normalizer:
    is_uint8 = train.x.dtype == torch.uint8
    channels = train.x.shape[1]
    if mode == "none":
        return Normalizer((0.0,) * channels, (1.0,) * channels, is_uint8)
    mean, std = channel_stats(train.x)
    if is_uint8:
        mean, std = tuple(m / 255 for m in mean), tuple(s / 255 for s in std)
    return Normalizer(mean, tuple(s if s > 1e-6 else 1.0 for s in std), is_uint8)


@dataclass(frozen=True)
class Data:
    train: Split
    val: Split | None
    test: Split | None
    normalizer: Normalizer


def _load(
    config: DataConfig,
    split: str,
    input_shape: tuple[int, ...],
    base: Path | None,
    data_dir: Path | None,
    download: bool,
) -> Split:
    path = None
    if config.path is not None:
        path = Path(config.path).expanduser()
        if not path.is_absolute() and base is not None:
            path = base / path
    return load_split(
        dataset=config.dataset,
        path=path,
        split=split,
        input_shape=input_shape,
        data_dir=data_dir,
        download=download,
    )


def holdout(split: Split, fraction: float, seed: int) -> tuple[Split, Split]:
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


def _subset(split: Split, idx: torch.Tensor, role: str) -> Split:
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
    """Load the train/val/test splits the spec asks for, each decoded once."""
    train = _load(config, config.train, input_shape, base, data_dir, download)
    val: Split | None = None
    if isinstance(config.val, str):
        val = _load(config, config.val, input_shape, base, data_dir, download)
    elif config.val > 0:
        train, val = holdout(train, config.val, seed)
    test = (
        _load(config, config.test, input_shape, base, data_dir, download) if config.test else None
    )
    return Data(train, val, test, make_normalizer(train, config.normalize))


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
