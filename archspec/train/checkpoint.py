"""Checkpoints: one safetensors file each, written atomically, never unpickled.

Tensors: ``model/<state_dict key>`` (weights and buffers), ``optim/<param>/<name>``
(optimizer state), ``rng/cpu`` and ``rng/cuda/<i>``. Everything else (epoch, step,
metric accumulators, optimizer hyper-parameters, the resolved spec, class names,
normalisation) is JSON in the safetensors header's metadata. Loading validates
every tensor name and shape against the model before anything is copied in.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file
from torch import nn

from ..errors import CheckpointError
from ..io import write_with

FORMAT = 1
MODEL = "model/"
OPTIM = "optim/"


@dataclass
class Checkpoint:
    tensors: dict[str, torch.Tensor]
    meta: dict[str, Any] = field(default_factory=dict)

    def model_state(self) -> dict[str, torch.Tensor]:
        return {k[len(MODEL) :]: v for k, v in self.tensors.items() if k.startswith(MODEL)}


def model_tensors(model: nn.Module) -> dict[str, torch.Tensor]:
    return {MODEL + k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}


def optimizer_tensors(
    optimizer: torch.optim.Optimizer,
) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Split an optimizer's state into tensors and a JSON-able rest."""
    state = optimizer.state_dict()
    tensors: dict[str, torch.Tensor] = {}
    scalars: dict[str, dict[str, Any]] = {}
    for index, values in state["state"].items():
        for name, value in values.items():
            if isinstance(value, torch.Tensor):
                tensors[f"{OPTIM}{index}/{name}"] = value.detach().cpu().contiguous()
            else:
                scalars.setdefault(str(index), {})[name] = value
    return tensors, {"param_groups": state["param_groups"], "scalars": scalars}


def restore_optimizer(optimizer: torch.optim.Optimizer, ckpt: Checkpoint) -> None:
    info = ckpt.meta["optimizer"]
    state: dict[int, dict[str, Any]] = {}
    for key, value in ckpt.tensors.items():
        if key.startswith(OPTIM):
            index, name = key[len(OPTIM) :].split("/", 1)
            state.setdefault(int(index), {})[name] = value
    for index, values in info["scalars"].items():
        state.setdefault(int(index), {}).update(values)
    try:
        optimizer.load_state_dict({"state": state, "param_groups": info["param_groups"]})
    except (ValueError, KeyError, RuntimeError) as exc:
        raise CheckpointError(f"the optimizer state in the checkpoint does not fit: {exc}",
                              "start a new run, or resume with the same spec") from None  # fmt: skip


def rng_tensors() -> dict[str, torch.Tensor]:
    out = {"rng/cpu": torch.get_rng_state()}
    cuda_in_use = torch.cuda.is_available() and torch.cuda.is_initialized()  # type: ignore[no-untyped-call]
    if cuda_in_use:
        for i, state in enumerate(torch.cuda.get_rng_state_all()):
            out[f"rng/cuda/{i}"] = state
    return out


def restore_rng(ckpt: Checkpoint) -> None:
    if "rng/cpu" in ckpt.tensors:
        torch.set_rng_state(ckpt.tensors["rng/cpu"])
    cuda = sorted(k for k in ckpt.tensors if k.startswith("rng/cuda/"))
    if cuda and torch.cuda.is_available():
        states = [ckpt.tensors[k] for k in cuda][: torch.cuda.device_count()]
        torch.cuda.set_rng_state_all(states)


def save(path: Path, tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> None:
    """Write a checkpoint atomically (temp file + rename): a failure keeps the old one."""
    header = {"archspec": json.dumps({"format": FORMAT, **meta})}
    write_with(path, lambda tmp: save_file(tensors, str(tmp), metadata=header))


def load(path: Path) -> Checkpoint:
    """Read a checkpoint; a missing, truncated or foreign file is a clear CheckpointError."""
    if not path.is_file():
        raise CheckpointError(
            f"{path}: no such checkpoint", "give a run directory or a .safetensors file"
        )
    try:
        with safe_open(str(path), framework="pt") as handle:
            raw = handle.metadata() or {}
            tensors = {key: handle.get_tensor(key) for key in handle.keys()}  # noqa: SIM118
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        raise CheckpointError(f"{path}: not a readable safetensors checkpoint ({exc})",
                              "the file is truncated or corrupt: use another checkpoint "
                              "(e.g. checkpoints/best.safetensors)") from None  # fmt: skip
    try:
        meta = json.loads(raw["archspec"]) if "archspec" in raw else {}
    except json.JSONDecodeError:
        raise CheckpointError(f"{path}: its archspec metadata is corrupt",
                              "use another checkpoint") from None  # fmt: skip
    if not isinstance(meta, dict):
        raise CheckpointError(f"{path}: its archspec metadata is corrupt", "use another checkpoint")
    if not any(k.startswith(MODEL) for k in tensors):  # a plain weights file (export/foreign)
        tensors = {MODEL + k: v for k, v in tensors.items()}
    return Checkpoint(tensors, meta)


def load_weights(model: nn.Module, ckpt: Checkpoint, origin: Path) -> None:
    """Copy the checkpoint's weights into ``model`` after checking every name and shape."""
    state = ckpt.model_state()
    expected = model.state_dict()
    for key, tensor in expected.items():
        if key not in state:
            raise CheckpointError(f"{origin}: the checkpoint has no tensor '{key}' "
                                  f"(the model needs {list(tensor.shape)})",
                                  "it was saved from a different architecture") from None  # fmt: skip
        if tuple(state[key].shape) != tuple(tensor.shape):
            raise CheckpointError(f"{origin}: tensor '{key}' has shape {list(state[key].shape)} in "
                                  f"the checkpoint but {list(tensor.shape)} in the model",
                                  "it was saved from a different architecture") from None  # fmt: skip
    extra = sorted(set(state) - set(expected))
    if extra:
        raise CheckpointError(f"{origin}: the checkpoint has tensors the model lacks: "
                              f"{', '.join(extra[:3])}", "it was saved from a different architecture")  # fmt: skip
    model.load_state_dict(state)
