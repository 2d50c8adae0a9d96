"""``archspec predict``: real MNIST digits as PNG and IDX through a briefly trained network."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from realdata import MNIST, needs_mnist

import archspec
from archspec.cli import main
from archspec.data.idx import read_idx, write_idx
from archspec.errors import DataError, UsageError
from archspec.outputs.predict import predict, read_inputs
from archspec.train.evaluate import restore
from archspec.train.run import Options, train

pytestmark = needs_mnist
HELD_OUT = slice(8000, 10000, 50)  # 40 digits the network never saw (it trains on test[:512])

SPEC = f"""
name: tiny-digits
input: [1, 28, 28]
layers:
  - conv: {{depth: 8, kernel: 3, padding: same}}
  - relu
  - pool: 2
  - conv: {{depth: 16, kernel: 3, padding: same}}
  - relu
  - pool: 2
  - flatten
  - dense: 10
  - softmax
train:
  data: {{dataset: mnist, path: {MNIST}, train: "test[:512]", val: 0, test: null}}
  batch_size: 32
  epochs: 8
  optimizer: {{name: adam, lr: 0.003}}
  seed: 0
"""


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("predict") / "run"
    return train(archspec.loads(SPEC, "tiny.yaml"), Options(out=out, quiet=True))


@pytest.fixture(scope="module")
def digits() -> tuple[np.ndarray, np.ndarray]:
    images = read_idx(MNIST / "t10k-images-idx3-ubyte.gz")[HELD_OUT]
    labels = read_idx(MNIST / "t10k-labels-idx1-ubyte.gz")[HELD_OUT]
    return images, labels


@pytest.fixture(scope="module")
def pngs(
    tmp_path_factory: pytest.TempPathFactory, digits: tuple[np.ndarray, np.ndarray]
) -> list[Path]:
    folder = tmp_path_factory.mktemp("digits")
    paths = []
    for i, image in enumerate(digits[0]):
        paths.append(folder / f"digit{i:02}.png")
        Image.fromarray(image).save(paths[-1])
    return paths


def test_predictions_of_real_digits_are_mostly_right(
    run_dir: Path, pngs: list[Path], digits: tuple[np.ndarray, np.ndarray]
) -> None:
    results = predict(run_dir, pngs, top=3)
    assert [r.input for r in results] == [str(p) for p in pngs]
    right = [r.top[0][0] == str(label) for r, label in zip(results, digits[1], strict=True)]
    assert np.mean(right) >= 0.8
    for r in results:
        assert len(r.top) == 3
        probs = [p for _, p in r.top]
        assert probs == sorted(probs, reverse=True) and 0 < sum(probs) <= 1 + 1e-6


def test_png_and_idx_give_the_same_predictions(
    run_dir: Path, pngs: list[Path], tmp_path: Path, digits: tuple[np.ndarray, np.ndarray]
) -> None:
    idx = tmp_path / "digits.idx.gz"
    write_idx(idx, digits[0], compress=True)
    from_png = predict(run_dir, pngs, top=10)
    from_idx = predict(run_dir, [idx], top=10)
    assert [r.input for r in from_idx] == [f"{idx}[{i}]" for i in range(len(pngs))]
    for a, b in zip(from_png, from_idx, strict=True):
        assert [name for name, _ in a.top] == [name for name, _ in b.top]
        np.testing.assert_allclose([p for _, p in a.top], [p for _, p in b.top], atol=1e-6)
    _, from_idx_pixels = read_inputs(idx, (1, 28, 28))
    from_png_pixels = np.concatenate([read_inputs(p, (1, 28, 28))[1] for p in pngs])
    assert np.array_equal(from_png_pixels, from_idx_pixels)  # the same inputs, bit for bit


def test_probabilities_are_the_softmax_of_the_logits_not_applied_twice(
    run_dir: Path, pngs: list[Path]
) -> None:
    restored = restore(run_dir, device="cpu")
    pixels = torch.from_numpy(np.array(Image.open(pngs[0])))[None, None]
    restored.network.logits_only = False
    with torch.no_grad():
        expected = restored.network(restored.inputs(pixels))[0]  # the spec ends in softmax
    top = predict(run_dir, pngs[:1], top=10)[0].top
    got = {name: p for name, p in top}
    np.testing.assert_allclose([got[str(i)] for i in range(10)], expected.numpy(), atol=1e-6)
    assert sum(got.values()) == pytest.approx(1.0, abs=1e-5)


def test_colour_and_other_sizes_are_converted_like_training_images(
    run_dir: Path, digits: tuple[np.ndarray, np.ndarray], tmp_path: Path
) -> None:
    grey = Image.fromarray(digits[0][0])
    rgb = tmp_path / "big.jpg"
    grey.convert("RGB").resize((84, 84), Image.Resampling.BICUBIC).save(rgb, quality=95)
    result = predict(run_dir, [rgb], top=1)[0]
    assert (
        result.top[0][0] == predict(run_dir, [_save(grey, tmp_path / "g.png")], top=1)[0].top[0][0]
    )


def _save(image: Image.Image, path: Path) -> Path:
    image.save(path)
    return path


def test_cli_prints_top_k_and_json(
    run_dir: Path, pngs: list[Path], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["predict", str(run_dir), str(pngs[0]), str(pngs[1]), "--top", "2"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2
    assert re.match(rf"^{re.escape(str(pngs[0]))}: \d \(\d+\.\d\d%\)  \d \(\d+\.\d\d%\)$", lines[0])
    assert main(["predict", str(run_dir / "model.safetensors"), str(pngs[0]), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data[0]["input"] == str(pngs[0]) and len(data[0]["top"]) == 3
    assert set(data[0]["top"][0]) == {"class", "probability"}


def test_unreadable_inputs_are_clear_errors(
    run_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"\x89PNG not really")
    with pytest.raises(
        DataError, match=r"^\S*broken\.png: cannot decode image: cannot identify"
    ) as info:
        predict(run_dir, [broken])
    assert info.value.hint == "give a PNG or JPEG image, or an IDX file of images"
    with pytest.raises(DataError, match=r"^.*missing\.png: no such image file$"):
        predict(run_dir, [tmp_path / "missing.png"])
    labels = MNIST / "t10k-labels-idx1-ubyte.gz"
    with pytest.raises(
        DataError,
        match=r"^\S*labels\S*: the IDX file holds 10000 values, but the "
        r"network takes inputs of 1×28×28$",
    ):
        predict(run_dir, [labels])
    small = tmp_path / "small.idx"
    write_idx(small, np.zeros((2, 14, 14), dtype=np.uint8))
    with pytest.raises(DataError, match=r"^\S*small\.idx: the IDX file holds 2×14×14 values, but"):
        predict(run_dir, [small])
    assert main(["predict", str(run_dir), str(broken)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("archspec: ") and err.count("\n") == 1 and "Traceback" not in err


def test_usage_and_checkpoint_errors(
    run_dir: Path, pngs: list[Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(UsageError, match=r"^--top must be at least 1; received 0"):
        predict(run_dir, pngs[:1], top=0)
    assert main(["predict", str(tmp_path / "nope"), str(pngs[0])]) == 1
    assert "no such run directory or checkpoint file" in capsys.readouterr().err


def test_a_network_without_image_input_refuses_images(tmp_path: Path, pngs: list[Path]) -> None:
    spec = archspec.loads("input: [3, 128]\nlayers: [flatten, {dense: 4}]", "series.yaml")
    from archspec.train import checkpoint

    ckpt = tmp_path / "series.safetensors"
    net = spec.build()
    checkpoint.save(
        ckpt,
        {k: v.contiguous() for k, v in net.state_dict().items()},
        {"spec": "input: [3, 128]\nlayers: [flatten, {dense: 4}]\n"},
    )
    with pytest.raises(
        DataError,
        match=r"^\S*\.png: an image can feed only a \[C, H, W\] input "
        r"with C = 1 or 3, but the network takes 3×128$",
    ):
        predict(ckpt, pngs[:1])
