"""The bundled ImageNet-class specs are torchvision's models, function for function.

Builds the spec, copies the torchvision model's ``state_dict`` values in by order (shapes must
agree one by one), and compares outputs on random inputs in eval mode. References come from
``tests/tvref.py`` (torchvision's pure-Python model code; see there why).
"""

from __future__ import annotations

from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from tvref import models, needs_torchvision  # noqa: E402

import archspec  # noqa: E402
from archspec.compile import build  # noqa: E402

SPECS = Path(__file__).resolve().parent.parent / "specs"
CASES = [
    ("resnet18", "resnet18", 11_689_512),
    ("mobilenet_v2", "mobilenet_v2", 3_504_872),
    ("mobilenet_v3_small", "mobilenet_v3_small", 2_542_856),
    ("efficientnet_b0", "efficientnet_b0", 5_288_548),
    ("regnet_y_400mf", "regnet_y_400mf", 4_344_144),
    ("convnext_tiny", "convnext_tiny", 28_589_128),
    ("vit_b_16", "vit_b_16", 86_567_656),
    ("shufflenet_v2_x1_0", "shufflenet_v2_x1_0", 2_278_604),
]


def copy_by_order(source: torch.nn.Module, target: torch.nn.Module) -> None:
    """Copy ``source``'s state into ``target`` entry by entry, in registration order."""
    theirs, ours = source.state_dict(), target.state_dict()
    assert len(theirs) == len(ours), f"{len(theirs)} tensors vs {len(ours)}"
    for (their_name, value), (our_name, mine) in zip(theirs.items(), ours.items(), strict=True):
        assert value.shape == mine.shape, f"{their_name} {value.shape} vs {our_name} {mine.shape}"
        mine.copy_(value)


@needs_torchvision
@pytest.mark.parametrize(("spec", "factory", "count"), CASES)
def test_spec_equals_torchvision_model(spec: str, factory: str, count: int) -> None:
    compare(spec, factory, count)


@needs_torchvision
def test_efficientnet_squeeze_excite_broadcasts_at_another_size() -> None:
    """The [C, 1, 1] gates broadcast, so the same spec runs (and equals torchvision) at 256²."""
    compare("efficientnet_b0", "efficientnet_b0", 5_288_548, (3, 256, 256))


def compare(
    spec: str, factory: str, count: int, input_shape: tuple[int, ...] | None = None
) -> None:
    torch.manual_seed(0)
    reference = getattr(models(), factory)().eval()
    for module in reference.modules():  # random statistics, so batch norm is not an identity
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.uniform_(-0.5, 0.5)
            module.running_var.uniform_(0.5, 1.5)
    with torch.no_grad():  # tensors initialised to 0 (ViT's head and class token, biases) or
        for name, value in reference.named_parameters():  # ConvNeXt's 1e-6 layer scales would
            if name.endswith("layer_scale"):  # hide what they multiply
                value.uniform_(0.2, 1.0)
            elif not value.any():
                value.normal_(std=0.02)
    plan = archspec.load(SPECS / f"{spec}.yaml").plan(input_shape=input_shape)
    assert plan.total_params == count == sum(p.numel() for p in reference.parameters())
    network = build(plan).eval()
    copy_by_order(reference, network)
    x = torch.randn(2, *plan.input_shape)
    with torch.no_grad():
        expected, got = reference(x), network(x)
    if plan.nodes[-1].kind in ("softmax", "log_softmax"):
        expected = torch.softmax(expected, dim=1)
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)
