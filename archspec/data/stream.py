"""Samples read one at a time: image folders, memory-mapped ``.npy`` pairs, ``.tar`` shards.

Each source is a map-style ``torch.utils.data.Dataset`` over the samples of one
split: ``samples[i]`` decodes sample ``i`` into a channels-first tensor (uint8
images, float32 other arrays) with its class index, or returns a
:class:`BadSample` naming the file that could not be decoded (the caller skips
or stops, per ``data.on_bad_file``). Labels are known up front (``labels``), so
sample order, per-rank sharding and resume work exactly as for in-memory data.

Layouts (``path:`` in the spec)::

    ROOT/train/CLASS/*.jpg, ROOT/val/CLASS/*  image folder, ImageNet layout (splits among
                                              train, val, test; else ROOT/CLASS/* is "all")
    ROOT/x_train.npy + ROOT/y_train.npy       .npy pairs (any x_NAME/y_NAME; x.npy + y.npy: "all")
    ROOT/train/*.tar, ROOT/val/*.tar          WebDataset-style shards (ROOT/*.tar, one .tar: "all")

A shard holds files named ``KEY.EXT``; the files sharing a KEY are one sample:
an image (``.jpg .jpeg .png .webp .bmp .ppm``) and its class index as text
(``.cls``). Shards are indexed once (the member offsets, read from the tar
headers with the standard library's ``tarfile``) and then read at random by
offset, so they must be uncompressed ``.tar`` (WebDataset's usual form).
"""

from __future__ import annotations

import io
import struct
import tarfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch
from PIL import Image

from archspec.data.arrays import check_counts, check_labels, class_names, fit_samples
from archspec.data.images import (
    decode_image,
    fast_png_bytes,
    image_classes,
    image_mode,
    list_images,
)
from archspec.data.load import is_idx_folder
from archspec.errors import DataError, one_of

Transform = Callable[[torch.Tensor], torch.Tensor]
Batch = tuple[torch.Tensor, torch.Tensor, list["BadSample"]]  # x (B, C, ...), y (B,), bad files
SPLIT_NAMES = ("train", "val", "test")
IMAGE_EXTS = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".ppm")
DECODE_ERRORS = (OSError, ValueError, SyntaxError, EOFError, struct.error)


class BadSample(NamedTuple):
    """A sample whose file could not be decoded: where, and why."""

    path: str
    reason: str


@dataclass(frozen=True)
class Loading:
    """How a streamed split is read: worker processes, batches prefetched, bad files."""

    workers: int = 0
    prefetch: int = 2
    on_bad_file: str = "error"


class Samples(torch.utils.data.Dataset[Any]):
    """The samples of one split, decoded on demand; ``transform`` runs on each
    decoded uint8/float32 ``(C, *spatial)`` tensor (in the worker that decoded it)."""

    def __init__(
        self,
        labels: np.ndarray,
        classes: tuple[str, ...],
        sample_shape: tuple[int, ...],
        itemsize: int,
        origin: str,
    ) -> None:
        self.labels = labels  # (N,) int64
        self.classes = classes
        self.sample_shape = sample_shape  # (C, *spatial)
        self.itemsize = itemsize  # bytes per value once decoded: 1 (uint8) or 4 (float32)
        self.origin = origin
        self.index = np.arange(len(labels))  # position → sample number (subsets remap it)
        self.transform: Transform | None = None
        self.loading = Loading()
        self.skipped: list[BadSample] = []  # files left out (on_bad_file: skip), shared by views

    def __len__(self) -> int:
        return len(self.index)

    @property
    def decoded_bytes(self) -> int:
        """What the split would take decoded in memory."""
        return len(self) * int(np.prod(self.sample_shape)) * self.itemsize

    @property
    def dtype(self) -> torch.dtype:
        return torch.uint8 if self.itemsize == 1 else torch.float32

    @property
    def y(self) -> torch.Tensor:
        return torch.from_numpy(self.labels[self.index])

    def subset(self, positions: Sequence[int] | np.ndarray, origin: str) -> Samples:
        """The samples at ``positions`` (of this view), sharing the decoder."""
        view = object.__new__(type(self))
        view.__dict__.update(self.__dict__)
        view.index = self.index[np.asarray(positions, dtype=np.int64)]
        view.origin = origin
        return view

    def __getitem__(self, position: int) -> tuple[torch.Tensor, int] | BadSample:
        number = int(self.index[position])
        try:
            array = self.decode(number)
            x = torch.from_numpy(array if array.flags.writeable else array.copy())
        except DataError as error:
            return BadSample(self.describe(number), error.message)
        if self.transform is not None:
            x = self.transform(x)
        return x, int(self.labels[number])

    def __getitems__(self, positions: list[int]) -> Batch:
        """A whole batch at once (what ``DataLoader`` asks a worker for): the samples
        are decoded straight into one ``(B, C, *spatial)`` array, with no tensor per
        sample and no stacking; files that failed travel beside the batch."""
        if self.transform is not None:  # a per-sample transform: one sample at a time
            return collate(self.sample_shape, self.dtype, [self[p] for p in positions])
        kind = np.uint8 if self.itemsize == 1 else np.float32
        x = np.empty((len(positions), *self.sample_shape), dtype=kind)
        labels = np.empty(len(positions), dtype=np.int64)
        bad: list[BadSample] = []
        filled = 0
        for position in positions:
            number = int(self.index[position])
            try:
                x[filled] = self.decode(number)
            except DataError as error:
                bad.append(BadSample(self.describe(number), error.message))
                continue
            labels[filled] = self.labels[number]
            filled += 1
        return torch.from_numpy(x[:filled]), torch.from_numpy(labels[:filled]), bad

    def decode(self, number: int) -> np.ndarray:
        """Sample ``number`` as a ``(C, *spatial)`` array; a DataError if unreadable."""
        raise NotImplementedError

    def describe(self, number: int) -> str:
        """Where sample ``number`` lives, for messages."""
        return f"{self.origin} sample {number}"


