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


def add_max_layers(p: argparse.ArgumentParser) -> None:
    """``--max-layers N``: the layer limit every command that reads a spec enforces."""
    from archspec.language.load import DEFAULT_MAX_LAYERS

    p.add_argument(
        "--max-layers",
        type=int,
        default=DEFAULT_MAX_LAYERS,
        metavar="N",
        help=f"refuse specs that expand to more layers (default {DEFAULT_MAX_LAYERS:,})",
    )


def max_layers(args: argparse.Namespace) -> int:
    """``args.max_layers``, refused (exit 2) below 1."""
    from archspec.errors import UsageError

    if args.max_layers < 1:
        raise UsageError(f"--max-layers must be at least 1; received {args.max_layers}")
    return int(args.max_layers)
