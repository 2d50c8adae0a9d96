"""Reading ``.npz`` archives (numpy, never pickle).

Two layouts:

* Keras' ``mnist.npz``: ``x_train, y_train, x_test, y_test`` → splits "train" and
  "test" (any ``x_NAME``/``y_NAME`` pair makes split NAME);
* ``x, y`` → the single split "all".

An optional ``classes`` array of strings names the classes; otherwise they are
"0".."K-1" with K the largest label in the file plus one (at most 100,000). Only the
requested split's arrays (and the small label arrays) are decompressed, and only after
their ``.npy`` headers, checked against the zip entries' sizes and the memory available,
say they fit (a crafted header or a zip bomb is refused before anything is inflated).
"""

from __future__ import annotations

import math
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from archspec.data.arrays import check_memory, class_names
from archspec.errors import DataError, one_of

BOMB_FLOOR = 64 << 20  # entries inflating to more than 64 MiB must be real data...
MAX_RATIO = 100  # ...compressed at most 100:1 (image data: ~2-10:1; deflate tops at ~1030:1)
LAYOUTS = "keys x_train, y_train, x_test, y_test (Keras' mnist.npz) or x, y"


@dataclass(frozen=True)
class NpzSplit:
    """One split of an archive: samples, labels and the file's class names."""

    x: np.ndarray
    y: np.ndarray
    classes: tuple[str, ...]
    x_from: str  # "PATH[x_train]", for messages
    y_from: str


def _splits(keys: set[str]) -> dict[str, tuple[str, str]]:
    """Split name → (x key, y key) for every complete pair of keys."""
    found = {"all": ("x", "y")} if {"x", "y"} <= keys else {}
    for key in sorted(keys):
        name = key.removeprefix("x_")
        if key.startswith("x_") and f"y_{name}" in keys:
            found[name] = (key, f"y_{name}")
    return found


def _zip(archive: np.lib.npyio.NpzFile) -> zipfile.ZipFile:
    assert archive.zip is not None  # open until the `with archive` block ends
    return archive.zip


def _member(archive: np.lib.npyio.NpzFile, key: str) -> zipfile.ZipInfo:
    names = _zip(archive).namelist()
    return _zip(archive).getinfo(f"{key}.npy" if f"{key}.npy" in names else key)


def declared_bytes(archive: np.lib.npyio.NpzFile, key: str, path: Path) -> int:
    """The bytes array ``key`` will take, from its ``.npy`` header alone (nothing is
    inflated but the header). The header must agree with the zip entry's own size, so a
    header that declares 58 TiB, or a zip bomb whose entry inflates past its array, is
    refused here, before any allocation."""
    info = _member(archive, key)
    try:
        with _zip(archive).open(info) as handle:
            version = np.lib.format.read_magic(handle)
            reader = {
                (1, 0): np.lib.format.read_array_header_1_0,
                (2, 0): np.lib.format.read_array_header_2_0,
            }.get(version)
            if reader is None:
                raise ValueError(f"unsupported .npy format version {version}")
            shape, _, dtype = reader(handle)
            header = handle.tell()
    except (ValueError, OSError, zipfile.BadZipFile, EOFError, SyntaxError) as error:
        raise DataError(
            f"{path}: array '{key}' has no valid .npy header ({error})", "write the file again"
        ) from None
    if dtype.hasobject:
        raise DataError(
            f"{path}: array '{key}' cannot be read without pickle (it holds Python objects)",
            "save plain numeric arrays (np.savez with numbers, not Python objects)",
        )
    nbytes = math.prod(shape) * dtype.itemsize
    if info.file_size > BOMB_FLOOR and info.file_size > MAX_RATIO * max(info.compress_size, 1):
        raise DataError(
            f"{path}: array '{key}' would inflate from {info.compress_size:,} compressed bytes "
            f"to {info.file_size:,} (more than {MAX_RATIO}:1): refused as a zip bomb",
            "save real data with np.savez (uncompressed) or np.savez_compressed",
        )
    if header + nbytes != info.file_size:
        raise DataError(
            f"{path}: array '{key}' declares shape {list(shape)} of {dtype} ({nbytes:,} bytes) "
            f"but its zip entry holds {info.file_size - header:,} bytes",
            "the file is corrupt or crafted: write it again with np.savez",
        )
    return nbytes


def _array(archive: np.lib.npyio.NpzFile, key: str, path: Path) -> np.ndarray:
    check_memory(declared_bytes(archive, key, path), str(path), f"array '{key}'")
    try:
        return np.asarray(archive[key])
    except ValueError as error:
        raise DataError(
            f"{path}: array '{key}' cannot be read without pickle ({error})",
            "save plain numeric arrays (np.savez with numbers, not Python objects)",
        ) from None
    except (OSError, zipfile.BadZipFile, EOFError) as error:
        raise DataError(
            f"{path}: array '{key}' is corrupt: {error}", "write the file again"
        ) from None


def _classes(
    archive: np.lib.npyio.NpzFile, pairs: dict[str, tuple[str, str]], path: Path
) -> tuple[str, ...]:
    if "classes" in archive.files:
        names = _array(archive, "classes", path)
        if names.ndim != 1 or names.dtype.kind != "U":
            raise DataError(
                f"{path}: 'classes' must be a 1-D array of strings, got dtype {names.dtype}",
                "save it as np.array(['cat', 'dog'])",
            )
        return tuple(str(name) for name in names)
    labels = [_array(archive, y_key, path) for _, y_key in pairs.values()]
    return class_names(labels, f"{path}[{', '.join(y for _, y in pairs.values())}]")


def read_npz(path: Path, split: str) -> NpzSplit:
    """The arrays of ``split`` in the archive at ``path``."""
    try:
        archive = np.load(path, allow_pickle=False)
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as error:
        raise DataError(f"{path}: cannot read .npz archive: {error}", "check the path") from None
    if not isinstance(archive, np.lib.npyio.NpzFile):
        raise DataError(f"{path}: is a single .npy array, not a .npz archive", f"save {LAYOUTS}")
    with archive:
        pairs = _splits(set(archive.files))
        if not pairs:
            raise DataError(
                f"{path}: no samples/labels pair among keys {sorted(archive.files)}",
                f"save the arrays with {LAYOUTS}",
            )
        if split not in pairs:
            raise DataError(
                f"{path}: has no split '{split}': its splits are {one_of(pairs)}",
                f"write e.g. split: {next(iter(pairs))}",
            )
        x_key, y_key = pairs[split]
        total = sum(declared_bytes(archive, key, path) for key in (x_key, y_key))
        check_memory(total, str(path), f"split '{split}'")  # before inflating anything
        x, y = _array(archive, x_key, path), _array(archive, y_key, path)
        classes = _classes(archive, pairs, path)
        return NpzSplit(x, y, classes, f"{path}[{x_key}]", f"{path}[{y_key}]")
