"""IDX reader: round trips, and every malformed-file path is a DataError naming the file."""

from __future__ import annotations

import gzip
import re
from pathlib import Path

import numpy as np
import pytest
import torch

from archspec.data import load_split
from archspec.data.idx import read_idx, write_idx
from archspec.errors import DataError

DTYPES = ["uint8", "int8", "int16", "int32", "float32", "float64"]


def at(path: Path) -> str:
    """An anchored regex prefix for messages that start with ``path``."""
    return f"^{re.escape(str(path))}: "


@pytest.mark.parametrize("compress", [False, True], ids=["raw", "gz"])
@pytest.mark.parametrize("dtype", DTYPES)
def test_round_trip(tmp_path: Path, dtype: str, compress: bool) -> None:
    offset = 0 if dtype == "uint8" else 7  # negatives for the signed types
    array = (np.arange(2 * 3 * 4) - offset).astype(dtype).reshape(2, 3, 4)
    path = tmp_path / "a.idx"
    write_idx(path, array, compress=compress)
    got = read_idx(path)
    assert got.dtype == np.dtype(dtype) and got.dtype.isnative
    np.testing.assert_array_equal(got, array)
    assert got.flags.writeable


def test_gzip_is_detected_by_content_not_name(tmp_path: Path) -> None:
    raw, packed = tmp_path / "x.gz", tmp_path / "x.raw"
    write_idx(raw, np.arange(5, dtype=np.uint8))
    write_idx(packed, np.arange(5, dtype=np.uint8), compress=True)
    np.testing.assert_array_equal(read_idx(raw), read_idx(packed))


def test_header_bytes_are_big_endian(tmp_path: Path) -> None:
    path = tmp_path / "labels"
    path.write_bytes(bytes([0, 0, 0x0B, 1, 0, 0, 0, 2, 0x01, 0x02, 0xFF, 0xFE]))
    np.testing.assert_array_equal(read_idx(path), [0x0102, -2])


def test_wrong_magic(tmp_path: Path) -> None:
    path = tmp_path / "x.idx"
    path.write_bytes(b"PK\x03\x04rest")
    pattern = at(path) + r"not an IDX file: the magic number is 50 4b 03 04, expected 00 00"
    with pytest.raises(DataError, match=pattern):
        read_idx(path)


@pytest.mark.parametrize("code", [0x07, 0x0A])
def test_unknown_type_code(tmp_path: Path, code: int) -> None:
    path = tmp_path / "x.idx"
    path.write_bytes(bytes([0, 0, code, 1, 0, 0, 0, 1, 0]))
    with pytest.raises(DataError, match=at(path) + "not an IDX file"):
        read_idx(path)


def test_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "empty"
    path.write_bytes(b"")
    with pytest.raises(DataError, match=at(path) + r"not an IDX file: .*nothing \(empty file\)"):
        read_idx(path)


def test_truncated_header(tmp_path: Path) -> None:
    path = tmp_path / "x.idx"
    path.write_bytes(bytes([0, 0, 8, 3, 0, 0, 0, 9]))
    with pytest.raises(
        DataError, match=at(path) + "truncated IDX header: expected 16 bytes, found 8"
    ):
        read_idx(path)


@pytest.mark.parametrize("compress", [False, True], ids=["raw", "gz"])
def test_truncated_data(tmp_path: Path, compress: bool) -> None:
    path = tmp_path / "x.idx"
    payload = bytes([0, 0, 8, 2, 0, 0, 0, 3, 0, 0, 0, 4]) + bytes(10)  # needs 12 data bytes
    path.write_bytes(gzip.compress(payload) if compress else payload)
    pattern = at(path) + r"truncated IDX file: shape \(3, 4\) needs 24 bytes, found 22"
    with pytest.raises(DataError, match=pattern):
        read_idx(path)


def test_trailing_bytes(tmp_path: Path) -> None:
    path = tmp_path / "x.idx"
    path.write_bytes(bytes([0, 0, 8, 1, 0, 0, 0, 2, 1, 2, 3]))
    with pytest.raises(DataError, match=at(path) + "IDX file is longer than its header says"):
        read_idx(path)


