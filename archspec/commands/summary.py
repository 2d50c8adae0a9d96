"""``archspec summary SPEC...``: ``archspec check --markdown SPEC...`` under its own name.

It takes exactly check's options (:func:`check.add_options`), now and as they grow, and
runs the same :func:`check.run_check` with Markdown on.
"""

from __future__ import annotations

import argparse
from typing import Any

from archspec.commands import check


def add_parser(verbs: Any) -> None:
    p = verbs.add_parser(
        "summary",
        help="print the layer table of specs as Markdown (check --markdown)",
        description="Same as `archspec check --markdown`: a Markdown table of every "
        "layer, for papers and READMEs.",
    )
    check.add_options(p)


def run(args: argparse.Namespace) -> int:
    from archspec.loader import bundled

    args.markdown = True
    args.specs = [str(bundled.resolve(spec)) for spec in args.specs]
    return check.run_check(args)
