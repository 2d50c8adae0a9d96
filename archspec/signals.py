"""Stop signals: SIGINT (Ctrl-C), SIGTERM (batch schedulers, ``kill``) and SIGHUP (a closed
terminal) all mean "stop, keeping what is done".

While the training loop runs it handles them itself (checkpoint at the next step, then
:class:`~archspec.train.loop.Interrupted`). Everywhere else, :func:`handled` makes SIGTERM and
SIGHUP raise :class:`Terminated` — a ``KeyboardInterrupt``, so every ``finally`` and cleanup
that runs for Ctrl-C runs for them too — and the CLI exits ``128 + signal`` (130, 143, 129), as
a shell reports a process that a signal stopped. Pure Python; no archspec imports.
"""

from __future__ import annotations

import contextlib
import signal
from collections.abc import Iterator
from types import FrameType

STOP = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


class Terminated(KeyboardInterrupt):
    """SIGTERM or SIGHUP arrived where archspec had nothing to save."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def name(signum: int) -> str:
    return signal.Signals(signum).name


def exit_code(exc: BaseException) -> int:
    """``128 + signal``: 130 for Ctrl-C, 143 for SIGTERM, 129 for SIGHUP."""
    return 128 + int(getattr(exc, "signum", signal.SIGINT))


def raise_terminated(signum: int, frame: FrameType | None) -> None:
    raise Terminated(signum)


def immediate(signum: int) -> None:
    """From now on ``signum`` stops at once (a second Ctrl-C or SIGTERM)."""
    with contextlib.suppress(ValueError):  # not the main thread
        if signum == signal.SIGINT:
            signal.signal(signum, signal.default_int_handler)
        else:
            signal.signal(signum, raise_terminated)


@contextlib.contextmanager
def handled() -> Iterator[None]:
    """SIGTERM and SIGHUP raise :class:`Terminated` inside the block (main thread only);
    the previous handlers come back afterwards."""
    previous: dict[int, object] = {}
    for stop in (signal.SIGTERM, signal.SIGHUP):
        with contextlib.suppress(ValueError, OSError):
            previous[stop] = signal.signal(stop, raise_terminated)
    try:
        yield
    finally:
        for signum, handler in previous.items():
            with contextlib.suppress(ValueError, OSError, TypeError):
                signal.signal(signum, handler)  # type: ignore[arg-type]