def test_bad_gzip_stream(tmp_path: Path) -> None:
    path = tmp_path / "x.gz"
    path.write_bytes(b"\x1f\x8b\x08\x00garbage-not-deflate" * 3)
    with pytest.raises(DataError, match=at(path) + "bad gzip stream"):
        read_idx(path)


def test_cut_gzip_stream(tmp_path: Path) -> None:
    path = tmp_path / "x.gz"
    write_idx(path, np.arange(4000, dtype=np.int32), compress=True)
    path.write_bytes(path.read_bytes()[:-30])
    with pytest.raises(DataError, match=at(path) + "bad gzip stream"):
        read_idx(path)


def test_huge_declared_size_is_refused_before_reading(tmp_path: Path) -> None:
    path = tmp_path / "bomb"
    path.write_bytes(bytes([0, 0, 0x0E, 3]) + b"\xff\xff\xff\xff" * 3)
    with pytest.raises(DataError, match=at(path) + r"the IDX header declares shape .* more than"):
        read_idx(path)


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.gz"
    with pytest.raises(DataError, match=f"^IDX file not found: {re.escape(str(path))}$"):
        read_idx(path)


def test_directory_is_not_a_file(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=at(tmp_path) + "cannot read IDX file"):
        read_idx(tmp_path)


def write_pair(folder: Path, images: np.ndarray, labels: np.ndarray, split: str = "t10k") -> None:
    """MNIST-named IDX files for ``split`` ("train" or "t10k") in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    write_idx(folder / f"{split}-images-idx3-ubyte.gz", images, compress=True)
    write_idx(folder / f"{split}-labels-idx1-ubyte", labels)


def test_idx_folder_without_a_name(tmp_path: Path) -> None:
    write_pair(tmp_path, np.zeros((6, 2, 3), np.uint8), np.array([0, 1, 2, 3, 4, 1], np.uint8))
    split = load_split(dataset=None, path=tmp_path, split="test[1:]", input_shape=(1, 2, 3))
    assert split.x.shape == (5, 1, 2, 3) and split.x.dtype.is_floating_point is False
    assert split.y.tolist() == [1, 2, 3, 4, 1]
    assert split.classes == ("0", "1", "2", "3", "4")
    assert split.origin.startswith("idx test[1:] from ")
    with pytest.raises(DataError, match=f"^{re.escape(str(tmp_path))} has no split 'train': its"):
        load_split(dataset=None, path=tmp_path, split="train", input_shape=(1, 2, 3))


def test_label_count_mismatch_names_both_files(tmp_path: Path) -> None:
    write_pair(tmp_path, np.zeros((6, 2, 2), np.uint8), np.zeros(5, np.uint8))
    images = tmp_path / "t10k-images-idx3-ubyte.gz"
    labels = tmp_path / "t10k-labels-idx1-ubyte"
    pattern = f"^{re.escape(str(images))} has 6 samples but {re.escape(str(labels))} has 5 labels"
    with pytest.raises(DataError, match=pattern):
        load_split(dataset="mnist", path=tmp_path, split="test", input_shape=(1, 2, 2))


def test_label_out_of_range(tmp_path: Path) -> None:
    write_pair(tmp_path, np.zeros((3, 2, 2), np.uint8), np.array([1, 12, 3], np.uint8))
    labels = tmp_path / "t10k-labels-idx1-ubyte"
    pattern = at(labels) + r"labels must be in \[0, 10\), got 12 at index 1"
    with pytest.raises(DataError, match=pattern):
        load_split(dataset="mnist", path=tmp_path, split="test", input_shape=(1, 2, 2))


def test_float_idx_samples_become_float32(tmp_path: Path) -> None:
    write_pair(tmp_path, np.ones((2, 4), np.float64), np.array([0, 1], np.uint8))
    split = load_split(dataset=None, path=tmp_path, split="test", input_shape=(1, 4))
    assert split.x.dtype == torch.float32 and split.x.shape == (2, 1, 4)
