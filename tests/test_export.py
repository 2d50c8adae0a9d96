"""``archspec export``: every format round-trips (the loaded artifact computes what the network
computes), from a spec (seeded initial weights) and from a trained run.

The TorchScript and ``torch.export`` files loaded here are ones these tests just wrote:
``torch.jit.load``/``torch.export.load`` run code from the file, so archspec itself never
loads them (see ``test_archspec_never_unpickles_or_loads_programs``).
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pytest
import torch
from realdata import MNIST, needs_mnist
from safetensors import safe_open

import archspec
from archspec.cli import main
from archspec.compile.verify import example_inputs
from archspec.errors import UsageError
from archspec.outputs import export
from archspec.outputs.export import ExportError, Source
from archspec.train import checkpoint

ROOT = Path(__file__).resolve().parent.parent
ODD = """
name: odd-paddings
input: [2, 15, 15]
layers:
  - conv: {depth: 4, kernel: 4, stride: 2, padding: same}   # Keras-style asymmetric padding
  - batchnorm
  - relu
  - pool: {kind: lp, norm: 2, size: 2}
  - flatten
  - dense: 3
"""
pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit.load` is deprecated:DeprecationWarning")
TOL = {"safetensors": 1e-6, "torchscript": 1e-5, "exported": 1e-5, "onnx": 1e-4}


@pytest.fixture(scope="module")
def specs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    odd = tmp_path_factory.mktemp("specs") / "odd.yaml"
    odd.write_text(ODD)
    return {
        "lenet5": ROOT / "specs" / "lenet5.yaml",
        "kinds_tour": ROOT / "specs" / "kinds_tour.yaml",
        "timeseries_cnn": ROOT / "specs" / "timeseries_cnn.yaml",
        "odd": odd,
    }


def batch(source: Source, n: int = 3) -> tuple[torch.Tensor, ...]:
    """A batch of another size than the traced example (2): the batch axis is dynamic.
    One tensor per input (random ids for token ids; kinds_tour has both)."""
    return example_inputs(source.spec.plan(), n, "cpu", torch.Generator().manual_seed(1))


def run_artifact(
    fmt: str, path: Path, source: Source, xs: tuple[torch.Tensor, ...]
) -> torch.Tensor:
    if fmt == "safetensors":
        ckpt = checkpoint.load(path)
        rebuilt = archspec.loads(ckpt.meta["spec"], "embedded").build().eval()
        checkpoint.load_weights(rebuilt, ckpt, path)
        out: torch.Tensor = rebuilt(*xs)
        return out
    if fmt == "torchscript":
        return torch.jit.load(str(path))(*xs)  # type: ignore[no-untyped-call,no-any-return]
    if fmt == "exported":
        return torch.export.load(str(path)).module()(*xs)  # type: ignore[no-any-return]
    ort = pytest.importorskip("onnxruntime")
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    names = [i.name for i in source.spec.plan().all_inputs]
    feed = {name: x.numpy() for name, x in zip(names, xs, strict=True)}
    return torch.from_numpy(session.run(None, feed)[0])


@pytest.mark.parametrize("fmt", export.FORMATS)
@pytest.mark.parametrize("name", ["lenet5", "kinds_tour", "timeseries_cnn", "odd"])
def test_every_format_round_trips(
    fmt: str, name: str, specs: dict[str, Path], tmp_path: Path
) -> None:
    if fmt == "onnx":
        pytest.importorskip("onnxscript")
    source = export.load_source(str(specs[name]))
    out = tmp_path / f"net.{fmt}"
    export.export(source, fmt, out)
    xs = batch(source)
    with torch.no_grad():
        expected = source.network(*xs)
        got = run_artifact(fmt, out, source, xs)
    assert got.shape == expected.shape
    torch.testing.assert_close(got, expected, atol=TOL[fmt], rtol=TOL[fmt])
    assert [p.name for p in tmp_path.iterdir()] == [out.name]  # written atomically


def _embedded(fmt: str, path: Path) -> dict[str, object]:
    if fmt == "safetensors":
        with safe_open(str(path), framework="pt") as handle:
            return json.loads((handle.metadata() or {})["archspec"])  # type: ignore[no-any-return]
    if fmt == "onnx":
        onnx = pytest.importorskip("onnx")
        props = {p.key: p.value for p in onnx.load(str(path)).metadata_props}
        return json.loads(props["archspec"])  # type: ignore[no-any-return]
    files = {"archspec.json": ""}
    if fmt == "torchscript":
        torch.jit.load(str(path), _extra_files=files)  # type: ignore[no-untyped-call]
    else:
        torch.export.load(str(path), extra_files=files)
    return json.loads(files["archspec.json"])  # type: ignore[no-any-return]


@pytest.mark.parametrize("fmt", export.FORMATS)
def test_every_format_carries_the_spec_and_metadata(
    fmt: str, specs: dict[str, Path], tmp_path: Path
) -> None:
    if fmt == "onnx":
        pytest.importorskip("onnxscript")
    source = export.load_source(str(specs["lenet5"]), seed=7)
    out = tmp_path / "net"
    export.export(source, fmt, out)
    meta = _embedded(fmt, out)
    assert meta["name"] == "lenet5" and meta["trained"] is False and meta["seed"] == 7
    assert meta["input"] == [1, 32, 32]
    assert archspec.loads(str(meta["spec"])).plan().total_params == 61_706


def test_safetensors_keys_are_the_state_dict_keys(specs: dict[str, Path], tmp_path: Path) -> None:
    source = export.load_source(str(specs["kinds_tour"]))
    out = tmp_path / "w.safetensors"
    export.export(source, "safetensors", out)
    with safe_open(str(out), framework="pt") as handle:
        assert sorted(handle.keys()) == sorted(source.network.state_dict())


def test_a_spec_exports_its_seeded_initial_weights(specs: dict[str, Path]) -> None:
    a = export.load_source(str(specs["lenet5"]))
    b = export.load_source(str(specs["lenet5"]), seed=0)
    c = export.load_source(str(specs["lenet5"]), seed=1)
    torch.manual_seed(0)  # what `archspec train` starts from (lenet5 has no train.seed: 0)
    fresh = archspec.load(specs["lenet5"]).build()
    for key, value in fresh.state_dict().items():
        assert torch.equal(a.network.state_dict()[key], value)
        assert torch.equal(b.network.state_dict()[key], value)
    assert not torch.equal(
        c.network.state_dict()["conv1.weight"], fresh.state_dict()["conv1.weight"]
    )


@needs_mnist
def test_a_run_exports_its_trained_weights_classes_and_normaliser(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from archspec.outputs.predict import predict
    from archspec.train.run import Options, train

    text = (
        f"input: [1, 28, 28]\nlayers: [flatten, {{dense: 10}}]\ntrain: {{data: {{dataset: "
        f"mnist, path: {MNIST}, train: 'test[:128]', val: 0, test: null}}, epochs: 1}}\n"
    )
    run = train(archspec.loads(text, "flat.yaml"), Options(out=tmp_path / "run", quiet=True))
    out = tmp_path / "trained.safetensors"
    assert main(["export", str(run), "-o", str(out)]) == 0
    captured = capsys.readouterr()
    assert captured.err == ""
    assert re.match(
        rf"^wrote {re.escape(str(out))} \(safetensors, 7,850 parameters, from "
        rf"{re.escape(str(run))}/checkpoints/best\.safetensors\)$",
        captured.out.strip(),
    )
    meta = _embedded("safetensors", out)
    assert meta["trained"] is True and meta["classes"] == [str(d) for d in range(10)]
    normalizer = meta["normalizer"]
    assert isinstance(normalizer, dict) and set(normalizer) == {"mean", "std", "scale_uint8"}
    digits = MNIST / "t10k-images-idx3-ubyte.gz"
    assert predict(out, [digits], top=2)[:50] == predict(run, [digits], top=2)[:50]


def test_cli_notes_that_a_spec_has_no_trained_weights(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "lenet.pt2"
    assert main(["export", "lenet5", "-o", str(out), "--seed", "3"]) == 0  # a bundled name
    captured = capsys.readouterr()
    assert captured.err == (
        "archspec: note: lenet5 is a spec, not a trained run: exporting freshly "
        "initialised weights (seed 3)\n"
    )
    assert captured.out.startswith(f"wrote {out} (exported, 61,706 parameters, from ")
    assert _embedded("exported", out)["seed"] == 3


def test_missing_onnx_packages_are_one_clear_line(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, "onnxscript", None)  # `import onnxscript` now fails
    with pytest.raises(
        ExportError,
        match=r"^ONNX export needs the packages onnx and onnxscript, "
        r"which are not installed$",
    ) as info:
        export.require_onnx()
    assert info.value.hint == "install archspec[onnx]: pip install 'archspec[onnx]'"
    out = tmp_path / "net.onnx"
    assert main(["export", "lenet5", "-o", str(out)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "install archspec[onnx]" in err and "Traceback" not in err
    assert not out.exists()


def test_an_exporter_failure_is_one_line_and_leaves_no_file(
    monkeypatch: pytest.MonkeyPatch, specs: dict[str, Path], tmp_path: Path
) -> None:
    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("unsupported operator\nwith a long story")

    monkeypatch.setattr(torch.jit, "trace", broken)
    source = export.load_source(str(specs["lenet5"]))
    out = tmp_path / "net.pt"
    with pytest.raises(
        ExportError,
        match=r"^torch could not export lenet5 as torchscript: "
        r"RuntimeError: unsupported operator$",
    ):
        export.export(source, "torchscript", out)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("name", "fmt"),
    [
        ("a.safetensors", "safetensors"),
        ("a.pt", "torchscript"),
        ("a.onnx", "onnx"),
        ("a.pt2", "exported"),
    ],
)
def test_the_format_follows_the_extension(name: str, fmt: str) -> None:
    assert export.format_for(name, None) == fmt
    assert export.format_for("anything.bin", fmt) == fmt


def test_bad_arguments(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(UsageError, match=r"^cannot tell the export format from 'a\.bin'"):
        export.format_for("a.bin", None)
    assert main(["export", "lenet5", "-o", str(tmp_path / "a.bin")]) == 2
    with pytest.raises(ExportError, match=r"^nosuch: no such run directory, checkpoint or spec "):
        export.load_source("nosuch")
    assert main(["export", "nosuch", "-o", str(tmp_path / "a.pt2")]) == 1
    assert main(["export", str(tmp_path / "run"), "-o", str(tmp_path / "a.pt2")]) == 1
    assert main(["export", str(tmp_path / "w.safetensors"), "-o", str(tmp_path / "a.pt2")]) == 1
    err = capsys.readouterr().err
    assert "w.safetensors: no such run directory or checkpoint file" in err
    assert list(tmp_path.iterdir()) == []


def test_archspec_never_unpickles_or_loads_programs() -> None:
    """Loading .pt/.pt2 files runs their code; archspec reads only safetensors and YAML."""
    pattern = re.compile(r"\b(torch\.load|jit\.load|export\.load|pickle\.loads?)\(")
    offenders = [
        f"{path.relative_to(ROOT)}:{n}"
        for path in (ROOT / "archspec").rglob("*.py")
        for n, line in enumerate(path.read_text().splitlines(), start=1)
        if pattern.search(line)
    ]
    assert offenders == []
