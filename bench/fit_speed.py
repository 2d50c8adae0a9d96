"""How many candidate networks does `archspec fit` evaluate per second?

Each evaluation is what the search does per combination of ``--vary`` values: merge the
values over the spec's ``vars:`` (as ``extends:`` would), validate, expand and infer
every shape statically (:func:`archspec.outputs.fit.evaluate`), then total the counts.
Specs: a 7-layer convnet whose width and depth vary, and the CIFAR ResNet (72 layers at
n = 3) varying width and blocks per stage. Rounds alternate the two; each round times a
sweep over the whole grid; figures are medians of evaluations per second (wall clock,
and per CPU second, which the load of a shared machine distorts less).

    python bench/fit_speed.py [--quick] [--rounds N]
"""

from __future__ import annotations

import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from common import REPO, Figure, Results, Stats, note, parser, table

sys.path.insert(0, str(REPO))

from archspec.language.extends import read_spec
from archspec.outputs import fit

TARGET = 1000.0  # evaluations per second (the "thousands")

SMALL = """\
name: small-convnet
input: [3, 32, 32]
vars:
  width: {value: 16, multiple_of: 8}
  depth: 2
blocks:
  unit:
    args: {w: ~}
    layers:
      - conv: {depth: w, kernel: 3, padding: 1}
      - relu
layers:
  - unit: {w: width}
    repeat: depth
  - global_pool: avg
  - dense: 10
"""


def sweep(path: Path, vary: list[tuple[str, str]]) -> Callable[[], tuple[int, float, float]]:
    doc = read_spec(path)
    varies, _ = fit.grid(doc, vary)
    targets = [fit.parse_target("params=1M")]

    def run() -> tuple[int, float, float]:
        wall, cpu = time.perf_counter(), time.process_time()
        result = fit.search(doc, path, varies, targets)
        return result.evaluated, time.perf_counter() - wall, time.process_time() - cpu

    return run


def main() -> None:
    p = parser(__doc__ or "")
    p.add_argument("--rounds", type=int, help="sweeps of each grid (default 7, quick 2)")
    args = p.parse_args()
    rounds = args.rounds or (2 if args.quick else 7)
    with tempfile.TemporaryDirectory() as tmp:
        small = Path(tmp) / "small.yaml"
        small.write_text(SMALL)
        cases = {
            "small convnet (width × depth)": sweep(
                small, [("width", "16..128"), ("depth", "1..6")]
            ),
            "cifar_resnet (width × n)": sweep(
                REPO / "specs" / "cifar_resnet.yaml", [("width", "8..64:8"), ("n", "2..5")]
            ),
        }
        note(f"fit_speed: {rounds} alternating rounds of {len(cases)} grid sweeps")
        walls: dict[str, list[float]] = {name: [] for name in cases}
        cpus: dict[str, list[float]] = {name: [] for name in cases}
        sizes: dict[str, int] = {}
        for i in range(rounds):
            order = list(cases)[i % len(cases) :] + list(cases)[: i % len(cases)]
            for name in order:
                n, wall, cpu = cases[name]()
                sizes[name] = n
                walls[name].append(n / wall)
                cpus[name].append(n / max(cpu, 1e-9))
    res = Results("fit_speed", args.quick)
    rows = []
    for name in cases:
        w, c = Stats.of(walls[name]), Stats.of(cpus[name])
        rows.append([name, sizes[name], round(w.median), round(c.median)])
        key = name.split(" ")[0]
        res.add(
            Figure(
                f"{key}_evals_per_cpu_s",
                f"fit evaluations/s, {name}",
                c.median,
                f"{c.median:,.0f}/s per CPU second ({w.median:,.0f}/s wall)",
                target=f"≥ {TARGET:,.0f}/s",
                met=c.median >= TARGET,
                why="the full static pipeline per candidate: merge vars, validate, expand, infer",
            )
        )
    res.details = {"wall_evals_per_s": walls, "cpu_evals_per_s": cpus, "grid": sizes}
    print(table(["grid", "combinations", "evals/s (wall)", "evals/s (CPU)"], rows))
    res.save()
    print(res.summary())


if __name__ == "__main__":
    main()
