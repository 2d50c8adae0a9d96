"""Fuzzing crafted checkpoints and datasets: real files, mutated field by field.

- **Checkpoints**: a real tiny run's ``last.safetensors``; one to three mutations of its
  metadata (every field of ``progress``, ``optimizer.param_groups``, ``optimizer.scalars``,
  ``normalizer``, ``classes``, ``spec``: deleted, or replaced by null, booleans, huge,
  negative, NaN/inf numbers, strings, long lists, objects) and of its tensors (deleted,
  reshaped, another dtype, NaN-filled, new names). Each goes through what ``eval`` and
  ``--resume`` do: restore the network, check metadata, load the optimizer state and the
  progress, then run one forward pass and one optimizer step.
- **Datasets**: the first 64 real MNIST test digits (synthetic digits where
  ``../shared/data/mnist`` is missing) as IDX files (type code, ndim, every size, payload
  length, gzip, random bytes mutated) and as an ``.npz`` archive (the ``.npy`` header's
  descr, shape and order, the payload length, label values and dtypes mutated), loaded with
  ``load_split``.

Every input must end in success or an ``ArchspecError`` (exit 1 or 2): never another
exception. A CLI sample (``archspec eval``) also checks exit codes and one-line messages.
Counts scale with the Hypothesis profile (``ci``: 60 → 600 inputs here, with the 10,455 of
test_fuzz.py 11,055 per CI run; ``nightly``: 2,000 → 20,000) and are printed like
test_fuzz.py's.
"""

from __future__ import annotations

import contextlib
import copy
import gzip
import io
import json
import math
import struct
import zipfile
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from realdata import MNIST
from safetensors import safe_open
from safetensors.torch import save_file

from archspec.cli import main
from archspec.data import idx, load_split
from archspec.errors import ArchspecError
from archspec.train import checkpoint
from archspec.train.evaluate import restore
from archspec.train.loop import Progress, make_optimizer

PROFILE = settings()
BASE = PROFILE.max_examples
CKPT_SCALE = 3  # ci: 180
IDX_SCALE = 3  # ci: 180
NPZ_SCALE = 3  # ci: 180
CLI_SCALE = 1  # ci: 60
TRIED: Counter[str] = Counter()
OUTCOMES: Counter[str] = Counter()


def fuzz_settings(scale: int) -> settings:
    return settings(
        PROFILE,
        max_examples=BASE * scale,
        deadline=None,
        suppress_health_check=[
            HealthCheck.too_slow,
            HealthCheck.data_too_large,
            HealthCheck.function_scoped_fixture,
        ],
    )


@pytest.fixture(scope="module", autouse=True)
def _report_count(request: pytest.FixtureRequest) -> Iterator[None]:
    yield
    total = sum(TRIED.values())
    per_test = ", ".join(f"{name} {n:,}" for name, n in sorted(TRIED.items()))
    line = (
        f"file fuzz: {total:,} inputs tried in this process ({per_test}); "
        f"{OUTCOMES['ok']:,} accepted, {OUTCOMES['error']:,} one-line errors; "
        f"profile max_examples={BASE}"
    )
    terminal = request.config.pluginmanager.get_plugin("terminalreporter")
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    if terminal is not None and capture is not None:
        with capture.global_and_fixture_disabled():
            terminal.write("\n")
            terminal.write_line(line)
    else:
        print(f"\n{line}")


def outcome(func: Any, *args: Any) -> Any:
    """``func(*args)``; an ArchspecError (one line) is a fine outcome, anything else fails."""
    try:
        result = func(*args)
    except ArchspecError as exc:
        assert "\n" not in exc.render(), exc.render()
        OUTCOMES["error"] += 1
        return None
    OUTCOMES["ok"] += 1
    return result


# ============================================================================ checkpoints
SPEC = """name: fz
input: [1, 4, 4]
layers: [flatten, {dense: 8}, relu, {dense: 3}]
train:
  data: {path: data.npz, train: "all[:64]", val: 0, test: "all[64:]"}
  batch_size: 16
  epochs: 2
  optimizer: {name: sgd, lr: 0.05, momentum: 0.9}
"""


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("fuzzrun")
    rng = np.random.default_rng(0)
    np.savez(
        folder / "data.npz",
        x=rng.integers(0, 256, (96, 4, 4), dtype=np.uint8),
        y=rng.integers(0, 3, 96),
    )
    (folder / "fz.yaml").write_text(SPEC)
    with contextlib.redirect_stderr(io.StringIO()):
        code = main(["train", str(folder / "fz.yaml"), "--out", str(folder / "run"), "--quiet"])
    assert code == 0
    return folder / "run"


