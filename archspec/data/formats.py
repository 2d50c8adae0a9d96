"""Readers for the named datasets that are not IDX: CIFAR binary records, SVHN .mat.

CIFAR-10 binary (``cifar-10-batches-bin/*.bin``): 10,000 records per file of
``<1 label byte><3072 pixel bytes>``; CIFAR-100 binary (``cifar-100-binary/*.bin``):
``<1 coarse label byte><1 fine label byte><3072 pixel bytes>``. The pixels are the
red, then green, then blue 32×32 plane, row-major: a record is already (3, 32, 32).

SVHN cropped digits (``*_32x32.mat``): MATLAB v5 files with ``X`` (32, 32, 3, N)
uint8 and ``y`` (N, 1) where digit 0 is labelled 10. Read with ``scipy.io.loadmat``
(the ``datasets`` extra), which parses the format's data elements; no pickle.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from archspec.errors import DataError

CIFAR_PIXELS = 3 * 32 * 32
MAT_ERRORS = (
    OSError,
    ValueError,
    TypeError,
    IndexError,
    KeyError,
    EOFError,
    struct.error,
    zlib.error,
)


def read_cifar(files: Sequence[Path], label_bytes: int) -> tuple[np.ndarray, np.ndarray]:
    """CIFAR binary record files → images (N, 3, 32, 32) uint8 and labels (N,) uint8.

    ``label_bytes`` is 1 (CIFAR-10) or 2 (CIFAR-100: coarse then fine; the fine one is kept).
    """
    record = label_bytes + CIFAR_PIXELS
    images: list[np.ndarray] = []
    labels: list[np.ndarray] = []
    for path in files:
        data = np.fromfile(path, dtype=np.uint8)
        if data.size == 0 or data.size % record:
            raise DataError(
                f"{path}: {data.size} bytes is not a whole number of {record}-byte CIFAR records",
                "the file is truncated or not a CIFAR binary file: delete it to download it again",
            )
        rows = data.reshape(-1, record)
        labels.append(rows[:, label_bytes - 1])
        images.append(rows[:, label_bytes:].reshape(-1, 3, 32, 32))
    return np.concatenate(images), np.concatenate(labels)


def read_svhn(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """An SVHN ``*_32x32.mat`` → images (N, 3, 32, 32) uint8 and labels (N,) in 0..9."""
    try:
        from scipy.io import loadmat
        from scipy.io.matlab import MatReadError
    except ImportError:
        raise DataError(
            f"{path}: reading SVHN's MATLAB files needs scipy",
            "pip install 'archspec[datasets]'",
        ) from None
    try:
        content = loadmat(str(path), variable_names=("X", "y"))
    except (MatReadError, *MAT_ERRORS) as error:  # scipy's parser on a damaged file
        raise DataError(
            f"{path}: not a readable MATLAB v5 file: {error}",
            "the file is damaged: delete it to download it again",
        ) from None
    x, y = content.get("X"), content.get("y")
    if not isinstance(x, np.ndarray) or x.ndim != 4 or x.shape[:3] != (32, 32, 3):
        shape = getattr(x, "shape", None)
        raise DataError(
            f"{path}: X must be a (32, 32, 3, N) array, got {shape}", "give SVHN's *_32x32.mat"
        )
    if not isinstance(y, np.ndarray) or y.size != x.shape[3]:
        raise DataError(f"{path}: y must hold one label per image", "give SVHN's *_32x32.mat")
    labels = y.reshape(-1).astype(np.int64) % 10  # 10 → 0
    images = np.ascontiguousarray(x.transpose(3, 2, 0, 1)).astype(np.uint8)  # (N, C, H, W)
    return images, labels
