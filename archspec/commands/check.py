"""``archspec check SPEC...``: validate, infer and print every layer's shape."""

from __future__ import annotations

import argparse
import re
import shutil
import sys
from typing import TYPE_CHECKING, Any, cast

from archspec import api
from archspec.commands import add_max_layers, max_layers
from archspec.errors import Problem, SpecError, UsageError
from archspec.loader import bundled
from archspec.outputs import report
from archspec.shapes import SIZE_MAXIMUM, SIZE_MINIMUM, counting, memory
from archspec.shapes.plan import Plan, Shape

if TYPE_CHECKING:  # imported where a check has symbolic sizes (start-up: issue 14)
    from archspec.shapes import symbolic


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
        type=parse_input,
        help="re-check at another input size, e.g. 3x64x64; letters make an axis symbolic "
        "(3xHxW: which sizes H and W work, the spec's sizes there being the nominal ones)",
    )
    p.add_argument(
        "--size",
        action="append",
        default=[],
        type=parse_size,
        metavar="NAME=LO..HI",
        help="bounds of a symbolic size (from --input letters or `input: [3, H, W]` with "
        f"H in vars:), e.g. H=32..1024 (default {SIZE_MINIMUM}..{SIZE_MAXIMUM})",
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


_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def parse_input(text: str) -> tuple[int | str, ...]:
    """``3x64x64`` → ``(3, 64, 64)``; ``3xHxW`` → ``(3, "H", "W")`` (symbolic axes). With
    letters, ``,`` or ``×`` may separate too (``3,Hx,W`` for a name with an ``x``)."""
    if not re.search(r"[A-Za-z_]", text.replace("x", "")) or not re.search(r"\d", text):
        try:  # digits only (or no number at all): a plain shape
            return parse_shape(text)
        except argparse.ArgumentTypeError as exc:
            raise argparse.ArgumentTypeError(
                f"{exc} (letters make sizes symbolic: 3xHxW)"
            ) from None
    body = text.strip().removeprefix("[").removesuffix("]")
    parts = re.split(r"[,×]", body) if re.search(r"[,×]", body) else body.split("x")
    dims: list[int | str] = []
    for part in (p.strip() for p in parts):
        if part.isdigit() and int(part) >= 1:
            dims.append(int(part))
        elif _NAME.match(part):
            dims.append(part)
        else:
            raise argparse.ArgumentTypeError(
                f"'{text}': '{part}' is neither a size (a positive integer) nor a name "
                "(letters, digits, _), e.g. 3xHxW"
            )
    if len(dims) > 4:
        raise argparse.ArgumentTypeError(f"'{text}': at most 4 axes (channels and 3 sizes)")
    return tuple(dims)


_SIZE = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)=(\d*)\.\.(\d*)$")


def parse_size(text: str) -> tuple[str, int | None, int | None]:
    """``H=32..1024`` → ``("H", 32, 1024)``; ``H=32..`` and ``H=..1024`` leave a bound."""
    m = _SIZE.match(text.strip())
    if not m or not (m[2] or m[3]):
        raise argparse.ArgumentTypeError(
            f"'{text}' is not a size range: write NAME=LO..HI, e.g. H=32..1024 (or H=32..)"
        )
    lo, hi = (int(v) if v else None for v in (m[2], m[3]))
    if (lo is not None and lo < 1) or (lo is not None and hi is not None and lo > hi):
        raise argparse.ArgumentTypeError(f"'{text}': need 1 ≤ LO ≤ HI")
    return m[1], lo, hi


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
    args.bounds = _bounds(args.size)
    results: list[tuple[str, Plan | None, list[dict[str, Any]]]] = []
    found: list[symbolic.Legality | None] = []
    for file in args.specs:
        legality, result = _check_symbolic(file, args)
        results.append(result)
        found.append(legality)
    if args.json:
        extra = [{"symbolic": x.to_dict()} if x else {} for x in found]
        print(_with_memory(report.plan_json(results, args.count, extra), args.profiles))
    else:
        _print_tables(results, args, found)
    return 0 if all(plan is not None for _, plan, _ in results) else 1


def _bounds(
    sizes: list[tuple[str, int | None, int | None]],
) -> dict[str, tuple[int | None, int | None]]:
    bounds: dict[str, tuple[int | None, int | None]] = {}
    for name, lo, hi in sizes:
        if name in bounds:
            raise UsageError(f"--size {name} is given twice", "give each size once")
        bounds[name] = (lo, hi)
    return bounds


def _check_symbolic(
    file: str, args: argparse.Namespace
) -> tuple[symbolic.Legality | None, tuple[str, Plan | None, list[dict[str, Any]]]]:
    """:func:`_check_one`, then the legal set of each symbolic input size, if any."""
    box: list[symbolic.Legality] = []
    result = _check_one(file, args, box)
    return (box[0] if box else None), result


def _concrete(spec: api.Spec, dims: tuple[int | str, ...] | None) -> Shape | None:
    """``--input 3xHxW`` at the spec's own sizes where letters stand."""
    if dims is None or all(isinstance(d, int) for d in dims):
        return cast(Shape | None, dims)
    declared = spec.input_shape
    if len(dims) != len(declared):
        raise UsageError(
            f"--input {'x'.join(map(str, dims))} has {len(dims)} axes but {spec.name}'s input "
            f"has {len(declared)} ({'×'.join(map(str, declared))})",
            "a letter stands for the spec's size on that axis: give one entry per axis",
        )
    return tuple(d if isinstance(d, int) else n for d, n in zip(dims, declared, strict=True))


