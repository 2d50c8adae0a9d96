"""Named datasets beyond MNIST, offline: tiny files in the real formats, served on loopback.

Each dataset is downloaded through the resolution order and MD5 check, read and
checked sample by sample against the arrays the tiny files were made from. The
catalog's real MD5 sums cannot be checked offline; the tests swap in the sums of
the tiny files (and prove a wrong sum is refused).
"""

from __future__ import annotations

import dataclasses
import functools
import gzip
import hashlib
import io
import tarfile
import threading
import zipfile
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import MappingProxyType
from typing import Any

import numpy as np
import pytest

from archspec.data import catalog, load_split
from archspec.data import resolve as resolve_module
from archspec.data.catalog import RemoteFile, SplitFiles
from archspec.data.idx import write_idx
from archspec.errors import DataError

RNG = np.random.default_rng(7)


class QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def www(tmp_path: Path) -> Path:
    root = tmp_path / "www"
    root.mkdir()
    return root


@pytest.fixture
def server(www: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    handler = functools.partial(QuietHandler, directory=str(www))
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{httpd.server_address[1]}/"
    monkeypatch.setenv("ARCHSPEC_MIRRORS", url)
    yield url
    httpd.shutdown()
    httpd.server_close()
    thread.join()


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.delenv("ARCHSPEC_DATA", raising=False)
    monkeypatch.setattr(resolve_module, "SYSTEM_DIRS", (tmp_path / "system",))
    return tmp_path / "xdg" / "archspec" / "datasets"


def md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes(), usedforsecurity=False).hexdigest()


def with_md5s(monkeypatch: pytest.MonkeyPatch, name: str, sums: dict[str, str]) -> None:
    """Swap the catalog's MD5 of each file (or archive) named in ``sums``."""
    dataset = catalog.DATASETS[name]

    def fix(remote: RemoteFile) -> RemoteFile:
        key = remote.archive or remote.name
        return dataclasses.replace(remote, md5=sums.get(key, remote.md5))

    splits = {
        split: SplitFiles(tuple(fix(remote) for remote in files.files))
        for split, files in dataset.splits.items()
    }
    patched = dataclasses.replace(dataset, splits=MappingProxyType(splits))
    monkeypatch.setattr(catalog, "DATASETS", MappingProxyType({**catalog.DATASETS, name: patched}))


def add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))


# ------------------------------------------------------------------ CIFAR
def cifar_records(images: np.ndarray, labels: np.ndarray, coarse: np.ndarray | None) -> bytes:
    """Records ``[coarse] label R-plane G-plane B-plane`` as the binary distributions store them."""
    columns = [labels[:, None].astype(np.uint8), images.reshape(len(images), -1)]
    if coarse is not None:
        columns.insert(0, coarse[:, None].astype(np.uint8))
    return np.concatenate(columns, axis=1).tobytes()


