"""The named datasets archspec knows, their files, checksums and mirrors.

Pure data: no torch, no numpy, so the spec checker can list names cheaply.

Each named dataset is four IDX files (two per split, images then labels). The
MD5 sums are the canonical ones that torchvision verifies; they are checked only
for files archspec downloads, never for files found on disk (Debian, for one,
re-compresses Fashion-MNIST, so its ``.gz`` sums differ while the arrays match).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from archspec.errors import DataError, one_of, suggest


@dataclass(frozen=True)
class RemoteFile:
    """One downloadable file: its name on the mirrors and its canonical MD5."""

    name: str
    md5: str

    @property
    def unpacked_name(self) -> str:
        """The name once gunzipped: ``t10k-images-idx3-ubyte.gz`` → ``t10k-images-idx3-ubyte``."""
        return self.name.removesuffix(".gz")


@dataclass(frozen=True)
class SplitFiles:
    """The IDX pair of one split: images (N, H, W) ubyte and labels (N,) ubyte."""

    images: RemoteFile
    labels: RemoteFile


@dataclass(frozen=True)
class NamedDataset:
    """A dataset archspec can find on disk or download by name."""

    name: str
    classes: tuple[str, ...]
    mirrors: tuple[str, ...]
    splits: Mapping[str, SplitFiles]
    debian_package: str | None = None  # installs the files in /usr/share/datasets/<name>/


def _idx_splits(md5s: tuple[str, str, str, str]) -> Mapping[str, SplitFiles]:
    """The MNIST file layout; ``md5s`` are train images, train labels, test images, test labels."""
    train_x, train_y, test_x, test_y = md5s
    return MappingProxyType(
        {
            "train": SplitFiles(
                RemoteFile("train-images-idx3-ubyte.gz", train_x),
                RemoteFile("train-labels-idx1-ubyte.gz", train_y),
            ),
            "test": SplitFiles(
                RemoteFile("t10k-images-idx3-ubyte.gz", test_x),
                RemoteFile("t10k-labels-idx1-ubyte.gz", test_y),
            ),
        }
    )


MNIST = NamedDataset(
    name="mnist",
    classes=tuple(str(digit) for digit in range(10)),
    mirrors=(
        "https://ossci-datasets.s3.amazonaws.com/mnist/",
        "http://yann.lecun.com/exdb/mnist/",
    ),
    splits=_idx_splits(
        (
            "f68b3c2dcbeaaa9fbdd348bbdeb94873",
            "d53e105ee54ea40749a09fcbcd1e9432",
            "9fb629c4189551a2d022fa330f9573f3",
            "ec29112dd5afa0611ce80d1b7f02629c",
        )
    ),
)

FASHION_MNIST = NamedDataset(
    name="fashion-mnist",
    classes=(
        "T-shirt/top",
        "Trouser",
        "Pullover",
        "Dress",
        "Coat",
        "Sandal",
        "Shirt",
        "Sneaker",
        "Bag",
        "Ankle boot",
    ),
    mirrors=("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",),
    splits=_idx_splits(
        (
            "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
            "25c81989df183df01b3e8a0aad5dffbe",
            "bef4ecab320f06d8554ea6380940ec79",
            "bb300cfdad3c16e7a12a480ee83cd310",
        )
    ),
    debian_package="dataset-fashion-mnist",
)

DATASETS: Mapping[str, NamedDataset] = MappingProxyType(
    {dataset.name: dataset for dataset in (MNIST, FASHION_MNIST)}
)


def get_dataset(name: str) -> NamedDataset:
    """The named dataset ``name``, or a DataError that lists the known names."""
    dataset = DATASETS.get(name)
    if dataset is not None:
        return dataset
    suggestion = suggest(name, DATASETS)
    other = "give `path:` to an IDX folder, a .npz file or an image folder"
    raise DataError(
        f"unknown dataset '{name}': the named datasets are {one_of(DATASETS)}",
        f"{suggestion} Or {other}" if suggestion else other.capitalize(),
    )