def collate(shape: tuple[int, ...], dtype: torch.dtype, items: list[Any]) -> Batch:
    """Stack decoded samples into a batch; files that failed travel beside them."""
    bad = [item for item in items if isinstance(item, BadSample)]
    good = [item for item in items if not isinstance(item, BadSample)]
    if not good:
        return torch.empty((0, *shape), dtype=dtype), torch.empty(0, dtype=torch.int64), bad
    x = torch.stack([item[0] for item in good])
    y = torch.tensor([item[1] for item in good], dtype=torch.int64)
    return x, y, bad


def as_built(batch: Any) -> Batch:
    """The loader's collate_fn: ``Samples.__getitems__`` already built the batch (a
    ``Batch``; torch types collate_fn as taking a list)."""
    assert isinstance(batch, tuple)
    return batch


# ----------------------------------------------------------------- image folders
class ImageFiles(Samples):
    """One image file per sample, decoded (:func:`decode_image`) to the spec's H×W."""

    def __init__(
        self,
        files: list[Path],
        labels: np.ndarray,
        classes: tuple[str, ...],
        shape: tuple[int, ...],
    ) -> None:
        super().__init__(labels, classes, shape, 1, "")
        self.files = [str(path) for path in files]
        self.mode = image_mode(shape, Path(self.files[0]).parent if self.files else Path("."))

    def decode(self, number: int) -> np.ndarray:
        channels, height, width = self.sample_shape
        image = decode_image(self.files[number], self.mode, (width, height))
        return np.ascontiguousarray(image.reshape(height, width, channels).transpose(2, 0, 1))

    def describe(self, number: int) -> str:
        return self.files[number]


def _visible_dirs(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))


def split_folders(root: Path) -> dict[str, Path]:
    """Split name → folder: ``train`` plus ``val``/``test`` subfolders, else ``{"all": root}``."""
    named = {p.name: p for p in _visible_dirs(root) if p.name in SPLIT_NAMES}
    if "train" in named and len(named) > 1:
        return named
    return {"all": root}


def image_folder(root: Path, split: str, shape: tuple[int, ...]) -> ImageFiles:
    folders = split_folders(root)
    _require(split, folders, root)
    classes = image_classes(list(folders.values()))
    files, labels = list_images(folders[split], classes)
    if not files:
        raise DataError(f"{folders[split]}: no images in its class folders", "add images")
    samples = ImageFiles(files, labels, classes, shape)
    samples.origin = f"image folder {split} from {root}"
    return samples


def _require(split: str, available: dict[str, Any], where: Path) -> None:
    if split not in available:
        raise DataError(
            f"{where} has no split '{split}': its splits are {one_of(available)}",
            f"write e.g. split: {next(iter(available))}",
        )


