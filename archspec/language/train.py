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

from archspec.language.recipe import (
    AugmentOp,
    Distributed,
    EarlyStop,
    Precision,
    TestTimeFlip,
    named,
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
        examples=["mnist", "fashion-mnist", "cifar10"],
    )
    path: str | None = Field(
        None,
        description="A folder of IDX files, a .npz file or an image folder, relative to "
        "the spec file; for a named dataset, where its files are.",
        examples=["data/digits"],
    )
    train: str = Field(
        "train",
        description="Training split, e.g. train or test[:8000].",
        examples=["train", "test[:8000]"],
    )
    val: Annotated[float, Ge(0), Lt(1)] | str = Field(
        0.1,
        description="Validation: a fraction of the training split held out, 0 for none, "
        "or a split expression such as test[8000:].",
        examples=[0.1, 0, "test[8000:]"],
    )
    test: str | None = Field(
        "test",
        description="Test split evaluated after training; null: none.",
        examples=["test", "test[8000:]"],
    )
    normalize: Literal["auto", "none"] = Field(
        "auto",
        description="auto: scale uint8 to [0, 1] then standardise with the training "
        "split's mean and std per channel; none: feed values as they are (uint8 scaled to [0, 1]).",
        examples=["auto", "none"],
    )

    stream: Literal["auto"] | Annotated[bool, Strict()] = Field(
        "auto",
        description="true: decode image folders, .npy pairs and .tar shards on the fly in "
        "DataLoader workers; false: decode everything once into memory; auto: stream when the "
        "decoded training split would take more than 2 GiB or a quarter of the free memory.",
        examples=["auto", True],
    )
    workers: Annotated[int, Strict(), Ge(0)] | None = Field(
        None,
        description="DataLoader worker processes per training process when streaming; 0 "
        "decodes in the training process; default: the cores per process minus one, at most 8.",
        examples=[8, 0],
    )
    prefetch: PosInt = Field(
        2, description="Batches each streaming worker prepares ahead.", examples=[2, 4]
    )
    on_bad_file: Literal["error", "skip"] = Field(
        "error",
        description="A streamed file that cannot be decoded (truncated JPEG, unreadable "
        "image): error stops with its path; skip leaves it out, warns and counts it in run.json.",
        examples=["skip"],
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
    name: Literal["sgd"] = Field(
        description="Which one (selects the other settings).", examples=["adam"]
    )
    lr: PosFloat = Field(0.01, description="Learning rate.", examples=[0.001, 0.1])
    momentum: Beta = Field(0.9, description="Momentum factor, in [0, 1).", examples=[0.9])
    nesterov: Annotated[bool, Strict()] = Field(
        False, description="Nesterov momentum (needs momentum > 0).", examples=[False, True]
    )
    weight_decay: NonNegFloat = Field(
        0.0, description="L2 penalty (decoupled for adamw).", examples=[0.0, 0.01]
    )

    @model_validator(mode="after")
    def _nesterov(self) -> SGD:
        if self.nesterov and self.momentum == 0:
            raise ValueError("nesterov needs momentum > 0")
        return self


class Adam(Model):
    name: Literal["adam"] = Field(
        description="Which one (selects the other settings).", examples=["adam"]
    )
    lr: PosFloat = Field(0.001, description="Learning rate.", examples=[0.001, 0.1])
    betas: tuple[Beta, Beta] = Field(
        (0.9, 0.999),
        description="Running-average factors of the gradient and its square.",
        examples=[[0.9, 0.999]],
    )
    eps: PosFloat = Field(
        1e-08, description="Added to the denominator for stability.", examples=[1e-05]
    )
    weight_decay: NonNegFloat = Field(
        0.0, description="L2 penalty (decoupled for adamw).", examples=[0.0, 0.01]
    )


class AdamW(Adam):
    """Adam's settings; decoupled weight decay, 0.01 by default."""

    name: Literal["adamw"] = Field(  # type: ignore[assignment]
        description="Which one (selects the other settings).", examples=["adamw"]
    )
    weight_decay: NonNegFloat = Field(
        0.01, description="L2 penalty (decoupled for adamw).", examples=[0.0, 0.01]
    )


Optimizer = Annotated[SGD | Adam | AdamW, Discriminator("name")]


class Constant(Model):
    name: Literal["constant"] = Field(
        description="Which one (selects the other settings).", examples=["adam"]
    )
    warmup: NonNegFloat = Field(
        0.0, description="Linear warm-up from 0, in epochs.", examples=[0, 1]
    )


class Step(Model):
    name: Literal["step"] = Field(
        description="Which one (selects the other settings).", examples=["adam"]
    )
    every: PosInt = Field(
        description="Multiply the lr by gamma every this many epochs.", examples=[3]
    )
    gamma: Annotated[float, Gt(0), Le(1)] = Field(
        0.1, description="Factor applied every `every` epochs, in (0, 1].", examples=[0.1, 0.5]
    )
    warmup: NonNegFloat = Field(
        0.0, description="Linear warm-up from 0, in epochs.", examples=[0, 1]
    )


class Cosine(Model):
    name: Literal["cosine"] = Field(
        description="Which one (selects the other settings).", examples=["adam"]
    )
    min_lr: NonNegFloat = Field(
        0.0, description="Learning rate at the end of the cosine.", examples=[0.0, 1e-05]
    )
    warmup: NonNegFloat = Field(
        0.0, description="Linear warm-up from 0, in epochs.", examples=[0, 1]
    )


class OneCycle(Model):
    name: Literal["onecycle"] = Field(
        description="Which one (selects the other settings).", examples=["adam"]
    )
    max_lr: PosFloat | None = Field(
        None, description="Peak lr; default: the optimizer's lr.", examples=[0.01]
    )
    pct_start: Annotated[float, Gt(0), Lt(1)] = Field(
        0.3, description="Fraction of the run spent increasing the lr.", examples=[0.3]
    )
    div_factor: PosFloat = Field(
        25.0, description="Initial lr = max_lr / div_factor.", examples=[25.0]
    )
    final_div_factor: PosFloat = Field(
        10000.0, description="Final lr = initial lr / final_div_factor.", examples=[10000.0]
    )


Schedule = Annotated[Constant | Step | Cosine | OneCycle, Discriminator("name")]


class Loss(Model):
    name: Literal["cross_entropy"] = Field(
        "cross_entropy", description="Which one (selects the other settings).", examples=["adam"]
    )
    label_smoothing: Fraction01 = Field(
        0.0, description="Label smoothing in [0, 1).", examples=[0.0, 0.1]
    )


MAX_SEED = 2**32 - 1  # every seed torch and the epoch-order generator accept (seed·100003+epoch)
MAX_THREADS = 1024  # torch's OpenMP pool at 100,000 threads crashes the process (SIGSEGV)
_DEVICE = re.compile(r"^(auto|cpu|cuda(:\d+)?|mps)$")


class TrainConfig(Model):
    """How to train the network: ``archspec train`` reads this."""

    data: DataConfig = Field(
        description="Where the examples come from and how they are split.",
        examples=[{"dataset": "mnist"}],
    )
    batch_size: PosInt = Field(
        64, description="Examples per optimisation step (the global batch).", examples=[64, 128]
    )
    epochs: PosInt = Field(10, description="Passes over the training split.", examples=[10])
    optimizer: Annotated[
        Optimizer,
        Field(
            default_factory=lambda: Adam(name="adam"),
            description="A name, or `name:` with settings.",
            examples=["adam", {"name": "sgd", "lr": 0.1}],
        ),
    ]
    schedule: Annotated[
        Schedule,
        Field(
            default_factory=lambda: Constant(name="constant"),
            description="A name, or `name:` with settings.",
            examples=["cosine", {"name": "step", "every": 3}],
        ),
    ]
    loss: Loss = Field(
        Loss.model_construct(),  # not Loss(): validating would build its schema at import
        description="The loss function.",
        examples=[{"name": "cross_entropy", "label_smoothing": 0.1}],
    )
    seed: Annotated[int, Strict(), Ge(0), Le(MAX_SEED)] = Field(
        0,
        description=f"Random seed for initialisation, shuffling and dropout, 0 to {MAX_SEED:,}.",
        examples=[0, 42],
    )
    device: str = Field(
        "auto",
        description="auto (CUDA when present), cpu, cuda, cuda:N or mps.",
        examples=["auto", "cuda:0"],
    )
    log_every: PosInt = Field(
        100, description="Write step metrics every this many steps.", examples=[100]
    )
    checkpoint_every: PosInt | None = Field(
        None,
        description="Also checkpoint every this many steps (always at each epoch's end).",
        examples=[1000],
    )
    eval_batch_size: PosInt | None = Field(
        None, description="Batch size for evaluation.", examples=[512]
    )
    threads: Annotated[int, Strict(), Gt(0), Le(MAX_THREADS)] | None = Field(
        None,
        description=f"CPU threads, at most {MAX_THREADS:,}; default: the cores available.",
        examples=[4],
    )
    # the recipe (archspec/language/recipe.py; torch side in archspec/train/)
    augment: tuple[AugmentOp, ...] = Field(
        (),
        description="Training-only augmentation ops, applied per batch in order.",
        examples=[[{"name": "random_crop", "padding": 4}, "hflip"]],
    )
    tta: tuple[TestTimeFlip, ...] = Field(
        (),
        description="Test-time augmentation: evaluation (validation, test, `archspec eval`) "
        "averages the class probabilities of each input and of its flipped copies "
        "(hflip: left-right, vflip: top-bottom). Training never sees it.",
        examples=[["hflip"]],
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
        Distributed.model_construct(),  # likewise: no schema build at import
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
