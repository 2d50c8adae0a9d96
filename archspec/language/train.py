"""The ``train:`` section of a spec: data, optimiser, schedule, loss, and run settings."""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from annotated_types import Ge, Gt, Le, Lt
from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Strict,
    ValidationInfo,
    field_validator,
    model_validator,
)

from archspec.language.recipe import AugmentOp, Distributed, EarlyStop, Precision, named

PosInt = Annotated[int, Strict(), Gt(0)]
NonNegFloat = Annotated[float, Ge(0)]
PosFloat = Annotated[float, Gt(0)]
Fraction01 = Annotated[float, Ge(0), Lt(1)]
Beta = Annotated[float, Ge(0), Lt(1)]


class Model(BaseModel):
    # allow_inf_nan=False: `lr: .inf` (or an expression that overflows) is a mistake
    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True, allow_inf_nan=False)


def _named(value: Any) -> Any:
    """``optimizer: adam`` is short for ``optimizer: {name: adam}``."""
    return {"name": value} if isinstance(value, str) else value


class DataConfig(Model):
    """Where the examples come from and how they are split."""

    dataset: str | None = Field(None, description="A named dataset: mnist or fashion-mnist.")
    path: str | None = Field(
        None,
        description="A folder of IDX files, a .npz file or an image folder, relative to "
        "the spec file; for a named dataset, where its files are.",
    )
    train: str = Field("train", description="Training split, e.g. train or test[:8000].")
    val: Annotated[float, Ge(0), Lt(1)] | str = Field(
        0.1,
        description="Validation: a fraction of the training split held out, 0 for none, "
        "or a split expression such as test[8000:].",
    )
    test: str | None = Field("test", description="Test split evaluated after training; null: none.")
    normalize: Literal["auto", "none"] = Field(
        "auto",
        description="auto: scale uint8 to [0, 1] then standardise with the training "
        "split's mean and std per channel; none: feed values as they are (uint8 scaled to [0, 1]).",
    )

    @model_validator(mode="after")
    def _source(self) -> DataConfig:
        if self.dataset is None and self.path is None:
            raise ValueError(
                "data needs `dataset:` (mnist, fashion-mnist) or `path:` (a file or folder)"
            )
        return self


class SGD(Model):
    name: Literal["sgd"]
    lr: PosFloat = 0.01
    momentum: Beta = 0.9
    nesterov: Annotated[bool, Strict()] = False
    weight_decay: NonNegFloat = 0.0

    @model_validator(mode="after")
    def _nesterov(self) -> SGD:
        if self.nesterov and self.momentum == 0:
            raise ValueError("nesterov needs momentum > 0")
        return self


class Adam(Model):
    name: Literal["adam"]
    lr: PosFloat = 1e-3
    betas: tuple[Beta, Beta] = (0.9, 0.999)
    eps: PosFloat = 1e-8
    weight_decay: NonNegFloat = 0.0


class AdamW(Model):
    name: Literal["adamw"]
    lr: PosFloat = 1e-3
    betas: tuple[Beta, Beta] = (0.9, 0.999)
    eps: PosFloat = 1e-8
    weight_decay: NonNegFloat = 0.01


Optimizer = Annotated[SGD | Adam | AdamW, Discriminator("name")]


class Constant(Model):
    name: Literal["constant"]
    warmup: NonNegFloat = Field(0.0, description="Linear warm-up from 0, in epochs.")


class Step(Model):
    name: Literal["step"]
    every: PosInt = Field(description="Multiply the lr by gamma every this many epochs.")
    gamma: Annotated[float, Gt(0), Le(1)] = 0.1
    warmup: NonNegFloat = 0.0


class Cosine(Model):
    name: Literal["cosine"]
    min_lr: NonNegFloat = 0.0
    warmup: NonNegFloat = 0.0


