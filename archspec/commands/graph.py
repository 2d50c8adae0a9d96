"""``archspec graph SPEC -o FILE``: a diagram of the network (Mermaid, DOT, SVG, PNG)."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from archspec.commands import add_max_layers, max_layers
from archspec.commands.check import parse_shape


def add_parser(verbs: Any) -> None:
    p = verbs.add_parser(
        "graph",
        help="draw the network as Mermaid, DOT, SVG or PNG",
        description="Draw every layer (name, kind, parameters, output shape) "
        "and every connection, skip connections included. SVG and PNG need "
        "Graphviz's `dot` program.",
    )
    p.add_argument("spec", metavar="SPEC", help="spec file, or the name of a bundled spec")
    p.add_argument(
        "-o",
        "--output",
        required=True,
        metavar="FILE",
        help="output file (.mmd, .dot, .svg, .png); - prints mermaid/dot text",
    )
    p.add_argument(
        "--format",
        choices=("mermaid", "dot", "svg", "png"),
        help="output format (default: from the file's extension)",
    )
    p.add_argument(
        "--depth", type=int, metavar="N", help="collapse blocks nested deeper than N into one box"
    )
    p.add_argument(
        "--input",
        metavar="C×H×W",
        type=parse_shape,
        help="draw the network at another input size, e.g. 3x64x64",
    )
    add_max_layers(p)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from archspec import api
    from archspec.errors import UsageError
    from archspec.loader import bundled
    from archspec.outputs import diagram

    if args.depth is not None and args.depth < 1:
        raise UsageError(f"--depth must be at least 1; received {args.depth}")
    max_layers(args)
    to_stdout = args.output == "-"
    if to_stdout and args.format is None:
        raise UsageError("-o - prints text: say which with --format mermaid or --format dot")
    fmt = diagram.format_for(args.output, args.format)
    if to_stdout and fmt not in ("mermaid", "dot"):
        raise UsageError(f"{fmt} is binary or an image: write it to a file, not -o -")
    spec = api.load(bundled.resolve(args.spec), input_shape=args.input, max_layers=args.max_layers)
    plan = spec.plan(args.input)
    if to_stdout:
        sys.stdout.write(diagram.render(plan, fmt, args.depth).decode())
        return 0
    diagram.write(plan, Path(args.output), fmt, args.depth)
    print(f"wrote {args.output} ({fmt}, {len(plan.nodes)} layers)")
    return 0
