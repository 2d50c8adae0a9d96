"""One module per CLI verb: ``add_parser(subparsers)`` and ``run(args) -> exit code``."""

from __future__ import annotations

import argparse


def add_which(p: argparse.ArgumentParser) -> None:
    """``--which``: the checkpoint of a run directory that eval, export and predict read."""
    p.add_argument(
        "--which",
        choices=("best", "last", "final"),
        default="best",
        help="which checkpoint of a run directory (default: best)",
    )
