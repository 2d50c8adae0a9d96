"""``archspec import``: torch modules round-trip exactly; Keras configs are read as data only.

Torch sources: the imported spec, built and loaded with the imported weights, gives the source
module's outputs (eval mode, atol 1e-5) and exactly its parameter count; layer names are the
module paths (``state_dict`` keys map one to one). Keras sources: parameter counts derived by
hand; hostile configs (Lambda, ``module``/``registered_name`` naming ``os.system``) are refused
with their location and nothing is executed or written.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import import_models
import pytest
import torch
from safetensors.torch import load_file
from tvref import needs_torchvision

import archspec
from archspec.cli import main


def _import(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["import", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def _round_trip(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, factory: str, shape: str, atol: float = 1e-5
) -> tuple[archspec.Spec, torch.nn.Module, dict[str, torch.Tensor], str, str]:
    spec_file, weights = tmp_path / "net.yaml", tmp_path / "net.safetensors"
    code, out, err = _import(
        capsys,
        f"import_models:{factory}",
        "--input",
        shape,
        "--trust-code",
        "-o",
        str(spec_file),
        "--weights",
        str(weights),
    )
    assert code == 0, err
    assert "outputs equal to the source's" in out
    reference = getattr(import_models, factory)().eval()
    spec, tensors = import_models.loaded_and_equal(spec_file, weights, reference, atol)
    return spec, reference, tensors, spec_file.read_text(encoding="utf-8"), err


@needs_torchvision
def test_resnet18_is_a_short_spec_with_torchvisions_names_and_outputs(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    spec, reference, tensors, text, _ = _round_trip(capsys, tmp_path, "resnet18", "3x224x224")
    assert spec.plan().total_params == 11_689_512
    assert len(text.splitlines()) <= 60, text
    # one basic block, used by layer1 (repeat: 2) and as block 1 of each later stage
    assert "- {basic_block: {depth: 64}, repeat: 2, name: layer1}" in text
    assert text.count("{basic_block: {depth: depth}, name: '1'}") == 1  # in the stage block
    assert text.count("name: layer") == 4
    assert set(tensors) == set(reference.state_dict())  # layer names are the module paths


@needs_torchvision
def test_mobilenet_v2_round_trips(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    spec, reference, tensors, text, _ = _round_trip(capsys, tmp_path, "mobilenet_v2", "3x224x224")
    assert spec.plan().total_params == 3_504_872
    assert set(tensors) == set(reference.state_dict())
    assert "inverted_residual" in text and "- {sequential_3: null, name: features}" not in text


@needs_torchvision
def test_efficientnet_b0_round_trips(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """Squeeze-excite (a multiply of two layers) and torchvision's stochastic_depth function."""
    spec, reference, tensors, text, _ = _round_trip(
        capsys, tmp_path, "efficientnet_b0", "3x224x224"
    )
    assert spec.plan().total_params == 5_288_548
    assert set(tensors) == set(reference.state_dict())
    assert "drop_path" in text and "multiply" in text


@needs_torchvision
@pytest.mark.parametrize(
    ("factory", "params", "block"),
    [("resnet50", 25_557_032, "bottleneck"), ("densenet121", 7_978_856, "concat")],
)
def test_the_larger_torchvision_models_round_trip(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, factory: str, params: int, block: str
) -> None:
    """Issue #17's list: ResNet-50 (bottleneck blocks) and DenseNet-121 (each dense layer
    concatenates one more input) at 64×64 (their pooling is adaptive: the weights and the
    count do not depend on the size), exact counts and outputs. ResNet-50 keeps torchvision's
    keys; a dense layer reads a list of tensors, so it stays flat, each tensor renamed once
    (`features.denseblock1.denselayer2.conv1.weight` → `…denselayer2_conv1.weight`)."""
    spec, reference, tensors, text, err = _round_trip(capsys, tmp_path, factory, "3x64x64")
    assert spec.plan().total_params == params
    assert block in text
    if factory == "resnet50":
        assert set(tensors) == set(reference.state_dict())
    else:
        assert len(tensors) == len(reference.state_dict())
        assert (
            "renamed: features.denseblock1.denselayer2.conv1 → "
            "features.denseblock1.denselayer2_conv1"
        ) in err


