"""Checkpoints: one safetensors file each, written atomically, never unpickled.

Tensors: ``model/<state_dict key>`` (weights and buffers), ``optim/<param>/<name>``
(optimizer state), ``rng/cpu`` and ``rng/cuda/<i>``. Everything else (epoch, step,
metric accumulators, optimizer hyper-parameters, the resolved spec, class names,
normalisation) is JSON in the safetensors header's metadata. Loading validates
every tensor name and shape against the model before anything is copied in.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file
from torch import nn

from archspec.errors import CheckpointError, WriteError
from archspec.io import write_with

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
    return split_optimizer_state(optimizer.state_dict())


def split_optimizer_state(state: dict[str, Any]) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """``optimizer.state_dict()`` (or one keyed the same way) → tensors and JSON."""
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
    """Load the optimizer state; first make sure the checkpoint is a training checkpoint
    (``--resume`` reads its ``progress`` next), so a weights-only or crafted file is a
    CheckpointError, never a KeyError."""
    if not isinstance(ckpt.meta.get("optimizer"), dict) or "progress" not in ckpt.meta:
        raise CheckpointError(
            "the checkpoint has no optimizer state or progress: it holds "
            "weights only and cannot be resumed",
            "resume from checkpoints/last.safetensors of a run directory written by archspec train",
        )
    try:
        optimizer.load_state_dict(optimizer_state(ckpt))
    except (ValueError, KeyError, RuntimeError, TypeError, AttributeError, IndexError) as exc:
        raise CheckpointError(
            f"the optimizer state in the checkpoint does not fit: {exc}",
            "start a new run, or resume with the same spec",
        ) from None


def optimizer_state(ckpt: Checkpoint) -> dict[str, Any]:
    """The checkpoint's optimizer state as ``optimizer.state_dict()`` gives it."""
    info = ckpt.meta["optimizer"]
    state: dict[int, dict[str, Any]] = {}
    for key, value in ckpt.tensors.items():
        if key.startswith(OPTIM):
            index, name = key[len(OPTIM) :].split("/", 1)
            state.setdefault(int(index), {})[name] = value
    for index, values in info["scalars"].items():
        state.setdefault(int(index), {}).update(values)
    return {"state": state, "param_groups": info["param_groups"]}


def rng_tensors() -> dict[str, torch.Tensor]:
    out = {"rng/cpu": torch.get_rng_state()}
    cuda_in_use = torch.cuda.is_available() and torch.cuda.is_initialized()  # type: ignore[no-untyped-call]
    if cuda_in_use:
        for i, state in enumerate(torch.cuda.get_rng_state_all()):
            out[f"rng/cuda/{i}"] = state
    return out


def restore_rng(ckpt: Checkpoint) -> None:
    try:
        if "rng/cpu" in ckpt.tensors:
            torch.set_rng_state(ckpt.tensors["rng/cpu"])
        cuda = sorted(k for k in ckpt.tensors if k.startswith("rng/cuda/"))
        if cuda and torch.cuda.is_available():
            states = [ckpt.tensors[k] for k in cuda][: torch.cuda.device_count()]
            torch.cuda.set_rng_state_all(states)
    except (RuntimeError, TypeError, ValueError) as exc:
        raise CheckpointError(
            f"the random-number state in the checkpoint is invalid: {exc}",
            "the file is corrupt: use another checkpoint",
        ) from None


