"""Streaming data: image folders, .npy pairs and .tar shards decoded in loader workers.

The guarantee under test: streaming changes where samples are decoded, never which
batches the model sees — the same seed gives the same weights as the in-memory path,
an interrupted streaming run resumes to the uninterrupted result, each rank reads
its contiguous part of every global batch, and bad files are fatal or skipped.
"""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import tarfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file

import archspec
from archspec.errors import DataError, SpecError
from archspec.train import checkpoint
from archspec.train.data import IndexBatches, batches, epoch_order, shard
from archspec.train.loop import Interrupted
from archspec.train.run import Options, resume, train

CLASSES = 3
PER_CLASS = {"train": 20, "val": 6}


def _images(seed: int, count: int) -> np.ndarray:
    """``count`` 8×8 grey images whose mean brightness tells the class (learnable)."""
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, size=(count, 8, 8), dtype=np.uint8)


def _png(array: np.ndarray) -> bytes:
    out = io.BytesIO()
    Image.fromarray(array).save(out, format="PNG")
    return out.getvalue()


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """ROOT/{train,val}/{0,1,2}/NNN.png, ImageNet layout."""
    root = tmp_path_factory.mktemp("images")
    for split, count in PER_CLASS.items():
        for label in range(CLASSES):
            target = root / split / str(label)
            target.mkdir(parents=True)
            for index, image in enumerate(_images(label * 10 + len(split), count)):
                (target / f"{index:03d}.png").write_bytes(_png(image))
    return root


def spec_text(path: Path, **data: Any) -> str:
    extra = "".join(f", {key}: {json.dumps(value)}" for key, value in data.items())
    return f"""
name: tiny-stream
input: [1, 8, 8]
layers:
  - conv: {{depth: 4, kernel: 3, padding: same}}
  - relu
  - flatten
  - dense: {CLASSES}
train:
  data: {{path: "{path}", val: "val", test: "val"{extra}}}
  batch_size: 8
  epochs: 2
  optimizer: {{name: sgd, lr: 0.05, momentum: 0.9}}
  seed: 5
"""


def run(tmp_path: Path, name: str, path: Path, **data: Any) -> Path:
    spec = archspec.loads(spec_text(path, **data), "tiny.yaml")
    return train(spec, Options(out=tmp_path / name, quiet=True))


def same_weights(a: Path, b: Path) -> None:
    wa, wb = load_file(str(a / "model.safetensors")), load_file(str(b / "model.safetensors"))
    assert wa.keys() == wb.keys()
    for key in wa:
        assert torch.equal(wa[key], wb[key]), key


def test_streamed_folder_trains_exactly_like_the_in_memory_one(
    tmp_path: Path, folder: Path
) -> None:
    memory = run(tmp_path, "memory", folder, stream=False)
    streamed = run(tmp_path, "streamed", folder, stream=True, workers=2)
    same_weights(memory, streamed)
    info = json.loads((streamed / "run.json").read_text())
    assert info["data"]["streaming"] is True
    assert info["data"]["train_examples"] == CLASSES * PER_CLASS["train"]
    assert json.loads((memory / "run.json").read_text())["data"]["streaming"] is False


def test_eval_of_a_streamed_run_streams_its_val_split(tmp_path: Path, folder: Path) -> None:
    from archspec.train.evaluate import run_eval

    out = run(tmp_path, "streamed", folder, stream=True, workers=1)
    report = run_eval(out, which="last", device="cpu")
    test = json.loads((out / "test.json").read_text())
    assert report["split"] == test["split"] == f"image folder val from {folder}"
    assert report["accuracy"] == test["accuracy"]
    assert report["confusion"] == test["confusion"]


def test_in_process_decoding_matches_workers(tmp_path: Path, folder: Path) -> None:
    same_weights(
        run(tmp_path, "w0", folder, stream=True, workers=0),
        run(tmp_path, "w2", folder, stream=True, workers=2, prefetch=1),
    )


