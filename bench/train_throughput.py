"""Images per second of archspec's training loop against a plain PyTorch loop.

Both train the seed network (same initial weights) on the same in-memory uint8
Fashion-MNIST training images, batch 128, Adam with one-cycle, in one process with
the same torch threads, each normalising its batch on the fly. archspec is driven
the way ``archspec train specs/fashion_mnist_cnn.yaml --quiet`` drives it: the run is
set up by ``archspec.train.run`` (config, threads, data, network) and its ``Trainer``
does the steps (``Trainer._step``, the per-batch hot path; per-epoch work such as
checkpoints and evaluation is measured end to end by accuracy.py).

Contenders alternate in fixed-length segments (rotating who goes first); each
round also times a large float32 matmul, the practical arithmetic limit of this
CPU at these threads. Reported: images/s of each, the ratio per round (target
≥ 95%), and the fraction of the matmul FLOP/s the network reaches, counting
2 × MACs per image forward and 3× that for forward + backward.

All of that at the threads ``archspec train`` uses (all cores), then again at one
thread (``--no-single`` skips it): on a 2-core machine shared with other jobs, two
OpenMP threads stall on each other whenever one is descheduled, which makes the
2-thread ratio noisy; one thread gives a steadier comparison of the two loops.

    python bench/train_throughput.py [--quick] [--threads N] [--no-single]
"""

from __future__ import annotations

import inspect
import tempfile
import time
from collections.abc import Callable, Iterator
from itertools import count
from pathlib import Path
from typing import Any

import torch
from common import Figure, Results, Stats, alternate, note, parser, ratio_why, ratios, table
from handwritten import Config, PlainLoop, copy_weights, seed_network

import archspec
from archspec.data.load import Split
from archspec.train import run as runs
from archspec.train.data import epoch_order
from archspec.train.display import Display
from archspec.train.loop import Trainer
from archspec.train.runtime import start

SPEC = Path("specs/fashion_mnist_cnn.yaml")
TARGET = 0.95
MATMUL_N = 2048


def archspec_trainer(opts: runs.Options, out: Path) -> Trainer:
    """A Trainer set up exactly as ``archspec train`` sets one up (quiet)."""
    spec = archspec.load(SPEC)
    config = runs.resolve_config(spec, opts)
    text = runs.resolved_spec(spec, config)
    extra: dict[str, Any] = {}
    if "runtime" in inspect.signature(runs._setup).parameters:  # newer run.py: train() starts it
        extra["runtime"] = start(config.device)
    run = runs._setup(spec, text, config, out, opts, **extra)
    trainer = Trainer(run.network, run.config, run.data, run.runtime, None, lambda *_: None)
    trainer.listeners.append(
        Display(trainer.steps_per_epoch, config.epochs, config.batch_size, quiet=True)
    )
    trainer.model.train()
    return trainer


def trainer_batches(trainer: Trainer) -> Iterator[tuple[torch.Tensor, torch.Tensor, int]]:
    """The trainer's own batches (x, y, global size), in its order, epoch after epoch."""
    n, c = len(trainer.train_y), trainer.config
    for epoch in count():
        yield from trainer._batches(epoch_order(n, c.seed, epoch), 0)


def segment(step: Callable[[], int], steps: int) -> Callable[[], float]:
    """``steps`` training steps; returns images per second."""

    def run() -> float:
        images = 0
        start = time.perf_counter()
        for _ in range(steps):
            images += step()
        return images / (time.perf_counter() - start)

    return run


def archspec_step(trainer: Trainer) -> Callable[[], int]:
    order = trainer_batches(trainer)

    def step() -> int:
        batch = next(order)
        trainer._step(*batch)
        return batch[2]

    return step


def matmul_flops(n: int = MATMUL_N, repeats: int = 3) -> Callable[[], float]:
    """Best FLOP/s of ``repeats`` n×n float32 matmuls."""
    a, b = torch.randn(n, n), torch.randn(n, n)

    def run() -> float:
        best = float("inf")
        for _ in range(repeats):
            start = time.perf_counter()
            torch.mm(a, b)
            best = min(best, time.perf_counter() - start)
        return 2 * n**3 / best

    return run