def test_a_plain_stack_round_trips(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    spec, reference, tensors, text, _ = _round_trip(capsys, tmp_path, "small", "3x16x16")
    assert spec.plan().total_params == 802
    assert set(tensors) == set(reference.state_dict())
    assert "{conv: {depth: 16, kernel: [3, 1], stride: [2, 1]}, name: '4'}" in text
    assert "{pool: {kind: avg, size: 2, stride: 2, ceil_mode: true}, name: '6'}" in text


def test_blocks_concat_functions_and_renames(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    spec, reference, tensors, text, err = _round_trip(capsys, tmp_path, "Branchy", "3x12x12")
    assert spec.plan().total_params == 2_661
    assert "- {unit: null, repeat: 3, name: units}" in text
    assert "{concat: null, name: concat_1, from: [left, right]}" in text
    # a module with two inputs is inlined; a layer called `output` is renamed
    renamed = {
        k.replace("merge.proj", "merge_proj").replace("output.", "output_.")
        for k in reference.state_dict()
    }
    assert set(tensors) == renamed
    assert "renamed: merge.proj → merge_proj" in err


def test_unsupported_ops_are_listed_one_line_each_and_nothing_is_written(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    out = tmp_path / "u.yaml"
    code, _, err = _import(
        capsys, "import_models:Unsupported", "--input", "3x16x16", "--trust-code", "-o", str(out)
    )
    assert code == 1
    assert err.splitlines() == [
        "archspec: <top level>: function mul with a constant (archspec merges two layers' outputs)",
        "archspec: <top level>: function torch.cumsum has no archspec kind",
        "archspec: 2 operation(s) have no archspec kind; --partial writes the spec up to the "
        "first one",
    ]
    assert not out.exists()


def test_partial_writes_up_to_the_first_unsupported_op(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    out, weights = tmp_path / "p.yaml", tmp_path / "p.safetensors"
    code, _, err = _import(
        capsys,
        "import_models:Unsupported",
        "--input",
        "3x16x16",
        "--trust-code",
        "-o",
        str(out),
        "--partial",
        "--weights",
        str(weights),
    )
    assert code == 0, err
    assert "stopped at <top level>: function mul with a constant" in err
    spec = archspec.load(out)
    assert [n.kind for n in spec.plan().nodes] == ["conv", "relu"]
    reference = import_models.Unsupported().eval()
    network = spec.build().eval()
    network.load_state_dict(load_file(str(weights)))
    x = torch.randn(2, 3, 16, 16)
    with torch.no_grad():
        torch.testing.assert_close(network(x), torch.relu(reference.conv(x)))


def test_torch_sources_need_trust_code_and_are_not_imported_without(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    marker = tmp_path / "ran"
    (tmp_path / "sneaky_model.py").write_text(
        f"from pathlib import Path\nPath({str(marker)!r}).touch()\n"
        "import torch\ndef net():\n    return torch.nn.ReLU()\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    out = tmp_path / "s.yaml"
    code, _, err = _import(capsys, "sneaky_model:net", "--input", "4", "-o", str(out))
    assert code == 2
    assert err.splitlines() == [
        "archspec: importing sneaky_model:net imports and runs its Python code — pass "
        "--trust-code if you trust it"
    ]
    assert not marker.exists() and not out.exists() and "sneaky_model" not in sys.modules


@pytest.mark.parametrize(
    ("factory", "shape", "message"),
    [
        ("Shared", "4x8x8", "archspec: conv: Conv2d called twice (shared weights)"),
        ("NOT_A_MODULE", "4", "archspec: import_models:NOT_A_MODULE is a int, not a model factory"),
        ("nowhere", "4", "archspec: import_models has no attribute 'nowhere'"),
        ("small", "4x16x16", "archspec: the model fails on a random input of shape [2, 4, 16, 16]"),
    ],
)
def test_bad_torch_sources_fail_in_one_line(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, factory: str, shape: str, message: str
) -> None:
    code, _, err = _import(
        capsys,
        f"import_models:{factory}",
        "--input",
        shape,
        "--trust-code",
        "-o",
        str(tmp_path / "x.yaml"),
    )
    assert code == 1
    assert err.splitlines()[0].startswith(message), err
    assert not (tmp_path / "x.yaml").exists()


# --- Keras ---------------------------------------------------------------------------------


def _k3(cls: str, name: str, inbound: list[str] | None = None, **config: Any) -> dict[str, Any]:
    """A Keras 3 layer entry as model.to_json() writes it."""
    layer: dict[str, Any] = {
        "module": "keras.layers",
        "class_name": cls,
        "config": {
            "name": name,
            "trainable": True,
            "dtype": {
                "module": "keras",
                "class_name": "DTypePolicy",
                "config": {"name": "float32"},
                "registered_name": None,
            },
            **config,
        },
        "registered_name": None,
        "name": name,
    }
    if inbound is not None:
        layer["inbound_nodes"] = (
            [
                {
                    "args": [
                        [_tensor(s) for s in inbound] if len(inbound) > 1 else _tensor(inbound[0])
                    ],
                    "kwargs": {},
                }
            ]
            if inbound
            else []
        )
    return layer


def _tensor(source: str) -> dict[str, Any]:
    return {
        "class_name": "__keras_tensor__",
        "config": {"shape": [None], "dtype": "float32", "keras_history": [source, 0, 0]},
    }


GLOROT = {
    "module": "keras.initializers",
    "class_name": "GlorotUniform",
    "config": {"seed": None},
    "registered_name": None,
}


def _functional(layers: list[dict[str, Any]], output: str) -> dict[str, Any]:
    return {
        "module": "keras.src.models.functional",
        "class_name": "Functional",
        "config": {
            "name": "small_resnet",
            "trainable": True,
            "layers": layers,
            "input_layers": [["input_layer", 0, 0]],
            "output_layers": [[output, 0, 0]],
        },
        "registered_name": "Functional",
        "build_config": {"input_shape": None},
    }


def _keras_functional() -> dict[str, Any]:
    conv = {
        "strides": [1, 1],
        "data_format": "channels_last",
        "dilation_rate": [1, 1],
        "groups": 1,
        "kernel_initializer": GLOROT,
        "bias_initializer": {
            "module": "keras.initializers",
            "class_name": "Zeros",
            "config": {},
            "registered_name": None,
        },
    }
    return _functional(
        [
            _k3("InputLayer", "input_layer", [], batch_shape=[None, 32, 32, 3], sparse=False),
            _k3(
                "Conv2D",
                "conv_a",
                ["input_layer"],
                filters=16,
                kernel_size=[3, 3],
                padding="same",
                activation="relu",
                use_bias=True,
                **conv,
            ),
            _k3(
                "BatchNormalization",
                "bn",
                ["conv_a"],
                axis=-1,
                momentum=0.99,
                epsilon=0.001,
                center=True,
                scale=True,
            ),
            _k3(
                "Conv2D",
                "conv_b",
                ["bn"],
                filters=16,
                kernel_size=[3, 3],
                padding="same",
                activation="linear",
                use_bias=False,
                **conv,
            ),
            _k3("ReLU", "relu6", ["conv_b"], max_value=6.0, negative_slope=0.0, threshold=0.0),
            _k3("Add", "add", ["relu6", "bn"]),
            _k3(
                "Conv2D",
                "conv_c",
                ["add"],
                filters=8,
                kernel_size=[1, 1],
                padding="valid",
                activation="linear",
                use_bias=True,
                **conv,
            ),
            _k3("Concatenate", "concat", ["add", "conv_c"], axis=-1),
            _k3(
                "AveragePooling2D",
                "pool",
                ["concat"],
                pool_size=[2, 2],
                padding="valid",
                strides=[2, 2],
                data_format="channels_last",
            ),
            _k3(
                "GlobalAveragePooling2D",
                "gap",
                ["pool"],
                data_format="channels_last",
                keepdims=False,
            ),
            _k3("Dropout", "drop", ["gap"], rate=0.3, seed=None, noise_shape=None),
            _k3(
                "Dense",
                "dense",
                ["drop"],
                units=10,
                activation="softmax",
                use_bias=True,
                kernel_initializer=GLOROT,
            ),
        ],
        "dense",
    )


def _write(tmp_path: Path, data: Any, name: str = "model.json") -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def test_keras_functional_config(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    out = tmp_path / "k.yaml"
    code, _, err = _import(capsys, str(_write(tmp_path, _keras_functional())), "-o", str(out))
    assert code == 0, err
    plan = archspec.load(out).plan()
    assert plan.input_shape == (3, 32, 32)  # channels-last [32, 32, 3] → channels first
    # 448 conv_a + 32 bn (γ, β) + 2,304 conv_b + 136 conv_c + 250 dense
    assert plan.total_params == 448 + 32 + 2304 + 136 + 250
    kinds = [(n.kind, n.shape) for n in plan.nodes]
    assert ("concat", (24, 32, 32)) in kinds and ("relu6", (16, 32, 32)) in kinds
    assert plan.nodes[-1].kind == "softmax" and plan.nodes[-1].shape == (10,)
    text = out.read_text(encoding="utf-8")
    assert "{batchnorm: {eps: 0.001, momentum: 0.01}, name: bn}" in text
    assert "{add: null, from: [relu6, relu_1]}" in text or "from: [relu6, " in text


def test_keras2_functional_conv1d_config(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """tf.keras 2 writes batch_input_shape and inbound nodes as nested lists."""

    def layer(cls: str, name: str, inbound: str | None, **config: Any) -> dict[str, Any]:
        return {
            "class_name": cls,
            "config": {"name": name, "trainable": True, "dtype": "float32", **config},
            "name": name,
            "inbound_nodes": [[[inbound, 0, 0, {}]]] if inbound else [],
        }

    data = {
        "class_name": "Functional",
        "config": {
            "name": "tcn",
            "layers": [
                layer("InputLayer", "input_1", None, batch_input_shape=[None, 100, 4]),
                layer(
                    "Conv1D",
                    "c1",
                    "input_1",
                    filters=8,
                    kernel_size=[5],
                    strides=[1],
                    padding="causal",
                    dilation_rate=[1],
                    activation="relu",
                    use_bias=True,
                ),
                layer("MaxPooling1D", "p1", "c1", pool_size=[2], strides=[2], padding="valid"),
                layer(
                    "Conv1D",
                    "c2",
                    "p1",
                    filters=8,
                    kernel_size=[3],
                    strides=[1],
                    padding="valid",
                    dilation_rate=[1],
                    activation="linear",
                    use_bias=True,
                ),
                layer("GlobalMaxPooling1D", "g", "c2"),
                layer("Dense", "out", "g", units=3, activation="linear", use_bias=True),
            ],
            "input_layers": [["input_1", 0, 0]],
            "output_layers": [["out", 0, 0]],
        },
        "keras_version": "2.15.0",
        "backend": "tensorflow",
    }
    out = tmp_path / "t.yaml"
    code, _, err = _import(capsys, str(_write(tmp_path, data)), "-o", str(out))
    assert code == 0, err
    plan = archspec.load(out).plan()
    assert plan.input_shape == (4, 100)
    assert plan.total_params == 168 + 200 + 27
    assert [n.shape for n in plan.nodes][:3] == [(8, 100), (8, 100), (8, 50)]


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (
            lambda layers: layers.insert(
                2,
                _k3(
                    "Lambda",
                    "evil",
                    function={
                        "class_name": "__lambda__",
                        "config": {
                            "code": "4wEAAAAAAAAAAAAAAAEAAAADAAAA",
                            "defaults": None,
                            "closure": None,
                        },
                    },
                ),
            ),
            "layers[2] 'evil' (Lambda): a Lambda layer holds Python code; archspec never runs it",
        ),
        (
            lambda layers: layers[3].update(module="os", class_name="system"),
            "layers[3] 'conv_b' (system): module 'os' is not Keras' (custom code is refused)",
        ),
        (
            lambda layers: layers[1].update(registered_name="os.system"),
            "layers[1] 'conv_a' (Conv2D): registered_name 'os.system' names a custom object",
        ),
        (
            lambda layers: layers[1]["config"].update(
                kernel_initializer={
                    "module": "os",
                    "class_name": "system",
                    "config": {"command": "touch x"},
                    "registered_name": "system",
                }
            ),
            "layers[1] 'conv_a' (Conv2D).config.kernel_initializer: module 'os' is not Keras'",
        ),
    ],
)
def test_hostile_keras_configs_are_refused_with_their_location(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, mutate: Any, message: str
) -> None:
    marker = tmp_path / "pwned"
    data = _keras_functional()
    mutate(data["config"]["layers"])
    text = json.dumps(data).replace("touch x", f"touch {marker}")
    source = tmp_path / "hostile.json"
    source.write_text(text, encoding="utf-8")
    out = tmp_path / "h.yaml"
    code, _, err = _import(capsys, str(source), "-o", str(out))
    assert code == 1
    assert err.splitlines()[0].startswith(f"archspec: {source}: {message}"), err
    assert not marker.exists() and not out.exists()
    assert "keras" not in sys.modules and "tensorflow" not in sys.modules


def test_keras_unsupported_layers_listed_or_partial(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    data = _keras_functional()
    data["config"]["layers"][4] = _k3("LSTM", "relu6", ["conv_b"], units=4)
    data["config"]["layers"][8] = _k3(
        "MaxPooling2D", "pool", ["concat"], pool_size=[2, 2], padding="same", strides=[2, 2]
    )
    source, out = _write(tmp_path, data), tmp_path / "k.yaml"
    code, _, err = _import(capsys, str(source), "-o", str(out))
    assert code == 1
    assert err.splitlines()[:2] == [
        "archspec: layers[4] 'relu6' (LSTM): LSTM has no archspec kind",
        "archspec: layers[8] 'pool' (MaxPooling2D): pooling with padding 'same' (Keras pads "
        "unevenly; archspec's pool pads evenly)",
    ]
    assert not out.exists()
    code, _, err = _import(capsys, str(source), "-o", str(out), "--partial")
    assert code == 0, err
    assert [n.name for n in archspec.load(out).plan().nodes] == ["conv_a", "relu1", "bn", "conv_b"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{not json", "not JSON"),
        ('{"class_name": "Sequential", "config": {"layers": []}}', "config.layers is missing"),
        ("[1, 2]", "the top level is 'list', not a Sequential or Functional model"),
    ],
)
def test_bad_keras_files(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, text: str, message: str
) -> None:
    source = tmp_path / "bad.json"
    source.write_text(text, encoding="utf-8")
    code, _, err = _import(capsys, str(source), "-o", str(tmp_path / "o.yaml"))
    assert code == 1 and message in err and len(err.splitlines()) <= 2, err


def test_a_constant_source_output_is_said_to_check_little(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """Equal outputs prove little when the source's output ignores its input (torchvision's
    ViT starts with a zero head): the import still succeeds and says so; a normal source
    does not get the note."""
    *_, err = _round_trip(capsys, tmp_path, "zero_head", "3x8x8")
    assert "the source's output is the same for every input" in err
    *_, err = _round_trip(capsys, tmp_path, "small", "3x8x8")
    assert "the same for every input" not in err
