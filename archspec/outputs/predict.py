"""Classify images with a trained run: PNG/JPEG files (Pillow) and IDX files of images.

Images are converted to the spec's channels (grey "L" or "RGB"), resized to its H×W
(bilinear, as image-folder training does) and normalised with the run's own
normaliser, exactly as the training batches were. Each image inside an IDX file
(``N×H×W`` or ``N×C×H×W``) is one input. Probabilities are the softmax of the
network's logits (a final softmax/log_softmax layer is skipped, not applied twice).
Only safetensors checkpoints are read.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from archspec.data.idx import GZIP_MAGIC, IDX_TYPES, read_idx
from archspec.data.images import MODES, decode_image
from archspec.errors import DataError, UsageError
from archspec.shapes.plan import format_shape
from archspec.text import terminal

if TYPE_CHECKING:
    from archspec.train.evaluate import Restored

BATCH = 256


@dataclass(frozen=True)
class Prediction:
    """The top classes of one input, most probable first."""

    input: str  # "digit.png", or "images.idx[3]" for the fourth image of an IDX file
    top: tuple[tuple[str, float], ...]  # (class name, probability)

    def as_dict(self) -> dict[str, Any]:
        return {
            "input": self.input,
            "top": [{"class": name, "probability": p} for name, p in self.top],
        }

    def text(self) -> str:
        """One terminal line: file and class names (from checkpoints, image folders) escaped."""
        best = "  ".join(f"{terminal(name)} ({p:.2%})" for name, p in self.top)
        return f"{terminal(self.input)}: {best}"


def is_idx(path: Path) -> bool:
    """An IDX file (raw or gzip) by its magic bytes, not its name."""
    with path.open("rb") as handle:
        head = handle.read(4)
    return head[:2] == GZIP_MAGIC or (
        len(head) == 4 and head[:2] == b"\0\0" and head[2] in IDX_TYPES
    )


def read_image(path: Path, input_shape: tuple[int, ...]) -> np.ndarray:
    """One PNG/JPEG/... image as uint8 ``(1, C, H, W)`` in the spec's channels and size."""
    if len(input_shape) != 3 or input_shape[0] not in MODES:
        raise DataError(
            f"{path}: an image can feed only a [C, H, W] input with C = 1 or 3, but "
            f"the network takes {format_shape(input_shape)}",
            "give an IDX file of inputs of that shape instead",
        )
    channels, height, width = input_shape
    try:
        pixels = decode_image(path, MODES[channels], (width, height))
    except DataError as exc:
        raise DataError(exc.message, "give a PNG or JPEG image, or an IDX file of images") from None
    return pixels.reshape(height, width, channels).transpose(2, 0, 1)[None]


def read_idx_inputs(path: Path, input_shape: tuple[int, ...]) -> np.ndarray:
    """Every item of an IDX file as ``(N, *input_shape)``; ``N×H×W`` gains the grey channel."""
    array = read_idx(path)
    if array.shape[1:] == input_shape:
        return array
    if input_shape[0] == 1 and array.shape[1:] == input_shape[1:]:
        return array[:, None]
    raise DataError(
        f"{path}: the IDX file holds {format_shape(array.shape)} values, but the "
        f"network takes inputs of {format_shape(input_shape)}",
        f"give N×{format_shape(input_shape)} images (a labels file holds no images)",
    )


def read_inputs(path: Path, input_shape: tuple[int, ...]) -> tuple[list[str], np.ndarray]:
    """The names and ``(N, *input_shape)`` values of one file's inputs."""
    if not path.is_file():
        raise DataError(f"{path}: no such image file", "check the path")
    try:
        idx = is_idx(path)
    except OSError as exc:
        raise DataError(
            f"{path}: cannot read the file: {exc.strerror or exc}", "check the path"
        ) from None
    if not idx:
        return [str(path)], read_image(path, input_shape)
    values = read_idx_inputs(path, input_shape)
    return [f"{path}[{i}]" for i in range(len(values))], values


def probabilities(restored: Restored, values: np.ndarray) -> np.ndarray:
    """Class probabilities ``(N, classes)`` of raw inputs, normalised as in training."""
    import torch

    network = restored.network
    network.logits_only = True  # softmax below; a final softmax layer would be applied twice
    out = []
    with torch.no_grad():
        for start in range(0, len(values), BATCH):
            x = restored.inputs(torch.from_numpy(np.array(values[start : start + BATCH])))  # a copy
            out.append(torch.softmax(network(x).float(), dim=1).cpu().numpy())
    return np.concatenate(out) if out else np.zeros((0, len(restored.classes)), dtype=np.float32)


def top_k(
    names: Sequence[str], probs: np.ndarray, classes: Sequence[str], k: int
) -> list[Prediction]:
    order = np.argsort(-probs, axis=1, kind="stable")[:, :k]
    return [
        Prediction(name, tuple((classes[j], float(row[j])) for j in best))
        for name, row, best in zip(names, probs, order, strict=True)
    ]


def predict(
    target: Path, images: Sequence[Path], *, top: int = 3, which: str = "best", device: str = "cpu"
) -> list[Prediction]:
    """The ``top`` classes of every image (and of every item of every IDX file)."""
    from archspec.train.evaluate import restore

    if top < 1:
        raise UsageError(f"--top must be at least 1; received {top}", "e.g. --top 3")
    restored = restore(target, which, device=device)
    output = restored.spec.plan().output_shape
    if len(output) != 1:
        raise DataError(
            f"{restored.spec.name} outputs {format_shape(output)} per input, not one "
            "score per class",
            "predict needs a classifier (ending in dense: CLASSES)",
        )
    classes = list(restored.classes)  # checked and padded to the outputs by restore()
    results: list[Prediction] = []
    for path in images:
        names, values = read_inputs(path, restored.spec.input_shape)
        results += top_k(names, probabilities(restored, values), classes, min(top, output[0]))
    return results