def _read(path: Path) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    with safe_open(str(path), framework="pt") as handle:
        meta = json.loads(handle.metadata()["archspec"])
        tensors = {k: handle.get_tensor(k) for k in handle.keys()}  # noqa: SIM118
    return meta, tensors


HOSTILE_VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.sampled_from([0, 1, -1, 2**31 - 1, 2**63 - 1, 2**64, 10**15]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=20),
    st.lists(st.floats(allow_nan=True), max_size=5),
    st.builds(lambda n, v: [v] * n, st.sampled_from([0, 2, 3, 1000, 100_000]), st.just(0.5)),
    st.dictionaries(st.text(max_size=5), st.integers(), max_size=3),
    st.lists(st.text(max_size=5), max_size=6),
)


def _fields(meta: dict[str, Any]) -> list[tuple[Any, ...]]:
    """Every (container, key) of the metadata, nested: the fields a mutation can hit."""
    found: list[tuple[Any, ...]] = []

    def walk(node: Any) -> None:
        items = node.items() if isinstance(node, dict) else enumerate(node)
        for key, value in list(items):
            found.append((node, key))
            if isinstance(value, dict | list) and len(value) < 50:
                walk(value)

    walk(meta)
    return found


@st.composite
def mutated_checkpoint(draw: st.DrawFn, meta: dict[str, Any], tensors: dict[str, torch.Tensor]):  # type: ignore[no-untyped-def]
    meta, tensors = copy.deepcopy(meta), dict(tensors)
    for _ in range(draw(st.integers(1, 3))):
        if draw(st.booleans()):
            fields = _fields(meta)
            node, key = draw(st.sampled_from(fields))
            if isinstance(node, dict) and draw(st.integers(0, 4)) == 0:
                del node[key]
            else:
                node[key] = draw(HOSTILE_VALUES)
        else:
            keys = sorted(tensors)
            key = draw(st.sampled_from([*keys, "optim/7/momentum_buffer", "optim/x/y", "rng/cpu"]))
            action = draw(st.sampled_from(["delete", "shape", "dtype", "nan", "scalar"]))
            old = tensors.get(key, torch.zeros(3))
            if action == "delete":
                tensors.pop(key, None)
            elif action == "shape":
                shape = draw(st.lists(st.integers(0, 9), min_size=0, max_size=3))
                tensors[key] = torch.zeros(shape)
            elif action == "dtype":
                dtype = draw(st.sampled_from([torch.float64, torch.int64, torch.uint8, torch.bool]))
                tensors[key] = old.to(dtype)
            elif action == "nan":
                tensors[key] = torch.full_like(old.float(), math.nan)
            else:
                tensors[key] = torch.tensor(draw(st.floats(allow_nan=True, width=32)))
    return meta, tensors


def _write(meta: Any, tensors: dict[str, torch.Tensor], path: Path) -> Path:
    tensors = {k: v.contiguous() for k, v in tensors.items()}
    save_file(tensors, str(path), metadata={"archspec": json.dumps(meta)})
    return path


def _resume_like(path: Path) -> None:
    """What ``--resume`` does with a checkpoint, short of loading the data again."""
    restored = restore(path, device="cpu")  # spec, classes, normaliser, weights
    ckpt = checkpoint.load(path)
    spec = restored.spec
    assert spec.train is not None
    network = restored.network
    optimizer = make_optimizer(spec.train, network.parameters())
    checkpoint.restore_optimizer(optimizer, ckpt)
    checkpoint.check_progress(ckpt.meta, spec.train.epochs, 4, path)
    Progress.from_json(ckpt.meta["progress"])
    checkpoint.restore_rng(ckpt)
    network.train()
    network.logits_only = True
    x = restored.inputs(torch.zeros((2, *spec.input_shape), dtype=torch.uint8))
    network(x).sum().backward()
    optimizer.step()