# ------------------------------------------------------------------ .npy pairs
class NpyPair(Samples):
    """Samples memory-mapped from ``x_NAME.npy`` (labels from ``y_NAME.npy``, read whole)."""

    def __init__(
        self, x_path: Path, labels: np.ndarray, shape: tuple[int, ...], dtype: np.dtype[Any]
    ) -> None:
        super().__init__(labels, class_names([labels]), shape, 1 if dtype == np.uint8 else 4, "")
        self.x_path = str(x_path)
        self._x: np.ndarray | None = None  # opened lazily, once per worker process

    def decode(self, number: int) -> np.ndarray:
        if self._x is None:
            self._x = np.load(self.x_path, mmap_mode="r", allow_pickle=False)
        row = np.asarray(self._x[number : number + 1])  # (1, ...): one sample read from disk
        fitted = fit_samples(row, self.sample_shape, self.x_path)[0]
        return np.ascontiguousarray(fitted if fitted.dtype == np.uint8 else fitted.astype("f4"))

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_x": None}  # workers map the file themselves


def npy_splits(root: Path) -> dict[str, tuple[Path, Path]]:
    """Split name → (x file, y file) for every ``x_NAME.npy``/``y_NAME.npy`` pair."""
    found: dict[str, tuple[Path, Path]] = {}
    if (root / "x.npy").is_file() and (root / "y.npy").is_file():
        found["all"] = (root / "x.npy", root / "y.npy")
    for x_file in sorted(root.glob("x_*.npy")):
        name = x_file.stem[2:]
        y_file = root / f"y_{name}.npy"
        if y_file.is_file():
            found[name] = (x_file, y_file)
    return found


def _open_npy(path: Path) -> np.ndarray:
    try:
        array: np.ndarray = np.load(path, mmap_mode="r", allow_pickle=False)
    except (OSError, ValueError) as error:
        raise DataError(
            f"{path}: not a readable .npy array: {error}", "re-save it with numpy.save"
        ) from None
    return array


def npy_folder(root: Path, split: str, shape: tuple[int, ...]) -> NpyPair:
    pairs = npy_splits(root)
    _require(split, pairs, root)
    x_file, y_file = pairs[split]
    x, y = _open_npy(x_file), np.asarray(_open_npy(y_file))
    check_counts(len(x), len(y), str(x_file), str(y_file))
    labels = check_labels(
        y, int(y.max()) + 1 if y.size and y.dtype.kind in "iu" else 1, str(y_file)
    )
    fit_samples(x[:1], shape, str(x_file))  # the layout fits (or a DataError names it)
    if x.dtype.kind not in "biuf":
        raise DataError(f"{x_file}: samples must be numbers, got dtype {x.dtype}", "store numbers")
    samples = NpyPair(x_file, labels, shape, x.dtype)
    samples.origin = f"npy {split} from {root}"
    return samples


# ------------------------------------------------------------------ .tar shards
class Member(NamedTuple):
    shard: int
    offset: int  # where the file's bytes start in the shard
    size: int
    name: str


class TarShards(Samples):
    """Images read by offset from uncompressed tar shards (indexed once)."""

    def __init__(
        self, shards: list[Path], members: list[Member], labels: np.ndarray, shape: tuple[int, ...]
    ) -> None:
        super().__init__(labels, class_names([labels]), shape, 1, "")
        self.shards = [str(path) for path in shards]
        self.members = members
        self.mode = image_mode(shape, shards[0])
        self._files: dict[int, io.BufferedReader] = {}

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_files": {}}

    def decode(self, number: int) -> np.ndarray:
        member = self.members[number]
        handle = self._files.get(member.shard)
        if handle is None:
            handle = self._files[member.shard] = open(self.shards[member.shard], "rb")  # noqa: SIM115
        handle.seek(member.offset)
        data = handle.read(member.size)
        channels, height, width = self.sample_shape
        where = self.describe(number)
        image = _decode_bytes(data, self.mode, (width, height), where)
        return np.ascontiguousarray(image.reshape(height, width, channels).transpose(2, 0, 1))

    def describe(self, number: int) -> str:
        member = self.members[number]
        return f"{self.shards[member.shard]}:{member.name}"


