"""``archspec import --capture export``: modules torch.fx cannot trace import through torch.export.

The modules below are factories for ``archspec import`` (``test_import_export_capture:Shapey``):
their forward passes branch and loop on shapes, which ``torch.fx.symbolic_trace`` refuses and
``torch.export`` follows. The imported spec, built and loaded with the imported weights, gives
the module's outputs (atol 1e-5) with exactly its parameter count; torchvision's ResNet-18
captured by export folds to the very spec (and weights) the fx path gives.
"""

from __future__ import annotations

from pathlib import Path

import import_models
import pytest
import torch
from torch import nn
from torch.nn import functional as F
from tvref import needs_torchvision

import archspec
from archspec.cli import main
from archspec.importers import export_capture, torch_source
from archspec.importers.fold import fold


class Shapey(nn.Module):  # seeded: the same weights on every construction
    """Control flow on shapes: an ``if`` on the width, a loop over channel groups, an
    assert, ``x.view(x.size(0), -1)``; an in-place residual add and ReLU6."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.stem = nn.Conv2d(3, 8, 3, padding=1)
        self.bn = nn.BatchNorm2d(8)
        self.bn.running_mean.uniform_(-0.5, 0.5)
        self.bn.running_var.uniform_(0.5, 1.5)
        self.pool = nn.MaxPool2d(2)
        self.groups = nn.ModuleList([nn.Conv2d(4, 4, 3, padding=1) for _ in range(2)])
        self.act = nn.ReLU6()
        self.norm = nn.LayerNorm(128)
        self.head = nn.Linear(128, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.bn(self.stem(x)))
        if x.shape[-1] > 8:  # fx: "symbolically traced variables cannot be used as inputs
            x = self.pool(x)  # to control flow"
        parts = [self.groups[i](x[:, 4 * i : 4 * i + 4]) for i in range(x.shape[1] // 4)]
        y = torch.cat(parts, dim=1)
        y += x
        x = self.act(y)
        x = F.adaptive_avg_pool2d(x, 4)
        assert x.shape[1:] == (8, 4, 4), x.shape
        x = x.view(x.size(0), -1)
        return self.head(F.gelu(self.norm(x)))


class Cumulative(nn.Module):  # seeded
    """Shape-dependent control flow, then an op archspec has no kind for."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.fc = nn.Linear(4, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.conv(x))
        if x.shape[-1] > 4:
            x = torch.cumsum(x, dim=2)  # CUMSUM_LINE
        return self.fc(x.mean([2, 3]))


