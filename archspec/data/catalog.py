"""The named datasets archspec knows, their files, checksums and mirrors.

Pure data: no torch, no numpy, so the spec checker can list names cheaply.

Formats (``NamedDataset.format``):

* ``idx``: MNIST, Fashion-MNIST, KMNIST, EMNIST — an images and a labels IDX file
  per split (EMNIST's are members of one ``gzip.zip``, stored transposed);
* ``cifar10-bin`` / ``cifar100-bin``: the BINARY distributions (never the pickled
  Python ones) — records of label byte(s) then 3072 bytes of R, G, B planes,
  members of one ``.tar.gz``;
* ``svhn-mat``: SVHN cropped digits, one MATLAB v5 ``.mat`` per split.

The MD5 sums are the canonical ones that torchvision verifies; they are checked only
for files archspec downloads, never for files found on disk (Debian, for one,
re-compresses Fashion-MNIST, so its ``.gz`` sums differ while the arrays match). A
file inside an archive is looked for on disk first (also in the archive's own
folder, e.g. ``cifar-10-batches-bin/``); otherwise the archive is found or downloaded
(its MD5 verified) and the member is extracted beside it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from archspec.errors import DataError, one_of, suggest


@dataclass(frozen=True)
class RemoteFile:
    """One file: its name on the mirrors and its canonical MD5 — or, with ``archive``,
    the member ``member`` of that downloadable archive, and the archive's MD5."""

    name: str
    md5: str
    archive: str | None = None
    member: str = ""

    @property
    def unpacked_name(self) -> str:
        """The name once gunzipped: ``t10k-images-idx3-ubyte.gz`` → ``t10k-images-idx3-ubyte``."""
        return self.name.removesuffix(".gz")


@dataclass(frozen=True)
class SplitFiles:
    """The files of one split: for IDX the pair images (N, H, W) and labels (N,);
    for CIFAR the record files in order; for SVHN the one ``.mat``."""

    files: tuple[RemoteFile, ...]

    @property
    def images(self) -> RemoteFile:
        return self.files[0]

    @property
    def labels(self) -> RemoteFile:
        return self.files[-1]


@dataclass(frozen=True)
class NamedDataset:
    """A dataset archspec can find on disk or download by name."""

    name: str
    classes: tuple[str, ...]
    mirrors: tuple[str, ...]
    splits: Mapping[str, SplitFiles]
    debian_package: str | None = None  # installs the files in /usr/share/datasets/<name>/
    format: str = "idx"  # idx, cifar10-bin, cifar100-bin or svhn-mat (module docstring)
    transposed: bool = False  # EMNIST stores each image column-major
    first_label: int = 0  # the file's label of class 0 (EMNIST letters count from 1)


