"""The training recipe beyond the optimiser: augmentation, precision, EMA, early stopping.

Torch-free (``archspec check`` validates these): each augmentation op is a small frozen
model selected by ``name:`` (``- hflip`` is short for ``- {name: hflip}``), and
:func:`check_recipe` relates the list to the network's input shape (a crop larger
than the image, colour jitter on one channel) with located problems. The torch side
(kornia modules, autocast, EMA) lives in :mod:`archspec.train.augment` and friends.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from annotated_types import Ge, Gt, Le
from pydantic import BaseModel, ConfigDict, Discriminator, Field, Strict, model_validator
from pydantic_core import PydanticCustomError

from archspec.errors import DataPath, Problem
from archspec.loader.source import SourceMap

Prob = Annotated[
    float, Ge(0), Le(1), Field(description="Probability that the op is applied.", examples=[0.5])
]
PosInt = Annotated[int, Strict(), Gt(0)]
NonNeg = Annotated[float, Ge(0)]
Unit = Annotated[float, Ge(0), Le(1)]


class Op(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True, allow_inf_nan=False)


def _pair(lo: float, hi: float, what: str) -> None:
    if lo > hi:
        raise PydanticCustomError(
            "range",
            "{what} is a [min, max] range; received [{lo}, {hi}]",
            {"what": what, "lo": lo, "hi": hi, "hint": f"write [{hi}, {lo}]"},
        )


class RandomCrop(Op):
    """Pad each side by ``padding`` pixels, then crop back to the input size at a random
    place (the CIFAR recipe: ``padding: 4``)."""

    name: Literal["random_crop"] = Field(
        description="Which augmentation op.", examples=["random_crop"]
    )
    padding: Annotated[int, Strict(), Ge(0)] = Field(
        4, description="Pixels added on each side.", examples=[4, 2]
    )
    size: tuple[PosInt, PosInt] | None = Field(
        None,
        description="Crop (height, width); default and only allowed value: the input size.",
        examples=[[32, 32]],
    )
    padding_mode: Literal["constant", "reflect", "replicate"] = Field(
        "constant",
        description="How the padding is filled: zeros, a mirror, or the edge.",
        examples=["constant", "reflect"],
    )


class HFlip(Op):
    """Mirror the image left-right."""

    name: Literal["hflip"] = Field(description="Which augmentation op.", examples=["hflip"])
    p: Prob = 0.5


class VFlip(Op):
    """Mirror the image top-bottom."""

    name: Literal["vflip"] = Field(description="Which augmentation op.", examples=["vflip"])
    p: Prob = 0.5


class RandomResizedCrop(Op):
    """Crop a random area and aspect ratio, then resize it to the input size (the
    ImageNet recipe)."""

    name: Literal["random_resized_crop"] = Field(
        description="Which augmentation op.", examples=["random_resized_crop"]
    )
    scale: tuple[Unit, Unit] = Field(
        (0.08, 1.0),
        description="[min, max] of the cropped area, as a fraction of the image.",
        examples=[[0.08, 1.0], [0.35, 1.0]],
    )
    ratio: tuple[Annotated[float, Gt(0)], Annotated[float, Gt(0)]] = Field(
        (3 / 4, 4 / 3),
        description="[min, max] aspect ratio (width / height) of the crop.",
        examples=[[0.75, 1.333]],
    )

    @model_validator(mode="after")
    def _ranges(self) -> RandomResizedCrop:
        _pair(*self.scale, "scale")
        _pair(*self.ratio, "ratio")
        if self.scale[1] == 0:
            raise ValueError("scale [0, 0] crops nothing; use e.g. [0.08, 1]")
        return self


class Rotate(Op):
    """Rotate by a random angle in [-degrees, degrees]."""

    name: Literal["rotate"] = Field(description="Which augmentation op.", examples=["rotate"])
    degrees: Annotated[float, Ge(0), Le(180)] = Field(
        15.0, description="Largest angle.", examples=[15]
    )
    p: Prob = 1.0


class Affine(Op):
    """A random affine map: rotation, translation, scaling and shear."""

    name: Literal["affine"] = Field(description="Which augmentation op.", examples=["affine"])
    degrees: Annotated[float, Ge(0), Le(180)] = Field(
        0.0, description="Largest rotation.", examples=[10]
    )
    translate: tuple[Unit, Unit] | None = Field(
        None, description="Largest shift as a fraction of (width, height).", examples=[[0.1, 0.1]]
    )
    scale: tuple[Annotated[float, Gt(0)], Annotated[float, Gt(0)]] | None = Field(
        None, description="[min, max] zoom factor.", examples=[[0.9, 1.1]]
    )
    shear: Annotated[float, Ge(0), Le(90)] = Field(
        0.0, description="Largest shear, degrees.", examples=[5]
    )
    p: Prob = 1.0

    @model_validator(mode="after")
    def _ranges(self) -> Affine:
        if self.scale is not None:
            _pair(*self.scale, "scale")
        return self


class ColorJitter(Op):
    """Random brightness, contrast, saturation and hue (saturation and hue need 3
    channels)."""

    name: Literal["color_jitter"] = Field(
        description="Which augmentation op.", examples=["color_jitter"]
    )
    brightness: NonNeg = Field(
        0.0, description="Brightness factor drawn from [1-b, 1+b].", examples=[0.2]
    )
    contrast: NonNeg = Field(
        0.0, description="Contrast factor drawn from [1-c, 1+c].", examples=[0.2]
    )
    saturation: NonNeg = Field(
        0.0, description="Saturation factor drawn from [1-s, 1+s].", examples=[0.2]
    )
    hue: Annotated[float, Ge(0), Le(0.5)] = Field(
        0.0, description="Hue shift in [-h, h].", examples=[0.05]
    )
    p: Prob = 1.0


class RandAugment(Op):
    """RandAugment (Cubuk et al. 2020): ``n`` random ops of magnitude ``m`` per image."""

    name: Literal["randaugment"] = Field(
        description="Which augmentation op.", examples=["randaugment"]
    )
    n: Annotated[int, Strict(), Ge(1), Le(14)] = Field(
        2, description="Ops per image.", examples=[2]
    )
    m: Annotated[int, Strict(), Ge(0), Le(30)] = Field(
        9, description="Magnitude, 0-30.", examples=[9]
    )


class TrivialAugment(Op):
    """TrivialAugment (Müller & Hutter 2021): one random op at a random magnitude."""

    name: Literal["trivialaugment"] = Field(
        description="Which augmentation op.", examples=["trivialaugment"]
    )


class RandomErasing(Op):
    """Erase a random rectangle (Zhong et al. 2020), filled with ``value``."""

    name: Literal["random_erasing"] = Field(
        description="Which augmentation op.", examples=["random_erasing"]
    )
    p: Prob = 0.5
    scale: tuple[Unit, Unit] = Field(
        (0.02, 0.33),
        description="[min, max] erased area, as a fraction of the image.",
        examples=[[0.02, 0.33]],
    )
    ratio: tuple[Annotated[float, Gt(0)], Annotated[float, Gt(0)]] = Field(
        (0.3, 3.3), description="[min, max] aspect ratio of the rectangle.", examples=[[0.3, 3.3]]
    )
    value: float = Field(0.0, description="Fill value, in [0, 1] image units.", examples=[0.0, 0.5])

    @model_validator(mode="after")
    def _ranges(self) -> RandomErasing:
        _pair(*self.scale, "scale")
        _pair(*self.ratio, "ratio")
        return self


class Normalize(Op):
    """Standardise with these per-channel statistics, in training and evaluation alike
    (instead of those ``data.normalize: auto`` measures); always applied last."""

    name: Literal["normalize"] = Field(description="Which augmentation op.", examples=["normalize"])
    mean: tuple[float, ...] = Field(
        description="Per-channel mean of [0, 1] images.", examples=[[0.4914, 0.4822, 0.4465]]
    )
    std: tuple[Annotated[float, Gt(0)], ...] = Field(
        description="Per-channel std, > 0.", examples=[[0.247, 0.2435, 0.2616]]
    )

    @model_validator(mode="after")
    def _lengths(self) -> Normalize:
        if len(self.mean) != len(self.std) or not self.mean:
            raise ValueError(
                f"mean and std need one value per channel each; received {len(self.mean)} "
                f"and {len(self.std)}"
            )
        return self


class Mixup(Op):
    """Batch-level mixup (Zhang et al. 2018): each image is blended with another of the
    batch, and the loss with both labels, by a weight drawn from ``lambda_range``."""

    name: Literal["mixup"] = Field(description="Which augmentation op.", examples=["mixup"])
    p: Prob = 1.0
    lambda_range: tuple[Unit, Unit] = Field(
        (0.0, 0.5), description="[min, max] weight of the other image.", examples=[[0.0, 0.5]]
    )

    @model_validator(mode="after")
    def _ranges(self) -> Mixup:
        _pair(*self.lambda_range, "lambda_range")
        return self


class CutMix(Op):
    """Batch-level CutMix (Yun et al. 2019): a rectangle of another image of the batch is
    pasted in, and the labels are weighted by area."""

    name: Literal["cutmix"] = Field(description="Which augmentation op.", examples=["cutmix"])
    p: Prob = 1.0
    beta: Annotated[float, Gt(0)] = Field(
        1.0, description="Beta(β, β) draws the cut area.", examples=[1.0]
    )


AugmentOp = Annotated[
    RandomCrop
    | HFlip
    | VFlip
    | RandomResizedCrop
    | Rotate
    | Affine
    | ColorJitter
    | RandAugment
    | TrivialAugment
    | RandomErasing
    | Normalize
    | Mixup
    | CutMix,
    Discriminator("name"),
]
BATCH_OPS = ("mixup", "cutmix")


def named(value: Any) -> Any:
    """``- hflip`` is short for ``- {name: hflip}``."""
    return {"name": value} if isinstance(value, str) else value


class EarlyStop(Op):
    """Stop when the validation metric has not improved for ``patience`` epochs."""

    metric: Literal["val_acc", "val_loss"] = Field(
        "val_acc",
        description="val_acc (higher is better) or val_loss (lower is better).",
        examples=["val_acc", "val_loss"],
    )
    patience: PosInt = Field(
        5, description="Epochs without improvement before stopping.", examples=[5]
    )
    min_delta: NonNeg = Field(
        0.0, description="Smallest change that counts as improvement.", examples=[0.001]
    )


class Distributed(Op):
    """How workers started with ``--nproc-per-node`` share the model."""

    strategy: Literal["ddp", "fsdp"] = Field(
        "ddp",
        description="ddp: every worker holds the whole model; fsdp: parameters and "
        "optimizer state sharded per block (FSDP2).",
        examples=["ddp", "fsdp"],
    )


Precision = Literal["fp32", "bf16", "fp16"]


TestTimeFlip = Literal["hflip", "vflip"]
FLIP_DIMS = {"hflip": -1, "vflip": -2}  # the image axis each test-time flip mirrors


def check_recipe(
    augment: tuple[Any, ...],
    input_shape: tuple[int, ...],
    source: SourceMap,
    tta: tuple[str, ...] = (),
) -> list[Problem]:
    """Problems of the augmentation lists (training and test-time) against the
    network's input (C, H, W)."""
    problems: list[Problem] = _check_tta(tta, input_shape, source)

    def report(i: int, message: str, hint: str, field: str | None = None) -> None:
        path: DataPath = ("train", "augment", i) + ((field,) if field else ())
        problems.append(Problem(message, hint, source.locate(path), path))

    if augment and len(input_shape) != 3:
        shape = "×".join(map(str, input_shape))
        report(0, f"augmentation needs image input (C, H, W); the input is {shape}", "remove it")
        return problems
    if not augment:
        return problems
    channels, height, width = input_shape
    names = [op.name for op in augment]
    for i, op in enumerate(augment):
        if isinstance(op, RandomCrop):
            _check_crop(op, i, height, width, report)
        if isinstance(op, ColorJitter) and channels != 3 and (op.saturation or op.hue):
            report(
                i,
                f"saturation and hue need 3 colour channels; the input has {channels}",
                "keep brightness/contrast only",
            )
        if isinstance(op, RandAugment | TrivialAugment) and channels not in (1, 3):
            report(
                i,
                f"{op.name} works on grey or RGB images; the input has {channels} channels",
                "use geometric ops (random_crop, hflip, affine) instead",
            )
        if isinstance(op, Normalize) and len(op.mean) != channels:
            report(
                i,
                f"normalize has {len(op.mean)} mean/std values but the input has "
                f"{channels} channel(s)",
                f"give {channels}",
                "mean",
            )
        if op.name in ("normalize", *BATCH_OPS) and names.count(op.name) > 1:
            report(i, f"{op.name} appears {names.count(op.name)} times", "keep one")
    return problems