def save(path: Path, tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> None:
    """Write a checkpoint atomically (temp file + rename): a failure keeps the old one.

    A full disk is a one-line :class:`WriteError` saying that the previous checkpoint is
    intact and how to resume. (safetensors reports a full disk as a ``SafetensorError``
    "I/O error: No space left on device", not an OSError: found on a full tmpfs.)
    """
    header = {"archspec": json.dumps({"format": FORMAT, **meta})}
    try:
        write_with(path, lambda tmp: _save_file(tensors, tmp, header))
    except WriteError as exc:
        raise WriteError(
            f"could not write the checkpoint {path}: {_reason(exc)}", _resume_hint(path)
        ) from exc


def _save_file(tensors: dict[str, torch.Tensor], tmp: Path, header: dict[str, str]) -> None:
    try:
        save_file(tensors, str(tmp), metadata=header)
    except SafetensorError as exc:  # "Error while serializing: I/O error: No space left on
        text = str(exc).split("I/O error: ")[-1]  # device (os error 28)"
        found = re.search(r"^(.*) \(os error (\d+)\)$", text)
        raise (OSError(int(found[2]), found[1]) if found else OSError(text)) from exc


def _reason(exc: WriteError) -> str:
    cause = exc.__cause__
    if isinstance(cause, OSError) and (cause.strerror or cause.args):
        return str(cause.strerror or cause.args[0])
    return exc.message


def _resume_hint(path: Path) -> str:
    if path.parent.name == "checkpoints":
        return (
            f"the previous {path.name}, if any, is intact: free some disk space, then "
            f"continue with: archspec train --resume {path.parent.parent}"
        )
    return f"the previous {path.name}, if any, is intact: free some disk space and try again"


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
        raise CheckpointError(
            f"{path}: not a readable safetensors checkpoint ({exc})",
            "the file is truncated or corrupt: use another checkpoint "
            "(e.g. checkpoints/best.safetensors)",
        ) from None
    try:
        meta = json.loads(raw["archspec"]) if "archspec" in raw else {}
    except (json.JSONDecodeError, RecursionError):
        raise CheckpointError(
            f"{path}: its archspec metadata is corrupt", "use another checkpoint"
        ) from None
    wrong = _check_meta(meta)
    if wrong:
        raise CheckpointError(
            f"{path}: its archspec metadata is corrupt ({wrong})", "use another checkpoint"
        )
    if not any(k.startswith(MODEL) for k in tensors):  # a plain weights file (export/foreign)
        tensors = {MODEL + k: v for k, v in tensors.items()}
    return Checkpoint(tensors, meta)


def _check_meta(meta: Any) -> str:
    """What is wrong with a checkpoint's metadata (``""``: nothing), so that the code that
    reads it (resume, eval, predict) never meets a wrong type in a crafted file."""
    if not isinstance(meta, dict):
        return f"a JSON object expected, found {type(meta).__name__}"
    checks: dict[str, Callable[[Any], bool]] = {
        "spec": lambda v: isinstance(v, str),
        "name": lambda v: isinstance(v, str),
        "classes": lambda v: isinstance(v, list) and all(isinstance(c, str) for c in v),
        "normalizer": _normalizer_ok,
        "progress": _progress_ok,
        "optimizer": lambda v: (
            isinstance(v, dict)
            and isinstance(v.get("param_groups"), list)
            and isinstance(v.get("scalars"), dict)
        ),
    }
    for key, ok in checks.items():
        if key in meta and not ok(meta[key]):
            return f"'{key}' is not what archspec writes"
    return ""


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _normalizer_ok(value: Any) -> bool:
    return (
        isinstance(value, dict)
        and isinstance(value.get("scale_uint8"), bool)
        and all(
            isinstance(value.get(k), list) and value[k] and all(map(_number, value[k]))
            for k in ("mean", "std")
        )
        and len(value["mean"]) == len(value["std"])
    )


def _progress_ok(value: Any) -> bool:
    if not isinstance(value, dict):
        return False
    counts = all(_count(value.get(k)) for k in ("epoch", "step_in_epoch", "global_step"))
    tally = value.get("tally")
    tally_ok = isinstance(tally, list) and len(tally) == 3 and all(map(_number, tally))
    best, best_epoch = value.get("best", 0), value.get("best_epoch")
    best_ok = (best is None or _number(best)) and (best_epoch is None or _count(best_epoch))
    return counts and tally_ok and best_ok


def _dtype(tensor: torch.Tensor) -> str:
    return str(tensor.dtype).removeprefix("torch.")


def load_weights(model: nn.Module, ckpt: Checkpoint, origin: Path) -> None:
    """Copy the checkpoint's weights into ``model`` after checking every name and shape."""
    state = ckpt.model_state()
    expected = model.state_dict()
    for key, tensor in expected.items():
        if key not in state:
            raise CheckpointError(
                f"{origin}: the checkpoint has no tensor '{key}' "
                f"(the model needs {list(tensor.shape)})",
                "it was saved from a different architecture",
            ) from None
        if tuple(state[key].shape) != tuple(tensor.shape):
            raise CheckpointError(
                f"{origin}: tensor '{key}' has shape {list(state[key].shape)} in "
                f"the checkpoint but {list(tensor.shape)} in the model",
                "it was saved from a different architecture",
            ) from None
        if state[key].dtype != tensor.dtype:  # load_state_dict would silently cast
            raise CheckpointError(
                f"{origin}: tensor '{key}' is {_dtype(state[key])} in the "
                f"checkpoint but {_dtype(tensor)} in the model",
                "it was not written by archspec for this model: use the run's own checkpoint",
            )
    extra = sorted(set(state) - set(expected))
    if extra:
        raise CheckpointError(
            f"{origin}: the checkpoint has tensors the model lacks: {', '.join(extra[:3])}",
            "it was saved from a different architecture",
        )
    model.load_state_dict(state)
