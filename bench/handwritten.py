"""The contenders archspec is held against: the seed network written by hand in plain
PyTorch, and a plain PyTorch training loop (Adam, optional one-cycle, uint8 data in
memory normalised per batch).

Run as a script it trains the hand-written network on the configuration of a spec's
``train:`` section (archspec only reads the hyper-parameters) and writes JSON::

    python bench/handwritten.py specs/fashion_mnist_cnn.yaml --out result.json
"""

from __future__ import annotations

import argparse
import gzip
import json
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn


def seed_network(softmax: bool = False) -> nn.Sequential:
    """specs/mnist_cnn.yaml by hand: 1×28×28 → 10 (``padding=2`` is 'same' for 5×5)."""
    layers: list[nn.Module] = [
        nn.Conv2d(1, 32, 5, padding=2),
        nn.ReLU(),
        nn.MaxPool2d(2),  # 32×14×14
        nn.Conv2d(32, 64, 5, padding=2),
        nn.ReLU(),
        nn.MaxPool2d(2),  # 64×7×7
        nn.Flatten(),
        nn.Linear(3136, 1024),
        nn.ReLU(),
        nn.Dropout(0.5),
        nn.Linear(1024, 10),
    ]
    if softmax:
        layers.append(nn.Softmax(dim=1))
    return nn.Sequential(*layers)


def copy_weights(source: nn.Module, target: nn.Module) -> None:
    """Give ``target`` the weights of ``source`` (same layers in the same order)."""
    src, dst = source.state_dict(), target.state_dict()
    if len(src) != len(dst):
        raise ValueError(f"{len(src)} tensors to copy into {len(dst)}")
    mapped = {}
    for (name, value), (key, slot) in zip(src.items(), dst.items(), strict=True):
        if value.shape != slot.shape:
            raise ValueError(f"{name} {tuple(value.shape)} does not fit {key} {tuple(slot.shape)}")
        mapped[key] = value.clone()
    target.load_state_dict(mapped)


# ----------------------------------------------------------------------- data
FILES = {
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
}


def read_idx(path: Path) -> np.ndarray:
    """An IDX file (gzipped or not) as a uint8 array: images (N, H, W), labels (N,)."""
    raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    dims = raw[3]
    shape = [int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(dims)]
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * dims).reshape(shape)


def find_dataset(name: str, data_dir: Path | None) -> Path:
    """Where the IDX files of ``name`` are (the places archspec looks, in its order)."""
    candidates = [data_dir] if data_dir else []
    if os.environ.get("ARCHSPEC_DATA"):
        candidates.append(Path(os.environ["ARCHSPEC_DATA"]) / name)
    candidates += [
        Path.home() / ".cache/archspec/datasets" / name,
        Path("/usr/share/datasets") / name,
    ]
    for folder in candidates:
        if folder is not None and (folder / FILES["test"][0]).is_file():
            return folder
    raise FileNotFoundError(f"no IDX files for {name} in {', '.join(map(str, candidates))}")


def load_split(folder: Path, expression: str) -> tuple[torch.Tensor, torch.Tensor]:
    """``train``, ``test`` or a slice such as ``test[:8000]``: uint8 (N, 1, 28, 28), int64 (N,)."""
    split, _, rest = expression.partition("[")
    images, labels = (read_idx(folder / f) for f in FILES[split])
    x = torch.from_numpy(images.copy()).unsqueeze(1)
    y = torch.from_numpy(labels.astype(np.int64))
    if rest:
        start, _, stop = rest.rstrip("]").partition(":")
        part = slice(int(start) if start else None, int(stop) if stop else None)
        x, y = x[part], y[part]
    return x, y


# ---------------------------------------------------------------- the loop
@dataclass
class Config:
    """The hyper-parameters of a spec's ``train:`` section that the loop uses."""

    batch_size: int
    epochs: int
    lr: float
    onecycle: bool
    seed: int

    @staticmethod
    def from_spec(train: Any) -> Config:
        onecycle = train.schedule.name == "onecycle"
        lr = (train.schedule.max_lr or train.optimizer.lr) if onecycle else train.optimizer.lr
        return Config(train.batch_size, train.epochs, lr, onecycle, train.seed)


