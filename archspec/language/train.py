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
    field_validator,
    model_validator,
)

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

    dataset: str | None = Field(
        None,
        description="A named dataset: mnist, fashion-mnist, kmnist, emnist-*, cifar10, "
        "cifar100 or svhn.",
    )
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

    stream: Literal["auto"] | Annotated[bool, Strict()] = Field(
        "auto",
        description="true: decode image folders, .npy pairs and .tar shards on the fly in "
        "DataLoader workers; false: decode everything once into memory; auto: stream when the "
        "decoded training split would take more than 2 GiB or a quarter of the free memory.",
    )
    workers: Annotated[int, Strict(), Ge(0)] | None = Field(
        None,
        description="DataLoader worker processes per training process when streaming; 0 "
        "decodes in the training process; default: the cores per process minus one, at most 8.",
    )
    prefetch: PosInt = Field(2, description="Batches each streaming worker prepares ahead.")
    on_bad_file: Literal["error", "skip"] = Field(
        "error",
        description="A streamed file that cannot be decoded (truncated JPEG, unreadable "
        "image): error stops with its path; skip leaves it out, warns and counts it in run.json.",
    )

    @field_validator("stream", mode="before")
    @classmethod
    def _stream(cls, value: Any) -> Any:
        if value == "auto" or isinstance(value, bool):
            return value
        raise ValueError(f"must be auto, true or false; received {value!r}")

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

    @field_validator("optimizer", "schedule", mode="before")
    @classmethod
    def _short(cls, value: Any) -> Any:
        return _named(value)

    @field_validator("device")
    @classmethod
    def _device(cls, value: str) -> str:
        if not _DEVICE.match(value):
            raise ValueError(f"device must be auto, cpu, cuda, cuda:N or mps; received '{value}'")
        return value
