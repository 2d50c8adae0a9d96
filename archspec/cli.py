"""The command line: parse arguments, call the library, render, map errors to exit codes.

Exit codes: 0 success, 1 invalid spec/data/checkpoint, 2 usage, 3 internal error,
130/143/129 stopped by SIGINT/SIGTERM/SIGHUP, 141 the reader of stdout went away (``| head``).
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import os
import signal
import sys
from collections.abc import Sequence
from types import ModuleType
from typing import NoReturn

from archspec import __version__, signals
from archspec.errors import ArchspecError

# The verbs, in the order `archspec --help` lists them; each is archspec.commands.<verb>.
COMMANDS = (
    "check",
    "train",
    "eval",
    "predict",
    "export",
    "graph",
    "schema",
    "summary",
    "diff",
    "fit",
    "lsp",
    "view",
    "import",
)


def command(verb: str) -> ModuleType:
    """The module of one verb: ``add_parser(subparsers)`` and ``run(args) -> exit code``.
    Imported here, on demand, so ``check`` never loads the training or export commands (no
    import_module: tests/test_safety.py allows no dynamic imports)."""
    match verb:
        case "check":
            from archspec.commands import check

            return check
        case "train":
            from archspec.commands import train

            return train
        case "eval":
            from archspec.commands import eval

            return eval
        case "predict":
            from archspec.commands import predict

            return predict
        case "export":
            from archspec.commands import export

            return export
        case "graph":
            from archspec.commands import graph

            return graph
        case "schema":
            from archspec.commands import schema

            return schema
        case "summary":
            from archspec.commands import summary

            return summary
        case "diff":
            from archspec.commands import diff

            return diff
        case "fit":
            from archspec.commands import fit

            return fit
        case "lsp":
            from archspec.commands import lsp

            return lsp
        case "view":
            from archspec.commands import view

            return view
        case "import":
            from archspec.commands import import_

            return import_
    raise KeyError(verb)


def parser(verb: str | None = None) -> argparse.ArgumentParser:
    """The argument parser; given the ``verb`` about to run, only that verb's module is
    imported (``check`` need not load the training or export commands)."""
    top = argparse.ArgumentParser(
        prog="archspec",
        description="Declarative network specs: validate, infer every shape, build, train.",
    )
    top.add_argument("--version", action="version", version=f"archspec {__version__}")
    verbs = top.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMANDS if verb is None else (verb,):
        command(name).add_parser(verbs)
    return top


def _verb(argv: Sequence[str]) -> str | None:
    """The verb on the command line, if it names one (the top level takes no values)."""
    first = next((arg for arg in argv if not arg.startswith("-")), None)
    return first if first in COMMANDS else None


def as_program() -> None:
    """The process-wide settings of archspec as the program (not when embedded)."""
    # Skip Pydantic's scan of every installed distribution's entry points for plugins at
    # the first validation (archspec uses none; a user's explicit setting wins). Part of
    # `check`'s start-up budget.
    os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")
    _without_plugin_loader()
    # A 1 MB spec becomes ~10^6 live objects (source map, models, Plan) and a 10,000-layer
    # network as many again; at Python's default threshold (700) the collector walks them
    # all again and again: 20% of `check --verify` on the worst cases of issue #13. A
    # larger first generation, as mypy sets it, collects less often; cycles are still
    # collected, so memory stays bounded.
    gc.set_threshold(50_000, 20, 20)


PLUGIN_LOADER = "pydantic.plugin._loader"


def _without_plugin_loader() -> None:
    """With plugins disabled, Pydantic's loader finds none, but importing it imports
    importlib.metadata (email, csv, socket…: ~20 ms of `check`'s start-up, issue 14) at the
    first validation. Stand in for it with a loader that finds none, as the real one would;
    only for the values that disable every plugin, and only before the real one is loaded."""
    if os.environ.get("PYDANTIC_DISABLE_PLUGINS") not in ("__all__", "1", "true"):
        return
    if PLUGIN_LOADER in sys.modules:
        return
    stand_in = ModuleType(PLUGIN_LOADER, "Pydantic plugins are disabled: none to load.")
    stand_in.get_plugins = tuple  # type: ignore[attr-defined]  # no plugins: ()
    sys.modules[PLUGIN_LOADER] = stand_in


def main(argv: Sequence[str] | None = None) -> int:
    words = sys.argv[1:] if argv is None else argv
    if argv is None:
        as_program()
    args = parser(_verb(words)).parse_args(words)
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
    elif argv is None and args.command in QUICK_EXIT and "torch" not in sys.modules:
        _exit_now(code)
    return code


INTERRUPTED = {128 + signum for signum in signals.STOP}  # 130, 143, 129
# Verbs that only read and print: as the program, they leave without the interpreter's
# teardown (freeing every module and object one by one: ~15% of `check`'s whole process,
# issue 14), as mypy does. Not once torch is loaded (`check --verify`): its exit hooks run.
QUICK_EXIT = frozenset({"check", "summary"})


def _exit_now(code: int) -> NoReturn:
    """Flush what was printed and end the process now: no atexit hooks, no teardown."""
    try:
        sys.stdout.flush()
    except BrokenPipeError:  # the reader went away before the last of the table
        code = _broken_pipe()
    with contextlib.suppress(OSError, ValueError):
        sys.stderr.flush()
    os._exit(code)


def _run(args: argparse.Namespace) -> int:
    try:
        code: int = command(args.command).run(args)
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
