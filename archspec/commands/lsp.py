"""``archspec lsp``: the language server on stdin/stdout, for editors."""

from __future__ import annotations

import argparse
from typing import Any


def add_parser(verbs: Any) -> None:
    verbs.add_parser(
        "lsp",
        help="run the language server (diagnostics, shapes, hover, completion) on stdio",
        description="A Language Server Protocol server on stdin/stdout: every problem "
        "`archspec check` finds as you type, each layer's output shape as an inlay hint, "
        "hover details, completion, go-to-definition and the layer outline. Needs the "
        "`lsp` extra (pip install 'archspec[lsp]').",
    )


def run(args: argparse.Namespace) -> int:
    from archspec.errors import UsageError

    try:
        from archspec.outputs.lsp.server import serve
    except ImportError as exc:  # pygls/lsprotocol are an optional extra
        raise UsageError(
            f"the language server needs {exc.name}: pip install 'archspec[lsp]'"
        ) from None
    serve()
    return 0
