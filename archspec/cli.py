"""The command line: parse arguments, call the library, render, map errors to exit codes.

Exit codes: 0 success, 1 invalid spec/data/checkpoint, 2 usage, 3 internal error,
130/143/129 stopped by SIGINT/SIGTERM/SIGHUP, 141 the reader of stdout went away (``| head``).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys
from collections.abc import Sequence

from archspec import __version__, signals
from archspec.commands import check, eval, export, graph, predict, schema, summary, train
from archspec.errors import ArchspecError

COMMANDS = {
    "check": check,
    "train": train,
    "eval": eval,
    "predict": predict,
    "export": export,
    "graph": graph,
    "schema": schema,
    "summary": summary,
}


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(
        prog="archspec",
        description="Declarative network specs: validate, infer every shape, build, train.",
    )
    top.add_argument("--version", action="version", version=f"archspec {__version__}")
    verbs = top.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module in COMMANDS.values():
        module.add_parser(verbs)
    return top


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        with signals.handled():  # SIGTERM and SIGHUP stop like Ctrl-C
            code = _run(args)
    except BrokenPipeError:  # `archspec check … | head -1`: the reader has gone
        return _broken_pipe()
    except KeyboardInterrupt as exc:  # another Ctrl-C while the first was being reported
        code = signals.exit_code(exc)
    if code in INTERRUPTED and argv is None:
        # Interrupted, and everything is saved. A further Ctrl-C while the interpreter exits
        # (torch's teardown takes a moment) would kill the process by SIGINT mid-exit, or
        # print a traceback from an atexit hook: ignore it. Only as the program itself
        # (argv None), never when called as a function (tests, embedding).
        for signum in signals.STOP:
            signal.signal(signum, signal.SIG_IGN)
    return code


INTERRUPTED = {128 + signum for signum in signals.STOP}  # 130, 143, 129


def _run(args: argparse.Namespace) -> int:
    try:
        code: int = COMMANDS[args.command].run(args)
        return code
    except ArchspecError as exc:
        _say(f"archspec: {exc.render()}")
        return exc.exit_code
    except KeyboardInterrupt as exc:
        how = f" by {signals.name(exc.signum)}" if isinstance(exc, signals.Terminated) else ""
        _say(f"archspec: interrupted{how}")
        return signals.exit_code(exc)
    except BrokenPipeError:
        raise
    except Exception as exc:  # a bug in archspec, not in the user's input
        if os.environ.get("ARCHSPEC_DEBUG"):
            raise
        _say(
            f"archspec: internal error: {type(exc).__name__}: {exc} — this is a bug; "
            "rerun with ARCHSPEC_DEBUG=1 for a traceback and report it"
        )
        return 3


def _say(message: str) -> None:
    """One message on stderr; a closed stderr (``2>&1 | head``) is not an error of its own."""
    with contextlib.suppress(BrokenPipeError):
        print(message, file=sys.stderr)


SIGPIPE_EXIT = 141  # 128 + SIGPIPE: what a shell reports for a writer whose reader went away


def _broken_pipe() -> int:
    """Exit quietly: point stdout at /dev/null so the interpreter's final flush of the
    output still buffered does not raise BrokenPipeError again at shutdown."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError, AttributeError):  # no real stdout (e.g. captured in tests)
        pass
    return SIGPIPE_EXIT
