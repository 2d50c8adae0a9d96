"""``archspec export RUN_DIR|SPEC -o FILE``: weights or a runnable program of the network."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from archspec.commands import add_max_layers, add_which, max_layers

FORMATS = ("safetensors", "torchscript", "onnx", "exported")


def add_parser(verbs: Any) -> None:
    p = verbs.add_parser(
        "export",
        help="export a trained (or initialised) network",
        description="Export the network of a run directory or checkpoint "
        "(trained weights) or of a spec (freshly initialised, seeded). Formats: "
        "safetensors (weights + spec), torchscript, onnx (needs "
        "archspec[onnx]), exported (torch.export .pt2). TorchScript and .pt2 "
        "files run code when loaded: load only files you trust.",
    )
    p.add_argument(
        "target",
        metavar="RUN_DIR|CHECKPOINT|SPEC",
        help="a run directory, a .safetensors checkpoint, or a spec",
    )
    p.add_argument(
        "-o",
        "--output",
        required=True,
        type=Path,
        metavar="FILE",
        help="output file (.safetensors, .pt, .onnx, .pt2)",
    )
    p.add_argument("--format", choices=FORMATS, help="default: from the file's extension")
    add_which(p)
    p.add_argument(
        "--seed", type=int, help="seed for a spec's initial weights (default: train.seed, else 0)"
    )
    add_max_layers(p)
    p.add_argument(
        "--dynamic",
        nargs="?",
        const="",
        metavar="NAMES",
        help="symbolic input sizes (exported and onnx formats): every spatial axis (L; H, W; "
        "D, H, W) and sequence length (T) of every input, or only the comma-separated "
        "NAMES; the program accepts exactly the sizes the network can run",
    )
    p.add_argument(
        "--size",
        action="append",
        default=[],
        metavar="NAME=LO..HI",
        help="bounds of a symbolic size (default 1..65536), e.g. H=32..1024; repeatable",
    )


def run(args: argparse.Namespace) -> int:
    from archspec.errors import UsageError
    from archspec.outputs import export

    limit = max_layers(args)
    fmt = export.format_for(str(args.output), args.format)
    if args.size and args.dynamic is None:
        raise UsageError("--size needs --dynamic", "add --dynamic (every axis) or --dynamic H,W")
    if args.dynamic is not None and fmt not in export.DYNAMIC_FORMATS:
        raise UsageError(
            f"--dynamic: the {fmt} format has no symbolic input sizes",
            "export to .pt2 (exported) or .onnx",
        )
    if fmt == "onnx":
        export.require_onnx()  # before the slow part
    source = export.load_source(args.target, which=args.which, seed=args.seed, max_layers=limit)
    legal = _legal_sets(source, args.dynamic, args.size) if args.dynamic is not None else None
    if not source.trained:
        print(
            f"archspec: note: {args.target} is a spec, not a trained run: exporting freshly "
            f"initialised weights (seed {source.meta['seed']})",
            file=sys.stderr,
        )
    written = export.export(source, fmt, args.output, legal)
    params = sum(p.numel() for p in source.network.parameters())
    print(f"wrote {args.output} ({fmt}, {params:,} parameters, from {source.origin})")
    for axis in written.axes:
        print(f"  {axis.legal.describe()}  →  {axis.torch_text()}")
    if not written.exact:
        print(
            "archspec: note: torch.export kept its 0/1 specialisation for this network: the "
            "program may refuse a legal size at which an inner size is 1",
            file=sys.stderr,
        )
    return 0


def _legal_sets(source: Any, names: str, sizes: list[str]) -> Any:
    """``--dynamic [NAMES]`` and ``--size``: the symbols and their legal sets."""
    from archspec.outputs import dynamic

    chosen = [n.strip() for n in names.split(",") if n.strip()] or None
    plan = source.spec.plan()
    return dynamic.legal_sets(plan, dynamic.choose_symbols(plan, chosen, sizes))