class PlainLoop:
    """A plain PyTorch training loop, as one would write it by hand."""

    def __init__(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, config: Config) -> None:
        self.model, self.x, self.y, self.config = model, x, y, config
        xf = x.float() / 255  # mean/std of the training split, once
        self.mean, self.std = xf.mean().item(), xf.std().item()
        self.optimizer = torch.optim.Adam(model.parameters(), lr=config.lr)
        self.steps_per_epoch = math.ceil(len(y) / config.batch_size)
        self.scheduler = None
        if config.onecycle:
            self.scheduler = torch.optim.lr_scheduler.OneCycleLR(
                self.optimizer, max_lr=config.lr, total_steps=self.steps_per_epoch * config.epochs
            )
        self.loss_fn = nn.CrossEntropyLoss()
        self.generator = torch.Generator().manual_seed(config.seed)
        self.order = torch.empty(0, dtype=torch.int64)
        self.position = 0

    def normalise(self, xb: torch.Tensor) -> torch.Tensor:
        return (xb.float() / 255 - self.mean) / self.std

    def next_batch(self) -> torch.Tensor:
        if self.position >= len(self.order):
            self.order = torch.randperm(len(self.y), generator=self.generator)
            self.position = 0
        idx = self.order[self.position : self.position + self.config.batch_size]
        self.position += self.config.batch_size
        return idx

    def step(self) -> int:
        """One optimizer step on the next batch; returns the batch size."""
        idx = self.next_batch()
        xb, yb = self.normalise(self.x[idx]), self.y[idx]
        self.model.train()
        self.optimizer.zero_grad(set_to_none=True)
        loss = self.loss_fn(self.model(xb), yb)
        loss.backward()
        self.optimizer.step()
        if self.scheduler is not None:
            self.scheduler.step()
        return len(idx)

    @torch.no_grad()
    def accuracy(self, x: torch.Tensor, y: torch.Tensor, batch: int = 512) -> float:
        self.model.eval()
        correct = 0
        for first in range(0, len(y), batch):
            out = self.model(self.normalise(x[first : first + batch]))
            correct += int((out.argmax(1) == y[first : first + batch]).sum())
        return correct / len(y)


def train_reference(spec_path: Path, data_dir: Path | None, epochs: int | None) -> dict[str, Any]:
    """Train the hand-written network on the spec's data and hyper-parameters."""
    import archspec  # only to read the spec's train: section

    train = archspec.load(spec_path).train
    assert train is not None and train.data.dataset is not None
    config = Config.from_spec(train)
    if epochs is not None:
        config.epochs = epochs
    started = time.perf_counter()
    folder = find_dataset(train.data.dataset, data_dir)
    x, y = load_split(folder, train.data.train)
    assert train.data.test is not None
    x_test, y_test = load_split(folder, train.data.test)
    torch.manual_seed(config.seed)
    loop = PlainLoop(seed_network(), x, y, config)
    train_started = time.perf_counter()
    for _ in range(loop.steps_per_epoch * config.epochs):
        loop.step()
    train_s = time.perf_counter() - train_started
    return {
        "accuracy": loop.accuracy(x_test, y_test),
        "epochs": config.epochs,
        "train_examples": len(y),
        "test_examples": len(y_test),
        "train_s": round(train_s, 1),
        "seconds": round(time.perf_counter() - started, 1),
        "threads": torch.get_num_threads(),
        "images_per_s": len(y) * config.epochs / train_s,
    }


def main() -> None:
    p = argparse.ArgumentParser(description="Train the hand-written seed network (reference).")
    p.add_argument("spec", type=Path)
    p.add_argument("--data-dir", type=Path)
    p.add_argument("--epochs", type=int)
    p.add_argument("--out", type=Path, required=True)
    args = p.parse_args()
    result = train_reference(args.spec, args.data_dir, args.epochs)
    args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
