"""Streaming data: what it costs the training loop, what the pipeline alone delivers,
and how much memory the training process holds while streaming a large folder.

(a) **Streamed vs in memory.** Fashion-MNIST's training images are exported as a
    PNG image folder (``train/CLASS/*.png``, in a temp dir, deleted afterwards) and
    the seed network (``specs/fashion_mnist_cnn.yaml``) trains on it twice, side by
    side: decoded once into memory (``stream: false``) and decoded on the fly in
    DataLoader workers (``stream: true``). Both are set up exactly as ``archspec
    train`` sets them up and step through the same batches (``Trainer._batches`` +
    ``Trainer._step``); segments alternate. Target: streamed ≥ 0.90× in-memory images/s.
(b) **The pipeline alone:** decode images/s of one worker (in-process), and of the
    loader with the default worker count, no model — when this is far above (a)'s
    images/s, data is not the bottleneck.
(c) ``--memory``: a large folder of random 3×224×224 JPEGs (``--gb`` on disk,
    default 1; the issue's bar is 10 GB; ``--side`` makes them larger, so fewer files
    fill it) is generated, one epoch of a small network
    streams all of it in a child process, and that process's peak RSS is reported
    (and its loader workers' largest, separately). Target: < 3 GB.

    python bench/data_pipeline.py [--quick] [--images N] [--rounds R] [--steps S]
    python bench/data_pipeline.py --memory [--gb G] [--side S]
"""

from __future__ import annotations

import io
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from itertools import count
from pathlib import Path

import numpy as np
import torch
from common import Figure, Results, Stats, alternate, note, parser, ratio_why, ratios, table
from PIL import Image

import archspec
from archspec.data.idx import read_idx
from archspec.data.stream import Samples
from archspec.language.train import TrainConfig
from archspec.train import run as runs
from archspec.train.data import default_workers, epoch_order, make_loader
from archspec.train.loop import Trainer
from archspec.train.runtime import start

FASHION = Path("/usr/share/datasets/fashion-mnist")
SPEC = Path(__file__).resolve().parents[1] / "specs" / "fashion_mnist_cnn.yaml"
TARGET = 0.90
RSS_TARGET = 3 << 30


# ------------------------------------------------------------------ (a) and (b)
def export_pngs(root: Path, count_: int) -> None:
    """The first ``count_`` Fashion-MNIST training images as root/train/CLASS/NNNNN.png."""
    x = read_idx(FASHION / "train-images-idx3-ubyte.gz")[:count_]
    y = read_idx(FASHION / "train-labels-idx1-ubyte.gz")[:count_]
    for label in range(10):
        (root / "train" / str(label)).mkdir(parents=True)
    for index, (image, label) in enumerate(zip(x, y, strict=True)):
        Image.fromarray(image).save(root / "train" / str(label) / f"{index:05d}.png")


def trainer_for(folder: Path, stream: bool, out: Path) -> Trainer:
    """A Trainer set up as ``archspec train`` sets one up, on the PNG folder."""
    spec = archspec.load(SPEC)
    base = spec.train.model_dump() if spec.train is not None else {}
    data = {**base["data"], "dataset": None, "path": str(folder / "train"), "train": "all"}
    data.update(val=0, test=None, stream=stream)
    config = TrainConfig.model_validate({**base, "data": data})
    text = runs.resolved_spec(spec, config)
    run = runs._setup(spec, text, config, out, runs.Options(quiet=True), start(config.device))
    trainer = Trainer(run.network, run.config, run.data, run.runtime, None, lambda *_: None)
    trainer.model.train()
    return trainer


def stepper(trainer: Trainer, steps: int) -> Callable[[], float]:
    """``steps`` training steps per call, continuing the trainer's epochs; images/s."""

    def forever() -> Iterator[tuple[torch.Tensor, torch.Tensor, int]]:
        for epoch in count():
            order = epoch_order(len(trainer.train_y), trainer.config.seed, epoch)
            yield from trainer._batches(order, 0)

    batches = forever()

    def run() -> float:
        images, started = 0, time.perf_counter()
        for _ in range(steps):
            batch = next(batches)
            trainer._step(*batch)
            images += batch[2]
        return images / (time.perf_counter() - started)

    return run


