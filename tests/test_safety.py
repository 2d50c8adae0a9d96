"""Hostile input end to end: resource guards, memory checks, no code execution, checkpoints.

What tests/test_source.py already covers at the loader level (tags refused, billion laughs
in-process, nesting depth, file size, aliases inside their own anchor) and tests/test_train.py
covers for checkpoints (truncated and zip files refused, shape mismatch named, a failed
``checkpoint.save`` keeping the previous file, NaN loss) is not repeated here; these tests go
through the CLI, the training path, and the cases those files do not reach.
"""

from __future__ import annotations

import ast
import contextlib
import json
import os
import pickle
import re
import struct
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import torch
import yaml
from realdata import MNIST, needs_mnist, tiny_spec
from safetensors.torch import load_file, save_file

import archspec
from archspec.cli import main
from archspec.errors import CheckpointError, SpecError, WriteError, printable
from archspec.outputs import report
from archspec.shapes import memory
from archspec.train import checkpoint
from archspec.train.run import Options, resume, train

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "archspec"
TINY = tiny_spec(batch_size=32)  # the tiny real-data network of tests/test_train.py

HUGE = """\
name: huge
input: [3136]
layers:
  - dense: 1000000000
  - dense: 10
"""


def cli(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """``python -m archspec ARGS`` in a fresh interpreter, as a user runs it."""
    return subprocess.run(
        [sys.executable, "-m", "archspec", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=timeout,
    )


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def located(stderr: str, file: Path) -> list[str]:
    """The stderr lines, each checked to be ``FILE:line:col: ...``."""
    lines = stderr.splitlines()
    assert lines, "no error printed"
    pattern = re.compile(rf"^{re.escape(str(file))}:[1-9]\d*:[1-9]\d*: \S")
    assert all(pattern.match(line) for line in lines), stderr
    return lines


# =========================================================================== resource guards
def billion_laughs(levels: int = 9) -> str:
    lines = ["a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, levels + 1)]
    return "\n".join(lines) + "\n"


def test_billion_laughs_is_refused_through_the_cli_in_well_under_a_second(tmp_path: Path) -> None:
    small = write(tmp_path / "small.yaml", "input: [4]\nlayers: [relu]\n")
    bomb = write(tmp_path / "bomb.yaml", billion_laughs())  # 10^9 strings once expanded
    started = time.perf_counter()
    baseline = cli("check", str(small))
    startup = time.perf_counter() - started  # interpreter + imports + a trivial check
    started = time.perf_counter()
    run = cli("check", str(bomb))
    elapsed = time.perf_counter() - started
    assert baseline.returncode == 0, baseline.stderr
    assert run.returncode == 1
    (line,) = located(run.stderr, bomb)
    assert "the document expands to more than 200,000 values (through aliases)" in line
    # a sanity bound (the guard is a count, not a clock): the refusal adds well under a second
    # to starting the interpreter; doubled for a loaded machine
    assert elapsed < 2 * startup + 1.0, (elapsed, startup)


def test_quadratic_alias_blowup_is_refused(tmp_path: Path) -> None:
    # one 5,000-item anchor used 5,000 times: 25 million values, from a 30 kB file
    text = "a: &a [" + ", ".join(["x"] * 5000) + "]\nb: [" + ", ".join(["*a"] * 5000) + "]\n"
    spec = write(tmp_path / "quad.yaml", text)
    started = time.perf_counter()
    assert main(["check", str(spec)]) == 1
    assert time.perf_counter() - started < 10.0


@pytest.mark.parametrize(
    ("text", "args", "message"),
    [
        ("a: " + "[" * 100_000 + "]" * 100_000 + "\n", [], "nesting is deeper than 64 levels"),
        ("#" * 1_000_001, [], "the file is 1,000,001 bytes, more than the limit of 1,000,000"),
        (
            "input: [4]\nlayers:\n  - relu:\n    repeat: 8\n  - relu:\n    repeat: 8\n",
            ["--max-layers", "10"],
            "the network expands to more than 10 layers",
        ),
        (
            "input: [4]\nlayers:\n  - relu:\n    repeat: 10001\n",
            [],
            "repeat must be a whole number from 0 to 10,000",  # the default --max-layers
        ),
        (
            "input: [4]\nvars: {n: 2}\nlayers:\n  - dense: '" + " + ".join(["n"] * 70) + "'\n",
            [],
            "must be a valid integer; received 'n + n",
        ),  # over 200 characters: not evaluated
        (
            "input: [4]\nlayers:\n  - dense: 99999999999999999999\n",
            [],
            "the integer 99,999,999,999,999,999,999 is too large",
        ),
    ],
    ids=["depth", "bytes", "max-layers", "repeat", "expression-length", "integer"],
)
def test_each_limit_is_a_located_error_through_the_cli(
    tmp_path: Path, text: str, args: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = write(tmp_path / "limit.yaml", text)
    assert main(["check", *args, str(spec)]) == 1
    (line,) = located(capsys.readouterr().err, spec)
    assert message in line


@pytest.mark.skipif(not Path("/dev/zero").exists(), reason="needs /dev/zero")
def test_an_endless_file_is_refused_after_the_limit(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Regression: /dev/zero (like a pipe or a /proc file) reports size 0, so the size check
    passed and `archspec check /dev/zero` read until memory ran out. Now at most one byte
    past the limit is read."""
    started = time.perf_counter()
    assert main(["check", "/dev/zero"]) == 1
    assert time.perf_counter() - started < 10.0
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith("/dev/zero:1:1: the file has more than 1,000,000 bytes, the limit — ")
    spec = write(tmp_path / "child.yaml", "extends: /dev/zero\n")
    assert main(["check", str(spec)]) == 1
    (line,) = located(capsys.readouterr().err, spec)
    assert "extends names '/dev/zero', which does not exist" in line


def test_nested_repeats_stop_at_the_layer_limit_at_once() -> None:
    """Regression: found while probing the layer limit. Three nested blocks with
    `repeat: 100000` each went on looping after the limit (27 s); four would take hours.
    The expander now stops every loop once the limit is passed, and reports it once."""
    text = (
        "input: [4]\nblocks:\n  a: [relu]\n  b: [{a: null, repeat: 1000}]\n"
        "  c: [{b: null, repeat: 1000}]\n  d: [{c: null, repeat: 1000}]\n"
        "layers:\n  - d:\n    repeat: 1000\n"
    )  # 10^12 layers asked for
    started = time.perf_counter()
    with pytest.raises(SpecError) as info:
        archspec.loads(text, "n.yaml", max_layers=1000)
    assert time.perf_counter() - started < 10.0
    (line,) = info.value.render().splitlines()
    assert re.match(r"^n\.yaml:\d+:\d+: .*the network expands to more than 1,000 layers", line)


def test_max_layers_must_be_positive(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", "--max-layers", "0", str(ROOT / "specs" / "lenet5.yaml")]) == 2
    assert "--max-layers must be at least 1" in capsys.readouterr().err


# =========================================================================== memory at check time
GIB = 2**30


@pytest.fixture
def eight_gib(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(memory, "available_bytes", lambda: 8 * GIB)


def test_check_refuses_a_spec_too_big_for_this_machine(
    tmp_path: Path, eight_gib: None, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = write(tmp_path / "huge.yaml", HUGE)
    assert main(["check", str(spec)]) == 1
    (line,) = located(capsys.readouterr().err, spec)
    assert line.startswith(f"{spec}:4:5: training huge needs about ")  # the dense layer's line
    # Adam's step: parameters, gradients, two state slots, and sqrt(v) and its quotient on
    # dense1's weight (measured: tests/test_memory_model.py)
    assert re.search(r"needs about 68\.62 TiB but this machine has 8\.00 GiB available", line)
    assert "(3,147,000,000,010 parameters: 22.90 TiB weights+gradients, 22.90 TiB optimizer" in line
    assert "layer 'dense1' holds most of it (3,137,000,000,000 parameters, 45.65 TiB)" in line
    assert line.endswith("pass --no-memory-check")


def test_no_memory_check_lets_a_big_spec_through(
    tmp_path: Path, eight_gib: None, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = write(tmp_path / "huge.yaml", HUGE)
    assert main(["check", "--no-memory-check", str(spec)]) == 0
    assert "parameters: 3,147,000,000,010" in capsys.readouterr().out


def test_memory_check_counts_the_batch_size_and_names_the_layer(
    tmp_path: Path, eight_gib: None, capsys: pytest.CaptureFixture[str]
) -> None:
    # small weights, large activations: 64×224×224 floats per image, at batch 4096
    text = (
        "input: [3, 224, 224]\nlayers:\n  - conv: {depth: 64, kernel: 3, padding: same}\n"
        "  - global_pool: avg\n  - dense: 10\n"
    )
    fine = write(tmp_path / "fine.yaml", text)
    assert main(["check", str(fine)]) == 0  # batch 1 without a train section
    heavy = write(
        tmp_path / "heavy.yaml", text + "train: {data: {dataset: mnist}, batch_size: 4096}\n"
    )
    assert main(["check", str(heavy)]) == 1
    (line,) = located(capsys.readouterr().err, heavy)
    assert "activations for batch 4096" in line and "layer 'conv1' holds most of it" in line


def test_memory_check_in_json(
    tmp_path: Path, eight_gib: None, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = write(tmp_path / "huge.yaml", HUGE)
    assert main(["check", "--json", str(spec)]) == 1
    (entry,) = json.loads(capsys.readouterr().out)["specs"]
    (error,) = entry["errors"]
    assert (error["line"], error["col"]) == (4, 5) and "needs about" in error["message"]


def test_check_through_the_real_cli_uses_this_machines_memory(tmp_path: Path) -> None:
    spec = write(tmp_path / "huge.yaml", HUGE)
    run = cli("check", str(spec))
    assert run.returncode == 1
    (line,) = located(run.stderr, spec)
    assert re.search(r"but this machine has [\d,]+\.\d\d [KMGT]iB available", line)


def test_the_estimate_adds_weights_gradients_optimizer_and_activations() -> None:
    spec = archspec.load(ROOT / "specs" / "mnist_cnn.yaml")  # Adam, batch 50
    plan = spec.plan()
    est = memory.training_estimate(plan, spec.train)
    params, values = 3_274_634, sum(n for n in _numels(plan)) + 28 * 28
    assert est.weights == 2 * params * 4 and est.optimizer == 2 * params * 4
    # the rest of the training peak (shapes/memory.py's profile; tests/test_memory_model.py
    # checks it against torch): here Adam's step on dense1's weight, and the batch
    prof = memory.profile(plan, spec.train)
    assert est.total == prof.train_peak and prof.train_phase == "step"
    assert est.activations == prof.train_peak - est.weights - est.optimizer
    assert est.heaviest is not None and est.heaviest.name == "dense1"
    no_train = memory.training_estimate(plan, None)  # batch 1, Adam's two slots
    assert no_train.batch_size == 1 and no_train.total == memory.profile(plan, None, 1).train_peak
    assert values == 91_684  # every activation, for the record
    assert memory.check_plan(plan, spec.train, None) is None  # unknown: no check


def _numels(plan: Any) -> list[int]:
    out = []
    for node in plan.nodes:
        n = 1
        for d in node.shape:
            n *= d
        out.append(n)
    return out


@needs_mnist
def test_train_refuses_a_spec_bigger_than_available_memory_before_building(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(memory, "available_bytes", lambda: 2**20)  # pretend: 1 MiB free
    built: list[str] = []
    monkeypatch.setattr(archspec.Spec, "build", lambda *a, **k: built.append("built"))
    spec = write(
        tmp_path / "wide.yaml",
        TINY.replace("  - dense: 10\n", "  - dense: 100000\n  - dense: 10\n"),
    )
    out = tmp_path / "run"
    assert main(["train", str(spec), "--out", str(out), "--quiet"]) == 1
    err = capsys.readouterr().err
    (line,) = err.splitlines()
    assert re.match(
        r"^archspec: training tiny needs about [\d.]+ [MG]iB but cpu has 1\.00 MiB "
        r"available \(20,700,050 parameters",
        line,
    ), line
    assert "layer 'dense1' holds most of it" in line and line.endswith("make the layers smaller")
    assert built == [] and not out.exists()  # nothing built, nothing written


# =========================================================================== no code execution
def payloads(marker: Path) -> dict[str, str]:
    touch = f"touch {marker}"
    return {
        "apply": f"input: [4]\nlayers: !!python/object/apply:os.system ['{touch}']\n",
        "apply-subprocess": (
            f"layers: !!python/object/apply:subprocess.check_call [[touch, '{marker}']]\n"
        ),
        "new-map-eval": (
            "x: !!python/object/new:tuple [!!python/object/new:map "
            f"[!!python/name:eval , [\"__import__('os').system('{touch}')\"]]]\n"
        ),
        "name": "layers: !!python/name:os.system\n",
        "module": "layers: !!python/module:os\n",
        "object": "layers: !!python/object:argparse.Namespace {a: 1}\n",
        "binary": "input: !!binary aGVsbG8=\nlayers: [relu]\n",
        "in-a-key": f"? !!python/object/apply:os.system ['{touch}']\n: 1\n",
        "tag-directive": (
            f"%TAG !p! tag:yaml.org,2002:python/object/apply:\n---\n"
            f"layers: !p!os.system ['{touch}']\n"
        ),
        "verbatim": f"layers: !<tag:yaml.org,2002:python/object/apply:os.system> ['{touch}']\n",
        "flow": (
            f"{{input: [4], layers: [{{relu: !!python/object/apply:os.system ['{touch}']}}]}}\n"
        ),
    }


LIVE = (
    "apply",
    "apply-subprocess",
    "new-map-eval",
    "in-a-key",
    "tag-directive",
    "verbatim",
    "flow",
)


@pytest.mark.parametrize("name", sorted(payloads(Path("m"))))
def test_code_execution_payload_is_refused_located_fast_and_runs_nothing(
    tmp_path: Path, name: str, capsys: pytest.CaptureFixture[str]
) -> None:
    marker = tmp_path / "pwned"
    spec = write(tmp_path / "evil.yaml", payloads(marker)[name])
    started = time.perf_counter()
    assert main(["check", str(spec)]) == 1
    assert time.perf_counter() - started < 10.0
    lines = located(capsys.readouterr().err, spec)
    assert any("is not allowed — specs are plain data" in line for line in lines), lines
    assert not marker.exists()


def test_the_payloads_are_live(tmp_path: Path) -> None:
    """Control: PyYAML's unsafe loader *does* run them — so the refusal above means something."""
    for name in LIVE:
        marker = tmp_path / f"pwned-{name}"
        # some payloads raise after running (their result is no mapping): suppress that
        with contextlib.suppress(Exception):
            yaml.unsafe_load(payloads(marker)[name])  # the very thing archspec never does
        assert marker.exists(), name


def test_payloads_through_the_real_cli(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    files = []
    for name, text in payloads(marker).items():
        files.append(write(tmp_path / f"{name}.yaml", text))
    run = cli("check", *map(str, files))
    assert run.returncode == 1
    assert "Traceback" not in run.stderr and "internal error" not in run.stderr
    for file in files:
        assert f"{file}:" in run.stderr, file
    assert not marker.exists()


FORBIDDEN_CALLS = {"eval", "exec", "compile", "__import__", "breakpoint"}
FORBIDDEN_ATTRS = {
    ("yaml", "load"),
    ("yaml", "unsafe_load"),
    ("yaml", "full_load"),
    ("yaml", "load_all"),
    ("yaml", "unsafe_load_all"),
    ("pickle", "load"),
    ("pickle", "loads"),
    ("marshal", "loads"),
    ("importlib", "import_module"),
    ("dill", "load"),
    ("joblib", "load"),
    ("shelve", "open"),
}
# Reviewed uses: the module name is a constant of the package, never text from a spec.
ALLOWED = {
    "archspec/data/__init__.py: importlib.import_module()",  # PEP 562 lazy imports
    # `archspec import pkg.module:factory --trust-code`: the user's own module, on request
    # (refused without --trust-code: tests/test_import.py)
    "archspec/importers/torch_source.py: importlib.import_module()",
}


def _sources() -> list[tuple[Path, str]]:
    return [(path, path.read_text(encoding="utf-8")) for path in sorted(PACKAGE.rglob("*.py"))]


def test_no_eval_exec_unsafe_yaml_or_pickle_in_the_package() -> None:
    text_patterns = [
        r"(?<![\w.])eval\(",
        r"(?<![\w.])exec\(",
        r"yaml\.load\(",
        r"yaml\.unsafe_load",
        r"pickle\.load",
        r"weights_only\s*=\s*False",
        r"allow_pickle\s*=\s*True",
    ]
    found = [
        f"{path.relative_to(ROOT)}: {pattern}"
        for path, text in _sources()
        for pattern in text_patterns
        if re.search(pattern, text)
    ]
    assert found == []
    calls = []
    for path, text in _sources():
        for node in ast.walk(ast.parse(text)):
            if not isinstance(node, ast.Call):
                continue
            func = node.func
            if isinstance(func, ast.Name) and func.id in FORBIDDEN_CALLS:
                calls.append(f"{path.relative_to(ROOT)}:{node.lineno}: {func.id}()")
            if (
                isinstance(func, ast.Attribute)
                and isinstance(func.value, ast.Name)
                and (func.value.id, func.attr) in FORBIDDEN_ATTRS
            ):
                calls.append(
                    f"{path.relative_to(ROOT)}:{node.lineno}: {func.value.id}.{func.attr}()"
                )
    assert [call for call in calls if re.sub(r":\d+:", ":", call) not in ALLOWED] == []


def test_every_torch_load_passes_weights_only_true_and_np_load_refuses_pickles() -> None:
    checked = []
    for path, text in _sources():
        for node in ast.walk(ast.parse(text)):
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
                continue
            owner = node.func.value
            name = f"{owner.id if isinstance(owner, ast.Name) else '?'}.{node.func.attr}"
            keywords = {k.arg: k.value for k in node.keywords}
            where = f"{path.relative_to(ROOT)}:{node.lineno}"
            if name in ("torch.load", "jit.load") or (name.endswith(".load") and "torch" in name):
                flag = keywords.get("weights_only")
                assert isinstance(flag, ast.Constant) and flag.value is True, where
                checked.append(where)
            if name in ("np.load", "numpy.load"):
                flag = keywords.get("allow_pickle")
                assert isinstance(flag, ast.Constant) and flag.value is False, where
                checked.append(where)
    assert checked, "expected at least np.load in archspec/data/npz.py"


# =========================================================================== checkpoints
class Payload:
    """Unpickling this creates ``marker``: what a malicious ``torch.save`` file does."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, tuple[str, str]]:
        return (open, (str(self.marker), "w"))


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if not MNIST.is_dir():
        pytest.skip("../shared/data/mnist is missing")
    return train(
        archspec.loads(TINY, "tiny.yaml"),
        Options(out=tmp_path_factory.mktemp("safety") / "run", quiet=True, epochs=1),
    )


def _pickles(tmp_path: Path, marker: Path) -> list[Path]:
    """torch.save's zip format, its legacy format and a bare pickle — each also under a
    checkpoint's name (``.safetensors``: torch.load itself reads those as safetensors)."""
    zipped, legacy, plain = tmp_path / "zip.pt", tmp_path / "legacy.pt", tmp_path / "plain.pkl"
    torch.save({"model": Payload(marker)}, zipped)
    torch.save(Payload(marker), legacy, _use_new_zipfile_serialization=False)
    plain.write_bytes(pickle.dumps(Payload(marker)))
    files = [zipped, legacy, plain]
    for file in list(files):
        renamed = file.with_name(f"{file.stem}.safetensors")
        renamed.write_bytes(file.read_bytes())
        files.append(renamed)
    return files


def test_a_pickle_checkpoint_is_refused_without_unpickling(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    files = _pickles(tmp_path, marker)
    torch.load(files[0], weights_only=False)  # control: unpickling it does run the payload
    assert marker.exists()
    marker.unlink()
    with pytest.raises(pickle.UnpicklingError):  # why every torch.load says weights_only=True
        torch.load(files[0], weights_only=True)
    for file in files:
        with pytest.raises(CheckpointError, match=r"not a readable safetensors checkpoint"):
            checkpoint.load(file)
    assert not marker.exists()


@needs_mnist
def test_pickle_checkpoints_through_eval_and_resume(
    tmp_path: Path, run_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    marker = tmp_path / "pwned"
    evil_run = tmp_path / "evil-run"
    (evil_run / "checkpoints").mkdir(parents=True)
    (evil_run / "spec.yaml").write_text((run_dir / "spec.yaml").read_text())
    files = _pickles(tmp_path, marker)
    (evil_run / "checkpoints" / "last.safetensors").write_bytes(files[0].read_bytes())
    for args in [["eval", str(file)] for file in files[3:]] + [
        ["train", "--resume", str(evil_run)]
    ]:
        assert main(args) == 1, args
        (line,) = capsys.readouterr().err.splitlines()
        assert "not a readable safetensors checkpoint" in line, line
    run = cli("eval", str(files[3]))  # and once as a user runs it
    assert run.returncode == 1 and "Traceback" not in run.stderr, run.stderr
    assert not marker.exists()


def _tensors(run_dir: Path) -> dict[str, torch.Tensor]:
    return load_file(str(run_dir / "model.safetensors"))


@needs_mnist
@pytest.mark.parametrize(
    ("change", "message"),
    [
        ("dtype", r"tensor 'conv1\.weight' is float64 in the checkpoint but float32 in the model"),
        ("missing", r"the checkpoint has no tensor 'dense1\.bias' \(the model needs \[10\]\)"),
        ("extra", r"the checkpoint has tensors the model lacks: model\.smuggled"),
    ],
)
def test_a_foreign_safetensors_file_is_refused_naming_the_tensor(
    tmp_path: Path, run_dir: Path, change: str, message: str
) -> None:
    tensors = _tensors(run_dir)
    if change == "dtype":
        tensors["conv1.weight"] = tensors["conv1.weight"].double()
    elif change == "missing":
        del tensors["dense1.bias"]
    else:
        tensors["model.smuggled"] = torch.zeros(3)
    foreign = tmp_path / "foreign.safetensors"
    save_file(tensors, str(foreign))
    network = archspec.loads(TINY, "tiny.yaml").build()
    with pytest.raises(CheckpointError, match=message):
        checkpoint.load_weights(network, checkpoint.load(foreign), foreign)
    run = cli("eval", str(foreign), "--spec", str(write(tmp_path / "tiny.yaml", TINY)))
    assert run.returncode == 1 and re.search(message, run.stderr), run.stderr


def _header(path: Path) -> tuple[int, bytes, bytes]:
    raw = path.read_bytes()
    (size,) = struct.unpack("<Q", raw[:8])
    return size, raw[8 : 8 + size], raw[8 + size :]


@needs_mnist
@pytest.mark.parametrize("damage", ["json", "length", "offsets", "metadata", "types"])
def test_a_corrupted_header_is_refused(tmp_path: Path, run_dir: Path, damage: str) -> None:
    size, header, body = _header(run_dir / "checkpoints" / "last.safetensors")
    data = json.loads(header)
    if damage == "json":
        header = header.replace(b'"', b"'", 3)  # same length, no longer JSON
    elif damage == "length":
        size = 2**62
    elif damage == "offsets":  # a tensor claims bytes beyond the end of the file
        key = next(k for k in data if k != "__metadata__")
        data[key]["data_offsets"][1] += 10**9
        header = json.dumps(data).encode()
        size = len(header)
    elif damage == "metadata":
        data["__metadata__"]["archspec"] = "{not json"
        header, size = json.dumps(data).encode(), len(json.dumps(data).encode())
    else:  # valid JSON, wrong types: a crafted "progress"
        meta = json.loads(data["__metadata__"]["archspec"])
        meta["progress"] = {"epoch": "zero"}
        data["__metadata__"]["archspec"] = json.dumps(meta)
        header, size = json.dumps(data).encode(), len(json.dumps(data).encode())
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(struct.pack("<Q", size) + header + body)
    pattern = "metadata is corrupt" if damage in ("metadata", "types") else "not a readable"
    with pytest.raises(CheckpointError, match=pattern):
        checkpoint.load(bad)


@needs_mnist
def test_resuming_from_a_weights_only_file_is_a_clear_error(tmp_path: Path, run_dir: Path) -> None:
    copy = tmp_path / "run"
    (copy / "checkpoints").mkdir(parents=True)
    (copy / "spec.yaml").write_text((run_dir / "spec.yaml").read_text())
    (copy / "checkpoints" / "last.safetensors").write_bytes(
        (run_dir / "model.safetensors").read_bytes()
    )
    with pytest.raises(CheckpointError, match=r"holds weights only and cannot be resumed"):
        resume(copy, Options(quiet=True))


@needs_mnist
def test_disk_full_during_train_stops_with_one_line_and_keeps_the_last_checkpoint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    real = checkpoint.save_file
    writes: list[str] = []

    def third_write_fails(
        tensors: dict[str, torch.Tensor], filename: str, metadata: dict[str, str]
    ) -> None:
        writes.append(filename)
        if len(writes) == 3:  # epoch 1 wrote last + best; epoch 2's last hits a full disk
            Path(filename).write_bytes(b"\0" * 64)  # half-written
            raise OSError(28, "No space left on device")
        real(tensors, filename, metadata=metadata)

    monkeypatch.setattr(checkpoint, "save_file", third_write_fails)
    spec = write(tmp_path / "tiny.yaml", TINY)
    out = tmp_path / "run"
    assert main(["train", str(spec), "--out", str(out), "--quiet", "--epochs", "3"]) == 1
    (line,) = capsys.readouterr().err.splitlines()
    last = out / "checkpoints" / "last.safetensors"
    assert line == (
        f"archspec: could not write the checkpoint {last}: No space left on device — "
        f"the previous last.safetensors, if any, is intact: free some disk space, "
        f"then continue with: archspec train --resume {out}"
    )
    ckpt = checkpoint.load(last)  # the previous one, complete
    assert ckpt.meta["progress"]["epoch"] == 1
    assert [p.name for p in last.parent.iterdir() if p.name.endswith(".tmp")] == []
    monkeypatch.setattr(checkpoint, "save_file", real)  # space freed: the run goes on
    assert main(["train", "--resume", str(out), "--quiet"]) == 0
    assert checkpoint.load(last).meta["progress"]["epoch"] == 3


def test_a_real_full_disk_is_a_write_error(tmp_path: Path) -> None:
    """On a real 64 kB tmpfs (root only): safetensors reports ENOSPC as a SafetensorError,
    which checkpoint.save now turns into a one-line WriteError like any OSError."""
    mount = tmp_path / "full"
    mount.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mount)],
        capture_output=True,
        check=False,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    try:
        dest = mount / "run" / "checkpoints" / "last.safetensors"
        with pytest.raises(WriteError) as info:
            checkpoint.save(dest, {"model/w": torch.zeros(100_000)}, {})
        assert info.value.render() == (
            f"could not write the checkpoint {dest}: No space left on device — the previous "
            f"last.safetensors, if any, is intact: free some disk space, then continue with: "
            f"archspec train --resume {dest.parent.parent}"
        )
        assert list(dest.parent.iterdir()) == []  # no temp file left behind
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


# =========================================================================== terminal safety
def test_control_characters_in_a_spec_cannot_reach_the_terminal(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Regression (fuzz): a key with a newline or an ANSI escape broke the one-line
    `file:line:col:` format and could drive the terminal (e.g. clear it)."""
    spec = write(
        tmp_path / "esc.yaml", 'input: [4]\nlayers:\n  - relu: {"a\\nb\\e[2J\\u202e": 1}\n'
    )
    assert main(["check", str(spec)]) == 1
    (line,) = located(capsys.readouterr().err, spec)
    assert "unknown key 'a\\nb\\x1b[2J\\u202e'" in line


def test_a_spec_name_is_printed_safely_in_tables(tmp_path: Path) -> None:
    """Regression (fuzz): `name: "[/bold]"` made rich raise MarkupError on a terminal, and a
    name with escapes reached the terminal raw."""
    import io

    plan = archspec.loads('name: "[/bold] \\e[31mred"\ninput: [4]\nlayers: [relu]\n').plan()
    for width in (200, 20):  # boxed, and the plain layout where the box does not fit
        stream = io.StringIO()
        report.terminal_table(plan, stream, width)
        assert "[/bold]" in stream.getvalue() and "\x1b[31m" not in stream.getvalue()
    assert report.plain_table(plan).splitlines()[0] == printable("[/bold] \x1b[31mred")