def test_mutated_checkpoints_never_crash(run_dir: Path, tmp_path: Path) -> None:
    meta, tensors = _read(run_dir / "checkpoints" / "last.safetensors")
    path = tmp_path / "m.safetensors"

    @fuzz_settings(CKPT_SCALE)
    @given(mutated_checkpoint(meta, tensors))
    def check(case: tuple[dict[str, Any], dict[str, torch.Tensor]]) -> None:
        TRIED["checkpoints"] += 1
        outcome(_resume_like, _write(*case, path))

    check()
    assert TRIED["checkpoints"] >= BASE * CKPT_SCALE // 2


def test_mutated_checkpoints_through_eval(run_dir: Path, tmp_path: Path) -> None:
    meta, tensors = _read(run_dir / "checkpoints" / "best.safetensors")
    path = tmp_path / "m.safetensors"

    @fuzz_settings(CLI_SCALE)
    @given(mutated_checkpoint(meta, tensors))
    def check(case: tuple[dict[str, Any], dict[str, torch.Tensor]]) -> None:
        TRIED["cli_eval"] += 1
        _write(*case, path)
        err = io.StringIO()
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(err):
            code = main(["eval", str(path), "--split", "all[64:]"])
        assert code in (0, 1, 2), err.getvalue()
        assert "Traceback" not in err.getvalue() and "internal error" not in err.getvalue()
        assert len(err.getvalue().splitlines()) == (code != 0)

    check()


# =============================================================================== datasets
def _digits() -> tuple[np.ndarray, np.ndarray]:
    images, labels = MNIST / "t10k-images-idx3-ubyte", MNIST / "t10k-labels-idx1-ubyte"
    for path in (images, Path(f"{images}.gz")):
        if path.is_file():
            x = idx.read_idx(path)[:64]
            found = labels if labels.is_file() else Path(f"{labels}.gz")
            return x, idx.read_idx(found)[:64]
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, (64, 28, 28), dtype=np.uint8), rng.integers(0, 10, 64).astype(
        np.uint8
    )


X, Y = _digits()


def _idx_bytes(array: np.ndarray) -> bytes:
    code = idx.idx_type_code(array.dtype)
    header = bytes((0, 0, code, array.ndim)) + np.asarray(array.shape, dtype=">u4").tobytes()
    return header + np.ascontiguousarray(array, dtype=idx.IDX_TYPES[code]).tobytes()


SIZES = st.one_of(st.integers(0, 70), st.sampled_from([2**31 - 1, 2**32 - 1, 10**6, 28, 64]))


@st.composite
def mutated_idx(draw: st.DrawFn, array: np.ndarray) -> bytes:  # type: ignore[no-untyped-def]
    data = bytearray(_idx_bytes(array))
    for _ in range(draw(st.integers(1, 3))):
        what = draw(st.sampled_from(["type", "ndim", "size", "cut", "extend", "byte", "labels"]))
        if len(data) < 8 and what in ("type", "ndim", "size", "labels"):
            what = "extend"
        ndim = data[3] if len(data) > 3 else 0
        if what == "type":
            data[2] = draw(st.sampled_from([0, 7, 8, 9, 0x0B, 0x0C, 0x0D, 0x0E, 0xFF]))
        elif what == "ndim":
            data[3] = draw(st.sampled_from([0, 1, 2, 3, 4, 8, 9, 64, 255]))
        elif what == "size" and ndim:
            at = 4 + 4 * draw(st.integers(0, max(min(ndim, 8) - 1, 0)))
            data[at : at + 4] = struct.pack(">I", draw(SIZES))
        elif what == "cut":
            del data[draw(st.integers(0, len(data))) :]
        elif what == "extend":
            data += bytes(draw(st.integers(1, 64)))
        elif what == "byte" and data:
            data[draw(st.integers(0, len(data) - 1))] = draw(st.integers(0, 255))
        elif what == "labels" and len(data) > 8:
            data[8:] = np.asarray(
                draw(st.lists(st.integers(0, 2**31 - 1), min_size=1, max_size=64)), dtype=">i4"
            ).tobytes()
            data[2], data[3] = 0x0C, 1
            data[4:8] = struct.pack(">I", (len(data) - 8) // 4)
    raw = bytes(data)
    return gzip.compress(raw, mtime=0) if draw(st.booleans()) else raw


@fuzz_settings(IDX_SCALE)
@given(images=mutated_idx(X), labels=mutated_idx(Y))
def test_mutated_idx_files_never_crash(
    tmp_path_factory: pytest.TempPathFactory, images: bytes, labels: bytes
) -> None:
    TRIED["idx"] += 1
    folder = tmp_path_factory.mktemp("idx", numbered=True)
    (folder / "t10k-images-idx3-ubyte").write_bytes(images)
    (folder / "t10k-labels-idx1-ubyte").write_bytes(labels)
    outcome(lambda: load_split(dataset=None, path=folder, split="test", input_shape=(1, 28, 28)))


def _npy(
    array: np.ndarray, header: dict[str, Any] | None = None, payload: bytes | None = None
) -> bytes:
    fields = header or {"descr": array.dtype.str, "fortran_order": False, "shape": array.shape}
    text = repr(fields).encode()
    text += b" " * (63 - (len(text) + 10) % 64) + b"\n"
    body = array.tobytes() if payload is None else payload
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(text)) + text + body


