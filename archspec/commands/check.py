"""``archspec check SPEC...``: validate, infer and print every layer's shape."""

from __future__ import annotations

import argparse
import re
import sys
from typing import Any

from archspec import api
from archspec.commands import add_max_layers, max_layers
from archspec.errors import SpecError, UsageError
from archspec.loader import bundled
from archspec.outputs import report
from archspec.shapes import counting, memory
from archspec.shapes.plan import Plan, Shape


def add_parser(verbs: Any) -> None:
    p = verbs.add_parser(
        "check",
        help="validate specs and print every layer's shape",
        description="Validate specs, infer every shape, print a table per spec.",
    )
    add_options(p)


def add_options(p: argparse.ArgumentParser) -> None:
    """check's options; ``summary`` takes the same ones, now and as they grow."""
    p.add_argument("specs", nargs="+", metavar="SPEC", help="spec files (.yaml)")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.add_argument("--markdown", action="store_true", help="print a Markdown table")
    p.add_argument(
        "--input",
        metavar="C×H×W",
        type=parse_shape,
        help="re-check at another input size, e.g. 3x64x64",
    )
    p.add_argument(
        "--depth",
        type=int,
        metavar="N",
        help="collapse layers nested deeper than N blocks into one row",
    )
    p.add_argument(
        "--verify",
        action="store_true",
        help="also build the module (on the meta device) and confirm torch's shapes",
    )
    p.add_argument(
        "--flops",
        action="store_true",
        help="count FLOPs (archspec's rule: 2 per MAC, plus bias, normalisation, "
        "activations, pooling, merges) instead of MACs",
    )
    p.add_argument(
        "--convention",
        choices=counting.CONVENTIONS,
        default=counting.DEFAULT,
        help="count MACs the way a tool does, reproducing its total exactly: "
        + ", ".join(counting.CONVENTIONS)
        + " (default archspec)",
    )
    add_max_layers(p)
    p.add_argument(
        "--memory",
        action="store_true",
        help="also print each layer's memory (parameters, gradients, optimizer state, what "
        "backward keeps, live activations) and the training and inference peaks",
    )
    p.add_argument(
        "--batch",
        metavar="N",
        help="the batch size for --memory (default: train.batch_size, else 1)",
    )
    p.add_argument(
        "--no-memory-check",
        action="store_true",
        help="do not refuse specs whose training would need more memory than this "
        "machine has available (for specs meant for bigger machines)",
    )


_SHAPE = re.compile(r"^\[?\s*\d+(\s*[x×,]\s*\d+){0,3}\s*\]?$")


def parse_shape(text: str) -> Shape:
    """``3x64x64`` / ``3×64×64`` / ``3,64,64`` → ``(3, 64, 64)``."""
    if not _SHAPE.match(text.strip()):
        raise argparse.ArgumentTypeError(
            f"'{text}' is not a shape: write channels then sizes, e.g. 1x28x28 or 3,224,224"
        )
    dims = tuple(int(d) for d in re.findall(r"\d+", text))
    if min(dims) < 1:
        raise argparse.ArgumentTypeError(f"'{text}': every dimension must be at least 1")
    return dims


def run(args: argparse.Namespace) -> int:
    return run_check(args)


def run_check(args: argparse.Namespace) -> int:
    """Check every spec of ``args.specs``, print a table (or JSON) each; 1 if any failed."""
    if args.depth is not None and args.depth < 1:
        raise UsageError("--depth must be at least 1")
    max_layers(args)
    if args.flops and args.convention != counting.DEFAULT:
        raise UsageError(
            f"--flops counts archspec's FLOPs; --convention {args.convention} counts that "
            "tool's multiply-adds",
            "use one of them",
        )
    args.count = "flops" if args.flops else args.convention
    args.profiles = _memory_options(args)
    results: list[tuple[str, Plan | None, list[dict[str, Any]]]] = []
    for file in args.specs:
        results.append(_check_one(file, args))
    if args.json:
        print(_with_memory(report.plan_json(results, args.count), args.profiles))
    else:
        _print_tables(results, args)
    return 0 if all(plan is not None for _, plan, _ in results) else 1


def _check_one(
    file: str, args: argparse.Namespace
) -> tuple[str, Plan | None, list[dict[str, Any]]]:
    try:
        spec = api.load(bundled.resolve(file), input_shape=args.input, max_layers=args.max_layers)
        plan = spec.plan(args.input)
        if not args.no_memory_check:
            _check_memory(spec, plan)
        if args.verify:
            _verify(spec, plan)
        if args.profiles is not None:
            args.profiles[file] = memory.profile(plan, spec.train, args.batch)
    except SpecError as exc:
        if not args.json:
            print(exc.render(), file=sys.stderr)
            return file, None, []
        return file, None, [p.as_dict() for p in exc.problems]
    return file, plan, []


def _check_memory(spec: api.Spec, plan: Plan) -> None:
    """Refuse, located at the heaviest layer, a spec whose training would not fit in the
    memory available here: parameters + gradients + optimizer state + activations for the
    spec's train.batch_size (1 without a train section). Torch-free, nothing allocated."""
    problem = memory.check_plan(plan, spec.train, memory.available_bytes())
    if problem is not None:
        raise SpecError([problem])


def _verify(spec: api.Spec, plan: Plan) -> None:
    from archspec.compile.verify import verify

    verify(plan)


def _print_tables(
    results: list[tuple[str, Plan | None, list[dict[str, Any]]]], args: argparse.Namespace
) -> None:
    for i, (file, plan, _) in enumerate(results):
        if plan is None:
            continue
        if i:
            print()
        if args.markdown:
            print(report.markdown_table(plan, args.depth, args.count))
        elif sys.stdout.isatty():
            report.rich_table(plan, sys.stdout, args.depth, args.count)
        else:
            print(report.plain_table(plan, args.depth, args.count))
        if args.verify:
            print(
                f"verified: all {len(plan.nodes)} layers have the inferred shapes and parameter "
                "counts in torch"
            )
        if args.profiles is not None:
            _print_memory(plan, args.profiles[file], args)


def _memory_options(args: argparse.Namespace) -> dict[str, memory.Profile] | None:
    """``--memory`` and ``--batch N`` (a whole number ≥ 1, only with --memory): the
    profiles to fill, one per spec file (None: no --memory)."""
    memory_on, batch = getattr(args, "memory", False), getattr(args, "batch", None)
    if batch is not None:
        if not memory_on:
            raise UsageError("--batch sets the batch size of --memory", "add --memory")
        if not re.fullmatch(r"\s*\d+\s*", batch) or int(batch) < 1:
            raise UsageError(
                f"--batch must be a whole number of at least 1, not '{batch}'", "e.g. --batch 128"
            )
        args.batch = int(batch)
    return {} if memory_on else None


def _print_memory(plan: Plan, prof: memory.Profile, args: argparse.Namespace) -> None:
    print()
    if not args.markdown and sys.stdout.isatty():
        report.memory_table(plan, prof, sys.stdout)
    else:
        print(report.memory_table(plan, prof, None, markdown=args.markdown))


def _with_memory(text: str, profiles: dict[str, memory.Profile] | None) -> str:
    """check's JSON with each valid spec's ``memory`` (``--memory --json``)."""
    if profiles is None:
        return text
    import json

    data = json.loads(text)
    for entry in data["specs"]:
        if entry["file"] in profiles:
            entry["memory"] = report.memory_json(profiles[entry["file"]])
    return json.dumps(data, indent=2)
