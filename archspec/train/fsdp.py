"""``distributed: {strategy: fsdp}``: FSDP2 (``torch.distributed.fsdp.fully_shard``).

Each top-level block of the spec (``layer1`` of ``layer1.0.conv1``; a plain layer is
its own block) is one sharding unit: its parameters are all-gathered before its first
layer runs and freed after; the network itself is the root unit. The network calls
its layers directly, not through block containers, so a unit is the *list* of the
block's layers with parameters (FSDP2 hooks every module of the list).

Checkpoints stay one safetensors file in the same format as a single-process run:
every rank joins the gather of full (unsharded) tensors, and rank 0 writes them. So a
run resumes on any number of processes, with FSDP, DDP or none (the full state must fit
in rank 0's CPU memory while it is written).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torch.distributed.checkpoint.state_dict import (
    StateDictOptions,
    get_model_state_dict,
    get_optimizer_state_dict,
    set_model_state_dict,
    set_optimizer_state_dict,
)
from torch.distributed.fsdp import fully_shard

from archspec.compile.network import Network
from archspec.errors import CheckpointError, UsageError

FULL = StateDictOptions(full_state_dict=True, cpu_offload=True)


def check_supported(config: Any) -> None:
    """What FSDP here does not combine with, as a one-line usage error."""
    if config.ema is not None:
        raise UsageError(
            "ema is not supported with distributed.strategy fsdp (the average would need "
            "its own sharding)",
            "use strategy ddp, or drop ema",
        )


def blocks(network: Network) -> dict[str, list[nn.Module]]:
    """The layers with parameters, grouped by the top-level block they belong to."""
    groups: dict[str, list[nn.Module]] = {}
    for node in network.plan.nodes:
        module = network.get_submodule(node.name)
        if any(True for _ in module.parameters(recurse=True)):
            groups.setdefault(node.name.split(".")[0], []).append(module)
    return groups


def shard(network: Network) -> None:
    """Shard ``network`` in place across the process group (call before the optimizer)."""
    for modules in blocks(network).values():
        fully_shard(modules if len(modules) > 1 else modules[0])
    fully_shard(network)


def model_tensors(network: Network) -> dict[str, torch.Tensor]:
    """The full weights and buffers on the CPU, on rank 0 (a collective: every rank calls
    it; the others get nothing)."""
    state: dict[str, Any] = get_model_state_dict(network, options=FULL)
    return {k: v.detach().cpu().contiguous() for k, v in state.items()}


def optimizer_state(network: Network, optimizer: torch.optim.Optimizer) -> dict[str, Any]:
    """The full optimizer state keyed like a plain ``optimizer.state_dict()`` (parameter
    indices in ``network.named_parameters()`` order), so the checkpoint is the same as a
    single process writes (a collective)."""
    full: Any = get_optimizer_state_dict(network, optimizer, options=FULL)
    if "state" not in full:  # cpu_offload gathers the full state on rank 0 only
        return {"state": {}, "param_groups": []}
    index = {name: i for i, (name, _) in enumerate(network.named_parameters())}
    state = {index[name]: values for name, values in full["state"].items()}
    groups = [
        {**group, "params": [index[name] for name in group["params"]]}
        for group in full["param_groups"]
    ]
    return {"state": state, "param_groups": groups}


def load(
    network: Network, optimizer: torch.optim.Optimizer, weights: dict[str, torch.Tensor], optim: Any
) -> None:
    """Load full tensors (every rank reads the same file) into the sharded network."""
    names = [name for name, _ in network.named_parameters()]
    try:
        model_state: Any = weights
        set_model_state_dict(network, model_state, options=FULL)
        full: Any = {
            "state": {names[int(i)]: values for i, values in optim["state"].items()},
            "param_groups": [
                {**group, "params": [names[int(i)] for i in group["params"]]}
                for group in optim["param_groups"]
            ],
        }
        set_optimizer_state_dict(network, optimizer, full, options=FULL)
    except (KeyError, IndexError, ValueError, RuntimeError, TypeError) as exc:
        raise CheckpointError(
            f"the checkpoint does not fit the sharded model: {exc}",
            "resume with the spec the run was started with",
        ) from None
