"""Where training runs: device, CPU threads, and (under torchrun) the process group."""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import torch
import torch.distributed as dist

from archspec.errors import TrainingError, UsageError

DIST_TIMEOUT_S = 60  # a dead peer makes collectives fail after this long instead of hanging


@dataclass(frozen=True)
class Runtime:
    device: torch.device
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world > 1

    def sum(self, values: list[float]) -> list[float]:
        """Sum ``values`` over every process (identity in a single process)."""
        if not self.distributed:
            return values
        tensor = torch.tensor(values, dtype=torch.float64, device=self._reduce_device())
        dist.all_reduce(tensor)
        return [float(v) for v in tensor.tolist()]

    def sum_tensor(self, tensor: torch.Tensor) -> torch.Tensor:
        if not self.distributed:
            return tensor
        out = tensor.to(self._reduce_device())
        dist.all_reduce(out)
        return out.cpu()

    def _reduce_device(self) -> torch.device:
        return self.device if self.device.type == "cuda" else torch.device("cpu")

    def barrier(self) -> None:
        if self.distributed:
            dist.barrier()


def available_cores() -> int:
    """CPU cores this process may use (respects affinity / container limits)."""
    try:
        return max(len(os.sched_getaffinity(0)), 1)
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def set_threads(threads: int | None, local_world: int) -> int:
    """``torch.set_num_threads``: the given count, or the cores shared among local workers."""
    count = threads or max(available_cores() // max(local_world, 1), 1)
    torch.set_num_threads(count)
    return count


def pick_device(name: str, local_rank: int = 0) -> torch.device:
    """``auto`` → this worker's CUDA device when there is one, else the CPU."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda", local_rank % torch.cuda.device_count())
        return torch.device("cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise TrainingError(
            f"device '{name}' was requested but this machine has no usable CUDA device",
            "use --device cpu, or auto",
        )
    if device.type == "cuda" and device.index is None:
        device = torch.device("cuda", local_rank % torch.cuda.device_count())
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise TrainingError(
            "device 'mps' was requested but MPS is not available", "use --device cpu"
        )
    return device


def launched_by_torchrun() -> bool:
    return "RANK" in os.environ and "WORLD_SIZE" in os.environ and "LOCAL_RANK" in os.environ


def start(device_name: str) -> Runtime:
    """The runtime for this process: plain, or a member of torchrun's process group."""
    if not launched_by_torchrun() or int(os.environ["WORLD_SIZE"]) == 1:
        return Runtime(pick_device(device_name))
    rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    local_rank = int(os.environ["LOCAL_RANK"])
    device = pick_device(device_name, local_rank)
    backend = "nccl" if device.type == "cuda" else "gloo"
    if device.type == "cuda":
        torch.cuda.set_device(device)
    timeout = timedelta(seconds=DIST_TIMEOUT_S)
    try:
        store, _, _ = next(dist.rendezvous("env://", rank, world, timeout=timeout))  # type: ignore[attr-defined]
        # keys of a group torchrun restarted must not meet the dead group's stale addresses
        attempt = os.environ.get("TORCHELASTIC_RESTART_COUNT", "0")
        store = dist.PrefixStore(f"archspec/attempt{attempt}", store)  # type: ignore[attr-defined]
        dist.init_process_group(backend, store=store, rank=rank, world_size=world, timeout=timeout)
    except (RuntimeError, ValueError) as exc:
        raise UsageError(
            f"could not join the process group ({backend}): {exc}",
            "check torchrun's --rdzv-endpoint / MASTER_ADDR and that every node can reach it",
        ) from None
    return Runtime(device, rank, world, local_rank)


def shared_path(runtime: Runtime, path: Path, size: int = 4096) -> Path:
    """Rank 0's ``path`` on every rank (a byte tensor broadcast — no pickling)."""
    if not runtime.distributed:
        return path
    data = str(path).encode("utf-8")[:size]
    buffer = torch.zeros(size + 1, dtype=torch.uint8, device=runtime._reduce_device())
    if runtime.is_main:
        buffer[1 : len(data) + 1] = torch.tensor(list(data), dtype=torch.uint8)
    dist.broadcast(buffer, src=0)
    raw = bytes(buffer[1:].cpu().tolist()).rstrip(b"\0")
    return Path(raw.decode("utf-8"))


def stop(runtime: Runtime) -> None:
    """Leave the process group together: a rank that tears gloo down while a peer is
    still writing files makes the peer abort."""
    if runtime.distributed and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()
