""".npz archives: both layouts, channel handling, dtypes, and refusing pickles."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import torch

from archspec.data import load_split
from archspec.errors import DataError


def keras_npz(path: Path) -> Path:
    """Keras' mnist.npz layout with 4 train and 2 test 3×3 images."""
    rng = np.random.default_rng(0)
    np.savez(
        path,
        x_train=rng.integers(0, 256, (4, 3, 3), dtype=np.uint8),
        y_train=np.array([0, 1, 2, 3], np.uint8),
        x_test=rng.integers(0, 256, (2, 3, 3), dtype=np.uint8),
        y_test=np.array([3, 0], np.int64),
    )
    return path


def load(path: Path, split: str, shape: tuple[int, ...]) -> tuple[torch.Tensor, torch.Tensor]:
    got = load_split(dataset=None, path=path, split=split, input_shape=shape)
    return got.x, got.y


def test_keras_layout(tmp_path: Path) -> None:
    path = keras_npz(tmp_path / "mnist.npz")
    split = load_split(dataset=None, path=path, split="train[1:]", input_shape=(1, 3, 3))
    assert split.x.shape == (3, 1, 3, 3) and split.x.dtype == torch.uint8
    assert split.y.tolist() == [1, 2, 3] and split.y.dtype == torch.int64
    assert split.classes == ("0", "1", "2", "3")
    assert split.origin == f"npz train[1:] from {path}"
    np.testing.assert_array_equal(split.x[:, 0].numpy(), np.load(path)["x_train"][1:])
    assert load(path, "test", (1, 3, 3))[1].tolist() == [3, 0]


def test_keras_layout_with_a_dataset_name_uses_its_classes(tmp_path: Path) -> None:
    path = keras_npz(tmp_path / "mnist.npz")
    split = load_split(dataset="mnist", path=path, split="test", input_shape=(1, 3, 3))
    assert split.classes == tuple("0123456789")


def test_x_y_layout_has_only_all(tmp_path: Path) -> None:
    path = tmp_path / "d.npz"
    np.savez(path, x=np.ones((5, 8), np.float64), y=np.arange(5) % 2)
    x, _ = load(path, "all[-2:]", (1, 8))
    assert x.shape == (2, 1, 8) and x.dtype == torch.float32
    pattern = f"^{re.escape(str(path))}: has no split 'train': its splits are 'all'$"
    with pytest.raises(DataError, match=pattern):
        load(path, "train", (1, 8))


def test_channels_last_is_transposed(tmp_path: Path) -> None:
    path = tmp_path / "rgb.npz"
    x = np.arange(2 * 4 * 5 * 3, dtype=np.uint8).reshape(2, 4, 5, 3)  # (N, H, W, C)
    np.savez(path, x=x, y=np.array([[0], [1]]))  # (N, 1) labels, CIFAR style
    got, y = load(path, "all", (3, 4, 5))
    assert got.shape == (2, 3, 4, 5) and got.is_contiguous()
    np.testing.assert_array_equal(got.numpy(), x.transpose(0, 3, 1, 2))
    assert y.tolist() == [0, 1]


def test_channels_first_is_kept(tmp_path: Path) -> None:
    path = tmp_path / "cf.npz"
    np.savez(path, x=np.zeros((2, 3, 4, 5), np.float32), y=np.zeros(2, np.int32))
    assert load(path, "all", (3, 4, 5))[0].shape == (2, 3, 4, 5)


def test_shape_mismatch_names_file_shapes_and_fix(tmp_path: Path) -> None:
    path = tmp_path / "m.npz"
    np.savez(path, x=np.zeros((2, 32, 32, 3), np.uint8), y=np.zeros(2, np.uint8))
    pattern = (
        f"^{re.escape(str(path))}\\[x\\]: samples of shape \\[32, 32, 3\\] do not fit the "
        r"spec's input \[1, 28, 28\] \(data shape \[2, 32, 32, 3\]\)$"
    )
    with pytest.raises(DataError, match=pattern) as caught:
        load(path, "all", (1, 28, 28))
    assert caught.value.hint.startswith("set `input: [3, 32, 32]` in the spec")


def test_class_names_from_the_archive(tmp_path: Path) -> None:
    path = tmp_path / "c.npz"
    np.savez(path, x=np.zeros((2, 4)), y=np.array([0, 1]), classes=np.array(["cat", "dog", "emu"]))
    split = load_split(dataset=None, path=path, split="all", input_shape=(1, 4))
    assert split.classes == ("cat", "dog", "emu")


@pytest.mark.parametrize(
    ("y", "message"),
    [
        (np.array([0, 5]), r"labels must be in \[0, 3\), got 5 at index 1"),
        (np.array([-1, 0]), r"labels must be in \[0, 3\), got -1 at index 0"),
        (np.eye(2, 3), r"labels must be a 1-D integer array of class indices, got shape \[2, 3\]"),
        (np.array([0.0, 1.0]), "labels must be a 1-D integer array"),
    ],
)
def test_bad_labels(tmp_path: Path, y: np.ndarray, message: str) -> None:
    path = tmp_path / "l.npz"
    np.savez(path, x=np.zeros((2, 4)), y=y, classes=np.array(["a", "b", "c"]))
    with pytest.raises(DataError, match=f"^{re.escape(str(path))}\\[y\\]: {message}"):
        load(path, "all", (1, 4))


def test_count_mismatch(tmp_path: Path) -> None:
    path = tmp_path / "n.npz"
    np.savez(path, x=np.zeros((3, 4)), y=np.zeros(2, np.int64))
    where = re.escape(str(path))
    pattern = f"^{where}\\[x\\] has 3 samples but {where}\\[y\\] has 2 labels$"
    with pytest.raises(DataError, match=pattern):
        load(path, "all", (1, 4))


def test_pickled_objects_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "p.npz"
    np.savez(path, x=np.array([{"a": 1}, None], dtype=object), y=np.zeros(2, np.int64))
    with pytest.raises(DataError, match=f"^{re.escape(str(path))}: array 'x' cannot be read"):
        load(path, "all", (1, 4))


def test_not_a_zip_and_wrong_keys(tmp_path: Path) -> None:
    junk = tmp_path / "junk.npz"
    junk.write_bytes(b"not a zip at all")
    with pytest.raises(DataError, match=f"^{re.escape(str(junk))}: cannot read .npz archive"):
        load(junk, "all", (1, 4))
    keys = tmp_path / "keys.npz"
    np.savez(keys, images=np.zeros(2), labels=np.zeros(2))
    pattern = (
        f"^{re.escape(str(keys))}: no samples/labels pair among keys \\['images', 'labels'\\]$"
    )
    with pytest.raises(DataError, match=pattern):
        load(keys, "all", (1, 4))


def test_unsupported_and_missing_paths(tmp_path: Path) -> None:
    csv = tmp_path / "data.csv"
    csv.write_text("1,2\n")
    with pytest.raises(DataError, match=f"^{re.escape(str(csv))}: unsupported data file"):
        load(csv, "all", (1, 2))
    missing = tmp_path / "missing.npz"
    with pytest.raises(DataError, match=f"^data path not found: {re.escape(str(missing))}$"):
        load(missing, "all", (1, 2))
    with pytest.raises(DataError, match=f"^{re.escape(str(tmp_path))}: unsupported data folder"):
        load(tmp_path, "all", (1, 2))
