"""``archspec import`` of torchvision's Vision Transformer: patches → tokens, the class token,
learned positions, nn.MultiheadAttention, the class-token head.

A small ViT (32×32 images, 8×8 patches, 2 blocks) round-trips in every run: exact parameter
count, the encoder block folded into one block, every ``state_dict`` key mapped one to one
and the source's outputs (eval mode, atol 1e-5). vit_b_16 itself (86,567,656 parameters) is
imported once, by the same command a user types.
"""

from __future__ import annotations

from pathlib import Path

import import_models
import pytest
import torch
from torch import nn
from tvref import needs_torchvision

import archspec
from archspec.cli import main


def small_vit() -> nn.Module:
    """torchvision's VisionTransformer at a test size, seeded (the test rebuilds it)."""
    from tvref import models

    models()
    from torchvision.models import VisionTransformer

    torch.manual_seed(0)
    model = VisionTransformer(
        image_size=32,
        patch_size=8,
        num_layers=2,
        num_heads=2,
        hidden_dim=16,
        mlp_dim=32,
        num_classes=5,
    )
    with torch.no_grad():  # torchvision zeroes these: make every tensor matter
        for tensor in (model.class_token, model.heads.head.weight, model.heads.head.bias):
            tensor.normal_()
    return model.eval()


def vit_b_16() -> nn.Module:
    from tvref import models

    torch.manual_seed(0)
    model: nn.Module = models().vit_b_16()
    with torch.no_grad():
        model.class_token.normal_()
        model.heads.head.weight.normal_(std=0.02)
    return model.eval()


class CrossTokens(nn.Module):  # seeded: the same weights on every construction
    """Patches as ``flatten(2).transpose(1, 2)``, cross-attention with a narrower context
    (nn.MultiheadAttention's separate q/k/v weights), ``x[:, 1:]``, a mean over tokens."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.stem = nn.Conv2d(3, 8, 4, stride=4)
        self.query = nn.Linear(8, 12)
        self.context = nn.Linear(8, 6)
        self.attend = nn.MultiheadAttention(12, 3, kdim=6, vdim=6, batch_first=True)
        self.head = nn.Linear(12, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        tokens = self.stem(x).flatten(2).transpose(1, 2)
        context = self.context(tokens)
        y, _ = self.attend(self.query(tokens), context, context)
        return self.head(y[:, 1:].mean(1))


class LonePermute(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(4, 4, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x).permute(0, 2, 3, 1)


class SharedFlatten(nn.Module):
    """The flattened grid is read twice: its transpose is not a to_tokens of the grid."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        flat = x.flatten(2)
        return flat.transpose(1, 2).mean(1) + flat.mean(2)


