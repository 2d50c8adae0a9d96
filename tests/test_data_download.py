"""Downloads against a loopback HTTP server: MD5-verified, atomic, mirrors in order."""

from __future__ import annotations

import functools
import re
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from realdata import MNIST as MNIST_DIR

from archspec.data import download as download_module
from archspec.data import ensure_files, load_split
from archspec.data import resolve as resolve_module
from archspec.data.download import download_file, mirror_urls
from archspec.errors import DataError

TEST_FILES = ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")
IMAGES_MD5 = "9fb629c4189551a2d022fa330f9573f3"
SHAPE = (1, 28, 28)

pytestmark = pytest.mark.skipif(not MNIST_DIR.is_dir(), reason=f"{MNIST_DIR} is absent")


class QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def www(tmp_path: Path) -> Path:
    """good/ holds the real t10k files, bad/ a copy with one byte flipped, empty/ nothing."""
    root = tmp_path / "www"
    shutil.copytree(MNIST_DIR, root / "good")
    shutil.copytree(MNIST_DIR, root / "bad")
    corrupt = root / "bad" / TEST_FILES[0]
    data = bytearray(corrupt.read_bytes())
    data[len(data) // 2] ^= 0xFF
    corrupt.write_bytes(bytes(data))
    (root / "empty").mkdir()
    return root


@pytest.fixture
def server(www: Path) -> Iterator[str]:
    """Base URL of a loopback HTTP server over ``www``."""
    handler = functools.partial(QuietHandler, directory=str(www))
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/"
    httpd.shutdown()
    httpd.server_close()
    thread.join()


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Isolate from the machine's files: empty cache, no ARCHSPEC_DATA, no system folders."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.delenv("ARCHSPEC_DATA", raising=False)
    monkeypatch.setattr(resolve_module, "SYSTEM_DIRS", (tmp_path / "system",))
    return tmp_path / "xdg" / "archspec" / "datasets" / "mnist"


def closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/"


def test_download_verifies_and_caches(
    server: str, cache: Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("ARCHSPEC_MIRRORS", f"{server}good")
    split = load_split(dataset="mnist", path=None, split="test[:8000]", input_shape=SHAPE)
    assert split.x.shape == (8000, 1, 28, 28)
    assert sorted(p.name for p in cache.iterdir()) == sorted(TEST_FILES)
    for name in TEST_FILES:
        assert (cache / name).read_bytes() == (MNIST_DIR / name).read_bytes()
    assert capfd.readouterr().err == ""  # no progress bar when stderr is not a terminal
    monkeypatch.setenv("ARCHSPEC_MIRRORS", closed_port_url())  # now served from the cache
    again = load_split(dataset="mnist", path=None, split="test", input_shape=SHAPE)
    assert again.origin == f"mnist test from {cache / TEST_FILES[0]}"


def test_corrupted_download_is_rejected_and_nothing_is_kept(
    server: str, cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ARCHSPEC_MIRRORS", f"{server}bad/")
    url = f"{server}bad/{TEST_FILES[0]}"
    pattern = (
        f"checksum mismatch for {re.escape(url)}: expected MD5 {IMAGES_MD5}, got [0-9a-f]{{32}}"
    )
    with pytest.raises(DataError, match=f"^mnist: {TEST_FILES[0]} is not in any of .*{pattern}$"):
        load_split(dataset="mnist", path=None, split="test", input_shape=SHAPE)
    assert list(cache.iterdir()) == []


def test_download_file_reports_the_mismatch_itself(server: str, tmp_path: Path) -> None:
    dest = tmp_path / "out" / TEST_FILES[0]
    with pytest.raises(DataError, match=r"^checksum mismatch for .*: expected MD5") as caught:
        download_file(f"{server}bad/{TEST_FILES[0]}", dest, IMAGES_MD5)
    assert "the mirror served a corrupted file; retry or place the file in" in caught.value.hint
    assert list(dest.parent.iterdir()) == []


def test_a_404_mirror_falls_through_to_the_next(
    server: str, cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ARCHSPEC_MIRRORS", f"{server}empty/, {server}good/")
    split = load_split(dataset="mnist", path=None, split="test[-10:]", input_shape=SHAPE)
    assert len(split.y) == 10 and (cache / TEST_FILES[1]).is_file()


def test_all_mirrors_down_is_one_clear_error_quickly(
    cache: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    down = closed_port_url()
    monkeypatch.setenv("ARCHSPEC_MIRRORS", f"{down},{down}again/")
    started = time.monotonic()
    with pytest.raises(DataError) as caught:
        load_split(dataset="mnist", path=None, split="test", input_shape=SHAPE)
    assert time.monotonic() - started < 5
    places = f"{cache}, {tmp_path / 'system' / 'mnist'}"
    assert re.match(
        f"^mnist: {TEST_FILES[0]} is not in any of {re.escape(places)}, and every mirror failed: "
        f"{re.escape(down)}{TEST_FILES[0]}: .*; {re.escape(down)}again/{TEST_FILES[0]}: ",
        caught.value.message,
    )
    assert "ARCHSPEC_DATA" in caught.value.hint and "--data-dir" in caught.value.hint
    assert not cache.exists() or list(cache.iterdir()) == []


def test_progress_bar_on_a_terminal(
    server: str, cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ARCHSPEC_MIRRORS", f"{server}good/")
    monkeypatch.setattr(download_module, "_show_progress", lambda: True)
    assert ensure_files("mnist", ["test"])["test"][0] == cache / TEST_FILES[0]


def test_no_download_says_so(cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ARCHSPEC_MIRRORS", closed_port_url())
    with pytest.raises(DataError, match=r"^mnist: .* and downloading is off$") as caught:
        load_split(dataset="mnist", path=None, split="test", input_shape=SHAPE, download=False)
    assert caught.value.hint.startswith("drop --no-download to fetch it, or place the files in")


def test_explicit_folder_receives_the_download(
    server: str, cache: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ARCHSPEC_MIRRORS", f"{server}good/")
    explicit = tmp_path / "mine"
    load_split(dataset="mnist", path=explicit, split="test[:5]", input_shape=SHAPE)
    assert sorted(p.name for p in explicit.iterdir()) == sorted(TEST_FILES)
    assert not cache.exists()


def test_ensure_files_into_data_dir(
    server: str, cache: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ARCHSPEC_MIRRORS", f"{server}good/")
    got = ensure_files("mnist", ["test"], data_dir=tmp_path / "dd")
    folder = tmp_path / "dd" / "mnist"
    assert got == {"test": (folder / TEST_FILES[0], folder / TEST_FILES[1])}


def test_mirror_override_must_be_urls(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ARCHSPEC_MIRRORS", "ftp://old.example/, ")
    with pytest.raises(DataError, match=r"^ARCHSPEC_MIRRORS: mirror 'ftp://old.example/' is not"):
        mirror_urls(["https://default/"])
    monkeypatch.setenv("ARCHSPEC_MIRRORS", " file:///srv/mnist ,https://a/b/ ")
    assert mirror_urls(["https://default/"]) == ("file:///srv/mnist/", "https://a/b/")
    monkeypatch.delenv("ARCHSPEC_MIRRORS")
    assert mirror_urls(["https://default/"]) == ("https://default/",)
