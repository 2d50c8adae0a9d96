"""What training, evaluation and prediction take yet: one float input, one output.

A network with several inputs or outputs (``inputs:``/``outputs:``) needs a dataset of
named arrays, and one reading token ids (``dtype: int``) needs int samples that the data
path (which normalises float samples) does not keep: both are refused in one line.
"""

from __future__ import annotations

from archspec.errors import DataError
from archspec.shapes.plan import Plan


def refuse_unsupported(plan: Plan, verb: str) -> None:
    """Raise :class:`DataError` (exit 1) when ``verb`` cannot run ``plan`` yet."""
    if plan.several_io:
        raise DataError(
            f"{verb} a network with several inputs/outputs needs a dataset with named "
            "arrays — not supported yet",
            "check, build, verify and export it; train a one-input, one-output variant",
        )
    inp = plan.all_inputs[0]
    if inp.vocab is not None:
        raise DataError(
            f"{verb} a network on int token ids needs integer samples, which the data "
            "path (float, normalised) does not keep — not supported yet",
            "check, build, verify and export it; train it from Python with your own loop",
        )
