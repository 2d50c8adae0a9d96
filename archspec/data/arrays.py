"""Fitting decoded arrays to the spec: channel axis, channels-last, dtypes, labels.

Samples arrive as ``(N, *spatial)`` or ``(N, C, *spatial)`` or channels-last
``(N, *spatial, C)``; the spec's input is channels first ``(C, *spatial)``. All
of it is whole-array numpy work: no per-sample Python loops.
"""

from __future__ import annotations

import numpy as np

from archspec.errors import DataError


def _shape_text(shape: tuple[int, ...]) -> str:
    return "[" + ", ".join(str(size) for size in shape) + "]"


def suggested_input(sample_shape: tuple[int, ...]) -> tuple[int, ...]:
    """The spec input that would fit samples of ``sample_shape`` (one sample, no N).

    >>> suggested_input((28, 28)), suggested_input((32, 32, 3)), suggested_input((3, 32, 32))
    ((1, 28, 28), (3, 32, 32), (3, 32, 32))
    """
    if len(sample_shape) <= 2:
        return (1, *sample_shape)
    if len(sample_shape) == 3 and sample_shape[-1] in (1, 3, 4) and sample_shape[0] > 4:
        return (sample_shape[-1], *sample_shape[:-1])
    return sample_shape


def fit_samples(x: np.ndarray, input_shape: tuple[int, ...], source: str) -> np.ndarray:
    """Reshape ``x`` (N, …) to ``(N, *input_shape)`` channels first, or raise a DataError.

    Accepted: ``(N, *input_shape)`` as is; ``(N, *spatial)`` when C == 1 (a channel
    axis is added); ``(N, *spatial, C)`` channels-last (transposed).
    """
    sample = tuple(int(size) for size in x.shape[1:])
    channels, spatial = input_shape[0], tuple(input_shape[1:])
    if sample == input_shape:
        return x
    if channels == 1 and sample == spatial:
        return x[:, np.newaxis]  # (N, *spatial) → (N, 1, *spatial)
    if sample == (*spatial, channels):
        return np.ascontiguousarray(np.moveaxis(x, -1, 1))  # (N, *spatial, C) → (N, C, *spatial)
    fit = _shape_text(suggested_input(sample))
    raise DataError(
        f"{source}: samples of shape {_shape_text(sample)} do not fit the spec's input "
        f"{_shape_text(input_shape)} (data shape {_shape_text(tuple(x.shape))})",
        f"set `input: {fit}` in the spec, or give data whose samples are "
        f"{_shape_text(input_shape)}, {_shape_text(spatial)} (C = 1) or "
        f"{_shape_text((*spatial, channels))} (channels last)",
    )


def sample_dtype(x: np.ndarray, source: str) -> np.ndarray:
    """uint8 stays uint8 (image data); other real numbers become float32."""
    if x.dtype == np.uint8:
        return x
    if x.dtype.kind in "biuf":
        return x.astype(np.float32)
    raise DataError(
        f"{source}: samples must be numbers, got dtype {x.dtype}",
        "store the samples as uint8 images or as a float array",
    )


def check_counts(samples: int, labels: int, samples_from: str, labels_from: str) -> None:
    """One label per sample, naming where each count came from."""
    if samples == labels:
        return
    raise DataError(
        f"{samples_from} has {samples} samples but {labels_from} has {labels} labels",
        "give exactly one label per sample: the two files must belong together",
    )


def check_labels(y: np.ndarray, num_classes: int, source: str) -> np.ndarray:
    """Labels as int64 ``(N,)`` in ``[0, num_classes)``; ``(N, 1)`` is flattened."""
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim != 1 or y.dtype.kind not in "iu":
        raise DataError(
            f"{source}: labels must be a 1-D integer array of class indices, "
            f"got shape {_shape_text(tuple(y.shape))} and dtype {y.dtype}",
            "store one integer class index per sample (not one-hot vectors)",
        )
    bad = np.flatnonzero((y < 0) | (y >= num_classes))
    if bad.size:
        index = int(bad[0])
        raise DataError(
            f"{source}: labels must be in [0, {num_classes}), got {int(y[index])} at index "
            f"{index} ({bad.size} labels out of range)",
            f"use class indices 0..{num_classes - 1}",
        )
    return y.astype(np.int64)


MAX_CLASSES = 100_000  # unnamed classes "0".."K-1"; ImageNet-21k has 21,841


def class_names(labels: list[np.ndarray], source: str = "the labels") -> tuple[str, ...]:
    """Classes "0".."K-1" where K is the largest label in any array plus one (at least 1).

    K is bounded (``MAX_CLASSES``) before any name is made: one label of 2**64-1 must be
    a clear error, not 5 GB of names."""
    largest = max((int(y.max()) for y in labels if y.size and y.dtype.kind in "iu"), default=0)
    if largest >= MAX_CLASSES:
        raise DataError(
            f"{source}: the largest label is {largest:,}, so the data would have "
            f"{largest + 1:,} classes, more than the limit of {MAX_CLASSES:,}",
            "labels must be class indices 0..K-1; give an npz 'classes' array naming them",
        )
    return tuple(str(index) for index in range(max(largest, 0) + 1))


ALWAYS_FITS = 64 << 20  # smaller data is never refused here (training checks it again)


def check_memory(nbytes: int, source: str, what: str = "its arrays") -> None:
    """Refuse to allocate ``nbytes`` that the machine does not have, before allocating.
    Below ``ALWAYS_FITS`` the cost is bounded anyway; ``archspec train`` then checks the
    data with the network and optimizer (``shapes/memory.py``), with better advice."""
    from archspec.shapes.memory import available_bytes, human

    available = available_bytes()
    if available is not None and nbytes > max(available, ALWAYS_FITS):
        raise DataError(
            f"{source}: {what} need {human(nbytes)} but this machine has {human(available)} "
            "of memory available",
            "use a smaller split (e.g. train[:10000]) or a machine with more memory",
        )
