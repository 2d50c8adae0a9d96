"""``archspec view SPEC|RUN``: the network as one interactive, self-contained HTML page."""

from __future__ import annotations

import argparse
from typing import Any

from archspec.commands.check import parse_shape


def add_parser(verbs: Any) -> None:
    p = verbs.add_parser(
        "view",
        help="write (or serve) an interactive HTML page of the network",
        description="One self-contained HTML file (no network access needed): the network as "
        "a graph with collapsible blocks and skip connections, each layer's shape, details on "
        "click, totals, and a receptive-field picker. For a run directory, also the training "
        "curves and the confusion matrix.",
    )
    p.add_argument("target", metavar="SPEC|RUN", help="spec file, bundled spec name or run dir")
    p.add_argument("-o", "--output", metavar="FILE", help="write the page here (e.g. view.html)")
    p.add_argument(
        "--serve",
        action="store_true",
        help="serve the page on 127.0.0.1 until Ctrl-C instead of writing it",
    )
    p.add_argument("--port", type=int, default=0, help="port for --serve (default: any free)")
    p.add_argument(
        "--image",
        metavar="FILE",
        help="a sample image (PNG/JPEG…) to draw receptive fields on, for 2-D specs",
    )
    p.add_argument(
        "--input",
        metavar="C×H×W",
        type=parse_shape,
        help="view the network at another input size, e.g. 3x64x64",
    )


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from archspec.errors import UsageError
    from archspec.outputs import view

    if args.serve == (args.output is not None):
        raise UsageError("say where the page goes: either -o view.html, or --serve (one of them)")
    page = view.page(
        args.target, image=Path(args.image) if args.image else None, input_shape=args.input
    )
    if args.serve:
        view.serve(page, args.port)
        return 130
    view.write(page, Path(args.output))
    print(f"wrote {args.output}")
    return 0
