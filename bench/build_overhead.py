"""Does the compiled network cost anything over the same layers written by hand?

Contenders, in one process, same weights (copied with ``load_state_dict``), same
input batch, alternated block by block:

* ``archspec``: ``archspec.load("specs/mnist_cnn.yaml").build()`` (``logits_only``,
  as training runs it: the loss applies the softmax);
* ``hand-written``: the same layers as an ``nn.Sequential`` (bench/handwritten.py).

Each block is a few forward + backward + SGD steps; reported per step for batches of
50 and 128, with the ratio archspec / hand-written per pair of blocks (target: within
2%). Also a batch-1 forward without gradients (where per-layer Python overhead would
show most) and the time of ``build()`` itself against constructing the Sequential.

One torch thread by default (``--threads``): on a 2-core machine shared with other
jobs, two OpenMP threads wait on each other whenever one is descheduled, which turns
a 0.5 ms forward into 3–50 ms and hides a 2% effect.

    python bench/build_overhead.py [--quick]
"""

from __future__ import annotations

import time
from collections.abc import Callable

import torch
from common import Figure, Results, Stats, alternate, note, parser, ratio_why, ratios, table
from handwritten import copy_weights, seed_network
from torch import nn

import archspec

SPEC = "specs/mnist_cnn.yaml"
TARGET = 1.02  # compiled / hand-written, per step


def contenders() -> dict[str, nn.Module]:
    torch.manual_seed(0)
    compiled = archspec.load(SPEC).build()
    compiled.logits_only = True
    hand = seed_network()
    copy_weights(compiled, hand)
    x = torch.randn(4, 1, 28, 28)
    compiled.eval(), hand.eval()
    with torch.no_grad():
        assert torch.allclose(compiled(x), hand(x)), "the two networks disagree"
    compiled.train(), hand.train()
    return {"archspec": compiled, "hand-written": hand}


def train_steps(model: nn.Module, batch: int, steps: int) -> Callable[[], float]:
    """A block of ``steps`` SGD steps on a fixed batch; returns seconds per step."""
    gen = torch.Generator().manual_seed(batch)
    x = torch.randn(batch, 1, 28, 28, generator=gen)
    y = torch.randint(0, 10, (batch,), generator=gen)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    loss_fn = nn.CrossEntropyLoss()

    def block() -> float:
        start = time.perf_counter()
        for _ in range(steps):
            optimizer.zero_grad(set_to_none=True)
            loss_fn(model(x), y).backward()
            optimizer.step()
        return (time.perf_counter() - start) / steps

    return block


def forward_one(model: nn.Module, calls: int) -> Callable[[], float]:
    """``calls`` batch-1 forwards without gradients; returns seconds per call."""
    x = torch.randn(1, 1, 28, 28)

    def block() -> float:
        model.eval()
        start = time.perf_counter()
        with torch.no_grad():
            for _ in range(calls):
                model(x)
        model.train()
        return (time.perf_counter() - start) / calls

    return block


def build_times(rounds: int) -> dict[str, list[float]]:
    spec = archspec.load(SPEC)
    spec.build()  # warm-up

    def timed(make: Callable[[], object]) -> Callable[[], float]:
        def run() -> float:
            start = time.perf_counter()
            make()
            return time.perf_counter() - start

        return run

    return alternate(
        {
            "spec.build()": timed(spec.build),
            "archspec.load(path).build()": timed(lambda: archspec.load(SPEC).build()),
            "hand-written nn.Sequential()": timed(seed_network),
        },
        rounds,
    )


def compare(
    res: Results, key: str, label: str, times: dict[str, list[float]], target: bool
) -> list[object]:
    """Add the archspec / hand-written figure; returns the table row."""
    a, h = Stats.of(times["archspec"]), Stats.of(times["hand-written"])
    r = Stats.of(ratios(times["archspec"], times["hand-written"]))
    figure = res.add(Figure(key, label, r.median, r.text(ci=True)))
    if target:
        figure.target, figure.met = f"≤ {TARGET}", r.median <= TARGET
        figure.why = "" if figure.met else ratio_why(r, figure.target)
    return [
        label,
        round(a.median * 1e3, 3),
        round(h.median * 1e3, 3),
        f"{r.median:.3f}",
        f"{r.q1:.3f}–{r.q3:.3f}",
        f"{r.ci_low:.3f}–{r.ci_high:.3f}",
    ]


def main() -> None:
    p = parser(__doc__ or "")
    p.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch threads (default 1: on a shared 2-core machine two threads "
        "stall on each other and drown a 2%% difference in noise)",
    )
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    res = Results("build_overhead", args.quick)
    res.details["threads"] = args.threads
    rounds, steps = (8, 2) if args.quick else (50, 2)
    models = contenders()
    rows = []
    for batch in (50, 128):
        note(f"build_overhead: batch {batch}, {rounds} rounds of {steps}-step blocks each")
        blocks = {name: train_steps(m, batch, steps) for name, m in models.items()}
        alternate(blocks, 2)  # warm-up
        times = alternate(blocks, rounds)
        res.details[f"step_s_batch{batch}"] = times
        rows.append(
            compare(
                res,
                f"step_ratio_b{batch}",
                f"train step, batch {batch}: archspec / hand-written",
                times,
                True,
            )
        )
    note("build_overhead: batch-1 forward without gradients")
    forwards = {name: forward_one(m, 20) for name, m in models.items()}
    alternate(forwards, 2)
    times = alternate(forwards, rounds * 2)
    res.details["forward1_s"] = times
    rows.append(
        compare(
            res,
            "forward1_ratio",
            "forward, batch 1, no grad: archspec / hand-written",
            times,
            False,
        )
    )
    print(table(["measurement", "archspec ms", "hand ms", "ratio", "IQR", "95% CI"], rows))
    report_build(res, build_times(5 if args.quick else 15))
    res.save()
    print(res.summary())


def report_build(res: Results, times: dict[str, list[float]]) -> None:
    stats = {name: Stats.of(t) for name, t in times.items()}
    hand = stats["hand-written nn.Sequential()"].median
    print()
    print(
        table(
            ["construction", "median ms", "IQR ms", "× hand-written"],
            [
                [
                    name,
                    round(s.median * 1e3, 1),
                    f"{s.q1 * 1e3:.1f}–{s.q3 * 1e3:.1f}",
                    f"{s.median / hand:.2f}",
                ]
                for name, s in stats.items()
            ],
        )
    )
    res.details["build_s"] = times
    build = stats["spec.build()"]
    res.add(
        Figure(
            "build_ms",
            "build() of the seed network",
            build.median,
            build.text(1e3, 1, " ms") + f"; hand-written Sequential {hand * 1e3:.1f} ms",
        )
    )


if __name__ == "__main__":
    main()