def _symbols(spec: api.Spec, plan: Plan, args: argparse.Namespace) -> list[symbolic.Symbol]:
    dims = args.input
    symbolic_input = dims is not None and any(isinstance(d, str) for d in dims)
    if not (symbolic_input or args.bounds or _names_a_size(spec.data)):
        return []  # what symbolic.spec_symbols finds: no input axis names a variable
    from archspec.shapes import symbolic

    if symbolic_input:
        found = symbolic.input_symbols(plan, dims)
    else:
        found = symbolic.spec_symbols(spec.data, plan)
    unknown = sorted(set(args.bounds) - {s.name for s in found})
    if unknown:
        have = ", ".join(sorted({s.name for s in found})) or "none"
        raise UsageError(
            f"--size {unknown[0]}: {spec.name} has no symbolic size {unknown[0]} (it has: {have})",
            "make an axis symbolic with --input 3xHxW, or `input: [3, H, W]` with H in vars:",
        )
    found = symbolic.bounded(found, args.bounds)
    for s in found:
        if s.minimum > s.maximum:
            raise UsageError(f"--size {s.name}: {s.minimum}..{s.maximum} is empty")
    return found


def _names_a_size(data: Any) -> bool:
    """Whether an axis of ``input:`` or of an input under ``inputs:`` is a name (with
    ``vars:``): only then can :func:`symbolic.spec_symbols` find a symbolic size."""
    if not isinstance(data, dict) or not isinstance(data.get("vars"), dict):
        return False
    declared = [data.get("input")]
    if isinstance(data.get("inputs"), dict):
        declared += list(data["inputs"].values())
    for raw in declared:
        shape = raw.get("shape") if isinstance(raw, dict) else raw
        if isinstance(shape, list) and any(isinstance(entry, str) for entry in shape):
            return True
    return False


def _legality(plan: Plan, symbols: list[symbolic.Symbol]) -> symbolic.Legality:
    """The legal sets; an empty one, or one without the nominal size, is a located error."""
    from archspec.shapes import symbolic

    try:
        legality = symbolic.legal_sets(plan, symbols)
    except symbolic.TooWide as exc:
        raise UsageError(str(exc), "give a narrower --size NAME=LO..HI") from None
    except ValueError as exc:  # --input 3xHxH on a 32×64 input
        raise UsageError(str(exc), "use another letter for each size") from None
    problems = []
    for s in legality.symbols:
        legal = legality.sets[s.name]
        if legal.empty or (s.minimum <= s.nominal <= s.maximum and s.nominal not in legal):
            reasons = legality.reasons[s.name]
            last = reasons[-1].constraint if reasons else None
            what = (
                f"no size of {s.name} in {s.minimum}..{s.maximum} runs this network"
                if legal.empty
                else f"the nominal size {s.name} = {s.nominal} is not legal ({legal.describe()})"
            )
            problems.append(
                Problem(
                    f"{what}{': ' + last.text if last else ''}",
                    f"widen the range (--size {s.name}=LO..HI) or change the layers",
                    last.location if last else None,
                )
            )
    if problems:
        raise SpecError(problems)
    return legality


def _check_one(
    file: str, args: argparse.Namespace, found: list[symbolic.Legality] | None = None
) -> tuple[str, Plan | None, list[dict[str, Any]]]:
    try:
        dims = args.input
        plain = None if dims is None or any(isinstance(d, str) for d in dims) else dims
        spec = api.load(bundled.resolve(file), input_shape=plain, max_layers=args.max_layers)
        shape = _concrete(spec, dims)
        plan = spec.plan(shape)
        symbols = _symbols(spec, plan, args) if found is not None else []
        if symbols and found is not None:
            found.append(_legality(plan, symbols))
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


def _shape_texts(legality: symbolic.Legality) -> dict[str, str]:
    from archspec.shapes import sizes

    return {
        name: " · ".join(sizes.shape_text(shape) for shape in shapes)
        for name, shapes in legality.shapes.items()
    }


def _legal_lines(legality: symbolic.Legality) -> list[str]:
    """``legal input sizes:`` and one line per symbol, then its located reasons."""
    several = len(legality.symbols) > 1
    lines = ["legal input sizes" + (" (each with the others nominal):" if several else ":")]
    for s in legality.symbols:
        legal = legality.sets[s.name]
        lines.append(
            f"  {s.name}: {legal.describe()} (smallest: {legal.smallest}; nominal {s.nominal})"
        )
        lines += [f"    {r.line(s.minimum, s.maximum)}" for r in legality.reasons[s.name]]
        if not legality.reasons[s.name]:
            lines.append("    every size in the range works")
    return lines


def _print_tables(
    results: list[tuple[str, Plan | None, list[dict[str, Any]]]],
    args: argparse.Namespace,
    found: list[symbolic.Legality | None],
) -> None:
    for i, (file, plan, _) in enumerate(results):
        if plan is None:
            continue
        if i:
            print()
        legality = found[i]
        shapes = _shape_texts(legality) if legality else None
        if args.markdown:
            print(report.markdown_table(plan, args.depth, args.count, shapes))
        elif sys.stdout.isatty():
            width = shutil.get_terminal_size().columns
            report.terminal_table(plan, sys.stdout, width, args.depth, args.count, shapes)
        else:
            print(report.plain_table(plan, args.depth, args.count, shapes))
        if legality:
            print("\n".join(_legal_lines(legality)))
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
