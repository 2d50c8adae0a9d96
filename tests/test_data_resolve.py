"""Where a named dataset's files are found: explicit > $ARCHSPEC_DATA > cache > system."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from archspec.data import load_split
from archspec.data import resolve as resolve_module
from archspec.data.idx import write_idx
from archspec.data.resolve import cache_dir, places
from archspec.errors import DataError

SHAPE = (1, 2, 2)


def plant(folder: Path, count: int, *, unpacked: bool = False) -> Path:
    """Tiny fashion-mnist test files holding ``count`` 2×2 samples; returns ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    suffix = "" if unpacked else ".gz"
    images = np.full((count, 2, 2), count, dtype=np.uint8)
    write_idx(folder / f"t10k-images-idx3-ubyte{suffix}", images, compress=not unpacked)
    write_idx(folder / f"t10k-labels-idx1-ubyte{suffix}", np.arange(count, dtype=np.uint8) % 10)
    return folder


@pytest.fixture
def roots(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Path]:
    """Files in every place, each with a different sample count; downloads impossible."""
    env, xdg, system = tmp_path / "env", tmp_path / "xdg", tmp_path / "sys"
    monkeypatch.setenv("ARCHSPEC_DATA", str(env))
    monkeypatch.setenv("XDG_CACHE_HOME", str(xdg))
    monkeypatch.setenv("ARCHSPEC_MIRRORS", "http://127.0.0.1:9/")
    monkeypatch.setattr(resolve_module, "SYSTEM_DIRS", (system,))
    return {
        "explicit": plant(tmp_path / "explicit", 3),
        "env": plant(env / "fashion-mnist", 4),
        "cache": plant(xdg / "archspec" / "datasets" / "fashion-mnist", 5, unpacked=True),
        "system": plant(system / "fashion-mnist", 6),
    }


def count(path: Path | None = None, data_dir: Path | None = None) -> int:
    split = load_split(
        dataset="fashion-mnist", path=path, split="test", input_shape=SHAPE, data_dir=data_dir
    )
    return len(split.y)


def test_order_is_explicit_env_cache_system(roots: dict[str, Path]) -> None:
    assert count(roots["explicit"]) == 3
    assert count() == 4
    for place in ("env", "cache"):
        for file in roots[place].iterdir():
            file.unlink()
        assert count() == {"env": 5, "cache": 6}[place]


def test_data_dir_looks_in_name_subfolder_then_itself(
    roots: dict[str, Path], tmp_path: Path
) -> None:
    data_dir = tmp_path / "dd"
    plant(data_dir, 7)
    assert count(data_dir=data_dir) == 7
    plant(data_dir / "fashion-mnist", 8)
    assert count(data_dir=data_dir) == 8


def test_an_explicit_folder_is_the_only_place_looked(
    roots: dict[str, Path], tmp_path: Path
) -> None:
    empty = tmp_path / "nothing-here"
    pattern = f"^fashion-mnist: t10k-images-idx3-ubyte.gz is not in any of {re.escape(str(empty))},"
    with pytest.raises(DataError, match=pattern) as caught:
        count(empty)
    assert "apt-get install -y dataset-fashion-mnist" in caught.value.hint


def test_places_without_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ARCHSPEC_DATA", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/ignored")
    assert cache_dir() == Path("~/.cache/archspec/datasets").expanduser()
    found = places("mnist")
    assert found.folders == (cache_dir() / "mnist", Path("/usr/share/datasets/mnist"))
    assert found.target == cache_dir() / "mnist"


def test_unknown_dataset_suggests_a_name() -> None:
    with pytest.raises(
        DataError, match=r"^unknown dataset 'fashion_mnist': the named datasets"
    ) as e:
        load_split(dataset="fashion_mnist", path=None, split="train", input_shape=(1, 28, 28))
    assert e.value.hint.startswith("did you mean 'fashion-mnist'?")


def test_unknown_split_lists_the_splits(roots: dict[str, Path]) -> None:
    pattern = r"^dataset 'fashion-mnist' has no split 'valid': its splits are 'test' or 'train'$"
    with pytest.raises(DataError, match=pattern):
        load_split(dataset="fashion-mnist", path=None, split="valid", input_shape=SHAPE)


def test_bad_input_shape_and_no_source() -> None:
    with pytest.raises(DataError, match=r"^the spec's input must be \[C, \*spatial\]"):
        load_split(dataset="mnist", path=None, split="test", input_shape=(784,))
    with pytest.raises(DataError, match=r"^no data given: need a dataset name or a path$"):
        load_split(dataset=None, path=None, split="test", input_shape=(1, 28, 28))
