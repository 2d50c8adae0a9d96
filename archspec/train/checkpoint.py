"""Checkpoints: one safetensors file each, written atomically, never unpickled.

Tensors: ``model/<state_dict key>`` (weights and buffers), ``optim/<param>/<name>``
(optimizer state), ``rng/cpu`` and ``rng/cuda/<i>``. Everything else (epoch, step,
metric accumulators, optimizer hyper-parameters, the resolved spec, class names,
normalisation) is JSON in the safetensors header's metadata. Loading validates
every tensor name and shape against the model before anything is copied in.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file
from torch import nn

from archspec.errors import CheckpointError, ResourceError, WriteError
from archspec.io import write_with
from archspec.shapes import memory
from archspec.shapes.params import FLOAT32_MAX

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


def check_optimizer(optimizer: torch.optim.Optimizer, ckpt: Checkpoint) -> None:
    """Make sure the checkpoint is a training checkpoint (``--resume`` reads its
    ``progress`` next) and that every hyper-parameter and state tensor fits the spec's
    optimizer (:func:`optimizer_problem`), so a weights-only or crafted file is a one-line
    CheckpointError naming the field, never a KeyError."""
    if not isinstance(ckpt.meta.get("optimizer"), dict) or "progress" not in ckpt.meta:
        raise CheckpointError(
            "the checkpoint has no optimizer state or progress: it holds "
            "weights only and cannot be resumed",
            "resume from checkpoints/last.safetensors of a run directory written by archspec train",
        )
    wrong = optimizer_problem(optimizer, ckpt.meta["optimizer"], ckpt.tensors)
    if wrong:
        raise CheckpointError(
            f"the optimizer state in the checkpoint does not fit the spec: {wrong}",
            "it was not written by archspec for this spec: resume with the run's own checkpoint",
        )


def restore_optimizer(optimizer: torch.optim.Optimizer, ckpt: Checkpoint) -> None:
    """Load the optimizer state once :func:`check_optimizer` has accepted it."""
    check_optimizer(optimizer, ckpt)
    try:
        state = optimizer_state(ckpt)
        fresh = optimizer.state_dict()["param_groups"]
        groups = [{**want, **got} for want, got in zip(fresh, state["param_groups"], strict=True)]
        optimizer.load_state_dict({"state": state["state"], "param_groups": groups})
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


# The state each optimizer keeps per parameter: names that must all be there (or none),
# and names that may be. "step" is a scalar count; every other entry has the parameter's
# shape and dtype (SGD's momentum_buffer is None while momentum is 0).
_STATE: dict[str, tuple[frozenset[str], frozenset[str]]] = {
    "SGD": (frozenset({"momentum_buffer"}), frozenset()),
    "Adam": (frozenset({"step", "exp_avg", "exp_avg_sq"}), frozenset({"max_exp_avg_sq"})),
    "AdamW": (frozenset({"step", "exp_avg", "exp_avg_sq"}), frozenset({"max_exp_avg_sq"})),
}
MAX_STEP = 2**53  # a step count a float64 holds exactly


def optimizer_problem(
    optimizer: torch.optim.Optimizer, info: dict[str, Any], tensors: dict[str, torch.Tensor]
) -> str:
    """What in a checkpoint's optimizer state does not fit ``optimizer`` (``""``: nothing),
    naming the field: the hyper-parameter groups by key and type, then the per-parameter
    state by index, name, shape, dtype and finiteness."""
    fresh = optimizer.state_dict()["param_groups"]
    groups = info["param_groups"]
    if len(groups) != len(fresh):
        return f"optimizer.param_groups has {len(groups)} groups, the spec's optimizer {len(fresh)}"
    for i, (got, want) in enumerate(zip(groups, fresh, strict=True)):
        wrong = _group_problem(got, want, f"optimizer.param_groups[{i}]")
        if wrong:
            return wrong
    params = [p for group in optimizer.param_groups for p in group["params"]]
    entries: dict[int, dict[str, Any]] = {}
    for key, value in tensors.items():
        if key.startswith(OPTIM):
            index, _, name = key[len(OPTIM) :].partition("/")
            if not index.isdigit() or int(index) >= len(params) or not name:
                return f"tensor '{key}' names no parameter of the spec's {len(params)}"
            entries.setdefault(int(index), {})[name] = value
    for index, values in info["scalars"].items():
        if not (isinstance(index, str) and index.isdigit() and int(index) < len(params)):
            return f"optimizer.scalars['{index}'] names no parameter of the spec's {len(params)}"
        if not isinstance(values, dict):
            return f"optimizer.scalars['{index}'] is not an object"
        for name, value in values.items():
            if name in entries.get(int(index), {}):
                return f"optimizer state '{index}/{name}' is given twice"
            entries.setdefault(int(index), {})[name] = value
    kind = type(optimizer).__name__
    for number, named in sorted(entries.items()):
        wrong = _state_problem(
            kind, named, params[number], f"optimizer state of parameter {number}"
        )
        if wrong:
            return wrong
    return ""


def _group_problem(got: Any, want: dict[str, Any], where: str) -> str:
    if not isinstance(got, dict):
        return f"{where} is not an object"
    unknown = sorted(set(got) - set(want))
    if unknown:
        return f"{where} has the unknown key '{unknown[0]}'"
    if "params" in got and got["params"] != want["params"]:
        return f"{where}.params is {_shown(got['params'])}, not the spec's {_shown(want['params'])}"
    for key, value in got.items():
        if not _same_kind(value, want[key]):
            return f"{where}.{key} is {_shown(value)}, the spec's optimizer has {_shown(want[key])}"
    return ""


def _same_kind(value: Any, want: Any) -> bool:
    """``value`` (from JSON) has the type of ``want`` (from the fresh optimizer); numbers
    are finite and fit a float32 (the optimizer applies them to float32 tensors: a
    ``momentum`` of 2**64 or a ``dampening`` past 3.4e38 overflowed inside ``step``), lists (tuples)
    have the same length, ``params`` are the same indices."""
    if isinstance(want, bool) or want is None:
        return value is want or (isinstance(value, bool) and isinstance(want, bool))
    if isinstance(want, int | float):
        limit = FLOAT32_MAX if isinstance(value, float) else 2**63 - 1  # torch's scalars
        return _number(value) and math.isfinite(value) and abs(value) <= limit
    if isinstance(want, list | tuple):
        if not isinstance(value, list) or len(value) != len(want):
            return False
        return all(_same_kind(v, w) for v, w in zip(value, want, strict=True))
    if isinstance(want, str):
        return isinstance(value, str)
    return False


def _shown(value: Any) -> str:
    text = json.dumps(value) if not isinstance(value, tuple) else json.dumps(list(value))
    return text if len(text) <= 40 else text[:37] + "..."


def _state_problem(kind: str, values: dict[str, Any], param: torch.Tensor, where: str) -> str:
    required, optional = _STATE.get(kind, (frozenset(), frozenset(values)))
    unknown = sorted(set(values) - required - optional)
    if unknown:
        return f"{where}: '{unknown[0]}' is not state of {kind}"
    missing = sorted(required - set(values))
    if missing:
        return f"{where}: '{missing[0]}' is missing"
    for name, value in values.items():
        wrong = _step_problem(value) if name == "step" else _buffer_problem(value, param)
        if wrong:
            return f"{where}: '{name}' {wrong}"
    return ""


def _step_problem(value: Any) -> str:
    if isinstance(value, torch.Tensor):
        if value.numel() != 1 or value.ndim > 1 or not value.dtype.is_floating_point:
            return f"must be one float count, found a {_dtype(value)} of shape {list(value.shape)}"
        value = float(value.reshape(()))
    if not _number(value) or not (math.isfinite(value) and 0 <= value <= MAX_STEP):
        return f"must be a step count from 0 to 2^53, found {_shown(value)}"
    if value != int(value):
        return f"must be a whole number of steps, found {value}"
    return ""


def _buffer_problem(value: Any, param: torch.Tensor) -> str:
    if value is None:
        return ""
    if not isinstance(value, torch.Tensor):
        return f"must be a tensor, found {_shown(value)}"
    if tuple(value.shape) != tuple(param.shape) or value.dtype != param.dtype:
        return (
            f"is a {_dtype(value)} of shape {list(value.shape)}, the parameter a "
            f"{_dtype(param)} of shape {list(param.shape)}"
        )
    if value.dtype.is_floating_point and not bool(torch.isfinite(value).all()):
        return "holds NaN or infinite values"
    return ""


def check_progress(meta: dict[str, Any], epochs: int, steps_per_epoch: int, origin: Path) -> None:
    """The checkpoint's ``progress`` fits the spec's run: ``epoch`` ≤ epochs, ``step_in_epoch``
    within an epoch, ``global_step`` = epoch × steps per epoch + step_in_epoch, the tally
    finite and ``best_epoch`` ≤ ``epoch`` (else resuming would index past the data)."""
    p = meta["progress"]
    wrong = ""
    if p["epoch"] > epochs:
        wrong = f"progress.epoch is {p['epoch']} but the spec trains {epochs} epochs"
    elif p["step_in_epoch"] > steps_per_epoch:  # = at a stop after an epoch's last step
        wrong = f"progress.step_in_epoch is {p['step_in_epoch']}, an epoch has {steps_per_epoch}"
    elif p["global_step"] != p["epoch"] * steps_per_epoch + p["step_in_epoch"]:
        wrong = (
            f"progress.global_step is {p['global_step']}, not epoch × {steps_per_epoch} "
            f"steps + step_in_epoch = {p['epoch'] * steps_per_epoch + p['step_in_epoch']}"
        )
    elif not all(math.isfinite(v) and v >= 0 for v in p["tally"]):
        wrong = f"progress.tally is {_shown(p['tally'])}, not three finite counts"
    elif p.get("best") is not None and not math.isfinite(p["best"]):
        wrong = f"progress.best is {p['best']}"
    elif p.get("best_epoch") is not None and p["best_epoch"] > max(p["epoch"], 1):
        wrong = f"progress.best_epoch {p['best_epoch']} is after epoch {p['epoch']}"
    if wrong:
        raise CheckpointError(
            f"{origin}: {wrong}",
            "resume with the run's own checkpoint, spec and data (the data may have changed)",
        )


def classes_for(meta: dict[str, Any], outputs: int, origin: Path) -> tuple[str, ...]:
    """The class names for a network of ``outputs`` scores: the checkpoint's (at most
    ``outputs``; a network may score more classes than its data had), then "K".."outputs-1"."""
    names = meta.get("classes") or []
    if len(names) > outputs:
        raise CheckpointError(
            f"{origin}: 'classes' names {len(names):,} classes but the network outputs "
            f"{outputs:,} scores",
            "the metadata does not belong to this network: use the run's own checkpoint",
        )
    return (*names, *(str(i) for i in range(len(names), outputs)))


def normalizer_for(meta: dict[str, Any], channels: int, origin: Path) -> dict[str, Any] | None:
    """The checkpoint's ``normalizer`` checked against the spec's input channels (one
    finite mean and one finite, non-zero std per channel) before any tensor is made."""
    norm = meta.get("normalizer")
    if norm is None:
        return None
    for key in ("mean", "std"):
        values = norm[key]
        if len(values) != channels:
            raise CheckpointError(
                f"{origin}: normalizer.{key} has {len(values):,} values but the spec's input "
                f"has {channels:,} channels",
                "the metadata does not belong to this network: use the run's own checkpoint",
            )
        bad = next((v for v in values if not math.isfinite(v) or (key == "std" and v == 0)), None)
        if bad is not None:
            raise CheckpointError(
                f"{origin}: normalizer.{key} holds {bad}, not a finite"
                + (" non-zero" if key == "std" else "")
                + " number",
                "use the run's own checkpoint",
            )
    return dict(norm)


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
    _check_size(path)
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


def _check_size(path: Path) -> None:
    """Its tensors are read whole: refuse a file larger than the memory available, before
    reading any of it (safetensors checks that every tensor lies inside the file)."""
    size = path.stat().st_size
    available = memory.available_bytes()
    if available is not None and size > available:
        raise ResourceError(
            f"{path}: the checkpoint is {memory.human(size)} but this machine has "
            f"{memory.human(available)} of memory available",
            "load it on a machine with more memory",
        )


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
    if "best" not in value or "best_epoch" not in value:  # fuzz: a KeyError on resume
        return False
    best, best_epoch = value["best"], value["best_epoch"]
    best_ok = (best is None or (_number(best) and math.isfinite(best))) and (
        best_epoch is None or _count(best_epoch)
    )
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
