"""``archspec summary SPEC...``: an alias of ``archspec check --markdown SPEC...``.

The verb is built from ``check``'s own parser, so it takes exactly check's options,
now and as they grow; ``run`` switches Markdown on and hands over to check.
"""

from __future__ import annotations

import argparse
from typing import Any

from archspec.commands import check


class _AsSummary:
    """Stands in for the subparsers object: check's ``add_parser`` registers "summary"."""

    def __init__(self, verbs: Any) -> None:
        self.verbs = verbs

    def add_parser(self, name: str, **kwargs: Any) -> Any:
        kwargs["help"] = "print the layer table of specs as Markdown (check --markdown)"
        kwargs["description"] = "Same as `archspec check --markdown`: a Markdown table of every "
        kwargs["description"] += "layer, for papers and READMEs."
        return self.verbs.add_parser("summary", **kwargs)


def add_parser(verbs: Any) -> None:
    check.add_parser(_AsSummary(verbs))


def run(args: argparse.Namespace) -> int:
    from archspec.loader import bundled

    args.markdown = True
    args.specs = [str(bundled.resolve(spec)) for spec in args.specs]
    return check.run(args)