def pipeline_rate(samples: Samples, workers: int, images: int) -> float:
    """Decode images/s of the loader alone (batches of 128), ``workers`` processes."""
    samples.loading = type(samples.loading)(workers, 2, "error")
    picked = torch.randperm(len(samples), generator=torch.Generator().manual_seed(0))[:images]
    chunks = [picked[i : i + 128].tolist() for i in range(0, len(picked), 128)]
    loader = make_loader(samples, chunks, torch.device("cpu"), persistent=False)
    started, seen = time.perf_counter(), 0
    for _x, y, _bad in loader:
        seen += len(y)
    return seen / (time.perf_counter() - started)


def compare(res: Results, images: int, rounds: int, steps: int, threads: int | None) -> None:
    with tempfile.TemporaryDirectory(prefix="archspec-bench-") as tmp:
        folder = Path(tmp) / "fashion-png"
        started = time.perf_counter()
        export_pngs(folder, images)
        note(f"data_pipeline: exported {images} PNGs in {time.perf_counter() - started:.0f} s")
        memory = trainer_for(folder, False, Path(tmp) / "a")
        streamed = trainer_for(folder, True, Path(tmp) / "b")
        assert isinstance(streamed.data.train, Samples)
        workers = streamed.data.train.loading.workers
        if threads:
            torch.set_num_threads(threads)
        res.details["threads"] = torch.get_num_threads()
        note(f"data_pipeline: {torch.get_num_threads()} torch threads, {workers} loader workers")
        contenders = {"in memory": stepper(memory, steps), "streamed": stepper(streamed, steps)}
        alternate(contenders, 1)  # warm-up: workers started, first batches prefetched
        rates = alternate(contenders, rounds)
        ratio = Stats.of(ratios(rates["streamed"], rates["in memory"]))
        rows = [[name, Stats.of(v).text(digits=0), "images/s"] for name, v in rates.items()]
        print(table(["contender", "median (IQR)", ""], rows))
        res.add(
            Figure(
                "stream_ratio",
                f"streamed ({workers} workers) / in-memory images/s, seed network",
                ratio.median,
                ratio.text(ci=True),
                f"≥ {TARGET:.2f}",
                ratio.median >= TARGET,
                ratio_why(ratio, f"≥ {TARGET:.2f}"),
            )
        )
        res.details["rates"] = rates
        res.details["workers"] = workers
        decode_images = min(images, 4000)
        one = pipeline_rate(streamed.data.train, 0, decode_images)
        many = pipeline_rate(streamed.data.train, max(workers, 1), decode_images)
        res.add(
            Figure(
                "decode_one",
                "decode images/s, one worker (in-process)",
                one,
                f"{one:,.0f} images/s",
                None,
                None,
                "",
            )
        )
        res.add(
            Figure(
                "decode_loader",
                f"decode images/s, loader with {max(workers, 1)} workers",
                many,
                f"{many:,.0f} images/s",
                None,
                None,
                "",
            )
        )
        del memory, streamed


# ------------------------------------------------------------------ (c) memory
MEMORY_SPEC = """
name: stream-memory
input: [3, 224, 224]
layers:
  - conv: {{depth: 8, kernel: 8, stride: 8}}
  - relu
  - global_pool: avg
  - dense: 10
train:
  data: {{path: "{path}", train: all, val: 0, test: null, stream: true}}
  batch_size: 64
  epochs: 1
  optimizer: {{name: sgd, lr: 0.01}}
  log_every: 1000
"""

CHILD = """
import resource, sys
from pathlib import Path
import archspec
from archspec.train.run import Options, train
train(archspec.load(Path(sys.argv[1])), Options(out=Path(sys.argv[2]), quiet=True))
self_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
kids_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
print(f"PEAK {self_kb} {kids_kb}")
"""


