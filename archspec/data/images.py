"""Image folders, decoded once with Pillow into uint8 arrays.

Two layouts::

    ROOT/CLASS/*.png                 → the single split "all"
    ROOT/train/CLASS/*, ROOT/test/CLASS/*  → splits "train" and "test"

Classes are the sorted class-folder names (the union over train and test, so
an index means the same class in both). Hidden files and folders (``.name``)
are skipped; every other file in a class folder must be an image Pillow can
decode. Images are converted to "L" (C == 1) or "RGB" (C == 3) and resized
bilinearly to the spec's H×W when their size differs.

With OpenCV installed (``pip install 'archspec[fast-decode]'``), a PNG that needs
neither (8-bit grey for "L", 8-bit RGB for "RGB", already H×W, as its header says)
is decoded by OpenCV's libpng instead: the same pixels (PNG is lossless; the tests
hold the two equal), ~3.5× faster on small images, where Pillow's per-file Python
dominates. Everything else, and any file OpenCV cannot read, goes through Pillow,
which also words the errors.
"""

from __future__ import annotations

import functools
import os
import struct
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from archspec.data.arrays import check_memory
from archspec.errors import DataError

MODES = {1: "L", 3: "RGB"}
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
PNG_COLOUR = {"L": 0, "RGB": 2}  # the IHDR colour type each mode reads without conversion


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


@functools.cache
def _opencv() -> Any:
    """OpenCV when installed (the fast-decode extra), else None."""
    try:
        import cv2
    except ImportError:
        return None
    cv2.setNumThreads(1)  # one decode per call; loader workers are the parallelism
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)  # Pillow words errors
    return cv2


def fast_png(path: str | Path, mode: str, size: tuple[int, int]) -> np.ndarray | None:
    """An 8-bit PNG already in ``mode`` and ``size`` (its IHDR says so, read before
    anything is decoded), decoded by OpenCV; None where Pillow must do it."""
    name = os.fspath(path)  # a str, not a Path: this runs per sample in loader workers
    if _opencv() is None or not name.lower().endswith(".png"):
        return None
    try:
        with open(name, "rb") as handle:
            data = handle.read()
    except OSError:
        return None
    return fast_png_bytes(data, mode, size)


def fast_png_bytes(data: bytes, mode: str, size: tuple[int, int]) -> np.ndarray | None:
    """:func:`fast_png` of a PNG file's bytes."""
    cv2 = _opencv()
    if cv2 is None or len(data) < 33 or data[:8] != PNG_SIGNATURE or data[12:16] != b"IHDR":
        return None
    width, height, depth, colour = struct.unpack(">IIBB", data[16:26])
    if (width, height) != size or depth != 8 or colour != PNG_COLOUR[mode]:
        return None
    image = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_UNCHANGED)
    expected = (height, width) if mode == "L" else (height, width, 3)
    if image is None or image.dtype != np.uint8 or image.shape != expected:
        return None
    return image if mode == "L" else np.ascontiguousarray(image[..., ::-1])  # BGR → RGB


def decode_image(path: str | Path, mode: str, size: tuple[int, int]) -> np.ndarray:
    """One image as uint8 (H, W) for "L" or (H, W, 3) for "RGB"; ``size`` is (W, H)."""
    fast = fast_png(path, mode, size)
    if fast is not None:
        return fast
    try:
        with Image.open(path) as image:
            image.load()
            converted = image if image.mode == mode else image.convert(mode)
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
