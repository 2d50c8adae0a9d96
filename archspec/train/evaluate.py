"""``archspec eval``: test metrics of a trained run or checkpoint."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from archspec.api import Spec, load, loads
from archspec.compile.network import Network
from archspec.data import load_split
from archspec.errors import CheckpointError, DataError, ResourceError, printable
from archspec.shapes import memory
from archspec.shapes.plan import format_shape, numel
from archspec.train import checkpoint
from archspec.train.data import Normalizer, Part, load_part
from archspec.train.loop import evaluate
from archspec.train.runtime import Runtime, pick_device
from archspec.train.support import refuse_unsupported

CHOICES = ("best", "last", "final")


def checkpoint_path(target: Path, which: str = "best") -> Path:
    """A run directory's checkpoint (``best``, ``last`` or the ``final`` model), or a file."""
    if target.is_file():
        return target
    if not target.is_dir():
        raise CheckpointError(
            f"{target}: no such run directory or checkpoint file",
            "give the directory `archspec train` wrote, or a .safetensors file",
        )
    name = "model.safetensors" if which == "final" else f"checkpoints/{which}.safetensors"
    path = target / name
    if not path.is_file():
        raise CheckpointError(
            f"{target} has no {name}", "the run may not have finished: try --which last"
        )
    return path


@dataclass
class Restored:
    """A trained network with what it needs to take real inputs."""

    spec: Spec
    network: Network
    classes: tuple[str, ...]
    normalizer: Normalizer
    device: torch.device

    def inputs(self, x: torch.Tensor) -> torch.Tensor:
        rank = len(self.spec.input_shape) - 1
        scale, shift = self.normalizer.coefficients(rank, self.device)
        return torch.addcmul(shift, x.to(self.device).float(), scale)


def restore(
    target: Path, which: str = "best", spec_file: Path | None = None, device: str = "auto"
) -> Restored:
    """Rebuild the network of a run/checkpoint and load its weights (safetensors only)."""
    path = checkpoint_path(target, which)
    ckpt = checkpoint.load(path)
    if spec_file is not None:
        spec = load(spec_file)
    elif "spec" in ckpt.meta:
        spec = loads(ckpt.meta["spec"], f"{path} (embedded spec)")
    else:
        raise CheckpointError(
            f"{path} does not embed its spec", "pass the spec it was trained from with --spec SPEC"
        )
    refuse_unsupported(spec.plan(), "evaluating")
    output = spec.plan().output_shape
    if len(output) != 1:
        raise DataError(
            f"{printable(spec.name)} outputs {format_shape(output)} per input, not one "
            "score per class",
            "eval and predict need a classifier (ending in dense: CLASSES)",
        )
    # every metadata field is checked against the spec before a tensor is made from it
    classes = checkpoint.classes_for(ckpt.meta, output[0], path)
    norm = checkpoint.normalizer_for(ckpt.meta, spec.input_shape[0], path)
    normalizer = Normalizer.from_json(norm) if norm is not None else _identity(spec)
    _check_memory(spec, path)
    network = spec.build()
    checkpoint.load_weights(network, ckpt, path)
    dev = pick_device(device)
    network.to(dev).eval()
    return Restored(spec, network, classes, normalizer, dev)


EVAL_BATCH = 512


def _check_memory(spec: Spec, origin: Path) -> None:
    """A checkpoint's embedded spec is untrusted too: refuse one whose weights and
    activations (float32, one evaluation batch) exceed the memory available, before building."""
    plan = spec.plan()
    needed = 4 * (plan.total_params + EVAL_BATCH * sum(numel(node.shape) for node in plan.nodes))
    available = memory.available_bytes()
    if available is not None and needed > available:
        raise ResourceError(
            f"{origin}: its network needs about {memory.human(needed)} to evaluate "
            f"({plan.total_params:,} parameters) but this machine has {memory.human(available)} "
            "available",
            "evaluate it on a machine with more memory",
        )


def _identity(spec: Spec) -> Normalizer:
    channels = spec.input_shape[0]
    return Normalizer((0.0,) * channels, (1.0,) * channels, True)


def run_eval(
    target: Path,
    *,
    which: str = "best",
    split: str | None = None,
    dataset: str | None = None,
    data_dir: Path | None = None,
    download: bool = True,
    spec_file: Path | None = None,
    device: str = "auto",
    tta: bool = True,
) -> dict[str, Any]:
    restored = restore(target, which, spec_file, device)
    config = restored.spec.train
    data = config.data if config is not None else None
    split = split or (data.test if data is not None and data.test else "test")
    path = Path(data.path) if data is not None and data.path else None
    name = dataset or (data.dataset if data is not None else None)
    part: Part
    if data is not None and not dataset:  # the run's own data settings (streams large folders)
        part = load_part(data, split, restored.spec.input_shape, None, data_dir, download)
    else:
        part = load_split(
            dataset=name,
            path=None if dataset else path,
            split=split,
            input_shape=restored.spec.input_shape,
            data_dir=data_dir,
            download=download,
        )
    if len(part.classes) > len(restored.classes):
        raise DataError(
            f"{part.origin} has {len(part.classes):,} classes but the network outputs "
            f"{len(restored.classes):,} scores",
            "evaluate on the dataset it was trained on (--dataset, --split)",
        )
    restored.network.logits_only = True
    loss_fn = nn.CrossEntropyLoss(reduction="sum")
    tally, confusion = evaluate(
        restored.network,
        part,
        part.y,
        restored.inputs,
        loss_fn,
        Runtime(restored.device),
        512,
        len(restored.classes),
        config.tta if config is not None and tta else (),
    )
    assert confusion is not None
    return {
        "checkpoint": str(checkpoint_path(target, which)),
        "split": part.origin,
        "examples": int(tally.seen),
        "loss": tally.mean_loss,
        "accuracy": tally.accuracy,
        "tta": list(config.tta) if config is not None and tta else [],
        "classes": list(restored.classes),
        "confusion": confusion.tolist(),
    }
