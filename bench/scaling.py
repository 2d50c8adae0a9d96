"""How does checking scale with the size of a network? In process, generated specs.

Times ``archspec.loads(text).plan()`` (read YAML, validate, infer every shape) for
specs of 10, 100, 1,000 and 10,000 layers in three families:

* ``sequential``: a chain of conv 3×3 'same' → batchnorm → relu, repeated;
* ``dag-w10``: cells of 10 parallel 1×1 convs (``name:``/``from:``) merged by ``add``
  or ``concat`` (alternately), each cell reading the previous merge;
* ``fan-in``: one stem, n-2 parallel branches, one ``add`` of all of them.

Reports µs per layer, the growth exponent (log-log fit over 100…10,000: 1.0 is
linear) and the per-layer cost at 10,000 over 1,000; target: 10,000 layers < 1 s.
A breakdown by stage (YAML, validation, inference) of the 10,000-layer chain says
where the time goes.

    python bench/scaling.py [--quick]
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

from common import Figure, Results, Stats, alternate, note, parser, table

import archspec

SIZES = (10, 100, 1_000, 10_000)
TARGET_S = 1.0
TARGET_GROWTH = 1.5  # per-layer cost at 10k / at 1k
MIN_SAMPLE_S = 0.05  # small specs are timed in loops at least this long

HEADER = "name: {name}\ninput: [8, 16, 16]\nlayers:\n"


def sequential(n: int) -> str:
    cycle = ["  - conv: {depth: 8, kernel: 3, padding: same}", "  - batchnorm", "  - relu"]
    return HEADER.format(name="seq") + "\n".join(cycle[i % 3] for i in range(n)) + "\n"


def _stem() -> list[str]:
    return ["  - conv: {depth: 8, kernel: 3, padding: same}", "    name: s0"]


def _cell(i: int, width: int, merge: str) -> list[str]:
    """``width`` 1×1 convs reading ``s{i}``, merged into ``s{i+1}``."""
    lines = []
    for b in range(width):
        lines += ["  - conv: {depth: 8, kernel: 1}", f"    name: c{i}b{b}", f"    from: s{i}"]
    sources = ", ".join(f"c{i}b{b}" for b in range(width))
    lines += [f"  - {merge}:", f"    from: [{sources}]", f"    name: s{i + 1}"]
    return lines


def dag(n: int, width: int = 10) -> str:
    """About ``n`` layers: a stem then cells of ``width`` branches + a merge."""
    width = min(width, max(n - 2, 2))
    lines = _stem()
    for i in range((n - 1) // (width + 1)):
        lines += _cell(i, width, "add" if i % 2 == 0 else "concat")
    return HEADER.format(name="dag") + "\n".join(lines) + "\n"


def fan_in(n: int) -> str:
    """A stem, ``n - 2`` parallel branches and one ``add`` of them all."""
    return HEADER.format(name="fanin") + "\n".join(_stem() + _cell(0, n - 2, "add")) + "\n"


FAMILIES: dict[str, Callable[[int], str]] = {
    "sequential": sequential,
    "dag-w10": dag,
    "fan-in": fan_in,
}


def check_once(text: str) -> int:
    """Load, validate and infer; returns the number of layers planned."""
    return len(archspec.loads(text).plan().nodes)


def sampler(text: str, loops: int, counts: dict[str, int], key: str) -> Callable[[], float]:
    """A timer of ``check_once(text)`` repeated ``loops`` times (seconds per check);
    records the number of layers planned in ``counts[key]``."""

    def sample() -> float:
        t0 = time.perf_counter()
        for _ in range(loops):
            counts[key] = check_once(text)
        return (time.perf_counter() - t0) / loops

    return sample


def loops_for(texts: dict[tuple[str, int], str]) -> dict[tuple[str, int], int]:
    """How often to repeat each check so a sample lasts ``MIN_SAMPLE_S``, from a warm-up
    check of each family's 100-layer spec (big specs run once per sample)."""
    loops = {}
    for fam in FAMILIES:
        t0 = time.perf_counter()
        check_once(texts[(fam, 100)])
        per_layer = (time.perf_counter() - t0) / 100
        for n in SIZES:
            loops[(fam, n)] = max(1, min(200, math.ceil(MIN_SAMPLE_S / (per_layer * n))))
    return loops


def growth_exponent(points: list[tuple[int, float]]) -> float:
    """Least-squares slope of log(time) over log(layers)."""
    xs = [math.log(n) for n, _ in points]
    ys = [math.log(t) for _, t in points]
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / sum(
        (x - mx) ** 2 for x in xs
    )


def stages(text: str) -> dict[str, float]:
    """Seconds per stage of one check of ``text`` (archspec internals; best effort)."""
    import yaml

    from archspec.language.load import DEFAULT_MAX_LAYERS, validate_document
    from archspec.loader import source
    from archspec.shapes.infer import infer

    t0 = time.perf_counter()
    doc = source.parse(text, "<bench>")
    t1 = time.perf_counter()
    validated, _ = validate_document(doc, None, DEFAULT_MAX_LAYERS)
    t2 = time.perf_counter()
    infer(
        validated.name, validated.input_shape, validated.layers, validated.output, validated.source
    )
    t3 = time.perf_counter()
    out = {
        "yaml (archspec.loader.source.parse)": t1 - t0,
        "validate (graph + pydantic)": t2 - t1,
        "infer (shapes, params, MACs, fields)": t3 - t2,
    }
    if getattr(yaml, "__with_libyaml__", False):  # what the C parser would take to compose
        t4 = time.perf_counter()
        yaml.compose(text, Loader=yaml.CSafeLoader)
        out["for comparison: yaml.compose with CSafeLoader (libyaml)"] = time.perf_counter() - t4
        t5 = time.perf_counter()
        yaml.compose(text, Loader=yaml.SafeLoader)
        out["for comparison: yaml.compose with SafeLoader (pure Python)"] = time.perf_counter() - t5
    return out


