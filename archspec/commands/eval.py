"""``archspec eval RUN_DIR|CHECKPOINT``: test metrics of a trained network."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from archspec.commands import add_which


def add_parser(verbs: Any) -> None:
    p = verbs.add_parser(
        "eval",
        help="evaluate a trained run or checkpoint on test data",
        description="Report loss, accuracy and the confusion matrix of a "
        "trained run (its best checkpoint by default) on its test split.",
    )
    p.add_argument("target", type=Path, metavar="RUN_DIR|CHECKPOINT")
    add_which(p)
    p.add_argument(
        "--split", help="split expression, e.g. test or test[8000:] (default: the spec's)"
    )
    p.add_argument("--dataset", help="evaluate on this named dataset instead")
    p.add_argument("--data-dir", type=Path, metavar="DIR")
    p.add_argument("--no-download", action="store_true")
    p.add_argument("--spec", type=Path, help="the spec, for a weights file that does not embed it")
    p.add_argument("--device", default="auto")
    p.add_argument(
        "--no-tta", action="store_true", help="score without the spec's test-time flips (train.tta)"
    )
    p.add_argument("--json", action="store_true", help="print JSON")


def run(args: argparse.Namespace) -> int:
    from archspec.text import terminal
    from archspec.train.evaluate import run_eval
    from archspec.train.metrics import confusion_text

    result = run_eval(
        args.target,
        which=args.which,
        split=args.split,
        dataset=args.dataset,
        data_dir=args.data_dir,
        download=not args.no_download,
        spec_file=args.spec,
        device=args.device,
        tta=not args.no_tta,
    )
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    print(
        f"{terminal(result['checkpoint'])}\n  {terminal(result['split'])}: "
        f"{result['examples']:,} examples\n"
        f"  accuracy {result['accuracy']:.2%}  loss {result['loss']:.4f}"
    )
    if len(result["classes"]) <= 20:  # class names come from the checkpoint: untrusted
        classes = tuple(terminal(name) for name in result["classes"])
        print(confusion_text(result["confusion"], classes))
    return 0
