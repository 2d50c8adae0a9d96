"""Image folders: class folders, train/test layout, modes, resizing, broken files."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from archspec.data import load_split
from archspec.errors import DataError


def png(path: Path, value: int, size: tuple[int, int] = (4, 3), mode: str = "RGB") -> None:
    """A solid image of ``value`` with (W, H) ``size``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    colour = value if mode == "L" else (value, value // 2, 255 - value)
    Image.new(mode, size, colour).save(path)


def folder(root: Path) -> Path:
    png(root / "cat" / "a.png", 10)
    png(root / "cat" / "b.png", 20, mode="L")
    png(root / "dog" / "c.png", 30, size=(8, 6))  # resized to 4×3
    (root / "dog" / ".DS_Store").write_bytes(b"\0junk")
    (root / ".hidden").mkdir()
    return root


def load(root: Path, split: str, shape: tuple[int, ...]) -> tuple[torch.Tensor, torch.Tensor]:
    got = load_split(dataset=None, path=root, split=split, input_shape=shape)
    return got.x, got.y


def test_class_folders_rgb(tmp_path: Path) -> None:
    root = folder(tmp_path / "pets")
    split = load_split(dataset=None, path=root, split="all", input_shape=(3, 3, 4))
    assert split.classes == ("cat", "dog")
    assert split.x.shape == (3, 3, 3, 4) and split.x.dtype == torch.uint8
    assert split.y.tolist() == [0, 0, 1]
    assert split.x[0, :, 0, 0].tolist() == [10, 5, 245]
    assert split.x[1, :, 0, 0].tolist() == [20, 20, 20]  # grey → RGB
    assert split.x[2, :, 1, 1].tolist() == [30, 15, 225]  # solid colour survives the resize
    assert split.origin == f"image folder all from {root}"


def test_grey_and_slicing(tmp_path: Path) -> None:
    root = folder(tmp_path / "pets")
    x, y = load(root, "all[1:]", (1, 3, 4))
    assert x.shape == (2, 1, 3, 4) and y.tolist() == [0, 1]
    expected = round(0.299 * 30 + 0.587 * 15 + 0.114 * 225)
    assert abs(int(x[1, 0, 1, 1]) - expected) <= 1


def test_resize_changes_every_image_to_the_spec(tmp_path: Path) -> None:
    root = folder(tmp_path / "pets")
    x, _ = load(root, "all", (3, 16, 10))
    assert x.shape == (3, 3, 16, 10)


def test_train_test_layout_shares_class_indices(tmp_path: Path) -> None:
    png(tmp_path / "train" / "ant" / "1.png", 1)
    png(tmp_path / "train" / "bee" / "2.png", 2)
    png(tmp_path / "test" / "bee" / "3.png", 3)
    png(tmp_path / "test" / "cow" / "4.png", 4)
    train = load_split(dataset=None, path=tmp_path, split="train", input_shape=(1, 3, 4))
    test = load_split(dataset=None, path=tmp_path, split="test", input_shape=(1, 3, 4))
    assert train.classes == test.classes == ("ant", "bee", "cow")
    assert train.y.tolist() == [0, 1] and test.y.tolist() == [1, 2]
    pattern = f"^{re.escape(str(tmp_path))} has no split 'all': its splits are 'test' or 'train'$"
    with pytest.raises(DataError, match=pattern):
        load(tmp_path, "all", (1, 3, 4))


def test_undecodable_image_is_named(tmp_path: Path) -> None:
    root = folder(tmp_path / "pets")
    broken = root / "dog" / "broken.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    with pytest.raises(DataError, match=f"^{re.escape(str(broken))}: cannot decode image"):
        load(root, "all", (3, 3, 4))


def test_only_the_selected_images_are_decoded(tmp_path: Path) -> None:
    root = folder(tmp_path / "pets")
    (root / "dog" / "z-broken.png").write_bytes(b"garbage")
    x, _ = load(root, "all[:3]", (3, 3, 4))
    assert len(x) == 3


def test_image_folders_need_a_2d_input_with_1_or_3_channels(tmp_path: Path) -> None:
    root = folder(tmp_path / "pets")
    pattern = f"^{re.escape(str(root))}: an image folder needs a 2-D input \\[C, H, W\\]"
    with pytest.raises(DataError, match=pattern):
        load(root, "all", (4, 3, 4))
    with pytest.raises(DataError, match=pattern):
        load(root, "all", (1, 12))


def test_empty_class_folders(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    with pytest.raises(DataError, match=f"^{re.escape(str(tmp_path))}: no images in its class"):
        load(tmp_path, "all", (1, 2, 2))


def test_pixels_match_pillow(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    pixels = rng.integers(0, 256, (5, 6, 3), dtype=np.uint8)
    (tmp_path / "k").mkdir()
    Image.fromarray(pixels).save(tmp_path / "k" / "r.png")
    x, _ = load(tmp_path, "all", (3, 5, 6))
    np.testing.assert_array_equal(x[0].numpy(), pixels.transpose(2, 0, 1))


# ------------------------------------------------------------------ OpenCV fast path
def _pillow_only(path: Path, mode: str, size: tuple[int, int]) -> np.ndarray:
    """What decode_image gives without OpenCV."""
    from archspec.data import images

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(images, "_opencv", lambda: None)
        return images.decode_image(path, mode, size)


def _random_png(path: Path, mode: str, size: tuple[int, int], seed: int, **save: object) -> None:
    rng = np.random.default_rng(seed)
    shape = (size[1], size[0]) if mode in ("L", "I;16", "P") else (size[1], size[0], len(mode))
    dtype = np.uint16 if mode == "I;16" else np.uint8
    pixels = rng.integers(0, 256 if dtype == np.uint8 else 65536, size=shape, dtype=dtype)
    image = Image.fromarray(pixels, mode="L" if mode == "P" else None)
    if mode == "P":
        image = image.convert("P")
    elif mode == "I;16":
        image = Image.fromarray(pixels.astype(np.uint16))
    image.save(path, **save)


@pytest.mark.parametrize(
    ("stored", "wanted", "size", "save"),
    [
        ("L", "L", (28, 28), {}),
        ("RGB", "RGB", (9, 5), {}),
        ("L", "L", (7, 3), {"optimize": True}),
        ("RGB", "RGB", (16, 16), {"compress_level": 0}),
        # not read as stored: Pillow decodes these (converted, resized), the same as before
        ("L", "RGB", (8, 8), {}),
        ("RGB", "L", (8, 8), {}),
        ("RGBA", "RGB", (8, 8), {}),
        ("P", "RGB", (8, 8), {}),
        ("I;16", "L", (8, 8), {}),
    ],
)
def test_opencv_decodes_exactly_the_pixels_pillow_does(
    tmp_path: Path, stored: str, wanted: str, size: tuple[int, int], save: dict[str, object]
) -> None:
    pytest.importorskip("cv2")
    from archspec.data.images import decode_image, fast_png

    for seed in range(3):
        path = tmp_path / f"{stored}-{seed}.png"
        _random_png(path, stored, size, seed, **save)
        reference = _pillow_only(path, wanted, size)
        got = decode_image(path, wanted, size)
        assert got.dtype == reference.dtype and got.shape == reference.shape
        assert np.array_equal(got, reference), (stored, wanted, seed)
        taken = fast_png(path, wanted, size) is not None
        assert taken == (stored == wanted)  # only an image already in mode and size
        assert fast_png(path, wanted, (size[0] + 1, size[1])) is None  # a resize: Pillow's


def test_a_truncated_png_is_worded_by_pillow_and_opencv_stays_quiet(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("cv2")
    from archspec.data.images import decode_image

    path = tmp_path / "cut.png"
    _random_png(path, "L", (28, 28), 0)
    path.write_bytes(path.read_bytes()[:200])  # the header survives: the fast path tries it
    with pytest.raises(DataError, match=rf"^{re.escape(str(path))}: cannot decode image"):
        decode_image(path, "L", (28, 28))
    assert capfd.readouterr().err == ""
