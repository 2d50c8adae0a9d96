"""``archspec train --nproc-per-node N``: start N workers through torch's own launcher.

The workers are ``python -m archspec train …`` processes started by
``torch.distributed.run`` (torchrun), which sets RANK/WORLD_SIZE/LOCAL_RANK and the
rendezvous; each worker joins the process group (gloo on CPU, nccl on CUDA). The run
directory is fixed here, before launch, so that every worker — and every restart that
torchrun's ``--max-restarts`` makes — uses the same one (a restarted group resumes
from its last checkpoint).
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path

from archspec.errors import TrainingError


@dataclass(frozen=True)
class Launch:
    nproc_per_node: int
    nnodes: str = "1"
    node_rank: int | None = None
    rdzv_endpoint: str | None = None
    rdzv_id: str = "archspec"
    max_restarts: int = 0
    monitor_interval: float = 0.5


def launcher_args(launch: Launch, worker_args: list[str]) -> list[str]:
    """torchrun's command line for ``python -m archspec <worker_args>``."""
    args = [
        f"--nproc-per-node={launch.nproc_per_node}",
        f"--nnodes={launch.nnodes}",
        f"--max-restarts={launch.max_restarts}",
        f"--monitor-interval={launch.monitor_interval}",
    ]
    if launch.rdzv_endpoint and launch.node_rank is not None:
        # classic static rendezvous: machine 0 hosts the store at the endpoint
        host, _, port = launch.rdzv_endpoint.rpartition(":")
        args += [
            "--rdzv-backend=static",
            f"--master-addr={host}",
            f"--master-port={port}",
            f"--node-rank={launch.node_rank}",
        ]
    elif launch.rdzv_endpoint:
        # dynamic rendezvous: ranks are assigned as machines join
        args += [
            "--rdzv-backend=c10d",
            f"--rdzv-endpoint={launch.rdzv_endpoint}",
            f"--rdzv-id={launch.rdzv_id}",
        ]
    else:
        args.append("--standalone")
    return [*args, "-m", "archspec", *worker_args]


def launch(launch: Launch, worker_args: list[str], run_dir: Path) -> None:
    """Run the workers to completion; a failed worker stops them all (no hang)."""
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.run import parse_args, run

    from archspec.train.runtime import available_cores

    # torchrun would set 1 thread per worker and warn; share this machine's cores instead
    os.environ.setdefault(
        "OMP_NUM_THREADS", str(max(available_cores() // launch.nproc_per_node, 1))
    )
    try:
        run(parse_args(launcher_args(launch, worker_args)))  # type: ignore[no-untyped-call]
    except ChildFailedError as exc:
        rank, failure = exc.get_first_failure()
        how = (
            f"signal {failure.signal_name()}"
            if failure.exitcode < 0
            else f"exit code {failure.exitcode}"
        )
        raise TrainingError(
            f"worker {rank} of the distributed run failed ({how}); torchrun stopped the others",
            f"the last checkpoint in {run_dir} is intact: continue with "
            f"`archspec train --resume {run_dir} --nproc-per-node {launch.nproc_per_node}`",
        ) from None
    except KeyboardInterrupt:
        print(
            "archspec: interrupted — resume from the last checkpoint with --resume", file=sys.stderr
        )
        raise