class SequenceFirst(nn.Module):
    """nn.MultiheadAttention's default layout: [T, N, D] (the batch is not the first axis)."""

    def __init__(self) -> None:
        super().__init__()
        self.attend = nn.MultiheadAttention(4, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        tokens = x.flatten(2).permute(0, 2, 1)
        return self.attend(tokens, tokens, tokens)[0]


class Masked(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.attend = nn.MultiheadAttention(4, 2, batch_first=True)
        self.register_buffer("mask", torch.zeros(9, 9, dtype=torch.bool))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        tokens = x.flatten(2).transpose(1, 2)
        return self.attend(tokens, tokens, tokens, attn_mask=self.mask)[0]


class Scaled(nn.Module):
    """A parameter multiplied in (no kind holds a tensor used that way) and a buffer added."""

    def __init__(self) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.ones(1, 4, 1, 1))
        self.register_buffer("offset", torch.zeros(1, 4, 3, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.scale + self.offset


def _import(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, factory: str, shape: str
) -> tuple[int, str, str, Path, Path]:
    spec_file, weights = tmp_path / "net.yaml", tmp_path / "net.safetensors"
    argv = ["import", f"test_import_vit:{factory}", "--input", shape, "--trust-code"]
    code = main([*argv, "-o", str(spec_file), "--weights", str(weights)])
    out, err = capsys.readouterr()
    return code, out, err, spec_file, weights


def _round_trip(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, factory: str, shape: str
) -> tuple[archspec.Spec, nn.Module, dict[str, torch.Tensor], str, str]:
    """Import, then build the spec, load the written weights (strict) and compare with the
    source on a batch of 3 (the import itself traced a batch of 2)."""
    code, out, err, spec_file, weights = _import(capsys, tmp_path, factory, shape)
    assert code == 0, err
    assert "outputs equal to the source's" in out
    reference = globals()[factory]().eval()
    spec, tensors = import_models.loaded_and_equal(spec_file, weights, reference, 1e-5)
    return spec, reference, tensors, spec_file.read_text(encoding="utf-8"), err


# The source keys of torchvision's learned tensors → the keys of the layers holding them.
LEARNED = {
    "class_token": "class_token.weight",
    "encoder.pos_embedding": "encoder.pos_embedding.pos_embedding",
}


def _one_to_one(reference: nn.Module, tensors: dict[str, torch.Tensor]) -> None:
    source = reference.state_dict()
    assert set(tensors) == {LEARNED.get(key, key) for key in source}
    for key, value in source.items():
        assert torch.equal(tensors[LEARNED.get(key, key)], value), key


@needs_torchvision
def test_a_small_vit_round_trips_with_one_encoder_block(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    spec, reference, tensors, text, err = _round_trip(capsys, tmp_path, "small_vit", "3x32x32")
    assert spec.plan().total_params == 7_941
    _one_to_one(reference, tensors)
    for key, spec_key in LEARNED.items():
        assert f"renamed: {key} → {spec_key}" in err
    # one encoder block, used by both layers; nn.MultiheadAttention → attention
    assert text.count("  encoder_block:\n") == 1
    assert "- {encoder_block: null, name: encoder_layer_0}" in text
    assert "- {encoder_block: null, name: encoder_layer_1}" in text
    assert "- {attention: {heads: 2}, name: self_attention}" in text
    # patches → tokens, the class token joined in front, learned positions, token 0
    lines = [line.strip() for line in text.split("\nlayers:\n", 1)[1].splitlines()]
    assert lines == [
        "- {conv: {depth: 16, kernel: 8, stride: 8}, name: conv_proj}",
        "- {to_tokens: null, name: to_tokens_1}",
        "- {parameter: {shape: [1, 16]}, name: class_token}",
        "- {concat: null, from: [class_token, to_tokens_1]}",
        "- {encoder: null, name: encoder}",
        "- select",
        "- {heads: null, name: heads}",
    ]
    assert "- {positional_embedding: null, name: pos_embedding}" in text
    layers = {node.name: node for node in spec.plan().nodes}
    assert layers["encoder.pos_embedding"].shape == (17, 16)  # 16 patches and the class token


def test_tokens_cross_attention_and_slices_round_trip(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    _, reference, tensors, text, _ = _round_trip(capsys, tmp_path, "CrossTokens", "3x12x12")
    assert set(tensors) == set(reference.state_dict())
    assert "q_proj_weight" in str(sorted(tensors))  # K ≠ D: separate projections
    assert "{attention: {heads: 3}, name: attend, from: [query, context]}" in text
    assert "- {slice: {start: 1}}" in text and "to_tokens" in text


@pytest.mark.parametrize(
    ("factory", "line"),
    [
        (
            "LonePermute",
            "<top level>: method .permute() has no archspec kind (archspec maps a grid's "
            "reshape(n, C, h·w).permute(0, 2, 1) to to_tokens)",
        ),
        (
            "SharedFlatten",
            "<top level>: method .transpose() has no archspec kind (archspec maps a grid's "
            "reshape(n, C, h·w).permute(0, 2, 1) to to_tokens)",
        ),
        (
            "SequenceFirst",
            "attend: MultiheadAttention with batch_first=False (archspec's batch axis is first)",
        ),
        (
            "Masked",
            "<top level>: tensor attribute 'mask' used directly (not through a layer); archspec "
            "holds learned parameters only",
        ),
        (
            "Scaled",
            "<top level>: tensor attribute 'scale' used directly (not through a layer); archspec "
            "maps `.expand(batch, -1, …)`, `x + parameter` of x's shape",
        ),
    ],
)
def test_what_has_no_kind_is_refused_with_its_location(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, factory: str, line: str
) -> None:
    code, _, err, spec_file, weights = _import(capsys, tmp_path, factory, "4x3x3")
    assert code == 1
    assert err.splitlines()[0].startswith(f"archspec: {line}")
    assert not spec_file.exists() and not weights.exists()


def test_every_refusal_is_listed(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """After one unsupported op the later ones are still checked: a buffer; a mask."""
    code, _, err, _, _ = _import(capsys, tmp_path, "Scaled", "4x3x3")
    assert code == 1
    assert (
        "archspec: <top level>: tensor attribute 'offset' used directly (not through a layer); "
        "archspec holds learned parameters only"
    ) in err.splitlines()
    code, _, err, _, _ = _import(capsys, tmp_path, "Masked", "4x3x3")
    assert code == 1
    assert (
        "archspec: attend: MultiheadAttention with attn_mask (archspec's attention takes no mask)"
    ) in err.splitlines()


@needs_torchvision
def test_vit_b_16_imports_exactly(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """torchvision's vit_b_16: 86,567,656 parameters, 12 uses of one encoder block."""
    spec, reference, tensors, text, _ = _round_trip(capsys, tmp_path, "vit_b_16", "3x224x224")
    assert spec.plan().total_params == 86_567_656
    _one_to_one(reference, tensors)
    assert text.count("  encoder_block:\n") == 1
    assert all(f"{{encoder_block: null, name: encoder_layer_{i}}}" in text for i in range(12))
    assert "- {attention: {heads: 12}, name: self_attention}" in text
