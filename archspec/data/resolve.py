"""Finding a named dataset's files on disk, downloading them when absent.

Each file of a split is looked up, in order, as ``NAME.gz`` or unpacked ``NAME`` in:

1. an explicit folder — the ``path`` given with the dataset, or ``--data-dir DIR``
   (``DIR/<name>/`` then ``DIR/``); when one is given it is the only place looked,
   and downloads go there;
2. ``$ARCHSPEC_DATA/<name>/``;
3. the user cache ``${XDG_CACHE_HOME:-~/.cache}/archspec/datasets/<name>/``;
4. system folders ``/usr/share/datasets/<name>/`` (Debian's dataset packages);
5. else it is downloaded from the mirrors into the cache (MD5-verified).

Files found on disk are validated later by their structure, not by MD5.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from archspec.data.catalog import NamedDataset, RemoteFile, SplitFiles, get_dataset
from archspec.data.download import DownloadError, fetch, mirror_urls
from archspec.errors import DataError, one_of

DATA_ENV = "ARCHSPEC_DATA"
SYSTEM_DIRS: tuple[Path, ...] = (Path("/usr/share/datasets"),)


@dataclass(frozen=True)
class Places:
    """Where to look for a dataset's files, in order, and where a download goes."""

    folders: tuple[Path, ...]
    target: Path


def cache_dir() -> Path:
    """``${XDG_CACHE_HOME:-~/.cache}/archspec/datasets``; a relative XDG_CACHE_HOME is ignored."""
    xdg = os.environ.get("XDG_CACHE_HOME", "")
    base = Path(xdg) if os.path.isabs(xdg) else Path("~/.cache").expanduser()
    return base / "archspec" / "datasets"


def places(name: str, *, explicit: Path | None = None, data_dir: Path | None = None) -> Places:
    """The search order for dataset ``name`` (see the module docstring)."""
    if explicit is not None:
        return Places((explicit,), explicit)
    if data_dir is not None:
        return Places((data_dir / name, data_dir), data_dir / name)
    env = os.environ.get(DATA_ENV, "")
    from_env = (Path(env).expanduser() / name,) if env else ()
    cache = cache_dir() / name
    system = tuple(folder / name for folder in SYSTEM_DIRS)
    return Places((*from_env, cache, *system), cache)


def find_local(remote: RemoteFile, folders: Sequence[Path]) -> Path | None:
    """The first ``NAME.gz`` or ``NAME`` file in ``folders``, or None."""
    for folder in folders:
        for candidate in (folder / remote.name, folder / remote.unpacked_name):
            if candidate.is_file():
                return candidate
    return None


def _how_to_provide(dataset: NamedDataset, where: Places) -> str:
    ways = [
        f"place the files in {where.target}",
        f"set {DATA_ENV}=DIR with the files in DIR/{dataset.name}/",
        "pass --data-dir DIR",
    ]
    if dataset.debian_package:
        ways.append(f"run `apt-get install -y {dataset.debian_package}`")
    return ", or ".join(ways)


def locate(dataset: NamedDataset, remote: RemoteFile, where: Places, *, download: bool) -> Path:
    """A local copy of ``remote``: found in ``where.folders`` or downloaded to ``where.target``."""
    found = find_local(remote, where.folders)
    if found is not None:
        return found
    looked = ", ".join(str(folder) for folder in where.folders)
    if not download:
        raise DataError(
            f"{dataset.name}: {remote.name} is not in any of {looked}, and downloading is off",
            f"drop --no-download to fetch it, or {_how_to_provide(dataset, where)}",
        )
    try:
        return fetch(remote.name, remote.md5, mirror_urls(dataset.mirrors), where.target)
    except DownloadError as error:
        raise DataError(
            f"{dataset.name}: {remote.name} is not in any of {looked}, and every mirror failed: "
            + "; ".join(error.failures),
            _how_to_provide(dataset, where),
        ) from None


def split_files(dataset: NamedDataset, split: str) -> SplitFiles:
    """The files of ``split``, or a DataError listing the splits the dataset has."""
    files = dataset.splits.get(split)
    if files is None:
        raise DataError(
            f"dataset '{dataset.name}' has no split '{split}': its splits are "
            f"{one_of(dataset.splits)}",
            f"write e.g. split: {next(iter(dataset.splits))}",
        )
    return files


def locate_split(
    dataset: NamedDataset, split: str, where: Places, *, download: bool
) -> tuple[Path, Path]:
    """Local (images, labels) files of one split, downloading the missing ones."""
    files = split_files(dataset, split)
    images = locate(dataset, files.images, where, download=download)
    labels = locate(dataset, files.labels, where, download=download)
    return images, labels


def ensure_files(
    name: str,
    splits: Sequence[str] | None = None,
    *,
    data_dir: Path | None = None,
    download: bool = True,
) -> dict[str, tuple[Path, Path]]:
    """Make the named dataset's splits (default: all) available; split → (images, labels)."""
    dataset = get_dataset(name)
    where = places(name, data_dir=data_dir)
    wanted = list(dataset.splits) if splits is None else list(splits)
    return {split: locate_split(dataset, split, where, download=download) for split in wanted}
