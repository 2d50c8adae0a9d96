"""Image folders, decoded once with Pillow into uint8 arrays.

Two layouts::

    ROOT/CLASS/*.png                 → the single split "all"
    ROOT/train/CLASS/*, ROOT/test/CLASS/*  → splits "train" and "test"

Classes are the sorted class-folder names (the union over train and test, so
an index means the same class in both). Hidden files and folders (``.name``)
are skipped; every other file in a class folder must be an image Pillow can
decode. Images are converted to "L" (C == 1) or "RGB" (C == 3) and resized
bilinearly to the spec's H×W when their size differs.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from archspec.data.arrays import check_memory
from archspec.errors import DataError

MODES = {1: "L", 3: "RGB"}


def _visible(folder: Path, *, dirs: bool) -> list[Path]:
    """Sorted non-hidden subfolders (``dirs``) or files of ``folder``."""
    entries = (entry for entry in folder.iterdir() if not entry.name.startswith("."))
    return sorted(entry for entry in entries if (entry.is_dir() if dirs else entry.is_file()))


def is_image_folder(folder: Path) -> bool:
    """True when ``folder`` has at least one visible subfolder."""
    return bool(_visible(folder, dirs=True))


def image_splits(root: Path) -> dict[str, Path]:
    """Split name → folder of class folders."""
    train, test = root / "train", root / "test"
    if train.is_dir() and test.is_dir() and is_image_folder(train) and is_image_folder(test):
        return {"train": train, "test": test}
    return {"all": root}


def image_classes(split_folders: Sequence[Path]) -> tuple[str, ...]:
    """Sorted class-folder names over all splits."""
    names = {entry.name for folder in split_folders for entry in _visible(folder, dirs=True)}
    return tuple(sorted(names))


def list_images(folder: Path, classes: Sequence[str]) -> tuple[list[Path], np.ndarray]:
    """Every image file under ``folder/CLASS/`` with its class index (int64)."""
    files: list[Path] = []
    labels: list[int] = []
    for index, name in enumerate(classes):
        class_folder = folder / name
        found = _visible(class_folder, dirs=False) if class_folder.is_dir() else []
        files.extend(found)
        labels.extend([index] * len(found))
    return files, np.asarray(labels, dtype=np.int64)


def image_mode(input_shape: tuple[int, ...], root: Path) -> str:
    """The Pillow mode for the spec's channels; image folders need ``[C, H, W]``, C 1 or 3."""
    if len(input_shape) == 3 and input_shape[0] in MODES:
        return MODES[input_shape[0]]
    shown = ", ".join(str(size) for size in input_shape)
    raise DataError(
        f"{root}: an image folder needs a 2-D input [C, H, W] with C = 1 (grey) or 3 (RGB), "
        f"the spec's input is [{shown}]",
        "set e.g. `input: [3, 32, 32]` in the spec",
    )


def decode_image(path: Path, mode: str, size: tuple[int, int]) -> np.ndarray:
    """One image as uint8 (H, W) for "L" or (H, W, 3) for "RGB"; ``size`` is (W, H)."""
    try:
        with Image.open(path) as image:
            image.load()
            converted = image.convert(mode)
        if converted.size != size:
            converted = converted.resize(size, Image.Resampling.BILINEAR)
        return np.asarray(converted, dtype=np.uint8)
    except (OSError, ValueError, SyntaxError, EOFError, struct.error) as error:
        reason = str(error) or type(error).__name__
        raise DataError(
            f"{path}: cannot decode image: {reason}",
            "remove the file, replace it with a valid image, or hide it (name it .NAME)",
        ) from None
    except Image.DecompressionBombError as error:
        raise DataError(f"{path}: {error}", "shrink the image before training") from None


def decode_images(files: Sequence[Path], input_shape: tuple[int, ...], root: Path) -> np.ndarray:
    """Decode ``files`` into uint8 ``(N, *input_shape)`` channels first."""
    mode = image_mode(input_shape, root)
    channels, height, width = input_shape
    check_memory(len(files) * channels * height * width, str(root), f"{len(files):,} images")
    batch = np.empty((len(files), height, width, channels), dtype=np.uint8)  # (N, H, W, C)
    for index, path in enumerate(files):
        batch[index] = decode_image(path, mode, (width, height)).reshape(height, width, channels)
    return np.ascontiguousarray(batch.transpose(0, 3, 1, 2))  # (N, C, H, W)