def test_cifar10_binary_is_downloaded_verified_and_decoded(
    www: Path, server: str, cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    images = RNG.integers(0, 256, size=(12, 3, 32, 32), dtype=np.uint8)
    labels = np.arange(12) % 10
    archive = www / "cifar-10-binary.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        for i in range(5):  # two records per training batch
            part = slice(2 * i, 2 * i + 2)
            add(
                tar,
                f"cifar-10-batches-bin/data_batch_{i + 1}.bin",
                cifar_records(images[part], labels[part], None),
            )
        add(
            tar,
            "cifar-10-batches-bin/test_batch.bin",
            cifar_records(images[10:], labels[10:], None),
        )
        add(tar, "cifar-10-batches-bin/batches.meta.txt", b"airplane\n")
    with_md5s(monkeypatch, "cifar10", {"cifar-10-binary.tar.gz": md5(archive)})
    train = load_split(dataset="cifar10", path=None, split="train", input_shape=(3, 32, 32))
    assert np.array_equal(train.x.numpy(), images[:10])
    assert train.y.tolist() == labels[:10].tolist()
    assert train.classes[3] == "cat"
    test = load_split(dataset="cifar10", path=None, split="test", input_shape=(3, 32, 32))
    assert np.array_equal(test.x.numpy(), images[10:])
    # the archive and the extracted members are in the cache: no second download
    assert (cache / "cifar10" / "cifar-10-binary.tar.gz").is_file()
    assert (cache / "cifar10" / "test_batch.bin").is_file()
    archive.unlink()
    again = load_split(dataset="cifar10", path=None, split="test[1:]", input_shape=(3, 32, 32))
    assert np.array_equal(again.x.numpy(), images[11:])


def test_cifar10_extracted_folder_is_read_in_place(tmp_path: Path, cache: Path) -> None:
    images = RNG.integers(0, 256, size=(3, 3, 32, 32), dtype=np.uint8)
    folder = tmp_path / "cifar" / "cifar-10-batches-bin"
    folder.mkdir(parents=True)
    (folder / "test_batch.bin").write_bytes(cifar_records(images, np.array([1, 2, 3]), None))
    got = load_split(
        dataset="cifar10",
        path=tmp_path / "cifar",
        split="test",
        input_shape=(3, 32, 32),
        download=False,
    )
    assert got.y.tolist() == [1, 2, 3]
    assert np.array_equal(got.x.numpy(), images)


def test_cifar100_keeps_the_fine_label(
    www: Path, server: str, cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    images = RNG.integers(0, 256, size=(4, 3, 32, 32), dtype=np.uint8)
    fine, coarse = np.array([99, 0, 42, 7]), np.array([19, 4, 3, 0])
    archive = www / "cifar-100-binary.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        add(tar, "cifar-100-binary/train.bin", cifar_records(images, fine, coarse))
        add(tar, "cifar-100-binary/test.bin", cifar_records(images[:1], fine[:1], coarse[:1]))
    with_md5s(monkeypatch, "cifar100", {"cifar-100-binary.tar.gz": md5(archive)})
    train = load_split(dataset="cifar100", path=None, split="train", input_shape=(3, 32, 32))
    assert train.y.tolist() == [99, 0, 42, 7]
    assert train.classes[99] == "worm" and len(train.classes) == 100
    assert np.array_equal(train.x.numpy(), images)


def test_truncated_cifar_file_is_named(tmp_path: Path, cache: Path) -> None:
    folder = tmp_path / "c"
    folder.mkdir()
    (folder / "test_batch.bin").write_bytes(b"\x01" * 3000)
    with pytest.raises(DataError, match=r"test_batch\.bin: 3000 bytes is not a whole number"):
        load_split(
            dataset="cifar10", path=folder, split="test", input_shape=(3, 32, 32), download=False
        )


def test_a_corrupted_archive_download_is_refused(
    www: Path, server: str, cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    archive = www / "cifar-10-binary.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        add(tar, "cifar-10-batches-bin/test_batch.bin", b"\0" * 3073)
    with_md5s(monkeypatch, "cifar10", {"cifar-10-binary.tar.gz": "0" * 32})
    with pytest.raises(DataError, match=r"checksum mismatch .*expected MD5 0{32}"):
        load_split(dataset="cifar10", path=None, split="test", input_shape=(3, 32, 32))
    assert not (cache / "cifar10" / "cifar-10-binary.tar.gz").exists()


# ------------------------------------------------------------------ SVHN
def test_svhn_mat_files_map_label_10_to_digit_0(
    www: Path, server: str, cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    savemat = pytest.importorskip("scipy.io").savemat
    images = RNG.integers(0, 256, size=(5, 3, 32, 32), dtype=np.uint8)
    y = np.array([[10], [1], [9], [10], [5]], dtype=np.uint8)
    for split in ("train", "test"):  # MATLAB v5, as the real files: X (32, 32, 3, N)
        savemat(www / f"{split}_32x32.mat", {"X": images.transpose(2, 3, 1, 0), "y": y})
    sums = {f"{split}_32x32.mat": md5(www / f"{split}_32x32.mat") for split in ("train", "test")}
    with_md5s(monkeypatch, "svhn", sums)
    got = load_split(dataset="svhn", path=None, split="test", input_shape=(3, 32, 32))
    assert got.y.tolist() == [0, 1, 9, 0, 5]
    assert np.array_equal(got.x.numpy(), images)
    with pytest.raises(DataError, match=r"svhn: extra_32x32\.mat is not in any of"):
        load_split(dataset="svhn", path=None, split="extra", input_shape=(3, 32, 32))


def test_a_damaged_mat_file_is_named(tmp_path: Path, cache: Path) -> None:
    pytest.importorskip("scipy.io")
    (tmp_path / "test_32x32.mat").write_bytes(b"MATLAB 5.0 MAT-file" + b"\0" * 20)
    with pytest.raises(DataError, match=r"test_32x32\.mat: not a readable MATLAB v5 file"):
        load_split(
            dataset="svhn", path=tmp_path, split="test", input_shape=(3, 32, 32), download=False
        )


# ------------------------------------------------------------------ KMNIST, EMNIST
def idx_gz(path: Path, array: np.ndarray) -> None:
    raw = path.with_suffix("")
    write_idx(raw, array)
    path.write_bytes(gzip.compress(raw.read_bytes()))
    raw.unlink()


def test_kmnist_idx_files(
    www: Path, server: str, cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    images = RNG.integers(0, 256, size=(6, 28, 28), dtype=np.uint8)
    labels = np.array([0, 9, 3, 3, 1, 2], dtype=np.uint8)
    idx_gz(www / "t10k-images-idx3-ubyte.gz", images)
    idx_gz(www / "t10k-labels-idx1-ubyte.gz", labels)
    names = ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")
    with_md5s(monkeypatch, "kmnist", {name: md5(www / name) for name in names})
    got = load_split(dataset="kmnist", path=None, split="test", input_shape=(1, 28, 28))
    assert got.y.tolist() == labels.tolist()
    assert got.classes[1] == "ki"
    assert np.array_equal(got.x.numpy()[:, 0], images)


def test_emnist_letters_from_the_zip_transposed_and_counted_from_zero(
    www: Path, server: str, cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    images = RNG.integers(0, 256, size=(4, 28, 28), dtype=np.uint8)
    labels = np.array([1, 26, 5, 1], dtype=np.uint8)  # letters: a = 1 … z = 26
    stage = www / "stage"
    stage.mkdir()
    with zipfile.ZipFile(www / "gzip.zip", "w") as zipped:
        for split in ("train", "test"):
            for what, array in (
                ("images-idx3-ubyte", images.transpose(0, 2, 1)),
                ("labels-idx1-ubyte", labels),
            ):
                name = f"emnist-letters-{split}-{what}.gz"
                idx_gz(stage / name, array)
                zipped.write(stage / name, f"gzip/{name}")
    with_md5s(monkeypatch, "emnist-letters", {"gzip.zip": md5(www / "gzip.zip")})
    got = load_split(dataset="emnist-letters", path=None, split="train", input_shape=(1, 28, 28))
    assert got.y.tolist() == [0, 25, 4, 0]
    assert [got.classes[i] for i in got.y.tolist()] == ["a", "z", "e", "a"]
    assert np.array_equal(got.x.numpy()[:, 0], images)
    assert (cache / "emnist-letters" / "emnist-letters-train-images-idx3-ubyte.gz").is_file()


def test_an_archive_without_the_member_is_a_clear_error(
    www: Path, server: str, cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with zipfile.ZipFile(www / "gzip.zip", "w") as zipped:
        zipped.writestr("gzip/README", "nothing here")
    with_md5s(monkeypatch, "emnist-digits", {"gzip.zip": md5(www / "gzip.zip")})
    with pytest.raises(DataError, match=r"gzip\.zip: has no member gzip/emnist-digits-test-"):
        load_split(dataset="emnist-digits", path=None, split="test", input_shape=(1, 28, 28))


def test_unknown_name_lists_the_new_datasets() -> None:
    with pytest.raises(DataError, match=r"unknown dataset 'cifar': .*cifar10.*svhn"):
        load_split(dataset="cifar", path=None, split="train", input_shape=(3, 32, 32))
