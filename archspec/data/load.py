"""``load_split``: any supported data source → one ``Split`` of torch tensors.

Sources: a named dataset (IDX files found or downloaded, see ``resolve``), a
folder of MNIST-named IDX files, a ``.npz`` archive, or an image folder. The
samples are fitted to the spec's channels-first input and become a uint8
(image data) or float32 tensor; labels become int64 class indices.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from archspec.data.arrays import (
    check_counts,
    check_labels,
    class_names,
    fit_samples,
    sample_dtype,
)
from archspec.data.catalog import MNIST, NamedDataset, get_dataset
from archspec.data.formats import read_cifar, read_svhn
from archspec.data.idx import read_idx
from archspec.data.images import (
    decode_images,
    image_classes,
    image_splits,
    is_image_folder,
    list_images,
)
from archspec.data.npz import read_npz
from archspec.data.resolve import find_local, locate_split, places
from archspec.data.splits import parse_split, select
from archspec.errors import DataError, one_of

SOURCES = "a named dataset, a folder of IDX files, a .npz archive or an image folder"


@dataclass(frozen=True, eq=False)
class Split:
    """One split of a dataset, ready for training.

    ``x`` is ``(N, C, *spatial)`` channels first (uint8 images or float32);
    ``y`` is ``(N,)`` int64 in ``[0, len(classes))``.
    """

    x: torch.Tensor
    y: torch.Tensor
    classes: tuple[str, ...]
    origin: str

    @property
    def num_classes(self) -> int:
        return len(self.classes)


@dataclass(frozen=True)
class _Request:
    expr: str  # the split expression as written, e.g. "test[:8000]"
    name: str
    start: int | None
    stop: int | None
    input_shape: tuple[int, ...]


def _assemble(
    x: np.ndarray, y: np.ndarray, classes: tuple[str, ...], req: _Request, x_from: str, y_from: str
) -> tuple[torch.Tensor, torch.Tensor]:
    """Check and fit whole arrays, then cut the requested slice into tensors."""
    if x.ndim < 1:
        raise DataError(
            f"{x_from}: samples must be an array (N, ...) with one row per sample, got a scalar",
            "store the samples as an array whose first axis counts them",
        )
    check_counts(len(x), len(y), x_from, y_from)
    labels = check_labels(y, len(classes), y_from)
    samples = fit_samples(x, req.input_shape, x_from)
    chosen = select(len(samples), req.name, req.start, req.stop, x_from)
    picked = slice(chosen.start, chosen.stop)
    x_out = np.ascontiguousarray(sample_dtype(samples[picked], x_from))
    return torch.from_numpy(x_out), torch.from_numpy(labels[picked])


def _idx_split(
    images: Path, labels: Path, classes: tuple[str, ...] | None, req: _Request, kind: str
) -> Split:
    x, y = read_idx(images), read_idx(labels)
    names = classes if classes is not None else class_names([y], str(labels))
    x_t, y_t = _assemble(x, y, names, req, str(images), str(labels))
    return Split(x_t, y_t, names, f"{kind} {req.expr} from {images}")


def _named(
    dataset: NamedDataset, folder: Path | None, data_dir: Path | None, download: bool, req: _Request
) -> Split:
    where = places(dataset.name, explicit=folder, data_dir=data_dir)
    files = locate_split(dataset, req.name, where, download=download)
    if dataset.format == "idx":
        x, y = read_idx(files[0]), read_idx(files[1])
        if dataset.transposed and x.ndim == 3:
            x = x.transpose(0, 2, 1)  # (N, W, H) column-major → (N, H, W)
        if dataset.first_label and y.dtype.kind in "iu":
            y = y.astype(np.int64) - dataset.first_label
    elif dataset.format == "svhn-mat":
        x, y = read_svhn(files[0])
    else:
        x, y = read_cifar(files, 2 if dataset.format == "cifar100-bin" else 1)
    x_t, y_t = _assemble(x, y, dataset.classes, req, str(files[0]), str(files[-1]))
    return Split(x_t, y_t, dataset.classes, f"{dataset.name} {req.expr} from {files[0]}")


def _idx_folder_splits(folder: Path) -> dict[str, tuple[Path, Path]]:
    """Splits whose MNIST-named image and label files are both in ``folder``."""
    found: dict[str, tuple[Path, Path]] = {}
    for name, files in MNIST.splits.items():
        images, labels = find_local(files.images, [folder]), find_local(files.labels, [folder])
        if images is not None and labels is not None:
            found[name] = (images, labels)
    return found


def is_idx_folder(folder: Path) -> bool:
    """Whether ``folder`` holds at least one split of MNIST-named IDX files."""
    return bool(_idx_folder_splits(folder))


def _require_split(name: str, available: Mapping[str, object], where: Path) -> None:
    if name in available:
        return
    raise DataError(
        f"{where} has no split '{name}': its splits are {one_of(available)}",
        f"write e.g. split: {next(iter(available))}",
    )


def _image_folder(root: Path, req: _Request) -> Split:
    folders = image_splits(root)
    _require_split(req.name, folders, root)
    classes = image_classes(list(folders.values()))
    files, labels = list_images(folders[req.name], classes)
    if not files:
        raise DataError(f"{folders[req.name]}: no images in its class folders", "add images")
    chosen = select(len(files), req.name, req.start, req.stop, str(root))
    x = decode_images(files[chosen.start : chosen.stop], req.input_shape, root)
    y = labels[chosen.start : chosen.stop]
    return Split(
        torch.from_numpy(x), torch.from_numpy(y), classes, f"image folder {req.expr} from {root}"
    )


def _npz(path: Path, classes: tuple[str, ...] | None, req: _Request) -> Split:
    part = read_npz(path, req.name)
    names = classes if classes is not None else part.classes
    x, y = _assemble(part.x, part.y, names, req, part.x_from, part.y_from)
    return Split(x, y, names, f"npz {req.expr} from {path}")


def _from_path(path: Path, classes: tuple[str, ...] | None, req: _Request) -> Split:
    """Dispatch on what ``path`` is: .npz file, IDX folder or image folder."""
    fix = "give a .npz file, a folder of MNIST-named IDX files, or a folder of class folders"
    if not path.exists():
        raise DataError(f"data path not found: {path}", fix)
    if path.is_file() and path.suffix.lower() == ".npz":
        return _npz(path, classes, req)
    if path.is_dir():
        idx = _idx_folder_splits(path)
        if idx:
            _require_split(req.name, idx, path)
            return _idx_split(*idx[req.name], classes, req, "idx")
        if is_image_folder(path):
            return _image_folder(path, req)
    what = "folder" if path.is_dir() else "file"
    raise DataError(f"{path}: unsupported data {what}: archspec reads {SOURCES}", fix)


def load_split(
    *,
    dataset: str | None,
    path: Path | None,
    split: str,
    input_shape: tuple[int, ...],
    data_dir: Path | None = None,
    download: bool = True,
) -> Split:
    """Load ``split`` (``name[start:stop]``) of a named dataset or of the data at ``path``.

    With both, ``path`` is where the named dataset's files are (a folder, or a
    .npz file whose classes are the dataset's).
    """
    name, start, stop = parse_split(split)
    if len(input_shape) < 2 or min(input_shape) < 1:
        raise DataError(
            f"the spec's input must be [C, *spatial] with positive sizes, got {list(input_shape)}",
            "set e.g. `input: [1, 28, 28]` in the spec",
        )
    req = _Request(split.strip(), name, start, stop, tuple(input_shape))
    if dataset is not None:
        named = get_dataset(dataset)
        if path is not None and path.is_file():
            return _from_path(path, named.classes, req)
        return _named(named, path, data_dir, download, req)
    if path is None:
        raise DataError("no data given: need a dataset name or a path", f"give one of {SOURCES}")
    return _from_path(path, None, req)