def _idx_splits(md5s: tuple[str, str, str, str]) -> Mapping[str, SplitFiles]:
    """The MNIST file layout; ``md5s`` are train images, train labels, test images, test labels."""
    train_x, train_y, test_x, test_y = md5s
    return MappingProxyType(
        {
            "train": SplitFiles(
                (
                    RemoteFile("train-images-idx3-ubyte.gz", train_x),
                    RemoteFile("train-labels-idx1-ubyte.gz", train_y),
                )
            ),
            "test": SplitFiles(
                (
                    RemoteFile("t10k-images-idx3-ubyte.gz", test_x),
                    RemoteFile("t10k-labels-idx1-ubyte.gz", test_y),
                )
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

KMNIST = NamedDataset(
    name="kmnist",
    classes=("o", "ki", "su", "tsu", "na", "ha", "ma", "ya", "re", "wo"),
    mirrors=("http://codh.rois.ac.jp/kmnist/dataset/kmnist/",),
    splits=_idx_splits(
        (
            "bdb82020997e1d708af4cf47b453dcf7",
            "e144d726b3acfaa3e44228e80efcd344",
            "5c965bf0a639b31b8f53240b1b52f4d7",
            "7320c461ea6c1c855c0b718fb2a4b134",
        )
    ),
)

EMNIST_ARCHIVE, EMNIST_MD5 = "gzip.zip", "58c8d27c78d21e728a6bc7b3cc06412e"
_DIGITS = tuple("0123456789")
_UPPER = tuple("ABCDEFGHIJKLMNOPQRSTUVWXYZ")
_LOWER = tuple("abcdefghijklmnopqrstuvwxyz")
_MERGED = tuple(c for c in _LOWER if c not in "cijklmopsuvwxyz")  # lowercase kept apart
EMNIST_CLASSES: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {
        "byclass": _DIGITS + _UPPER + _LOWER,
        "bymerge": _DIGITS + _UPPER + _MERGED,
        "balanced": _DIGITS + _UPPER + _MERGED,
        "letters": _LOWER,
        "digits": _DIGITS,
        "mnist": _DIGITS,
    }
)


def _emnist(variant: str) -> NamedDataset:
    """``emnist-VARIANT``: IDX members ``gzip/emnist-VARIANT-{train,test}-…`` of gzip.zip."""

    def member(split: str, what: str) -> RemoteFile:
        name = f"emnist-{variant}-{split}-{what}.gz"
        return RemoteFile(name, EMNIST_MD5, EMNIST_ARCHIVE, f"gzip/{name}")

    splits = {
        split: SplitFiles((member(split, "images-idx3-ubyte"), member(split, "labels-idx1-ubyte")))
        for split in ("train", "test")
    }
    return NamedDataset(
        name=f"emnist-{variant}",
        classes=EMNIST_CLASSES[variant],
        mirrors=("https://biometrics.nist.gov/cs_links/EMNIST/",),
        splits=MappingProxyType(splits),
        transposed=True,
        first_label=1 if variant == "letters" else 0,
    )


CIFAR10_ARCHIVE, CIFAR10_MD5 = "cifar-10-binary.tar.gz", "c32a1d4ab5d03f1284b67883e8d87530"


def _cifar10_file(name: str) -> RemoteFile:
    return RemoteFile(name, CIFAR10_MD5, CIFAR10_ARCHIVE, f"cifar-10-batches-bin/{name}")


CIFAR10 = NamedDataset(
    name="cifar10",
    classes=(
        "airplane",
        "automobile",
        "bird",
        "cat",
        "deer",
        "dog",
        "frog",
        "horse",
        "ship",
        "truck",
    ),
    mirrors=("https://www.cs.toronto.edu/~kriz/",),
    splits=MappingProxyType(
        {
            "train": SplitFiles(tuple(_cifar10_file(f"data_batch_{i}.bin") for i in range(1, 6))),
            "test": SplitFiles((_cifar10_file("test_batch.bin"),)),
        }
    ),
    format="cifar10-bin",
)

CIFAR100_ARCHIVE, CIFAR100_MD5 = "cifar-100-binary.tar.gz", "03b5dce01913d631647c71ecec9e9cb8"
CIFAR100_CLASSES = tuple(
    [
        "apple",
        "aquarium_fish",
        "baby",
        "bear",
        "beaver",
        "bed",
        "bee",
        "beetle",
        "bicycle",
        "bottle",
        "bowl",
        "boy",
        "bridge",
        "bus",
        "butterfly",
        "camel",
        "can",
        "castle",
        "caterpillar",
        "cattle",
        "chair",
        "chimpanzee",
        "clock",
        "cloud",
        "cockroach",
        "couch",
        "crab",
        "crocodile",
        "cup",
        "dinosaur",
        "dolphin",
        "elephant",
        "flatfish",
        "forest",
        "fox",
        "girl",
        "hamster",
        "house",
        "kangaroo",
        "keyboard",
        "lamp",
        "lawn_mower",
        "leopard",
        "lion",
        "lizard",
        "lobster",
        "man",
        "maple_tree",
        "motorcycle",
        "mountain",
        "mouse",
        "mushroom",
        "oak_tree",
        "orange",
        "orchid",
        "otter",
        "palm_tree",
        "pear",
        "pickup_truck",
        "pine_tree",
        "plain",
        "plate",
        "poppy",
        "porcupine",
        "possum",
        "rabbit",
        "raccoon",
        "ray",
        "road",
        "rocket",
        "rose",
        "sea",
        "seal",
        "shark",
        "shrew",
        "skunk",
        "skyscraper",
        "snail",
        "snake",
        "spider",
        "squirrel",
        "streetcar",
        "sunflower",
        "sweet_pepper",
        "table",
        "tank",
        "telephone",
        "television",
        "tiger",
        "tractor",
        "train",
        "trout",
        "tulip",
        "turtle",
        "wardrobe",
        "whale",
        "willow_tree",
        "wolf",
        "woman",
        "worm",
    ]
)


def _cifar100_file(name: str) -> RemoteFile:
    return RemoteFile(name, CIFAR100_MD5, CIFAR100_ARCHIVE, f"cifar-100-binary/{name}")


CIFAR100 = NamedDataset(
    name="cifar100",
    classes=CIFAR100_CLASSES,  # the fine labels (the second label byte of each record)
    mirrors=("https://www.cs.toronto.edu/~kriz/",),
    splits=MappingProxyType(
        {
            "train": SplitFiles((_cifar100_file("train.bin"),)),
            "test": SplitFiles((_cifar100_file("test.bin"),)),
        }
    ),
    format="cifar100-bin",
)

SVHN = NamedDataset(
    name="svhn",
    classes=_DIGITS,  # the files label digit 0 as 10; the reader maps it to 0
    mirrors=("http://ufldl.stanford.edu/housenumbers/",),
    splits=MappingProxyType(
        {
            "train": SplitFiles(
                (RemoteFile("train_32x32.mat", "e26dedcc434d2e4c54c9b2d4a06d8373"),)
            ),
            "test": SplitFiles((RemoteFile("test_32x32.mat", "eb5a983be6a315427106f1b164d9cef3"),)),
            "extra": SplitFiles(
                (RemoteFile("extra_32x32.mat", "a93ce644f1a588dc4d68dda5feec44a7"),)
            ),
        }
    ),
    format="svhn-mat",
)

DATASETS: Mapping[str, NamedDataset] = MappingProxyType(
    {
        dataset.name: dataset
        for dataset in (
            MNIST,
            FASHION_MNIST,
            KMNIST,
            *(_emnist(variant) for variant in EMNIST_CLASSES),
            CIFAR10,
            CIFAR100,
            SVHN,
        )
    }
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
