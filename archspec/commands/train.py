"""``archspec train SPEC`` / ``archspec train --resume RUN_DIR``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any


def add_parser(verbs: Any) -> None:
    p = verbs.add_parser("train", help="train a spec on its dataset",
                         description="Train a spec; writes a run directory with metrics, "
                         "checkpoints, curves and test results.")  # fmt: skip
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
    p.add_argument("--quiet", action="store_true", help="no progress bar or summary")


def run(args: argparse.Namespace) -> int:
    from ..errors import UsageError
    from ..train.loop import Interrupted
    from ..train.run import Options, resume, train

    opts = Options(epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, device=args.device,
                   seed=args.seed, threads=args.threads, dataset=args.dataset,
                   data_dir=args.data_dir, download=not args.no_download, out=args.out,
                   quiet=args.quiet, argv=sys.argv)  # fmt: skip
    if args.resume is not None:
        changed = [flag for flag, value in (("SPEC", args.spec), ("--epochs", args.epochs),
                   ("--batch-size", args.batch_size), ("--lr", args.lr), ("--seed", args.seed),
                   ("--dataset", args.dataset), ("--out", args.out)) if value is not None]  # fmt: skip
        if changed:
            raise UsageError(f"--resume continues a run exactly as it was; {', '.join(changed)} "
                             "cannot change", "drop them, or start a new run")  # fmt: skip
        try:
            resume(args.resume, opts)
        except Interrupted:
            return _interrupted(args.resume)
        return 0
    if args.spec is None:
        raise UsageError("train needs a SPEC file, or --resume RUN_DIR", "e.g. archspec train specs/mnist_cnn.yaml")
    from .. import api

    spec = api.load(Path(args.spec))
    try:
        train(spec, opts)
    except Interrupted as exc:
        return _interrupted(Path(str(exc)) if str(exc) else None)
    return 0


def _interrupted(run_dir: Path | None) -> int:
    where = f" {run_dir}" if run_dir else " RUN_DIR"
    print(f"archspec: interrupted — checkpoint saved; continue with: archspec train --resume{where}",
          file=sys.stderr)  # fmt: skip
    return 130