def main() -> None:
    args = parser(__doc__ or "").parse_args()
    res = Results("scaling", args.quick)
    rounds = 2 if args.quick else 5
    texts = {(fam, n): make(n) for fam, make in FAMILIES.items() for n in SIZES}
    loops = loops_for(texts)
    counts: dict[str, int] = {}
    note(f"scaling: {rounds} alternating round(s) over {len(texts)} specs")
    samplers = {
        f"{f}/{n}": sampler(texts[(f, n)], loops[(f, n)], counts, f"{f}/{n}") for f, n in texts
    }
    times = alternate(samplers, rounds)
    layers = {(fam, n): counts[f"{fam}/{n}"] for (fam, n) in texts}
    for (fam, n), count in layers.items():
        assert abs(count - n) <= 10, f"{fam} {n}: generated {count} layers"
    report(times, layers, res)
    size = 1_000 if args.quick else 10_000  # the breakdown, at a smaller size when quick
    note(f"scaling: stage breakdown at {size:,} layers")
    breakdowns = {fam: best_stages(texts[(fam, size)], 1 if args.quick else 2) for fam in FAMILIES}
    print_stages(breakdowns, size)
    res.details["stages_s"] = {"layers": size, **breakdowns}
    for fam, breakdown in breakdowns.items():
        explain(res, fam, breakdown, size)
    res.save()
    print(res.summary())


def best_stages(text: str, repeats: int) -> dict[str, float]:
    runs = [stages(text) for _ in range(repeats)]
    return {k: min(r[k] for r in runs) for k in runs[0]}


def print_stages(breakdowns: dict[str, dict[str, float]], size: int) -> None:
    names = list(next(iter(breakdowns.values())))
    rows = [[name, *(round(b[name], 3) for b in breakdowns.values())] for name in names]
    print(table([f"stage at {size:,} layers, best s", *breakdowns], rows))


def report(times: dict[str, list[float]], layers: dict[tuple[str, int], int], res: Results) -> None:
    rows = []
    for (fam, n), count in layers.items():
        s = Stats.of(times[f"{fam}/{n}"])
        per = f"{s.q1 / count * 1e6:.1f}–{s.q3 / count * 1e6:.1f}"
        rows.append([fam, count, round(s.median * 1e3, 2), round(s.median / count * 1e6, 1), per])
    print(table(["family", "layers", "median ms", "µs/layer", "IQR µs/layer"], rows))
    print()
    res.details["times_s"] = times
    res.details["layers"] = {f"{f}/{n}": c for (f, n), c in layers.items()}
    for fam in FAMILIES:
        add_family(res, fam, {n: (Stats.of(times[f"{fam}/{n}"]), layers[(fam, n)]) for n in SIZES})


def add_family(res: Results, fam: str, by_size: dict[int, tuple[Stats, int]]) -> None:
    """The 10,000-layer time and the growth figures of one family."""
    per_layer = {n: s.median / count for n, (s, count) in by_size.items()}
    big = by_size[10_000][0]
    exponent = growth_exponent([(count, s.median) for n, (s, count) in by_size.items() if n >= 100])
    growth = per_layer[10_000] / per_layer[1_000]
    print(
        f"{fam}: 10,000 layers {big.median:.3f} s; per-layer cost 10k/1k {growth:.2f}; "
        f"growth exponent {exponent:.2f} (1.00 = linear)"
    )
    res.add(
        Figure(
            f"{fam}_10k_s",
            f"check of 10,000 layers ({fam})",
            big.median,
            big.text(1, 3, " s"),
            f"< {TARGET_S:g} s",
            big.median < TARGET_S,
        )
    )
    res.add(
        Figure(
            f"{fam}_growth",
            f"per-layer cost 10k/1k ({fam})",
            growth,
            f"{growth:.2f} (exponent {exponent:.2f})",
            f"≤ {TARGET_GROWTH}",
            growth <= TARGET_GROWTH,
        )
    )
    per = per_layer[10_000] * 1e6
    res.add(Figure(f"{fam}_us_per_layer", f"µs per layer at 10,000 ({fam})", per, f"{per:.0f} µs"))


PY_COMPOSE = "for comparison: yaml.compose with SafeLoader (pure Python)"
C_COMPOSE = "for comparison: yaml.compose with CSafeLoader (libyaml)"


def explain(res: Results, fam: str, breakdown: dict[str, float], size: int) -> None:
    """Attach the stage breakdown to the family's time target when unmet: it is the why."""
    figure = next(f for f in res.figures if f.key == f"{fam}_10k_s")
    if figure.met:
        return
    own = {k: v for k, v in breakdown.items() if not k.startswith("for comparison")}
    total = sum(own.values())
    parts = ", ".join(f"{k.split(' (')[0]} {v / total:.0%}" for k, v in own.items())
    figure.why = f"by stage at {size:,} layers: {parts}"
    yaml_s = breakdown["yaml (archspec.loader.source.parse)"]
    if C_COMPOSE in breakdown and PY_COMPOSE in breakdown:
        py, c = breakdown[PY_COMPOSE], breakdown[C_COMPOSE]
        figure.why += (
            f"; archspec's YAML stage ({yaml_s:.2f} s: one pass over the parser's events, "
            "building located nodes) against a bare PyYAML compose of the same text: "
            f"{c:.2f} s with libyaml's CSafeLoader, {py:.2f} s with pure-Python SafeLoader"
        )


if __name__ == "__main__":
    main()
