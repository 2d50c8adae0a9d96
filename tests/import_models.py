"""Small hand-written torch modules for tests/test_import.py (imported by `archspec import`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F


def loaded_and_equal(
    spec_file: Path, weights: Path, reference: nn.Module, atol: float = 1e-5
) -> tuple[Any, dict[str, torch.Tensor]]:
    """Load an imported spec and its weights (strict), and check the parameter count and the
    outputs against ``reference`` on a batch of 3 (the import itself traced a batch of 2)."""
    from safetensors.torch import load_file

    import archspec

    spec = archspec.load(spec_file)
    network = spec.build().eval()
    tensors = load_file(str(weights))
    network.load_state_dict(tensors, strict=True)
    assert spec.plan().total_params == sum(p.numel() for p in reference.parameters())
    torch.manual_seed(1)
    x = torch.randn(3, *spec.input_shape)
    with torch.no_grad():
        torch.testing.assert_close(network(x), reference(x), rtol=1e-5, atol=atol)
    return spec, tensors


def small() -> nn.Module:
    """A plain stack: every layer a torch.nn module in a Sequential."""
    torch.manual_seed(0)  # the same weights on every call: tests rebuild it as the reference
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1, bias=False),
        nn.BatchNorm2d(8),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(8, 16, (3, 1), stride=(2, 1), padding="valid"),
        nn.Hardswish(),
        nn.AvgPool2d(2, ceil_mode=True),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Dropout(0.1),
        nn.Linear(16, 10),
    )


class Gate(nn.Module):
    """Squeeze-excite: x * sigmoid(fc(mean(x)))."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Conv2d(channels, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.sigmoid(self.fc(self.pool(x)))


class Merge(nn.Module):
    """Two inputs: cannot be a block, so its layers are inlined (named merge_*)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.proj = nn.Conv2d(channels, channels, 1)

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return self.proj(a) + b


class Unit(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, padding=1, groups=channels)
        self.norm = nn.GroupNorm(2, channels)
        self.act = nn.SiLU()
        self.gate = Gate(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.gate(self.act(self.norm(self.conv(x))))


class Branchy(nn.Module):  # seeded: the same weights on every construction
    """Blocks used several times, a concatenation, functional calls, a flat head."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.stem = nn.Conv2d(3, 8, 3, padding=1)
        self.left = nn.Conv2d(8, 8, 1)
        self.right = nn.Sequential(nn.Conv2d(8, 8, 3, padding=1), nn.LeakyReLU(0.1))
        self.units = nn.Sequential(Unit(16), Unit(16), Unit(16))
        self.merge = Merge(16)
        self.norm = nn.LayerNorm(16)
        self.head = nn.Linear(16, 5)
        self.output = nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.stem(x))
        x = torch.cat([self.left(x), self.right(x)], dim=1)
        y = self.units(torch.cat([x], dim=1))  # one tensor: DenseNet's first layer does this
        x = self.merge(y, x)
        x = x.mean([2, 3])
        x = F.gelu(self.norm(x))
        return self.output(self.head(x))


class Unsupported(nn.Module):  # seeded: the same weights on every construction
    """Two operations archspec has no kind for, then more layers."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.conv = nn.Conv2d(3, 4, 3)
        self.lstm_like = nn.Conv2d(4, 4, 1)
        self.fc = nn.Linear(4, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv(x)
        x = torch.relu(x)
        x = x * 2.0  # a constant: not a merge of two layers
        x = self.lstm_like(x)
        x = torch.cumsum(x, dim=2)
        return self.fc(x.mean([2, 3]))


class Shared(nn.Module):
    """One conv called twice: shared weights have no archspec form."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(4, 4, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(self.conv(x))


def _seeded(name: str) -> nn.Module:
    """torchvision's ``name`` with seeded weights and random batch-norm statistics (so batch
    norm is not an identity), the same on every call: the test rebuilds it as the reference."""
    from tvref import models

    torch.manual_seed(0)
    model: nn.Module = getattr(models(), name)()
    for module in model.modules():
        if isinstance(module, nn.BatchNorm2d):
            module.running_mean.uniform_(-0.5, 0.5)
            module.running_var.uniform_(0.5, 1.5)
    return model.eval()


def resnet18() -> nn.Module:
    return _seeded("resnet18")


def mobilenet_v2() -> nn.Module:
    return _seeded("mobilenet_v2")


def efficientnet_b0() -> nn.Module:
    return _seeded("efficientnet_b0")


def resnet50() -> nn.Module:
    return _seeded("resnet50")


def densenet121() -> nn.Module:
    return _seeded("densenet121")


NOT_A_MODULE = 42


def zero_head() -> nn.Module:
    """``small`` with its last layer zeroed, as torchvision initialises ViT's head: the
    output is the same for every input."""
    net = small()
    last = net[-1]
    assert isinstance(last, nn.Linear)
    nn.init.zeros_(last.weight)
    nn.init.zeros_(last.bias)
    return net
