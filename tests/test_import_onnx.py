"""``archspec import model.onnx``: ONNX files round-trip exactly; hostile files are refused.

torchvision's resnet18 and mobilenet_v2 are exported with ``torch.onnx.export`` (TorchScript
exporter, ``dynamo=False``: torch 2.13 still has it; ``training=PRESERVE`` and
``do_constant_folding=False`` keep BatchNormalization as its own node instead of folding it
into the convolutions, so the parameter count is the model's), imported, built, loaded with the
imported weights and compared with the torch model (eval, atol 1e-5). A hand-written graph
covers the other operators and is compared with onnxruntime. Hostile files, written with
``onnx.helper``, are refused in one line in a separate process whose peak memory and opened
files are recorded.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from safetensors.torch import load_file
from tvref import needs_torchvision

import archspec
from archspec.cli import main

onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


def _import(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["import", *argv])
    out, err = capsys.readouterr()
    return code, out, err


# --- torchvision round trips -------------------------------------------------------------


def _torchvision(name: str) -> torch.nn.Module:
    import tvref

    torch.manual_seed(0)
    model = getattr(tvref.models(), name)().eval()
    with torch.no_grad():  # non-trivial statistics: fresh ones (0, 1) would hide a mix-up
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.running_mean.uniform_(-0.5, 0.5)
                module.running_var.uniform_(0.5, 2.0)
                module.weight.uniform_(0.5, 1.5)
                module.bias.uniform_(-0.5, 0.5)
    return model


def _export(model: torch.nn.Module, path: Path) -> None:
    torch.onnx.export(
        model,
        (torch.randn(1, 3, 224, 224),),
        str(path),
        dynamo=False,
        training=torch.onnx.TrainingMode.PRESERVE,
        do_constant_folding=False,
        input_names=["input"],
        output_names=["output"],
        dynamic_axes={"input": {0: "batch"}, "output": {0: "batch"}},
    )


@pytest.fixture(scope="module", params=["resnet18", "mobilenet_v2"])
def exported(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> tuple[str, torch.nn.Module, Path]:
    if not (ROOT / ".cache" / "torchvision-py" / "torchvision" / "__init__.py").is_file():
        pytest.skip("run `python tests/tvref.py --fetch` to get torchvision's model code")
    name = request.param
    model = _torchvision(name)
    path = tmp_path_factory.mktemp("onnx") / f"{name}.onnx"
    with pytest.warns(DeprecationWarning):  # the TorchScript exporter is deprecated
        _export(model, path)
    return name, model, path


@needs_torchvision
def test_torchvision_models_round_trip_through_onnx(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, exported: tuple[str, Any, Path]
) -> None:
    name, model, path = exported
    spec_file, weights = tmp_path / "net.yaml", tmp_path / "net.safetensors"
    code, out, err = _import(capsys, str(path), "-o", str(spec_file), "--weights", str(weights))
    assert code == 0, err
    spec = archspec.load(spec_file)
    expected = {"resnet18": 11_689_512, "mobilenet_v2": 3_504_872}[name]
    assert spec.plan().total_params == sum(p.numel() for p in model.parameters()) == expected
    network = spec.build().eval()
    tensors = load_file(str(weights))
    network.load_state_dict(tensors, strict=True)
    # the initializers are named after the module paths: so are the spec's layers
    assert set(tensors) == set(model.state_dict())
    torch.manual_seed(1)
    x = torch.randn(3, 3, 224, 224)
    with torch.no_grad():
        torch.testing.assert_close(network(x), model(x), rtol=1e-5, atol=1e-5)
    text = spec_file.read_text(encoding="utf-8")
    if name == "resnet18":
        assert len(text.splitlines()) <= 60, text
        # one basic block: layer1 repeats it, and it is block 1 of each later stage
        assert "- {layer_block: {depth: 64}, repeat: 2, name: layer1}" in text
        assert text.count("{layer_block: {depth: depth}, name: '1'}") == 1
        assert text.count("name: layer") == 4
        assert "{batchnorm: null, name: bn1}" in text  # eps 1e-5, momentum 0.1 as torch's
    else:
        assert "{relu6: null, name: '2'}" in text and "add" in text
    assert f"{expected:,} parameters" in out


class _Residual(torch.nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.bn = torch.nn.BatchNorm2d(channels)
        self.act = torch.nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(x + self.bn(self.conv(x)))


class _Tiny(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.stem = torch.nn.Conv2d(3, 8, 3, stride=2, padding=1)
        self.blocks = torch.nn.Sequential(_Residual(8), _Residual(8))
        self.pool = torch.nn.AdaptiveAvgPool2d(1)
        self.fc = torch.nn.Linear(8, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.flatten(self.pool(self.blocks(self.stem(x))), 1))


def test_the_dynamo_exporter_with_constants_folded(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """torch.onnx.export(dynamo=True): its default optimisation folds BatchNormalization into
    the convolutions (the parameters change), so export with optimize=False and fold only
    constants. Its metadata names the classes; the zero bias it invents for a bias-free
    convolution is dropped; it stores weights externally unless told not to."""
    optimizer = pytest.importorskip("onnxscript.optimizer")
    torch.manual_seed(0)
    model = _Tiny().eval()
    with torch.no_grad():
        for block in model.blocks:
            block.bn.running_mean.uniform_(-0.5, 0.5)
            block.bn.running_var.uniform_(0.5, 2.0)
    program = torch.onnx.export(
        model, (torch.randn(2, 3, 16, 16),), dynamo=True, optimize=False, external_data=False
    )
    assert program is not None
    optimizer.fold_constants(program.model)
    path = tmp_path / "tiny.onnx"
    program.save(str(path), external_data=False)
    spec_file, weights = tmp_path / "t.yaml", tmp_path / "t.safetensors"
    code, _, err = _import(capsys, str(path), "-o", str(spec_file), "--weights", str(weights))
    assert code == 0, err
    text = spec_file.read_text(encoding="utf-8")
    assert "- {residual: null, repeat: 2, name: blocks}" in text, text  # class _Residual
    spec = archspec.load(spec_file)
    assert spec.plan().total_params == sum(p.numel() for p in model.parameters()) == 1444
    network = spec.build().eval()
    tensors = load_file(str(weights))
    assert set(tensors) == set(model.state_dict())
    network.load_state_dict(tensors, strict=True)
    x = torch.randn(3, 3, 16, 16)
    with torch.no_grad():
        torch.testing.assert_close(network(x), model(x), rtol=1e-5, atol=1e-5)


# --- the other operators, against onnxruntime --------------------------------------------


def _init(name: str, array: np.ndarray) -> TensorProto:
    return numpy_helper.from_array(np.asarray(array), name)


def _const(name: str, value: Any, dtype: Any = np.float32) -> onnx.NodeProto:
    return helper.make_node(
        "Constant",
        [],
        [name],
        name=f"/{name}/Constant",
        value=_init(name, np.asarray(value, dtype)),
    )


def _small_model(extra: list[onnx.NodeProto] | None = None) -> onnx.ModelProto:
    """Asymmetric and SAME_UPPER padding (a pad layer first), dilation, relu6 as Clip,
    squeeze-excite Mul, pools, Concat, Reshape, Transpose, Dropout, MatMul + Add and a scaled
    Gemm (transB=0), opset 13."""
    rng = np.random.default_rng(0)

    def w(*shape: int) -> np.ndarray:
        return rng.standard_normal(shape).astype(np.float32) * 0.3

    inits = [
        _init("stem.weight", w(8, 3, 3, 3)),
        _init("stem.bias", w(8)),
        _init("se.fc.weight", w(8, 8, 1, 1)),
        _init("se.fc.bias", w(8)),
        _init("dil.weight", w(8, 8, 3, 3)),
        _init("dil.bias", w(8)),
        _init("same.weight", w(8, 8, 2, 2)),
        _init("shape1", np.array([0, 16, 4], np.int64)),
        _init("shape2", np.array([0, -1], np.int64)),
        _init("fc1.weight", w(64, 10)),
        _init("fc1.bias", w(10)),
        _init("fc2.weight", w(10, 4)),
        _init("fc2.bias", w(1, 4)),
    ]
    node = helper.make_node
    nodes = [
        node(
            "Conv",
            ["x", "stem.weight", "stem.bias"],
            ["c1"],
            name="/stem/Conv",
            pads=[0, 0, 1, 1],
            strides=[2, 2],
            kernel_shape=[3, 3],
        ),
        _const("lo", 0.0),
        _const("hi", 6.0),
        node("Clip", ["c1", "lo", "hi"], ["a1"], name="/act/Clip"),
        node("GlobalAveragePool", ["a1"], ["g"], name="/se/pool/GlobalAveragePool"),
        node("Conv", ["g", "se.fc.weight", "se.fc.bias"], ["g1"], name="/se/fc/Conv"),
        node("HardSigmoid", ["g1"], ["g2"], name="/se/gate/HardSigmoid", alpha=1 / 6, beta=0.5),
        node("Mul", ["a1", "g2"], ["s"], name="/se/Mul"),
        node(
            "Conv",
            ["s", "dil.weight", "dil.bias"],
            ["c2a"],
            name="/dil/Conv",
            pads=[2, 2, 2, 2],
            dilations=[2, 2],
            kernel_shape=[3, 3],
        ),
        node("Conv", ["c2a", "same.weight"], ["c2"], name="/same/Conv", auto_pad="SAME_UPPER"),
        node(
            "AveragePool",
            ["c2"],
            ["p1"],
            name="/avg/AveragePool",
            kernel_shape=[3, 3],
            strides=[2, 2],
            pads=[1, 1, 1, 1],
            count_include_pad=0,
        ),
        node(
            "MaxPool",
            ["a1"],
            ["p2"],
            name="/max/MaxPool",
            kernel_shape=[3, 3],
            strides=[2, 2],
            pads=[1, 1, 1, 1],
        ),
        node("Concat", ["p1", "p2"], ["cat"], name="/Concat", axis=1),
        node("Reshape", ["cat", "shape1"], ["r1"], name="/Reshape"),
        node("Transpose", ["r1"], ["t1"], name="/Transpose", perm=[0, 2, 1]),
        node("Reshape", ["t1", "shape2"], ["r2"], name="/Reshape_1"),
        _const("ratio", 0.25),
        node("Dropout", ["r2", "ratio"], ["d"], name="/drop/Dropout"),
        node("MatMul", ["d", "fc1.weight"], ["m1"], name="/fc1/MatMul"),
        node("Add", ["m1", "fc1.bias"], ["m2"], name="/fc1/Add"),
        node("Relu", ["m2"], ["m3"], name="/act2/Relu"),
        node(
            "Gemm", ["m3", "fc2.weight", "fc2.bias"], ["m4"], name="/fc2/Gemm", alpha=0.5, beta=2.0
        ),
        node("Softmax", ["m4"], ["y"], name="/Softmax"),
    ]
    at = next(i for i, n in enumerate(nodes) if n.name == "/act2/Relu") + 1
    nodes[at:at] = extra or []
    graph = helper.make_graph(
        nodes,
        "small",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 3, 8, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", 4])],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    return model


def test_a_hand_written_graph_matches_onnxruntime(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    ort = pytest.importorskip("onnxruntime")
    model = _small_model()
    onnx.checker.check_model(model, full_check=True)
    path = tmp_path / "small.onnx"
    onnx.save(model, str(path))
    spec_file, weights = tmp_path / "s.yaml", tmp_path / "s.safetensors"
    code, _, err = _import(capsys, str(path), "-o", str(spec_file), "--weights", str(weights))
    assert code == 0, err
    spec = archspec.load(spec_file)
    kinds = [n.kind for n in spec.plan().nodes]
    for kind in ("pad", "relu6", "multiply", "hardsigmoid", "reshape", "permute", "dropout"):
        assert kind in kinds, kinds
    assert kinds.count("dense") == 2 and "add" not in kinds  # MatMul + Add is one dense
    weighted = [t for t in model.graph.initializer if t.data_type == TensorProto.FLOAT]
    assert spec.plan().total_params == sum(int(np.prod(t.dims)) for t in weighted) == 1830
    text = spec_file.read_text(encoding="utf-8")
    assert text.count("{pad: {before: 0, after: 1}}") == 2  # asymmetric pads, SAME_UPPER
    assert "{conv: {depth: 8, kernel: 3, padding: 2, dilation: 2}, name: dil}" in text
    assert "{dropout: {p: 0.25}, name: drop}" in text
    network = spec.build().eval()
    network.load_state_dict(load_file(str(weights)), strict=True)
    x = np.random.default_rng(1).standard_normal((5, 3, 8, 8)).astype(np.float32)
    (expected,) = ort.InferenceSession(str(path)).run(None, {"x": x})
    with torch.no_grad():
        got = network(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)


def test_unsupported_ops_are_listed_and_partial_stops_before_the_first(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    extra = [
        helper.make_node("Erf", ["m3"], ["e"], name="/gelu/Erf"),
        helper.make_node("Sub", ["e", "m3"], ["e2"], name="/gelu/Sub"),
    ]
    path = tmp_path / "u.onnx"
    onnx.save(_small_model(extra), str(path))
    out = tmp_path / "u.yaml"
    code, _, err = _import(capsys, str(path), "-o", str(out))
    assert code == 1
    assert err.splitlines() == [
        "archspec: /gelu/Erf: Erf: has no archspec kind",
        "archspec: /gelu/Sub: Sub: has no archspec kind",
        "archspec: 2 operation(s) have no archspec kind; --partial writes the spec up to the "
        "first one",
    ]
    assert not out.exists()
    weights = tmp_path / "u.safetensors"
    code, _, err = _import(
        capsys, str(path), "-o", str(out), "--partial", "--weights", str(weights)
    )
    assert code == 0, err
    assert "stopped at /gelu/Erf: Erf: has no archspec kind" in err
    nodes = archspec.load(out).plan().nodes
    assert [n.kind for n in nodes][-3:] == ["dropout", "dense", "relu"]
    assert "fc2.weight" not in load_file(str(weights)) and "fc1.weight" in load_file(str(weights))


def test_an_unused_branch_is_left_out_and_said(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    model = _small_model()
    model.graph.initializer.append(_init("unused.weight", np.ones((2, 3, 1, 1), np.float32)))
    model.graph.node.insert(
        0, helper.make_node("Conv", ["x", "unused.weight"], ["zz"], name="/unused/Conv")
    )
    path, weights = tmp_path / "b.onnx", tmp_path / "b.safetensors"
    onnx.save(model, str(path))
    code, _, err = _import(
        capsys, str(path), "-o", str(tmp_path / "b.yaml"), "--weights", str(weights)
    )
    assert code == 0, err
    assert err.splitlines() == [
        "archspec: note: not used by the forward pass, left out: unused.weight"
    ]
    assert not any(key.startswith("unused") for key in load_file(str(weights)))


# --- hostile files ------------------------------------------------------------------------


def _graph(inits: list[TensorProto], nodes: list[onnx.NodeProto] | None = None) -> bytes:
    nodes = nodes or [helper.make_node("Conv", ["x", "w"], ["y"], name="/conv/Conv")]
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    return bytes(model.SerializeToString())


def _declared(dims: list[int], data: bytes = b"") -> TensorProto:
    tensor = TensorProto(name="w", data_type=TensorProto.FLOAT, dims=dims)
    tensor.raw_data = data
    return tensor


def _external(location: str) -> TensorProto:
    tensor = TensorProto(name="w", data_type=TensorProto.FLOAT, dims=[8, 3, 3, 3])
    tensor.data_location = TensorProto.EXTERNAL
    for key, value in (("location", location), ("offset", "0"), ("length", "864")):
        entry = tensor.external_data.add()
        entry.key, entry.value = key, value
    return tensor


def _hostile_files() -> dict[str, tuple[bytes, str]]:
    """name → (file bytes, the start of the one error line after the file name)."""
    good = _graph([_init("w", np.ones((8, 3, 3, 3), np.float32))])
    many = [helper.make_node("Relu", ["x"], ["y"], name=f"r{i}") for i in range(50)]
    return {
        "enormous": (_graph([_declared([2**40, 2**40])]), "initializer 'w': declares shape"),
        "one_gib": (_graph([_declared([2**15, 2**13])]), "initializer 'w': declares shape"),
        "negative": (_graph([_declared([-1, 3])]), "initializer 'w': declares a negative"),
        "short": (_graph([_declared([100, 100], b"\0" * 16)]), "initializer 'w': declares shape"),
        "mismatch": (
            _graph([_declared([4, 4], b"\0" * 16)]),
            "initializer 'w': declares shape [4, 4] (16 values) but stores 4",
        ),
        "passwd": (_graph([_external("/etc/passwd")]), "initializer 'w': refers to external"),
        "relative": (_graph([_external("../../etc/passwd")]), "initializer 'w': refers to"),
        "strings": (
            _graph([helper.make_tensor("w", TensorProto.STRING, [1], [b"rm -rf"])]),
            "initializer 'w': has element type STRING",
        ),
        "truncated": (good[: len(good) // 2], "not an ONNX model"),
        "not_protobuf": (b"\xff\xfe<html>surely not a model</html>\n" * 20, "not an ONNX model"),
        "empty": (b"", "not an ONNX model"),
        "many_nodes": (_graph([], many), "50 nodes is more than --max-layers 20"),
    }


_PROBE = textwrap.dedent(
    """
    import contextlib, io, json, sys
    sys.path[:0] = [{tests!r}, {root!r}]
    opened = []
    sys.addaudithook(lambda event, args: opened.append(str(args[0])) if event == "open" else None)
    from archspec.cli import main
    from worst_cases import peak_rss
    results = {{}}
    for name in {names!r}:
        err = io.StringIO()
        before = len(opened)
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            code = main(["import", {folder!r} + "/" + name + ".onnx", "-o",
                         {folder!r} + "/" + name + ".yaml", "--max-layers", "20"])
        results[name] = {{"code": code, "err": err.getvalue(), "opened": opened[before:]}}
    results["peak"] = peak_rss()
    print(json.dumps(results))
    """
)


@pytest.fixture(scope="module")
def hostile(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Every hostile file imported in one fresh process, with its opened files and peak RSS."""
    folder = tmp_path_factory.mktemp("hostile")
    files = _hostile_files()
    for name, (data, _) in files.items():
        (folder / f"{name}.onnx").write_bytes(data)
    code = _PROBE.format(
        tests=str(ROOT / "tests"), root=str(ROOT), names=list(files), folder=str(folder)
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=False
    )
    assert done.returncode == 0, done.stderr
    results: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    results["folder"] = folder
    return results


