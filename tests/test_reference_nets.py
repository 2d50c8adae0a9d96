"""Reference networks: published parameter counts, by inference AND by torch.

Each count is checked twice: the Plan's total (torch-free inference) and the
``numel`` of the module built on the meta device (nothing allocated, so
VGG-16's 138 M parameters cost nothing). The counts of the specs made here
(the CIFAR ResNets and the tiny U-Net) are worked out by hand below from their
layer layout, not by archspec.
"""

from __future__ import annotations

from pathlib import Path

import pytest

import archspec
from archspec.compile.verify import verify

SPECS = Path(__file__).resolve().parent.parent / "specs"


def conv(c_in: int, c_out: int, kernel: int, bias: bool = True) -> int:
    """A square ``kernel`` convolution: ``c_in·c_out·k² (+ c_out)``."""
    return c_in * c_out * kernel * kernel + (c_out if bias else 0)


def dense(f_in: int, f_out: int) -> int:
    return f_in * f_out + f_out


def batchnorm(channels: int) -> int:
    return 2 * channels  # scale and shift; running statistics are buffers


def basic_block(c_in: int, c_out: int, project: bool) -> int:
    """Two bias-free 3×3 convs with batch norm, plus a 1×1 projection shortcut."""
    body = conv(c_in, c_out, 3, False) + batchnorm(c_out) + conv(c_out, c_out, 3, False)
    shortcut = conv(c_in, c_out, 1, False) + batchnorm(c_out) if project else 0
    return body + batchnorm(c_out) + shortcut


def cifar_resnet(width: int, n: int = 3, classes: int = 10, project: bool = True) -> int:
    """Stem, three stages of ``n`` blocks at width, 2·width, 4·width, then the classifier.

    ``project=False`` counts the paper's option A (parameter-free shortcuts).
    """
    total = conv(3, width, 3, False) + batchnorm(width)
    c_in = width
    for c in (width, 2 * width, 4 * width):
        total += basic_block(c_in, c, project and c != c_in)
        total += (n - 1) * basic_block(c, c, False)
        c_in = c
    return total + dense(4 * width, classes)


def double_conv(c_in: int, c_out: int) -> int:
    return (
        conv(c_in, c_out, 3, False)
        + batchnorm(c_out)
        + conv(c_out, c_out, 3, False)
        + batchnorm(c_out)
    )


def unet_tiny() -> int:
    """specs/unet_tiny.yaml: encoder 8, 16, bottleneck 32, decoder back with concat skips."""
    encoder = double_conv(1, 8) + double_conv(8, 16) + double_conv(16, 32)
    up2 = 32 * 16 * 2 * 2 + 16  # conv_transpose 2×2 /2: weight (in, out, 2, 2) + bias
    decoder = up2 + double_conv(16 + 16, 16) + conv(16, 8, 3) + double_conv(8 + 8, 8)
    return encoder + decoder + conv(8, 1, 1)


def test_the_hand_formula_gives_resnet20s_published_count() -> None:
    # ResNet-20 with option-A shortcuts has 269,722 parameters ("0.27M", He et al. table 6).
    assert cifar_resnet(16, project=False) == 269_722


def check_count(file: str, expected: int, output: tuple[int, ...]) -> archspec.Spec:
    spec = archspec.load(SPECS / file)
    plan = spec.plan()
    assert plan.total_params == expected
    assert plan.output_shape == output
    network = spec.build(device="meta")
    assert sum(p.numel() for p in network.parameters()) == expected
    verify(plan)  # every layer's torch shape and count equal the Plan's
    return spec


@pytest.mark.parametrize(
    ("file", "expected", "output"),
    [
        ("alexnet.yaml", 61_100_840, (1000,)),  # torchvision.models.alexnet
        ("vgg16.yaml", 138_357_544, (1000,)),  # torchvision.models.vgg16
        ("resnet18.yaml", 11_689_512, (1000,)),  # torchvision.models.resnet18
        ("mobilenet_v2.yaml", 3_504_872, (1000,)),  # torchvision.models.mobilenet_v2
        ("mobilenet_v3_small.yaml", 2_542_856, (1000,)),  # …mobilenet_v3_small
        ("efficientnet_b0.yaml", 5_288_548, (1000,)),  # …efficientnet_b0
        ("regnet_y_400mf.yaml", 4_344_144, (1000,)),  # …regnet_y_400mf
        ("convnext_tiny.yaml", 28_589_128, (1000,)),  # …convnext_tiny
        ("vit_b_16.yaml", 86_567_656, (1000,)),  # …vit_b_16
        ("lenet5.yaml", 61_706, (10,)),  # LeCun et al. 1998, C1-S2-C3-S4-C5-F6-output
        ("mnist_cnn.yaml", 3_274_634, (10,)),  # the TensorFlow "Deep MNIST" tutorial net
    ],
)
def test_published_parameter_counts(file: str, expected: int, output: tuple[int, ...]) -> None:
    check_count(file, expected, output)


@pytest.mark.parametrize(
    ("file", "width"), [("cifar_resnet.yaml", 16), ("cifar_resnet_wide.yaml", 32)]
)
def test_cifar_resnets_match_the_layout_formula(file: str, width: int) -> None:
    spec = check_count(file, cifar_resnet(width), (10,))
    plan = spec.plan()
    assert plan.node("layer1.2.relu2").shape == (width, 32, 32)
    assert plan.node("layer2.rest.1.relu2").shape == (2 * width, 16, 16)
    assert plan.node("layer3.rest.1.relu2").shape == (4 * width, 8, 8)


def test_the_wide_resnet_only_overrides_the_width() -> None:
    text = (SPECS / "cifar_resnet_wide.yaml").read_text()
    assert text.splitlines() == [
        "# yaml-language-server: $schema=../archspec/outputs/archspec.schema.json",
        "extends: cifar_resnet.yaml",
        "name: cifar-resnet-wide",
        "vars: {width: 32}",
    ]
    assert cifar_resnet(32) == 1_084_586  # ≈ 4× the 16-wide net: conv weights grow as width²


def test_unet_tiny_maps_an_image_to_an_image() -> None:
    spec = check_count("unet_tiny.yaml", unet_tiny(), (1, 64, 64))
    plan = spec.plan()
    assert plan.node("concat1").shape == (32, 32, 32)  # up2 (16) + enc2 skip (16)
    assert plan.node("concat2").shape == (16, 64, 64)  # up1 (8) + enc1 skip (8)
    assert {node.kind for node in plan} >= {"concat", "upsample", "conv_transpose"}


@pytest.mark.parametrize("path", sorted(SPECS.glob("*.yaml")), ids=lambda p: p.name)
def test_every_shipped_spec_verifies_in_torch(path: Path) -> None:
    # `archspec check --verify` for each spec: shapes and counts per layer, on meta.
    verify(archspec.load(path).plan())
