"""The spec's ``augment:`` list as kornia modules, applied per batch where the batch is.

A training batch goes uint8 → [0, 1] floats → the image ops in the spec's order
(random, per sample, drawn from torch's generator: a resumed run draws what the
uninterrupted one drew) → standardisation → the batch ops (mixup, cutmix), which
return the second label and its weight for the loss. Evaluation never augments: it
only standardises (``Normalizer``), with the ``normalize`` op's statistics if given.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from archspec.errors import UsageError
from archspec.language import recipe as r
from archspec.train.data import Data, Normalizer

IMAGE_OPS = (
    "random_crop",
    "hflip",
    "vflip",
    "random_resized_crop",
    "rotate",
    "affine",
    "color_jitter",
    "randaugment",
    "trivialaugment",
    "random_erasing",
)


def kornia_augmentation() -> Any:
    """``kornia.augmentation``, or a one-line error naming the extra to install."""
    try:
        import kornia.augmentation
        import kornia.augmentation.auto  # RandAugment, TrivialAugment
    except ImportError as exc:
        raise UsageError(
            f"train.augment needs kornia, which is not installed ({exc})",
            "pip install 'archspec[augment]'",
        ) from None
    return kornia.augmentation


def _image_op(op: Any, size: tuple[int, int], K: Any) -> Any:
    """One kornia module for one spec op (``size`` is the input's (H, W))."""
    if isinstance(op, r.RandomCrop):
        return K.RandomCrop(size, padding=op.padding or None, padding_mode=op.padding_mode)
    if isinstance(op, r.HFlip):
        return K.RandomHorizontalFlip(p=op.p)
    if isinstance(op, r.VFlip):
        return K.RandomVerticalFlip(p=op.p)
    if isinstance(op, r.RandomResizedCrop):
        return K.RandomResizedCrop(size, scale=op.scale, ratio=op.ratio)
    if isinstance(op, r.Rotate):
        return K.RandomRotation(op.degrees, p=op.p)
    if isinstance(op, r.Affine):
        return K.RandomAffine(
            op.degrees, translate=op.translate, scale=op.scale, shear=op.shear or None, p=op.p
        )
    if isinstance(op, r.ColorJitter):
        return K.ColorJitter(op.brightness, op.contrast, op.saturation, op.hue, p=op.p)
    if isinstance(op, r.RandAugment):
        return AsColour(K.auto.RandAugment(n=op.n, m=op.m))
    if isinstance(op, r.TrivialAugment):
        return AsColour(K.auto.TrivialAugment())
    if isinstance(op, r.RandomErasing):
        return K.RandomErasing(scale=op.scale, ratio=op.ratio, value=op.value, p=op.p)
    raise AssertionError(f"not an image op: {op.name}")


class AsColour(nn.Module):
    """Run a colour policy (its saturation and hue ops need 3 channels) on grey images:
    the channel repeated three times in, the channels' mean out."""

    def __init__(self, policy: nn.Module) -> None:
        super().__init__()
        self.policy = policy

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[1] != 1:
            out: torch.Tensor = self.policy(x)
            return out
        colour: torch.Tensor = self.policy(x.expand(-1, 3, -1, -1))  # (B, 3, H, W)
        return colour.mean(dim=1, keepdim=True)


@dataclass
class Mixed:
    """A batch's second labels and their per-example weight (mixup, cutmix)."""

    other: torch.Tensor  # (B,) int64
    weight: torch.Tensor  # (B,) in [0, 1]: the loss is (1-w)·CE(y) + w·CE(other)


class Augmenter:
    """Training inputs: augment, standardise, mix. Built once per run."""

    def __init__(self, ops: tuple[Any, ...], normalizer: Normalizer, image_rank: int) -> None:
        self.normalizer = normalizer
        self.image_ops = [op for op in ops if op.name in IMAGE_OPS]
        self.batch_op = next((op for op in ops if op.name in r.BATCH_OPS), None)
        self._pipeline: nn.Module | None = None
        self._mix: nn.Module | None = None
        self._rank = image_rank
        if self.image_ops or self.batch_op:
            K = kornia_augmentation()
            if self.batch_op is not None:
                self._mix = _mix_module(self.batch_op, K)
            self._K = K

    @property
    def active(self) -> bool:
        return bool(self.image_ops or self.batch_op)

    def __call__(
        self, x: torch.Tensor, y: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, Mixed | None]:
        """``x`` as stored (uint8 or float) → the network's input, ``y``, the mixing."""
        scale, shift = self.normalizer.coefficients(self._rank, x.device)
        if len(x) == 0:  # a rank's empty share of a tiny last batch
            return torch.addcmul(shift, x.float(), scale), y, None
        if not self.image_ops:
            x = torch.addcmul(shift, x.float(), scale)
        else:
            unit = 1 / 255 if self.normalizer.scale_uint8 else 1.0
            images = self._images(x.shape[-2:])(x.float() * unit)
            x = torch.addcmul(shift, images, scale / unit)
        if self._mix is None:
            return x, y, None
        return self._mixed(x, y)

    def _images(self, size: torch.Size) -> nn.Module:
        if self._pipeline is None:
            hw = (int(size[0]), int(size[1]))
            self._pipeline = nn.Sequential(*(_image_op(op, hw, self._K) for op in self.image_ops))
        return self._pipeline

    def _mixed(
        self, x: torch.Tensor, y: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, Mixed | None]:
        assert self._mix is not None and self.batch_op is not None
        x, labels = self._mix(x, y)
        if labels.dim() == 3:  # cutmix: (num_mix=1, B, 3); its lambda is the original's share
            labels = labels[0]
            weight = 1 - labels[:, 2]
        else:  # mixup: (B, 3); lambda is the other image's share
            weight = labels[:, 2]
        return x, y, Mixed(labels[:, 1].long(), weight.to(x.dtype))


def _mix_module(op: Any, K: Any) -> Any:
    if isinstance(op, r.Mixup):
        return K.RandomMixUpV2(lambda_val=op.lambda_range, p=op.p, data_keys=["input", "class"])
    return K.RandomCutMixV2(
        beta=op.beta, p=op.p, use_correct_lambda=True, data_keys=["input", "class"]
    )


def mixed_loss(
    loss_fn: Callable[..., torch.Tensor],
    label_smoothing: float,
    out: torch.Tensor,
    y: torch.Tensor,
    mixed: Mixed | None,
) -> torch.Tensor:
    """Summed cross-entropy; with mixing, each example's two labels weighted."""
    if mixed is None:
        return loss_fn(out, y)
    a = F.cross_entropy(out, y, reduction="none", label_smoothing=label_smoothing)
    b = F.cross_entropy(out, mixed.other, reduction="none", label_smoothing=label_smoothing)
    return ((1 - mixed.weight) * a + mixed.weight * b).sum()


def with_normalize(data: Data, ops: tuple[Any, ...]) -> Data:
    """``data`` standardised with the ``normalize`` op's statistics, when the spec has one."""
    op = next((o for o in ops if isinstance(o, r.Normalize)), None)
    if op is None:
        return data
    normalizer = Normalizer(op.mean, op.std, data.normalizer.scale_uint8)
    return Data(data.train, data.val, data.test, normalizer)