@st.composite
def mutated_npz(draw: st.DrawFn) -> dict[str, bytes]:  # type: ignore[no-untyped-def]
    arrays = {
        "x_train": X[:48],
        "y_train": Y[:48].astype(np.int64),
        "x_test": X[48:],
        "y_test": Y[48:],
    }
    members = {name: _npy(array) for name, array in arrays.items()}
    for _ in range(draw(st.integers(1, 3))):
        name = draw(st.sampled_from(sorted(arrays)))
        array = arrays[name]
        what = draw(st.sampled_from(["descr", "shape", "order", "payload", "labels", "drop"]))
        header = {"descr": array.dtype.str, "fortran_order": False, "shape": array.shape}
        if what == "descr":
            header["descr"] = draw(
                st.sampled_from(["|O", "<U10", ">f8", "<f2", "|V8", "<c16", "|b1", "<M8[s]", "zz"])
            )
            members[name] = _npy(array, header)
        elif what == "shape":
            header["shape"] = tuple(draw(st.lists(SIZES | st.just(58 * 2**40), max_size=4)))
            members[name] = _npy(array, header)
        elif what == "order":
            header["fortran_order"] = True
            members[name] = _npy(array, header)
        elif what == "payload":
            raw = array.tobytes()
            members[name] = _npy(array, payload=raw[: draw(st.integers(0, len(raw)))])
        elif what == "labels":
            values = draw(st.lists(st.integers(-(2**63), 2**64 - 1), min_size=1, max_size=48))
            dtype = np.uint64 if min(values) >= 0 else np.int64
            clipped = [v for v in values if np.iinfo(dtype).min <= v <= np.iinfo(dtype).max]
            arrays_y = np.asarray(clipped or [0], dtype=dtype)
            members["y_train"] = _npy(arrays_y)
        else:
            members.pop(name, None)
    if draw(st.booleans()):
        members["classes"] = _npy(
            np.asarray(draw(st.lists(st.text(max_size=4), max_size=12)) or ["a"])
        )
    return members


@fuzz_settings(NPZ_SCALE)
@given(members=mutated_npz(), compressed=st.booleans())
def test_mutated_npz_files_never_crash(
    tmp_path_factory: pytest.TempPathFactory, members: dict[str, bytes], compressed: bool
) -> None:
    TRIED["npz"] += 1
    path = tmp_path_factory.mktemp("npz", numbered=True) / "d.npz"
    method = zipfile.ZIP_DEFLATED if compressed else zipfile.ZIP_STORED
    with zipfile.ZipFile(path, "w", method) as zf:
        for name, data in members.items():
            zf.writestr(f"{name}.npy", data)
    outcome(lambda: load_split(dataset=None, path=path, split="train", input_shape=(1, 28, 28)))


def test_zz_enough_inputs_were_tried() -> None:
    for name, scale in (
        ("checkpoints", CKPT_SCALE),
        ("idx", IDX_SCALE),
        ("npz", NPZ_SCALE),
        ("cli_eval", CLI_SCALE),
    ):
        if TRIED[name]:
            assert TRIED[name] >= BASE * scale // 2, (name, TRIED[name])
