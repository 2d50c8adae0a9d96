"""Finding a named dataset's files on disk, downloading them when absent.

Each file of a split is looked up, in order, as ``NAME.gz`` or unpacked ``NAME`` in:

1. an explicit folder — the ``path`` given with the dataset, or ``--data-dir DIR``
   (``DIR/<name>/`` then ``DIR/``); when one is given it is the only place looked,
   and downloads go there;
2. ``$ARCHSPEC_DATA/<name>/``;
3. the user cache ``${XDG_CACHE_HOME:-~/.cache}/archspec/datasets/<name>/``;
4. system folders ``/usr/share/datasets/<name>/`` (Debian's dataset packages);
5. else it is downloaded from the mirrors into the cache (MD5-verified).

A file that is a member of an archive (CIFAR's ``.tar.gz``, EMNIST's ``gzip.zip``)
is also looked for in the archive's own subfolder (``cifar-10-batches-bin/``); when
absent, the archive is found in the same places or downloaded, and the one member is
extracted (by its catalog name, never a path from the archive) beside the archive
or, when that folder is read-only, into the download target.

Files found on disk are validated later by their structure, not by MD5.
"""

from __future__ import annotations

import os
import shutil
import tarfile
import tempfile
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

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
    """The first ``NAME.gz`` or ``NAME`` file in ``folders`` (or in the subfolder an
    archive member lives in, e.g. ``cifar-10-batches-bin/``), or None."""
    inner = os.path.dirname(remote.member)
    for folder in folders:
        for base in (folder, folder / inner) if inner else (folder,):
            for candidate in (base / remote.name, base / remote.unpacked_name):
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
    if remote.archive is not None:
        archive = locate(dataset, RemoteFile(remote.archive, remote.md5), where, download=download)
        return extract_member(archive, remote, where.target)
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
) -> tuple[Path, ...]:
    """Local files of one split (IDX: images, labels), downloading the missing ones."""
    files = split_files(dataset, split)
    return tuple(locate(dataset, remote, where, download=download) for remote in files.files)


def _copy_member(archive: Path, member: str, out: Any) -> bool:
    """Copy ``member`` of a .zip or .tar(.gz) ``archive`` into ``out``; False if absent."""
    if zipfile.is_zipfile(archive):
        with zipfile.ZipFile(archive) as zipped:
            if member not in zipped.namelist():
                return False
            with zipped.open(member) as source:
                shutil.copyfileobj(source, out)
            return True
    with tarfile.open(archive, "r:*") as tar:
        try:
            info = tar.getmember(member)
        except KeyError:
            return False
        stream = tar.extractfile(info) if info.isfile() else None
        if stream is None:
            return False
        shutil.copyfileobj(stream, out)
        return True


def extract_member(archive: Path, remote: RemoteFile, target: Path) -> Path:
    """Extract ``remote.member`` of ``archive`` to ``remote.name`` beside the archive
    (or in ``target`` when that is read-only), atomically; the path written."""
    for folder in dict.fromkeys((archive.parent, target)):
        try:
            folder.mkdir(parents=True, exist_ok=True)
            handle, temp_name = tempfile.mkstemp(prefix=f".{remote.name}.", dir=folder)
        except OSError:
            continue
        temp = Path(temp_name)
        try:
            with os.fdopen(handle, "wb") as out:
                found = _copy_member(archive, remote.member, out)
            if not found:
                raise DataError(
                    f"{archive}: has no member {remote.member}",
                    "the archive is not the one archspec expects: delete it to download it again",
                )
            os.replace(temp, folder / remote.name)
            return folder / remote.name
        except (OSError, EOFError, tarfile.TarError, zipfile.BadZipFile) as error:
            raise DataError(
                f"{archive}: cannot extract {remote.member}: {error}",
                "the archive is damaged: delete it to download it again",
            ) from None
        finally:
            temp.unlink(missing_ok=True)
    raise DataError(
        f"cannot write {remote.name} beside {archive} nor into {target}",
        "choose a writable folder with --data-dir or ARCHSPEC_DATA",
    )


def ensure_files(
    name: str,
    splits: Sequence[str] | None = None,
    *,
    data_dir: Path | None = None,
    download: bool = True,
) -> dict[str, tuple[Path, ...]]:
    """Make the named dataset's splits (default: all) available; split → (images, labels)."""
    dataset = get_dataset(name)
    where = places(name, data_dir=data_dir)
    wanted = list(dataset.splits) if splits is None else list(splits)
    return {split: locate_split(dataset, split, where, download=download) for split in wanted}
