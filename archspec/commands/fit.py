"""``archspec fit SPEC --vary width=16..128 --target params=5M``: search ``vars:`` for a budget."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from archspec import api, io
from archspec.errors import UsageError
from archspec.language.extends import read_spec
from archspec.loader import bundled
from archspec.outputs import fit


def add_parser(verbs: Any) -> None:
    p = verbs.add_parser(
        "fit",
        help="search the spec's vars for values that meet a parameter/MAC/FLOP budget",
        description="Try every combination of the --vary values (kept to each variable's "
        "declared multiple_of/min/max), infer each network statically, and print the best "
        "that meet the --targets. METRIC=V: closest to V (an upper bound when --maximize or "
        "--minimize is given); METRIC<=V, METRIC>=V: bounds. Metrics: "
        + ", ".join(fit.METRICS)
        + ". Values take k, M, G suffixes (5M = 5,000,000).",
    )
    p.add_argument("spec", metavar="SPEC", help="the spec (a file or a bundled name)")
    p.add_argument(
        "--vary",
        action="append",
        default=[],
        metavar="NAME=RANGE",
        type=fit.parse_vary,
        help="a variable and its values: width=16..128, width=16..128:16 or depth=1,2,4",
    )
    p.add_argument(
        "--target",
        action="append",
        default=[],
        metavar="GOAL",
        help="params=5M, macs<=600M, flops>=1G (repeatable)",
    )
    goal = p.add_mutually_exclusive_group()
    goal.add_argument("--maximize", metavar="METRIC", help="the largest METRIC within the bounds")
    goal.add_argument("--minimize", metavar="METRIC", help="the smallest METRIC within the bounds")
    p.add_argument("--top", type=int, default=5, metavar="N", help="how many to print (5)")
    p.add_argument("--write", metavar="OUT.yaml", help="write the best as a spec extending SPEC")
    p.add_argument("--json", action="store_true", help="print JSON")


def run(args: argparse.Namespace) -> int:
    targets = [fit.parse_target(text) for text in args.target]
    objective = _objective(args)
    if not args.vary:
        raise UsageError("give at least one --vary NAME=RANGE", "e.g. --vary width=16..128")
    if not targets and objective is None:
        raise UsageError(
            "give a --target (params=5M, macs<=600M) or --maximize/--minimize METRIC",
            "e.g. --target params=5M",
        )
    if args.top < 1:
        raise UsageError("--top must be at least 1")
    path = bundled.resolve(args.spec)
    api.load(path)  # an invalid spec fails here, located, before any search
    doc = read_spec(path)
    varies, skipped = fit.grid(doc, args.vary)
    result = fit.search(doc, path, varies, targets, objective, args.top)
    if args.json:
        print(_json(args.spec, varies, targets, result))
    else:
        _print(args.spec, varies, skipped, targets, objective, result)
    if not result.best:
        print(
            "archspec: no combination meets the targets — widen --vary or relax a bound",
            file=sys.stderr,
        )
        return 1
    if args.write:
        out = Path(args.write)
        io.write_text(out, fit.child_spec(path, out, result.best[0]))
        if not args.json:
            print(f"wrote {out}: {result.best[0].label()}")
    return 0


def _objective(args: argparse.Namespace) -> tuple[str, int] | None:
    if args.maximize:
        return fit.check_metric(args.maximize, "--maximize"), 1
    if args.minimize:
        return fit.check_metric(args.minimize, "--minimize"), -1
    return None


def _print(
    spec: str,
    varies: list[fit.Vary],
    skipped: dict[str, int],
    targets: list[fit.Target],
    objective: tuple[str, int] | None,
    result: fit.Result,
) -> None:
    for v in varies:
        ruled_out = f" ({skipped[v.name]} ruled out by its declaration)" if skipped[v.name] else ""
        print(f"{v.name}: {len(v.values)} values, {v.values[0]}..{v.values[-1]}{ruled_out}")
    bounds = [
        f"{t.metric}<={t.value:,.0f}" if objective is not None and t.op == "=" else str(t)
        for t in targets
    ]
    goal = ", ".join(bounds)
    if objective is not None:
        goal += f"{', ' if goal else ''}{'max' if objective[1] > 0 else 'min'}imize {objective[0]}"
    print(f"goal: {goal}")
    if result.best:
        names = list(result.best[0].values)
        metrics = list(result.best[0].totals)
        header = ["#", *names, *metrics]
        rows = [
            [str(i), *(str(c.values[n]) for n in names), *(f"{c.totals[m]:,}" for m in metrics)]
            for i, c in enumerate(result.best, start=1)
        ]
        widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
        for r in [header, *rows]:
            print("  ".join(cell.rjust(w) for cell, w in zip(r, widths, strict=True)))
    print(
        f"evaluated {result.evaluated:,} combinations in {result.seconds:.2f} s "
        f"({result.rate:,.0f}/s): {result.invalid:,} invalid, "
        f"{result.out_of_bounds:,} outside the bounds"
    )


def _json(spec: str, varies: list[fit.Vary], targets: list[fit.Target], r: fit.Result) -> str:
    return json.dumps(
        {
            "spec": spec,
            "vary": {v.name: list(v.values) for v in varies},
            "targets": [str(t) for t in targets],
            "best": [{"values": dict(c.values), "totals": dict(c.totals)} for c in r.best],
            "evaluated": r.evaluated,
            "invalid": r.invalid,
            "out_of_bounds": r.out_of_bounds,
            "seconds": r.seconds,
        },
        indent=2,
    )