@pytest.mark.parametrize("name", list(_hostile_files()))
def test_hostile_files_are_refused_in_one_line(hostile: dict[str, Any], name: str) -> None:
    result, (_, message) = hostile[name], _hostile_files()[name]
    folder = hostile["folder"]
    assert result["code"] == 1, result
    lines = result["err"].splitlines()
    assert len(lines) == 1 and "Traceback" not in result["err"], result["err"]
    assert lines[0].startswith(f"archspec: {folder}/{name}.onnx: {message}"), lines[0]
    assert not (folder / f"{name}.yaml").exists()
    # nothing but the file itself is opened: never the path an external reference names
    assert f"{folder}/{name}.onnx" in result["opened"]  # the probe sees what is opened
    assert not any(path.endswith("etc/passwd") for path in result["opened"]), result["opened"]


def test_hostile_files_allocate_nothing_they_declare(hostile: dict[str, Any]) -> None:
    """A 2**80-element and a 1 GiB declared tensor are refused before any allocation: the
    whole process (python, torch-free archspec, onnx, numpy) peaks far below 1 GiB."""
    assert hostile["peak"] < 300 * 2**20, hostile["peak"]  # about 50 MiB when measured


def test_weights_that_are_not_floats_are_refused(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    path = tmp_path / "ints.onnx"
    path.write_bytes(_graph([_init("w", np.ones((8, 3, 3, 3), np.int64))]))
    code, _, err = _import(capsys, str(path), "-o", str(tmp_path / "i.yaml"))
    assert code == 1
    assert err.splitlines() == [
        "archspec: /conv/Conv: Conv: its weight 'w' holds INT64, not floats — 1 operation(s) "
        "have no archspec kind; --partial writes the spec up to the first one"
    ]


def test_onnx_sources_take_no_input_or_trust_code(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    path = tmp_path / "m.onnx"
    path.write_bytes(_graph([_init("w", np.ones((8, 3, 3, 3), np.float32))]))
    code, _, err = _import(capsys, str(path), "-o", str(tmp_path / "m.yaml"), "--trust-code")
    assert code == 2 and "--input and --trust-code are for torch sources" in err


def test_mutated_files_fail_cleanly_or_import(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """Random byte flips, cuts and insertions of a valid file: each imports or fails with
    exit 1 in one line (or a list of unsupported operations) — never an internal error. Found
    names that are not UTF-8 (protobuf returns them as bytes)."""
    import random

    good = _small_model().SerializeToString()
    rng = random.Random(7)
    path, out = tmp_path / "m.onnx", tmp_path / "m.yaml"
    codes = []
    for _ in range(80):
        data = bytearray(good)
        for _ in range(rng.randint(1, 6)):
            at, how = rng.randrange(len(data)), rng.random()
            if how < 0.6:
                data[at] = rng.randrange(256)
            elif how < 0.8:
                del data[at : at + rng.randint(1, 20)]
            else:
                data[at:at] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 8)))
        path.write_bytes(bytes(data))
        code, _, err = _import(capsys, str(path), "-o", str(out), "--weights", str(tmp_path / "w"))
        lines = err.splitlines()
        assert code in (0, 1), err
        assert code == 0 or len(lines) == 1 or "have no archspec kind" in lines[-1], err
        codes.append(code)
    assert codes.count(1) >= 20 and codes.count(0) >= 1  # both outcomes were exercised
