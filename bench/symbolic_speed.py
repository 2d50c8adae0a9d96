"""How long does the legal set of a network's input sizes take (`check --input 3xHxW`)?

For ResNet-18 (specs/resnet18.yaml, 68 layers, H and W symbolic) and the tiny U-Net
(specs/unet_tiny.yaml, 38 layers), time :func:`archspec.shapes.symbolic.legal_sets` on
the Plan, in-process: every layer's size expression, every constraint, each symbol's
exact legal set over 1..65536 and its reasons. The Plan itself (what `check` computes
anyway) is built once outside the timing. Rounds alternate the two; figures are medians.

    python bench/symbolic_speed.py [--quick] [--rounds N]
"""

from __future__ import annotations

import sys
import time

from common import REPO, Figure, Results, Stats, note, parser, table

sys.path.insert(0, str(REPO))

from archspec import api
from archspec.shapes.plan import Plan
from archspec.shapes.symbolic import Symbol, legal_sets

TARGET_S = 0.1  # "well under a second"
SPECS = {"resnet18": "specs/resnet18.yaml", "unet_tiny": "specs/unet_tiny.yaml"}


def symbols(plan: Plan) -> list[Symbol]:
    inp = plan.all_inputs[0]
    return [Symbol(n, inp.name, a, inp.shape[a]) for a, n in ((1, "H"), (2, "W"))]


def main() -> None:
    p = parser(__doc__ or "")
    p.add_argument("--rounds", type=int, help="timings of each network (default 21, quick 5)")
    args = p.parse_args()
    rounds = args.rounds or (5 if args.quick else 21)
    plans = {name: api.load(REPO / path).plan() for name, path in SPECS.items()}
    note(f"symbolic_speed: {rounds} alternating rounds of {len(plans)} networks")
    times: dict[str, list[float]] = {name: [] for name in plans}
    found = {}
    for i in range(rounds):
        for name in list(plans)[i % 2 :] + list(plans)[: i % 2]:
            plan = plans[name]
            t0 = time.perf_counter()
            found[name] = legal_sets(plan, symbols(plan))
            times[name].append(time.perf_counter() - t0)
    res = Results("symbolic_speed", args.quick)
    rows = []
    for name, plan in plans.items():
        s = Stats.of(times[name])
        legal = found[name].sets["H"].describe()
        rows.append([name, len(plan.nodes), len(found[name].constraints), legal, s.median * 1e3])
        res.add(
            Figure(
                f"{name}_legal_set_ms",
                f"legal input sizes of {name} (H and W)",
                s.median * 1e3,
                f"{s.median * 1e3:.1f} ms ({legal})",
                target=f"< {TARGET_S * 1e3:.0f} ms",
                met=s.median < TARGET_S,
                why="the issue's bar: well under a second",
            )
        )
    res.details = {"seconds": times}
    print(table(["network", "layers", "constraints", "legal H", "median ms"], rows))
    res.save()
    print(res.summary())


if __name__ == "__main__":
    main()