def _check_tta(
    tta: tuple[str, ...], input_shape: tuple[int, ...], source: SourceMap
) -> list[Problem]:
    problems: list[Problem] = []
    for i, flip in enumerate(tta):
        path: DataPath = ("train", "tta", i)
        if len(input_shape) != 3:
            shape = "×".join(map(str, input_shape))
            message = f"test-time flips need image input (C, H, W); the input is {shape}"
            problems.append(Problem(message, "remove tta", source.locate(path), path))
            break
        if tta.index(flip) != i:
            problems.append(
                Problem(f"{flip} appears twice in tta", "keep one", source.locate(path), path)
            )
    return problems


def _check_crop(op: RandomCrop, i: int, height: int, width: int, report: Any) -> None:
    padded = (height + 2 * op.padding, width + 2 * op.padding)
    if op.size is None:
        return
    h, w = op.size
    if h > padded[0] or w > padded[1]:
        report(
            i,
            f"crop {h}×{w} is larger than the {padded[0]}×{padded[1]} padded image "
            f"({height}×{width} + {op.padding} padding)",
            f"use size [{height}, {width}] or more padding",
            "size",
        )
    elif (h, w) != (height, width):
        report(
            i,
            f"crop {h}×{w} differs from the network's {height}×{width} input",
            "leave size out (crop back to the input size), or use random_resized_crop",
            "size",
        )
