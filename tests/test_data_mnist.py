"""The real MNIST test set in shared/data/mnist, and Debian's Fashion-MNIST when installed."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch
from realdata import MNIST as MNIST_DIR

from archspec.data import load_split
from archspec.data import resolve as resolve_module
from archspec.errors import DataError

FASHION_DIR = Path("/usr/share/datasets/fashion-mnist")
MNIST_TEST_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]

needs_mnist = pytest.mark.skipif(not MNIST_DIR.is_dir(), reason=f"{MNIST_DIR} is absent")
needs_fashion = pytest.mark.skipif(
    not (FASHION_DIR / "train-images-idx3-ubyte.gz").is_file(),
    reason="apt-get install -y dataset-fashion-mnist to run",
)


def mnist(split: str) -> torch.Tensor:
    return load_split(dataset="mnist", path=MNIST_DIR, split=split, input_shape=(1, 28, 28)).x


@needs_mnist
def test_mnist_test_set() -> None:
    split = load_split(dataset="mnist", path=MNIST_DIR, split="test", input_shape=(1, 28, 28))
    assert split.x.shape == (10000, 1, 28, 28) and split.x.dtype == torch.uint8
    assert split.y.shape == (10000,) and split.y.dtype == torch.int64
    assert split.y.bincount().tolist() == MNIST_TEST_COUNTS
    assert split.classes == tuple("0123456789")
    assert split.x.max() == 255 and split.x.min() == 0
    assert split.origin == f"mnist test from {MNIST_DIR / 't10k-images-idx3-ubyte.gz'}"


@needs_mnist
def test_mnist_slices() -> None:
    head, tail = mnist("test[:8000]"), mnist("test[8000:]")
    assert (len(head), len(tail)) == (8000, 2000)
    assert torch.equal(torch.cat([head, tail]), mnist("test"))
    assert len(mnist("test[-100:]")) == 100


@needs_mnist
def test_explicit_folder_without_train_files_names_the_missing_file() -> None:
    pattern = (
        f"^mnist: train-images-idx3-ubyte.gz is not in any of {re.escape(str(MNIST_DIR))}, "
        "and downloading is off$"
    )
    with pytest.raises(DataError, match=pattern):
        load_split(
            dataset="mnist", path=MNIST_DIR, split="train", input_shape=(1, 28, 28), download=False
        )


@needs_mnist
def test_mnist_wrong_input_shape_says_what_to_write() -> None:
    images = MNIST_DIR / "t10k-images-idx3-ubyte.gz"
    pattern = (
        f"^{re.escape(str(images))}: samples of shape \\[28, 28\\] do not fit the spec's input "
        r"\[1, 32, 32\] \(data shape \[10000, 28, 28\]\)$"
    )
    with pytest.raises(DataError, match=pattern) as caught:
        load_split(dataset="mnist", path=MNIST_DIR, split="test", input_shape=(1, 32, 32))
    assert caught.value.hint.startswith("set `input: [1, 28, 28]` in the spec")


@needs_fashion
def test_fashion_mnist_from_the_system_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("ARCHSPEC_DATA", raising=False)
    monkeypatch.setattr(resolve_module, "SYSTEM_DIRS", (FASHION_DIR.parent,))
    shape = (1, 28, 28)
    train = load_split(dataset="fashion-mnist", path=None, split="train", input_shape=shape)
    test = load_split(
        dataset="fashion-mnist", path=None, split="test", input_shape=shape, download=False
    )
    assert train.x.shape == (60000, 1, 28, 28) and test.x.shape == (10000, 1, 28, 28)
    assert train.y.bincount().tolist() == [6000] * 10
    assert test.y.bincount().tolist() == [1000] * 10
    assert train.classes[0] == "T-shirt/top" and train.classes[-1] == "Ankle boot"
    assert train.origin.startswith(f"fashion-mnist train from {FASHION_DIR}")