def _decode_bytes(data: bytes, mode: str, size: tuple[int, int], where: str) -> np.ndarray:
    """An encoded image as uint8 (H, W) or (H, W, 3); ``size`` is (W, H)."""
    fast = fast_png_bytes(data, mode, size) if where.lower().endswith(".png") else None
    if fast is not None:
        return fast
    try:
        with Image.open(io.BytesIO(data)) as image:
            image.load()
            converted = image if image.mode == mode else image.convert(mode)
            if converted.size != size:
                converted = converted.resize(size, Image.Resampling.BILINEAR)
            return np.asarray(converted, dtype=np.uint8)
    except (*DECODE_ERRORS, Image.DecompressionBombError) as error:
        raise DataError(f"{where}: cannot decode image: {error or type(error).__name__}") from None


def _index_shard(path: Path, number: int) -> tuple[list[Member], list[int]]:
    """The image members of one shard and their labels, grouped by key."""
    images: dict[str, Member] = {}
    labels: dict[str, int] = {}
    try:
        with tarfile.open(path, mode="r:") as tar:
            for info in tar:
                if not info.isfile() or info.name.rsplit("/", 1)[-1].startswith("."):
                    continue
                base = info.name.rsplit("/", 1)[-1]
                key = info.name[: len(info.name) - len(base)] + base.split(".", 1)[0]
                ext = "." + base.split(".", 1)[1].lower() if "." in base else ""
                if ext in IMAGE_EXTS:
                    images[key] = Member(number, info.offset_data, info.size, info.name)
                elif ext == ".cls":
                    labels[key] = _read_label(tar, info, path)
    except tarfile.ReadError as error:
        raise DataError(
            f"{path}: not an uncompressed tar shard: {error}",
            "write shards as plain .tar (e.g. with webdataset's ShardWriter or `tar cf`)",
        ) from None
    missing = sorted(set(images) - set(labels))
    if missing:
        raise DataError(
            f"{path}: sample '{missing[0]}' has an image but no .cls label "
            f"({len(missing)} samples without one)",
            "store each sample's class index as KEY.cls beside KEY.jpg",
        )
    keys = sorted(images)
    return [images[k] for k in keys], [labels[k] for k in keys]


def _read_label(tar: tarfile.TarFile, info: tarfile.TarInfo, path: Path) -> int:
    handle = tar.extractfile(info)
    text = handle.read(64).decode("utf-8", "replace").strip() if handle else ""
    if not text.isdigit():
        raise DataError(
            f"{path}:{info.name}: a .cls label must be a class index, got {text[:20]!r}",
            "write the class index as decimal text, e.g. 3",
        )
    return int(text)


def tar_splits(root: Path) -> dict[str, list[Path]]:
    """Split name → its shards: one .tar file, ROOT/*.tar, or ROOT/train/*.tar and friends."""
    if root.is_file():
        return {"all": [root]}
    named = {p.name: sorted(p.glob("*.tar")) for p in _visible_dirs(root) if p.name in SPLIT_NAMES}
    found = {name: shards for name, shards in named.items() if shards}
    if found:
        return found
    shards = sorted(root.glob("*.tar"))
    return {"all": shards} if shards else {}


def tar_folder(root: Path, split: str, shape: tuple[int, ...]) -> TarShards:
    splits = tar_splits(root)
    _require(split, splits, root)
    shards = splits[split]
    members: list[Member] = []
    labels: list[int] = []
    for number, shard in enumerate(shards):
        found, classes = _index_shard(shard, number)
        members.extend(found)
        labels.extend(classes)
    if not members:
        raise DataError(f"{root}: the {split} shards hold no images", "add KEY.jpg + KEY.cls pairs")
    samples = TarShards(shards, members, np.asarray(labels, dtype=np.int64), shape)
    samples.origin = f"tar shards {split} from {root}"
    return samples


# ------------------------------------------------------------------ dispatch
def is_streamable(path: Path) -> bool:
    """Whether ``path`` is a source this module reads (else the in-memory loaders do)."""
    if path.is_file():
        return path.suffix.lower() == ".tar"
    if not path.is_dir():
        return False
    return bool(tar_splits(path)) or bool(npy_splits(path)) or _is_image_root(path)


def _is_image_root(path: Path) -> bool:
    return not is_idx_folder(path) and bool(_visible_dirs(path))


def open_samples(path: Path, split: str, shape: tuple[int, ...]) -> Samples:
    """The samples of split ``split`` (a name, no slice) of the data at ``path``."""
    if path.is_file() or tar_splits(path):
        return tar_folder(path, split, shape)
    if npy_splits(path):
        return npy_folder(path, split, shape)
    return image_folder(path, split, shape)
