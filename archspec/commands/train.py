"""``archspec train SPEC`` / ``archspec train --resume RUN_DIR``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from archspec.commands import add_max_layers, max_layers


def add_parser(verbs: Any) -> None:
    p = verbs.add_parser(
        "train",
        help="train a spec on its dataset",
        description="Train a spec; writes a run directory with metrics, "
        "checkpoints, curves and test results. The spec's train: section holds the "
        "recipe: augment (a list of ops), tta (test-time flips: hflip, vflip), "
        "precision (fp32|bf16|fp16), channels_last, "
        "compile, accumulate, clip_grad_norm, ema, early_stop {metric, patience}, "
        "distributed {strategy: ddp|fsdp}; see `archspec schema` and the README.",
    )
    p.add_argument("spec", nargs="?", metavar="SPEC", help="spec file (omit with --resume)")
    p.add_argument("--resume", type=Path, metavar="RUN_DIR", help="continue an interrupted run")
    p.add_argument("--epochs", type=int, help="override train.epochs")
    p.add_argument("--batch-size", type=int, help="override train.batch_size (the global batch)")
    p.add_argument("--lr", type=float, help="override the optimizer's learning rate")
    p.add_argument("--device", help="auto (CUDA when present), cpu, cuda, cuda:N")
    p.add_argument("--seed", type=int, help="override train.seed")
    p.add_argument("--threads", type=int, help="CPU threads (default: the cores available)")
    p.add_argument("--dataset", help="train on this named dataset instead (mnist, fashion-mnist)")
    p.add_argument("--data-dir", type=Path, metavar="DIR", help="where the dataset files are")
    p.add_argument("--no-download", action="store_true", help="never download datasets")
    p.add_argument("--out", type=Path, metavar="DIR", help="run directory (default runs/NAME-TIME)")
    add_max_layers(p)
    p.add_argument("--quiet", action="store_true", help="no progress bar or summary")
    p.add_argument(
        "--tensorboard",
        action="store_true",
        help="also write TensorBoard scalars to RUN_DIR/tensorboard (the tensorboard extra)",
    )
    d = p.add_argument_group("distributed (torch.distributed / torchrun)")
    d.add_argument(
        "--nproc-per-node",
        type=int,
        metavar="N",
        help="start N data-parallel workers on this machine through torchrun",
    )
    d.add_argument("--nnodes", default="1", help="number of machines (or MIN:MAX)")
    d.add_argument(
        "--node-rank",
        type=int,
        metavar="R",
        help="this machine's rank (static rendezvous: machine 0 hosts it at --rdzv-endpoint); "
        "leave out to have ranks assigned as machines join",
    )
    d.add_argument(
        "--rdzv-endpoint",
        metavar="HOST:PORT",
        help="rendezvous address shared by all machines (multi-node)",
    )
    d.add_argument(
        "--max-restarts",
        type=int,
        default=0,
        help="restart the worker group this often after a failure (it resumes)",
    )


def run(args: argparse.Namespace) -> int:
    from archspec.errors import UsageError
    from archspec.train.loop import Interrupted
    from archspec.train.run import Options, resume, train

    opts = Options(
        epochs=args.epochs,
        batch_size=args.batch_size,
        lr=args.lr,
        device=args.device,
        seed=args.seed,
        threads=args.threads,
        dataset=args.dataset,
        data_dir=args.data_dir,
        download=not args.no_download,
        out=args.out,
        quiet=args.quiet,
        tensorboard=args.tensorboard,
        max_layers=max_layers(args),
        argv=sys.argv,
    )
    if args.nproc_per_node is not None:
        return _launch(args)
    if args.resume is not None:
        changed = [
            flag
            for flag, value in (
                ("SPEC", args.spec),
                ("--epochs", args.epochs),
                ("--batch-size", args.batch_size),
                ("--lr", args.lr),
                ("--seed", args.seed),
                ("--dataset", args.dataset),
                ("--out", args.out),
            )
            if value is not None
        ]
        if changed:
            raise UsageError(
                f"--resume continues a run exactly as it was; {', '.join(changed)} cannot change",
                "drop them, or start a new run",
            )
        try:
            resume(args.resume, opts)
        except Interrupted as exc:
            return _interrupted(args.resume, exc.signum)
        return 0
    if args.spec is None:
        raise UsageError(
            "train needs a SPEC file, or --resume RUN_DIR",
            "e.g. archspec train specs/mnist_cnn.yaml",
        )
    from archspec import api
    from archspec.loader import bundled

    spec = api.load(bundled.resolve(args.spec), max_layers=opts.max_layers)
    try:
        train(spec, opts)
    except Interrupted as exc:
        return _interrupted(exc.run_dir, exc.signum)
    return 0


def _launch(args: argparse.Namespace) -> int:
    """Start the workers through torchrun with a fixed run directory."""
    from archspec.errors import UsageError
    from archspec.train.launch import Launch, launch
    from archspec.train.run import check_new_run_dir, default_run_dir
    from archspec.train.runtime import launched_by_torchrun

    if args.nproc_per_node < 1:
        raise UsageError(f"--nproc-per-node must be at least 1, got {args.nproc_per_node}")
    if launched_by_torchrun():
        raise UsageError("--nproc-per-node starts torchrun itself; under torchrun, leave it out")
    worker = _strip_launcher_flags(sys.argv[1:])
    if args.resume is not None:
        run_dir = args.resume
    else:
        if args.spec is None:
            raise UsageError("train needs a SPEC file, or --resume RUN_DIR")
        from archspec import api
        from archspec.loader import bundled

        # report spec errors once, before any worker starts
        spec = api.load(bundled.resolve(args.spec), max_layers=max_layers(args))
        run_dir = args.out or default_run_dir(spec.name)
        check_new_run_dir(run_dir)
        if args.out is None:
            worker += ["--out", str(run_dir)]
    launch(
        Launch(
            args.nproc_per_node,
            args.nnodes,
            args.node_rank,
            args.rdzv_endpoint,
            max_restarts=args.max_restarts,
        ),
        worker,
        run_dir,
    )
    return 0


_LAUNCHER_FLAGS = {
    "--nproc-per-node",
    "--nnodes",
    "--node-rank",
    "--rdzv-endpoint",
    "--max-restarts",
}


def _strip_launcher_flags(argv: list[str]) -> list[str]:
    """The worker's command line: ours without the launcher's own flags."""
    out: list[str] = []
    skip = False
    for arg in argv:
        if skip:
            skip = False
            continue
        name = arg.split("=", 1)[0]
        if name in _LAUNCHER_FLAGS:
            skip = "=" not in arg
            continue
        out.append(arg)
    return out


def _interrupted(run_dir: Path | None, signum: int) -> int:
    """One line saying how to resume; exit 128 + the signal (130 Ctrl-C, 143 SIGTERM,
    129 SIGHUP). The directory is printed as a terminal-safe, shell-quoted word."""
    import shlex
    import signal

    from archspec.text import terminal

    where = f" {terminal(shlex.quote(str(run_dir)))}" if run_dir else " RUN_DIR"
    how = "" if signum == signal.SIGINT else f" by {signal.Signals(signum).name}"
    print(
        f"archspec: interrupted{how} — checkpoint saved; continue with: "
        f"archspec train --resume{where}",
        file=sys.stderr,
    )
    return 128 + signum
