"""``archspec diff OLD NEW``: which layers were added, removed or changed, and the totals.

Exit status as ``diff``'s: 0 the networks are identical, 1 they differ, 2 trouble (a
spec that does not load or is invalid, a bad option) — so scripts can tell a difference
from an error.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from archspec import api
from archspec.commands import add_max_layers, max_layers
from archspec.errors import ArchspecError
from archspec.loader import bundled
from archspec.outputs import diff

TROUBLE = 2


def add_parser(verbs: Any) -> None:
    p = verbs.add_parser(
        "diff",
        help="compare two specs layer by layer (exit 0 same, 1 different, 2 trouble)",
        description="Compare two specs layer by layer: layers added, removed and changed "
        "(matched by name, then by position), with their shape, parameters, MACs and "
        "receptive field, and the totals before and after. Exit status as diff's: "
        "0 identical, 1 different, 2 trouble (an invalid spec, a bad option).",
    )
    p.add_argument("old", metavar="OLD", help="the spec before (a file or a bundled name)")
    p.add_argument("new", metavar="NEW", help="the spec after")
    out = p.add_mutually_exclusive_group()
    out.add_argument("--json", action="store_true", help="print JSON")
    out.add_argument("--markdown", action="store_true", help="print Markdown (pull requests)")
    p.add_argument("--all", action="store_true", help="also list the unchanged layers")
    add_max_layers(p)


def run(args: argparse.Namespace) -> int:
    try:
        limit = max_layers(args)
        old, new = (
            api.load(bundled.resolve(path), max_layers=limit) for path in (args.old, args.new)
        )
    except ArchspecError as exc:  # any trouble is 2 here: 1 means "different"
        print(f"archspec: {exc.render()}", file=sys.stderr)
        return TROUBLE
    result = diff.diff_plans(old.plan(), new.plan(), diff.train_keys_changed(old.data, new.data))
    if args.json:
        print(diff.to_json(result, args.old, args.new))
    elif args.markdown:
        print(diff.markdown(result, args.all))
    elif sys.stdout.isatty():
        diff.rich(result, sys.stdout, args.all)
    else:
        print(diff.plain(result, args.all))
    return 0 if result.identical else 1


__all__ = ["add_parser", "run"]
