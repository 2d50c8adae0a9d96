"""Reading ``.npz`` archives (numpy, never pickle).

Two layouts:

* Keras' ``mnist.npz``: ``x_train, y_train, x_test, y_test`` → splits "train" and
  "test" (any ``x_NAME``/``y_NAME`` pair makes split NAME);
* ``x, y`` → the single split "all".

An optional ``classes`` array of strings names the classes; otherwise they are
"0".."K-1" with K the largest label in the file plus one. Only the requested
split's arrays (and the small label arrays) are decompressed.
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from archspec.data.arrays import class_names
from archspec.errors import DataError, one_of

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


def _array(archive: np.lib.npyio.NpzFile, key: str, path: Path) -> np.ndarray:
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
    return class_names([_array(archive, y_key, path) for _, y_key in pairs.values()])


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
        x, y = _array(archive, x_key, path), _array(archive, y_key, path)
        classes = _classes(archive, pairs, path)
        return NpzSplit(x, y, classes, f"{path}[{x_key}]", f"{path}[{y_key}]")
