"""``archspec import SOURCE -o OUT.yaml``: turn a torch module, an ONNX file, a Keras config
or an Ultralytics model YAML into a spec."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from archspec.commands.check import parse_shape
from archspec.errors import UsageError
from archspec.language.load import DEFAULT_MAX_LAYERS


def add_parser(verbs: Any) -> None:
    p = verbs.add_parser(
        "import",
        help="turn a torch module, an ONNX file, a Keras JSON config or an Ultralytics YAML "
        "into a spec",
        description="Turn an existing model into a checked spec. SOURCE is a torch module "
        "factory `pkg.module:factory` (this IMPORTS AND RUNS that Python code: it needs "
        "--trust-code and --input), an ONNX file (.onnx, parsed as data: nothing runs, "
        "external data is refused; --weights writes its initializers), a Keras "
        "`model.to_json()` file (.json) or an Ultralytics model YAML (yolov8n.yaml: "
        "backbone/head rows; .yaml/.yml) — both read as data, nothing is imported or run. "
        "Operations archspec cannot express are listed, one line each, and nothing is "
        "written (exit 1) unless --partial.",
    )
    p.add_argument(
        "source",
        metavar="SOURCE",
        help="pkg.module:factory, a .onnx file, a Keras .json file or an Ultralytics .yaml",
    )
    p.add_argument("-o", "--output", required=True, type=Path, metavar="OUT.yaml")
    p.add_argument(
        "--input",
        metavar="C×H×W",
        type=parse_shape,
        help="the input shape without the batch axis (torch sources; Ultralytics YAML: "
        "default ch×640×640), e.g. 3x224x224",
    )
    p.add_argument(
        "--trust-code",
        action="store_true",
        help="allow importing and running SOURCE's Python code (torch sources only)",
    )
    p.add_argument(
        "--weights",
        type=Path,
        metavar="OUT.safetensors",
        help="also write the weights under the spec's layer names (torch and ONNX sources)",
    )
    p.add_argument(
        "--partial",
        action="store_true",
        help="write the spec up to the first unsupported operation instead of failing",
    )
    p.add_argument(
        "--capture",
        choices=("auto", "fx", "export"),
        help="torch sources: how the forward pass is captured — fx (torch.fx.symbolic_trace), "
        "export (torch.export, which follows Python control flow on shapes) or auto (default: "
        "fx, and export where fx cannot trace the model)",
    )
    p.add_argument("--name", help="the spec's name (default: from the source)")
    p.add_argument(
        "--scale",
        help="Ultralytics YAML: the scale of `scales:` to build (default: from the file name, "
        "yolov8n.yaml → n, as Ultralytics does)",
    )
    p.add_argument(
        "--max-layers",
        type=int,
        default=DEFAULT_MAX_LAYERS,
        metavar="N",
        help="refuse ONNX files with more nodes, and Ultralytics models that expand to more "
        f"layers (default {DEFAULT_MAX_LAYERS:,})",
    )


def run(args: argparse.Namespace) -> int:
    from archspec.importers import run as importing

    source: str = args.source
    if args.max_layers < 1:
        raise UsageError("--max-layers must be at least 1")
    torch_source = ":" in source and not Path(source).exists()
    if args.capture is not None and not torch_source:
        raise UsageError(
            "--capture is for torch sources (pkg.module:factory)",
            "ONNX, Keras and Ultralytics files are read as data, nothing is captured",
        )
    if source.lower().endswith(".onnx"):
        if args.input is not None or args.trust_code:
            raise UsageError(
                "--input and --trust-code are for torch sources",
                "an ONNX file is read as data, its input shape from the file",
            )
        result = importing.import_onnx(
            Path(source), args.output, args.weights, args.partial, args.name, args.max_layers
        )
    elif source.lower().endswith((".yaml", ".yml")):
        if args.weights is not None or args.trust_code or args.partial:
            raise UsageError(
                "--weights, --trust-code and --partial are not for an Ultralytics model YAML",
                "it holds no weights, is read as data, and is imported whole or not at all",
            )
        result = importing.import_ultralytics(
            Path(source),
            args.output,
            scale=args.scale,
            input_shape=args.input,
            max_layers=args.max_layers,
            name=args.name,
        )
    elif source.lower().endswith(".json"):
        if args.weights is not None or args.input is not None:
            raise UsageError(
                "--weights and --input are for torch sources",
                "a Keras config holds no weights, and its input shape is read from it",
            )
        result = importing.import_keras(Path(source), args.output, args.partial, args.name)
    elif torch_source:
        if not args.trust_code:
            raise UsageError(
                f"importing {source} imports and runs its Python code",
                "pass --trust-code if you trust it",
            )
        if args.input is None:
            raise UsageError("a torch source needs --input", "e.g. --input 3x224x224")
        result = importing.import_torch(
            source,
            args.input,
            args.output,
            args.weights,
            args.partial,
            args.name,
            capture=args.capture or "auto",
        )
    else:
        raise UsageError(
            f"cannot tell what '{source}' is",
            "give pkg.module:factory (a torch module), a .onnx file, a Keras "
            "model.to_json() file (.json) or an Ultralytics model YAML (.yaml)",
        )
    _report(args, result)
    return 0


def _report(args: argparse.Namespace, result: Any) -> None:
    plan = result.spec.plan()
    lines = len(result.text.splitlines())
    print(
        f"wrote {args.output} ({len(plan.nodes)} layers, {plan.total_params:,} parameters, "
        f"{lines} lines)"
    )
    if args.weights is not None:
        print(f"wrote {args.weights} ({result.tensors} tensors under the spec's layer names)")
    if result.max_diff is not None:
        print(
            "outputs equal to the source's on a random input "
            f"(max |difference| {result.max_diff:.2g})"
        )
        if result.constant_output:
            print(
                "archspec: note: the source's output is the same for every input (a head "
                "initialised to zero?), so equal outputs check little: compare with trained "
                "weights",
                file=sys.stderr,
            )
    for note in result.notes:
        print(f"archspec: note: {note}", file=sys.stderr)
    for name, path in sorted(result.renamed.items()):
        print(f"renamed: {path} → {name}", file=sys.stderr)
    if result.left_out:
        shown = ", ".join(result.left_out[:5])
        more = f" and {len(result.left_out) - 5} more" if len(result.left_out) > 5 else ""
        print(
            f"archspec: note: not used by the forward pass, left out: {shown}{more}",
            file=sys.stderr,
        )
    if result.stopped is not None:
        print(
            f"archspec: --partial: stopped at {result.stopped.line()}; the spec ends before it",
            file=sys.stderr,
        )
