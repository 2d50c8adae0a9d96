"""The command line: parse arguments, call the library, render, map errors to exit codes.

Exit codes: 0 success, 1 invalid spec/data/checkpoint, 2 usage, 3 internal error,
130 interrupted.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from . import __version__
from .commands import check, eval, train
from .errors import ArchspecError

COMMANDS = {"check": check, "train": train, "eval": eval}


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(
        prog="archspec",
        description="Declarative network specs: validate, infer every shape, build, train.",
    )
    top.add_argument("--version", action="version", version=f"archspec {__version__}")
    verbs = top.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, module in COMMANDS.items():
        module.add_parser(verbs)  # type: ignore[attr-defined]
    return top


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        code: int = COMMANDS[args.command].run(args)  # type: ignore[attr-defined]
        return code
    except ArchspecError as exc:
        print(f"archspec: {exc.render()}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("archspec: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # a bug in archspec, not in the user's input
        if os.environ.get("ARCHSPEC_DEBUG"):
            raise
        print(f"archspec: internal error: {type(exc).__name__}: {exc} — this is a bug; "
              "rerun with ARCHSPEC_DEBUG=1 for a traceback and report it", file=sys.stderr)  # fmt: skip
        return 3