def main() -> None:
    p = parser(__doc__ or "")
    p.add_argument("--threads", type=int, help="torch threads (default: as archspec train)")
    p.add_argument("--no-single", action="store_true", help="skip the 1-thread repeat")
    args = p.parse_args()
    res = Results("train_throughput", args.quick)
    rounds, steps = (3, 6) if args.quick else (12, 10)
    macs = archspec.load(SPEC).plan().total_macs
    with tempfile.TemporaryDirectory() as tmp:
        note("train_throughput: setting up the archspec run (loads Fashion-MNIST)")
        opts = runs.Options(threads=args.threads, quiet=True)
        trainer = archspec_trainer(opts, Path(tmp) / "run")
        plain_model = seed_network()
        copy_weights(trainer.network, plain_model)
        config = Config.from_spec(trainer.config)
        train = trainer.data.train
        assert isinstance(train, Split)
        plain = PlainLoop(plain_model, train.x, train.y, config)
        contenders = {
            "archspec": segment(archspec_step(trainer), steps),
            "plain PyTorch": segment(plain.step, steps),
            "matmul": matmul_flops(),
        }
        threads = [torch.get_num_threads()]  # what archspec train set up
        if threads[0] != 1 and not args.no_single:
            threads.append(1)
        for n_threads in threads:
            torch.set_num_threads(n_threads)
            alternate(contenders, 1)  # warm-up
            note(
                f"train_throughput: {rounds} rounds of {steps}-step segments, {n_threads} thread(s)"
            )
            rates = alternate(contenders, rounds)
            report(rates, macs, n_threads, n_threads == threads[0], res)
    res.details.update(macs_per_image=macs, batch_size=config.batch_size)
    res.save()
    print(res.summary())


def fraction_of_peak(rates: dict[str, list[float]], name: str, flops_per_image: float) -> Stats:
    """Per round: the contender's FLOP/s over that round's matmul FLOP/s."""
    pairs = zip(rates[name], rates["matmul"], strict=True)
    return Stats.of([ips * flops_per_image / peak for ips, peak in pairs])


def print_rates(a: Stats, p: Stats, mm: Stats) -> None:
    rows = [
        ["archspec Trainer", round(a.median), f"{a.q1:.0f}–{a.q3:.0f}", "images/s"],
        ["plain PyTorch loop", round(p.median), f"{p.q1:.0f}–{p.q3:.0f}", "images/s"],
        [
            f"matmul {MATMUL_N}² float32",
            round(mm.median / 1e9, 1),
            f"{mm.q1 / 1e9:.1f}–{mm.q3 / 1e9:.1f}",
            "GFLOP/s",
        ],
    ]
    print(table(["contender", "median", "IQR", "unit"], rows))


def report(
    rates: dict[str, list[float]], macs: int, threads: int, as_cli: bool, res: Results
) -> None:
    """Print one thread count's results and add its figures."""
    a, p, mm = (Stats.of(rates[k]) for k in ("archspec", "plain PyTorch", "matmul"))
    r = Stats.of(ratios(rates["archspec"], rates["plain PyTorch"]))
    flops_per_image = 2 * macs * 3  # 2 FLOPs per MAC; backward ≈ 2× forward
    f = fraction_of_peak(rates, "archspec", flops_per_image)
    fp = fraction_of_peak(rates, "plain PyTorch", flops_per_image)
    print_rates(a, p, mm)
    print(f"archspec / plain (paired per round): {r.text(digits=3, ci=True)}")
    print(
        f"network: {macs:,} MACs/image → {flops_per_image / 1e6:.1f} MFLOP/image for forward + "
        f"backward; archspec reaches {f.median:.1%} of the matmul FLOP/s (plain {fp.median:.1%})\n"
    )
    how = f"{threads} thread{'s' if threads > 1 else ''}" + (
        ", as archspec train" if as_cli else ""
    )
    key = "" if as_cli else f"_{threads}t"
    target = f"≥ {TARGET:.0%}"
    met = r.median >= TARGET
    res.add(
        Figure(
            f"throughput_ratio{key}",
            f"training throughput archspec / plain PyTorch ({how})",
            r.median,
            r.text(digits=3, ci=True),
            target,
            met,
            "" if met else ratio_why(r, target),
        )
    )
    res.add(
        Figure(
            f"ips{key}",
            f"images/s archspec vs plain PyTorch ({how})",
            a.median,
            f"{a.median:.0f} vs {p.median:.0f} (IQR {a.q1:.0f}–{a.q3:.0f} vs "
            f"{p.q1:.0f}–{p.q3:.0f})",
        )
    )
    res.add(
        Figure(
            f"fraction_of_matmul{key}",
            f"training FLOP/s / float32 matmul FLOP/s ({how})",
            f.median,
            f"{f.median:.1%} (plain loop {fp.median:.1%}; matmul {mm.median / 1e9:.1f} GFLOP/s)",
        )
    )
    res.details[f"rates_{threads}_threads"] = rates


if __name__ == "__main__":
    main()