def test_interrupted_streaming_run_resumes_to_the_same_weights(
    tmp_path: Path, folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    whole = run(tmp_path, "whole", folder, stream=True, workers=1)
    from archspec.train import loop

    original = loop.Trainer._step

    def patched(self: loop.Trainer, *batch: Any) -> None:
        original(self, *batch)
        if self.progress.global_step == 5:  # mid-epoch: 8 steps per epoch
            os.kill(os.getpid(), signal.SIGINT)

    monkeypatch.setattr(loop.Trainer, "_step", patched)
    with pytest.raises(Interrupted):
        run(tmp_path, "cut", folder, stream=True, workers=1)
    ckpt = checkpoint.load(tmp_path / "cut" / "checkpoints" / "last.safetensors")
    assert ckpt.meta["progress"]["global_step"] == 5
    monkeypatch.undo()
    resume(tmp_path / "cut", Options(quiet=True))
    same_weights(whole, tmp_path / "cut")


def test_each_rank_reads_its_part_of_every_global_batch() -> None:
    order = epoch_order(23, seed=4, epoch=1)
    for rank in range(2):
        sampler = IndexBatches(batch_size=6, rank=rank, world=2)
        sampler.set_epoch(order, start=1)  # resume at the second batch
        expected = [shard(idx, rank, 2).tolist() for idx in batches(order, 6, 1)]
        assert list(sampler) == expected
        assert sampler.global_sizes() == [6, 6, 5]
    both = [i for rank in range(2) for part in _parts(order, rank) for i in part]
    assert sorted(both) == sorted(order[6:].tolist())  # no sample twice, none lost


def _parts(order: torch.Tensor, rank: int) -> list[list[int]]:
    sampler = IndexBatches(batch_size=6, rank=rank, world=2)
    sampler.set_epoch(order, start=1)
    return list(sampler)


# ------------------------------------------------------------------ bad files
@pytest.fixture
def broken(tmp_path: Path, folder: Path) -> tuple[Path, Path]:
    """A copy of the folder with one truncated PNG."""
    import shutil

    root = tmp_path / "broken"
    shutil.copytree(folder, root)
    bad = root / "train" / "1" / "004.png"
    bad.write_bytes(bad.read_bytes()[:40])
    return root, bad


def test_a_truncated_image_is_fatal_by_default_and_named(
    tmp_path: Path, broken: tuple[Path, Path]
) -> None:
    root, bad = broken
    with pytest.raises(DataError, match=rf"^{bad}: cannot decode image") as info:
        run(tmp_path, "fatal", root, stream=True, workers=1)
    assert "on_bad_file: skip" in info.value.hint


def test_skipped_bad_files_are_counted_in_run_json(
    tmp_path: Path, broken: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    root, bad = broken
    out = run(tmp_path, "skip", root, stream=True, workers=1, on_bad_file="skip")
    data = json.loads((out / "run.json").read_text())["data"]
    assert data["skipped_files"] >= 2  # once for the statistics pass, once per epoch
    assert all(str(bad) in reason for reason in data["skipped"])
    assert f"warning: skipped {bad}" in capsys.readouterr().err


def test_skip_also_applies_when_the_folder_is_decoded_into_memory(
    tmp_path: Path, broken: tuple[Path, Path]
) -> None:
    root, bad = broken
    out = run(tmp_path, "skip-mem", root, stream=False, on_bad_file="skip")
    info = json.loads((out / "run.json").read_text())["data"]
    assert info["skipped_files"] == 1
    assert info["skipped"][0].startswith(f"{bad}: cannot decode image")
    assert info["train_examples"] == CLASSES * PER_CLASS["train"] - 1


# ------------------------------------------------------------------ .npy pairs
def test_memory_mapped_npy_pairs_stream_like_arrays_in_memory(tmp_path: Path) -> None:
    root = tmp_path / "npy"
    root.mkdir()
    for split, seed in (("train", 1), ("val", 2)):
        count = 24 if split == "train" else 9
        np.save(root / f"x_{split}.npy", _images(seed, count)[..., np.newaxis])  # (N, H, W, C)
        np.save(root / f"y_{split}.npy", np.arange(count) % CLASSES)
    same_weights(
        run(tmp_path, "memory", root, stream=False),
        run(tmp_path, "mapped", root, stream=True, workers=1),
    )


def test_npy_pair_that_does_not_fit_the_spec_is_named(tmp_path: Path) -> None:
    root = tmp_path / "npy"
    root.mkdir()
    np.save(root / "x_train.npy", np.zeros((4, 5, 5), dtype=np.uint8))
    np.save(root / "y_train.npy", np.zeros(4, dtype=np.int64))
    np.save(root / "x_val.npy", np.zeros((4, 5, 5), dtype=np.uint8))
    np.save(root / "y_val.npy", np.zeros(4, dtype=np.int64))
    with pytest.raises(DataError, match=r"x_train\.npy: samples of shape \[5, 5\] do not fit"):
        run(tmp_path, "bad", root, stream=True)


# ------------------------------------------------------------------ .tar shards
def _write_shards(folder: Path, root: Path, per_shard: int) -> None:
    """WebDataset-style shards of the image folder: KEY.png + KEY.cls, in folder order."""
    for split in PER_CLASS:
        (root / split).mkdir(parents=True)
        files = sorted((folder / split).glob("*/*.png"), key=lambda p: (p.parent.name, p.name))
        for first in range(0, len(files), per_shard):
            with tarfile.open(root / split / f"shard-{first // per_shard:04d}.tar", "w") as tar:
                for number, path in enumerate(files[first : first + per_shard], start=first):
                    key = f"{number:06d}"
                    for name, data in (
                        (f"{key}.png", path.read_bytes()),
                        (f"{key}.cls", path.parent.name.encode()),
                    ):
                        info = tarfile.TarInfo(name)
                        info.size = len(data)
                        tar.addfile(info, io.BytesIO(data))


def test_tar_shards_stream_the_same_samples_as_the_folder(tmp_path: Path, folder: Path) -> None:
    shards = tmp_path / "shards"
    _write_shards(folder, shards, per_shard=16)
    assert len(list((shards / "train").glob("*.tar"))) == 4
    same_weights(
        run(tmp_path, "folder", folder, stream=False),
        run(tmp_path, "tar", shards, stream=True, workers=2),
    )


def test_tar_member_without_label_and_compressed_shard_are_errors(tmp_path: Path) -> None:
    root = tmp_path / "nolabel"
    (root / "train").mkdir(parents=True)
    (root / "val").mkdir()
    for split in ("train", "val"):
        with tarfile.open(root / split / "a.tar", "w") as tar:
            info = tarfile.TarInfo("x1.png")
            data = _png(_images(0, 1)[0])
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    with pytest.raises(DataError, match=r"a\.tar: sample 'x1' has an image but no \.cls label"):
        run(tmp_path, "r1", root, stream=True)
    gz = tmp_path / "gz"
    (gz / "train").mkdir(parents=True)
    (gz / "val").mkdir()
    for split in ("train", "val"):
        (gz / split / "b.tar").write_bytes(b"\x1f\x8b" + b"\0" * 600)
    with pytest.raises(DataError, match=r"b\.tar: not an uncompressed tar shard"):
        run(tmp_path, "r2", gz, stream=True)


# ------------------------------------------------------------------ settings
def test_stream_true_on_whole_file_data_is_a_clear_error(tmp_path: Path) -> None:
    npz = tmp_path / "d.npz"
    np.savez(npz, x=_images(0, 6), y=np.arange(6) % CLASSES)
    text = spec_text(npz, stream=True).replace('val: "val", test: "val"', "val: 0, test: null")
    with pytest.raises(DataError, match=r"data\.stream is true, but .*d\.npz is read whole"):
        train(archspec.loads(text, "t.yaml"), Options(out=tmp_path / "r", quiet=True))


@pytest.mark.parametrize(
    ("field", "value", "pattern"),
    [
        ("stream", '"yes"', r"train\.data\.stream: must be auto, true or false; received 'yes'"),
        ("workers", "-1", r"train\.data\.workers: must be greater than or equal to 0"),
        ("workers", "1.5", r"train\.data\.workers: "),
        ("prefetch", "0", r"train\.data\.prefetch: must be greater than 0"),
        ("on_bad_file", "ignore", r"train\.data\.on_bad_file: must be 'error' or 'skip'"),
    ],
)
def test_bad_streaming_settings_are_located(field: str, value: str, pattern: str) -> None:
    text = (
        "name: s\ninput: [1, 8, 8]\nlayers:\n  - flatten\n  - dense: 3\n"
        f"train:\n  data:\n    path: d\n    {field}: {value}\n"
    )
    with pytest.raises(SpecError, match=rf"^s\.yaml:9:\d+: {pattern}"):
        archspec.loads(text, "s.yaml")


def test_check_accepts_the_imagenet_streaming_spec() -> None:
    spec = Path(__file__).resolve().parents[1] / "specs" / "imagenet_resnet18.yaml"
    result = subprocess.run(
        [sys.executable, "-m", "archspec", "check", str(spec)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.skipif(not torch.distributed.is_available(), reason="torch.distributed unavailable")
def test_two_gloo_workers_streaming_match_one_in_memory_process(
    tmp_path: Path, folder: Path
) -> None:
    one = run(tmp_path, "one", folder, stream=False)
    spec = tmp_path / "tiny.yaml"
    spec.write_text(spec_text(folder, stream=True, workers=1))
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    two = tmp_path / "two"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "archspec",
            "train",
            str(spec),
            "--nproc-per-node",
            "2",
            "--out",
            str(two),
            "--quiet",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    wa, wb = load_file(str(one / "model.safetensors")), load_file(str(two / "model.safetensors"))
    for key in wa:
        torch.testing.assert_close(wb[key], wa[key], rtol=1e-4, atol=1e-5, msg=key)
    info = json.loads((two / "run.json").read_text())
    assert info["world_size"] == 2 and info["data"]["streaming"] is True


def _per_sample(samples: Any, positions: list[int]) -> Any:
    from archspec.data.stream import collate

    return collate(samples.sample_shape, samples.dtype, [samples[p] for p in positions])


@pytest.mark.parametrize("layout", ["folder", "npy", "tar"])
def test_a_batch_decoded_at_once_equals_one_sample_at_a_time(
    tmp_path: Path, folder: Path, layout: str
) -> None:
    """``__getitems__`` (what the loader's workers call) decodes into one array; it
    must give exactly the samples, labels and bad files the per-sample path gives."""
    from archspec.data.stream import open_samples

    root = folder
    if layout == "npy":
        root = tmp_path / "npy"
        root.mkdir()
        np.save(root / "x_train.npy", _images(5, 12).reshape(12, 1, 8, 8))
        np.save(root / "y_train.npy", np.arange(12) % CLASSES)
    elif layout == "tar":
        root = tmp_path / "shards"
        _write_shards(folder, root, per_shard=25)
    samples = open_samples(root, "train", (1, 8, 8))
    positions = [7, 0, 3, 11, 3]
    x, y, bad = samples.__getitems__(positions)
    x_ref, y_ref, bad_ref = _per_sample(samples, positions)
    assert x.dtype == x_ref.dtype and torch.equal(x, x_ref)
    assert torch.equal(y, y_ref) and bad == bad_ref == []


def test_a_bad_file_in_a_batch_travels_beside_the_good_samples(
    broken: tuple[Path, Path],
) -> None:
    from archspec.data.stream import open_samples

    root, bad_file = broken
    samples = open_samples(root, "train", (1, 8, 8))
    where = samples.files.index(str(bad_file))
    positions = [where - 1, where, where + 1]
    x, y, bad = samples.__getitems__(positions)
    x_ref, y_ref, bad_ref = _per_sample(samples, positions)
    assert x.shape == (2, 1, 8, 8) and torch.equal(x, x_ref) and torch.equal(y, y_ref)
    assert bad == bad_ref and len(bad) == 1 and bad[0].path == str(bad_file)