class ValueDependent(nn.Module):
    """Control flow on a tensor's values: neither fx nor export can capture it."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv(x)
        if x.sum() > 0:
            return torch.relu(x)
        return x


class TrainOnly(nn.Module):
    """Does something only in training (as torchvision's StochasticDepth): nothing in eval."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * 0.5 if self.training else x


class WithTrainOnly(nn.Module):  # seeded
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.conv = nn.Conv2d(3, 4, 3)
        self.drop = TrainOnly()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.drop(self.conv(x))


class CrossAttention(nn.Module):  # seeded
    """Attention of tokens to a different context: the fx path maps it, export refuses it."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.attn = nn.MultiheadAttention(8, 2, batch_first=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        tokens = x.flatten(2).transpose(1, 2)
        if tokens.shape[1] > 4:
            tokens = self.attn(tokens, tokens[:, :4], tokens[:, :4])[0]  # ATTENTION_LINE
        return tokens


def _import(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["import", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def _torch(factory: str, shape: str, out: Path, *more: str) -> list[str]:
    module = {"resnet18": "import_models", "small_vit": "test_import_vit"}.get(factory, __name__)
    return [f"{module}:{factory}", "--input", shape, "--trust-code", "-o", str(out), *more]


def test_shape_dependent_control_flow_imports_through_export(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    spec_file, weights = tmp_path / "s.yaml", tmp_path / "s.safetensors"
    with pytest.raises(torch_source.TraceFailed):  # the fx path cannot follow it
        torch_source.trace(Shapey(), (3, 16, 16), "shapey", partial=False)
    code, out, err = _import(
        capsys, *_torch("Shapey", "3x16x16", spec_file, "--weights", str(weights))
    )
    assert code == 0, err
    assert "outputs equal to the source's" in out
    # auto: said on stderr, one line
    assert err.splitlines() == [
        "archspec: note: torch.fx cannot trace the model (TraceError: symbolically traced "
        "variables cannot be used as inputs to control flow); captured it with torch.export "
        "instead",
        "renamed: groups.0 → groups_0",  # a ModuleList's items are not calls: flat layers
        "renamed: groups.1 → groups_1",
    ]
    reference = Shapey().eval()
    spec, tensors = import_models.loaded_and_equal(spec_file, weights, reference)
    renamed = {key.replace("groups.", "groups_") for key in reference.state_dict()}
    assert set(tensors) == renamed  # layer names are the module paths
    kinds = [node.kind for node in spec.plan().nodes]
    assert kinds.count("slice") == 2 and "concat" in kinds and "relu6" in kinds
    # a smaller input takes the other branch of the `if`: export specialises on the shape
    small = tmp_path / "small.yaml"
    code, _, err = _import(capsys, *_torch("Shapey", "3x8x8", small, "--capture", "export"))
    assert code == 0, err
    assert "note" not in err  # --capture export: no fx attempt
    assert "pool" not in small.read_text(encoding="utf-8").replace("adaptive_pool", "")


def test_fx_capture_refuses_what_export_takes(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    out = tmp_path / "fx.yaml"
    code, _, err = _import(capsys, *_torch("Shapey", "3x16x16", out, "--capture", "fx"))
    assert code == 1
    (line,) = err.splitlines()
    assert line.startswith("archspec: <forward>: torch.fx cannot trace the model: TraceError")
    assert "--capture export" in line
    assert not out.exists()


@needs_torchvision
def test_resnet18_through_export_is_the_fx_spec(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """The same spec text, weights and outputs as the fx path (64×64: the pooling is
    adaptive, so the spec and the weights do not depend on the size)."""
    spec_file, weights = tmp_path / "r.yaml", tmp_path / "r.safetensors"
    code, _, err = _import(
        capsys,
        *_torch("resnet18", "3x64x64", spec_file, "--capture", "export", "--weights", str(weights)),
    )
    assert code == 0, err
    text = spec_file.read_text(encoding="utf-8")
    fx_text, fx_names = fold(
        torch_source.trace(import_models.resnet18(), (3, 64, 64), "resnet18", False)
    )
    assert text == fx_text
    reference = import_models.resnet18()
    spec, tensors = import_models.loaded_and_equal(spec_file, weights, reference)
    assert spec.plan().total_params == 11_689_512
    expected = torch_source.weights(reference, fx_names)
    assert set(tensors) == set(expected) == set(reference.state_dict())
    assert all(torch.equal(tensors[key], expected[key]) for key in expected)


@needs_torchvision
def test_a_small_vit_through_export_is_the_fx_spec(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """Export decomposes nn.MultiheadAttention; its call's ops become one `attention` again,
    and the class token, position embedding and patch tokens map as the fx path maps them."""
    from test_import_vit import small_vit

    spec_file, weights = tmp_path / "v.yaml", tmp_path / "v.safetensors"
    code, _, err = _import(
        capsys,
        *_torch(
            "small_vit", "3x32x32", spec_file, "--capture", "export", "--weights", str(weights)
        ),
    )
    assert code == 0, err
    fx_text, _ = fold(torch_source.trace(small_vit(), (3, 32, 32), "small_vit", False))
    assert spec_file.read_text(encoding="utf-8") == fx_text
    assert "attention" in fx_text and "to_tokens" in fx_text
    import_models.loaded_and_equal(spec_file, weights, small_vit())


def test_an_unsupported_aten_op_is_one_located_line(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    out = tmp_path / "c.yaml"
    code, _, err = _import(capsys, *_torch("Cumulative", "3x8x8", out))
    assert code == 1
    line = next(
        n
        for n, text in enumerate(Path(__file__).read_text().splitlines(), 1)
        if "# CUMSUM_LINE" in text
    )
    assert err.splitlines() == [
        f"archspec: <top level> (test_import_export_capture.py:{line}): aten.cumsum.default "
        "has no archspec kind — 1 operation(s) have no archspec kind; --partial writes the spec "
        "up to the first one"
    ]
    assert not out.exists()
    # --partial: the spec up to it, saying where it stopped
    code, _, err = _import(capsys, *_torch("Cumulative", "3x8x8", out, "--partial"))
    assert code == 0, err
    assert f"stopped at <top level> (test_import_export_capture.py:{line}): aten.cumsum" in err
    assert "conv" in out.read_text(encoding="utf-8")


def test_value_dependent_control_flow_is_one_clear_line(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    out = tmp_path / "v.yaml"
    code, _, err = _import(capsys, *_torch("ValueDependent", "3x8x8", out, "--capture", "export"))
    assert code == 1
    (line,) = err.splitlines()
    assert line.startswith("archspec: <forward>: torch.export cannot capture the model: ")
    assert line.endswith(
        "— archspec import needs a forward pass whose Python control flow depends on shapes "
        "only, not on tensor values"
    )
    code, _, err = _import(capsys, *_torch("ValueDependent", "3x8x8", out))  # auto: both tried
    assert code == 1
    (line,) = err.splitlines()
    assert "torch.fx cannot trace the model (" in line
    assert "and torch.export cannot capture it (" in line
    assert not out.exists()


def test_capture_is_for_torch_sources(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, _, err = _import(
        capsys, "net.onnx", "-o", str(tmp_path / "o.yaml"), "--capture", "export"
    )
    assert code == 2
    assert "--capture is for torch sources" in err


@pytest.mark.filterwarnings("ignore::FutureWarning")  # torch's own treespec deprecation
def test_core_aten_forms_map_like_the_training_ir() -> None:
    """A decomposed program (aten.convolution, _native_batch_norm_legit_no_training,
    max_pool2d_with_indices, addmm …) maps too, where its ops have kinds."""
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(3, 4, 3),
        nn.BatchNorm2d(4),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(36, 5),
        nn.Linear(5, 3, bias=False),
    ).eval()
    program = torch.export.export(model, (torch.randn(2, 3, 8, 8),), strict=False)
    decomposed = program.run_decompositions()
    names = {export_capture._op_name(n) for n in decomposed.graph.nodes if n.op == "call_function"}
    assert {"convolution", "_native_batch_norm_legit_no_training", "addmm", "mm"} <= names
    mapper = export_capture._Mapper(model, decomposed, (3, 8, 8), "seq", False)
    imported = mapper.run()
    assert not imported.unsupported
    kinds = ["conv", "batchnorm", "relu", "pool", "flatten", "dense", "dense"]
    assert [op.kind for op in imported.ops] == kinds
    assert [op.path for op in imported.ops] == ["0", "1", "2", "3", "4", "5", "6"]
    captured = export_capture.Captured(imported, decomposed, mapper.tensors, mapper.sources)
    spec_text, names = fold(imported)
    network = archspec.loads(spec_text).build().eval()
    network.load_state_dict(export_capture.weights(captured, names), strict=True)
    x = torch.randn(2, 3, 8, 8)
    with torch.no_grad():
        torch.testing.assert_close(network(x), model(x), rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(export_capture.reference(captured, x), model(x))


def test_a_module_without_eval_mode_operations_is_named_in_a_note(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    out = tmp_path / "t.yaml"
    code, _, err = _import(capsys, *_torch("WithTrainOnly", "3x8x8", out, "--capture", "export"))
    assert code == 0, err
    assert err.splitlines() == [
        "archspec: note: torch.export saw no operation of drop (TrainOnly) in eval mode: the "
        "spec has no layer for them, so training the spec differs from training the module"
    ]


def test_a_decomposed_module_it_cannot_map_is_one_line(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """Export decomposes nn.MultiheadAttention into a dozen ops: one line for the call."""
    out = tmp_path / "x.yaml"
    code, _, err = _import(capsys, *_torch("CrossAttention", "8x4x4", out))
    assert code == 1
    line = next(
        n
        for n, text in enumerate(Path(__file__).read_text().splitlines(), 1)
        if "# ATTENTION_LINE" in text
    )
    assert err.splitlines() == [
        f"archspec: attn (test_import_export_capture.py:{line}): MultiheadAttention with a "
        "separate key/value or a mask (through torch.export archspec maps self-attention; "
        "--capture fx maps cross-attention) — 1 operation(s) have no archspec kind; --partial "
        "writes the spec up to the first one"
    ]