def make_folder(root: Path, gigabytes: float, side: int = 224) -> tuple[int, int]:
    """Random-noise JPEGs (3×side×side; 224: ~150 KB decoded each) up to ``gigabytes`` on
    disk. The network reads 224×224: larger images are resized as they are streamed."""
    rng = np.random.default_rng(0)
    pool = []
    for _ in range(32):  # distinct encoded images, written round-robin
        pixels = rng.integers(0, 256, size=(side, side, 3), dtype=np.uint8)
        out = io.BytesIO()
        Image.fromarray(pixels).save(out, format="JPEG", quality=90)
        pool.append(out.getvalue())
    written, files = 0, 0
    while written < gigabytes * (1 << 30):
        folder = root / str(files % 10)
        folder.mkdir(parents=True, exist_ok=True)
        data = pool[files % len(pool)]
        (folder / f"{files:07d}.jpg").write_bytes(data)
        written += len(data)
        files += 1
    return files, written


def memory(res: Results, gigabytes: float, side: int = 224) -> None:
    with tempfile.TemporaryDirectory(prefix="archspec-bench-mem-") as tmp:
        root = Path(tmp) / "images"
        started = time.perf_counter()
        files, written = make_folder(root, gigabytes, side)
        note(
            f"data_pipeline: wrote {files} JPEGs, {written / 2**30:.2f} GiB, "
            f"in {time.perf_counter() - started:.0f} s"
        )
        spec = Path(tmp) / "spec.yaml"
        spec.write_text(MEMORY_SPEC.format(path=root))
        env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
        started = time.perf_counter()
        done = subprocess.run(
            [sys.executable, "-c", CHILD, str(spec), str(Path(tmp) / "run")],
            capture_output=True,
            text=True,
            env=env,
            check=False,
        )
        seconds = time.perf_counter() - started
        if done.returncode != 0:
            raise SystemExit(f"the streaming run failed:\n{done.stderr[-2000:]}")
        line = next(x for x in done.stdout.splitlines() if x.startswith("PEAK"))
        self_kb, kids_kb = (int(v) for v in line.split()[1:])
        peak = self_kb * 1024
        res.add(
            Figure(
                "peak_rss",
                f"training process peak RSS streaming {written / 2**30:.1f} "
                f"GiB ({files} {side}×{side} JPEGs, one epoch, {seconds:.0f} s)",
                peak,
                f"{peak / 2**30:.2f} GiB",
                "< 3 GiB",
                peak < RSS_TARGET,
                f"largest loader worker: {kids_kb / 2**20:.2f} GiB",
            )
        )
        res.details.update(
            files=files, bytes=written, seconds=seconds, worker_peak_rss=kids_kb * 1024
        )


def main() -> None:
    p = parser(__doc__ or "")
    p.add_argument("--images", type=int, help="Fashion-MNIST images to export (default 60000)")
    p.add_argument("--memory", action="store_true", help="run (c) instead of (a) and (b)")
    p.add_argument("--gb", type=float, default=1.0, help="(c): folder size on disk, GiB")
    p.add_argument(
        "--side", type=int, default=224, help="(c): generated images' side (224: ~45 KB each)"
    )
    p.add_argument("--rounds", type=int, help="(a): alternation rounds (default 8, quick 3)")
    p.add_argument("--steps", type=int, help="(a): training steps per segment (default 20)")
    p.add_argument("--threads", type=int, help="(a): torch threads (default: as archspec train)")
    args = p.parse_args()
    res = Results("data_pipeline_memory" if args.memory else "data_pipeline", args.quick)
    note(
        f"load average at start: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores; "
        f"default loader workers here: {default_workers()}"
    )
    res.details["load_start"] = os.getloadavg()
    if args.memory:
        memory(res, args.gb, args.side)
    else:
        if not FASHION.is_dir():
            raise SystemExit(f"{FASHION} is missing: apt-get install -y dataset-fashion-mnist")
        images = args.images or (6000 if args.quick else 60000)
        rounds = args.rounds or (3 if args.quick else 8)
        steps = args.steps or (8 if args.quick else 20)
        compare(res, images, rounds, steps, args.threads)
    res.details["load_end"] = os.getloadavg()
    res.details["max_rss_bench"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(table(["figure", "value"], [[f.label, f.text] for f in res.figures]))
    print(f"load average at end: {os.getloadavg()[0]:.1f}")
    print(res.summary())
    res.save()


if __name__ == "__main__":
    main()