class OneCycle(Model):
    name: Literal["onecycle"]
    max_lr: PosFloat | None = Field(None, description="Peak lr; default: the optimizer's lr.")
    pct_start: Annotated[float, Gt(0), Lt(1)] = 0.3
    div_factor: PosFloat = 25.0
    final_div_factor: PosFloat = 1e4


Schedule = Annotated[Constant | Step | Cosine | OneCycle, Discriminator("name")]


class Loss(Model):
    name: Literal["cross_entropy"] = "cross_entropy"
    label_smoothing: Fraction01 = 0.0


_DEVICE = re.compile(r"^(auto|cpu|cuda(:\d+)?|mps)$")


class TrainConfig(Model):
    """How to train the network: ``archspec train`` reads this."""

    data: DataConfig
    batch_size: PosInt = 64
    epochs: PosInt = 10
    optimizer: Annotated[Optimizer, Field(default_factory=lambda: Adam(name="adam"))]
    schedule: Annotated[Schedule, Field(default_factory=lambda: Constant(name="constant"))]
    loss: Loss = Loss()
    seed: Annotated[int, Strict(), Ge(0)] = 0
    device: str = Field("auto", description="auto (CUDA when present), cpu, cuda, cuda:N or mps.")
    log_every: PosInt = Field(100, description="Write step metrics every this many steps.")
    checkpoint_every: PosInt | None = Field(
        None, description="Also checkpoint every this many steps (always at each epoch's end)."
    )
    eval_batch_size: PosInt | None = None
    threads: PosInt | None = Field(None, description="CPU threads; default: the cores available.")
    # the recipe (archspec/language/recipe.py; torch side in archspec/train/)
    augment: tuple[AugmentOp, ...] = Field(
        (),
        description="Training-only augmentation ops, applied per batch in order.",
        examples=[[{"name": "random_crop", "padding": 4}, "hflip"]],
    )
    precision: Precision = Field(
        "fp32",
        description="fp32, bf16 (autocast) or fp16 (autocast and a grad scaler; CUDA).",
        examples=["fp32", "bf16"],
    )
    channels_last: Annotated[bool, Strict()] = Field(
        False, description="Run 2-D convnets in channels-last memory format.", examples=[True]
    )
    compile: Annotated[bool, Strict()] = Field(
        False,
        description="torch.compile the network (falls back to eager with a warning).",
        examples=[True],
    )
    accumulate: PosInt = Field(
        1,
        description="Split each batch into this many micro-batches (same global batch).",
        examples=[1, 4],
    )
    clip_grad_norm: PosFloat | None = Field(
        None, description="Clip the gradient norm to this.", examples=[1.0]
    )
    ema: Annotated[float, Gt(0), Lt(1)] | None = Field(
        None,
        description="Keep an exponential moving average of the weights with this decay.",
        examples=[0.999],
    )
    early_stop: EarlyStop | None = Field(
        None,
        description="Stop when validation stalls.",
        examples=[{"metric": "val_acc", "patience": 5}],
    )
    distributed: Distributed = Field(
        Distributed(),
        description="Strategy under --nproc-per-node.",
        examples=[{"strategy": "ddp"}],
    )

    @field_validator("optimizer", "schedule", mode="before")
    @classmethod
    def _short(cls, value: Any) -> Any:
        return _named(value)

    @field_validator("augment", mode="before")
    @classmethod
    def _short_ops(cls, value: Any) -> Any:
        return [named(v) for v in value] if isinstance(value, list | tuple) else value

    @field_validator("accumulate")
    @classmethod
    def _micro_batches(cls, value: int, info: ValidationInfo) -> int:
        batch = info.data.get("batch_size")
        if isinstance(batch, int) and value > batch:
            raise ValueError(
                f"accumulate {value} splits each batch into micro-batches, but "
                f"batch_size is {batch}; make accumulate at most batch_size"
            )
        return value

    @field_validator("device")
    @classmethod
    def _device(cls, value: str) -> str:
        if not _DEVICE.match(value):
            raise ValueError(f"device must be auto, cpu, cuda, cuda:N or mps; received '{value}'")
        return value
