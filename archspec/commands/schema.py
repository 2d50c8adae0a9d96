"""``archspec schema [-o FILE]``: the JSON Schema of the spec language, for editors."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any


def add_parser(verbs: Any) -> None:
    p = verbs.add_parser(
        "schema",
        help="print the JSON Schema of spec files (for editors)",
        description="Print (or write) the JSON Schema (draft 2020-12) of the "
        "spec language. VS Code's YAML extension uses it when a spec's first "
        "line is `# yaml-language-server: $schema=PATH`.",
    )
    p.add_argument(
        "-o",
        "--output",
        type=Path,
        metavar="FILE",
        help="write the schema to FILE (atomically) instead of printing it",
    )


def run(args: argparse.Namespace) -> int:
    from archspec.io import write_text
    from archspec.outputs import schema

    text = schema.render()
    if args.output is None:
        print(text, end="")
    else:
        write_text(args.output, text)
    return 0
