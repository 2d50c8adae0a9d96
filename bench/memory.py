"""archspec's memory model against the real thing, for every shipped spec.

For each spec in specs/ at two batch sizes, measure on the CPU the REAL peak of one
training step as `archspec train` runs it (zero_grad → forward → cross entropy →
backward → optimizer step, the optimizer's state already there) and of one inference
forward (eval, no_grad), and print them beside `archspec.shapes.memory.profile`'s
estimate and torchinfo's "Estimated Total Size". Target: the estimate within ±15% of
the measured peak on every spec and batch, training and inference.

Measured with tests/memtrack.py: a TorchDispatchMode that registers every op's output
storage once (views and in-place results share one) and subtracts it when torch frees it
(a weakref on the storage), plus the parameters, buffers, optimizer state and batch that
already exist. Scratch memory inside one kernel (oneDNN's workspaces, the fused
transformer layer at inference) is not a tensor and is counted by neither side. With a
GPU, torch.cuda.max_memory_allocated of the same training step is shown too.

    python bench/memory.py            # every shipped spec, two batch sizes (~5-10 min)
    python bench/memory.py --quick    # five small specs
"""

from __future__ import annotations

import sys
import time
from typing import Any

import torch
from common import REPO, Figure, Results, note, parser, table

sys.path.insert(0, str(REPO / "tests"))
sys.path.insert(0, str(REPO))

from memtrack import measure

import archspec
from archspec.shapes import memory

TARGET = 0.15
IMAGENET = {"alexnet", "convnext_tiny", "efficientnet_b0", "imagenet_resnet18", "mobilenet_v2"}
IMAGENET |= {"mobilenet_v3_small", "regnet_y_400mf", "resnet18", "shufflenet_v2_x1_0"}
IMAGENET |= {"vgg16", "vit_b_16"}
# Not measured, and why (this 2-core, 23 GB machine):
SKIP: dict[str, str] = {
    "imagenet_resnet18": "the same network as resnet18 (only its train section differs)",
    "mnist_cnn_8k": "the same network as mnist_cnn",
    "mnist_cnn_8k_aug": "the same network as mnist_cnn",
    "cifar_resnet": "the same network as cifar10_resnet",
}
QUICK = ("mnist_cnn", "lenet5", "cifar10_resnet", "tcn", "transformer_classifier")


def batches(name: str, quick: bool) -> tuple[int, int]:
    """Two batch sizes: 2 and 8 for the 224-pixel ImageNet networks (a step of vgg16 or
    vit_b_16 at 8 is ~30 s here), 8 and 64 for the small ones (activations dominate)."""
    return (2, 8) if name in IMAGENET or quick else (8, 64)


def torchinfo_total(spec: Any, batch: int) -> int | None:
    """torchinfo's "Estimated Total Size" (input + forward/backward pass + params), bytes."""
    try:
        import torchinfo
    except ImportError:
        return None
    plan = spec.plan()
    net = spec.build()
    xs = [
        torch.randn(batch, *i.shape)
        if i.vocab is None
        else torch.randint(0, i.vocab, (batch, *i.shape))
        for i in plan.all_inputs
    ]
    try:
        stats = torchinfo.summary(net, input_data=xs, verbose=0, mode="train")
    except Exception as exc:  # torchinfo cannot follow every network
        note(f"memory: torchinfo failed on {spec.name}: {type(exc).__name__}")
        return None
    return int(stats.total_input + stats.total_output_bytes + stats.total_param_bytes)


def cuda_peak(spec: Any, batch: int) -> int | None:
    """torch.cuda.max_memory_allocated over one steady-state training step."""
    if not torch.cuda.is_available():
        return None
    from archspec.train.loop import make_optimizer

    net = spec.build().cuda()
    net.logits_only = True
    opt = (
        make_optimizer(spec.train, net.parameters())
        if spec.train is not None
        else torch.optim.Adam(net.parameters())
    )
    plan = spec.plan()
    xs = [torch.randn(batch, *i.shape, device="cuda") for i in plan.all_inputs]
    y = torch.randint(0, plan.output_shape[0], (batch,), device="cuda")
    loss_fn = torch.nn.CrossEntropyLoss()
    for k in range(2):
        if k:
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
        loss_fn(net(*xs).float(), y).backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
    torch.cuda.synchronize()
    return int(torch.cuda.max_memory_allocated())


def mib(n: int | None) -> str:
    return "-" if n is None else f"{n / 2**20:,.2f}"


def main() -> None:
    p = parser(__doc__ or "")
    p.add_argument("--only", nargs="+", metavar="SPEC", help="only these shipped specs")
    args = p.parse_args()
    res = Results("memory", args.quick)
    names = sorted(f.stem for f in (REPO / "specs").glob("*.yaml"))
    if args.only:
        names = [n for n in names if n in args.only]
    elif args.quick:
        names = [n for n in names if n in QUICK]
    rows, records = [], []
    for name in names:
        if name in SKIP and not args.only:
            note(f"memory: skipping {name}: {SKIP[name]}")
            continue
        spec = archspec.load(REPO / "specs" / f"{name}.yaml")
        for batch in batches(name, args.quick):
            t0 = time.perf_counter()
            real = measure(spec, batch)
            prof = memory.profile(spec.plan(), spec.train, batch)
            info = torchinfo_total(spec, batch)
            gpu = cuda_peak(spec, batch)
            train_r = prof.train_peak / real["train"]
            inf_r = prof.inference_peak / real["inference"]
            info_r = info / real["train"] if info is not None else None
            record = {
                "spec": name,
                "batch": batch,
                "train_estimate": prof.train_peak,
                "train_measured": real["train"],
                "train_phase": prof.train_phase,
                "inference_estimate": prof.inference_peak,
                "inference_measured": real["inference"],
                "torchinfo": info,
                "cuda_max_allocated": gpu,
                "measured_phases": {k: real[k] for k in ("forward", "backward", "step")},
            }
            records.append(record)
            rows.append(
                [
                    name,
                    batch,
                    mib(prof.train_peak),
                    mib(real["train"]),
                    f"{train_r:.3f}",
                    mib(prof.inference_peak),
                    mib(real["inference"]),
                    f"{inf_r:.3f}",
                    mib(info),
                    "-" if info_r is None else f"{info_r:.2f}",
                    *([mib(gpu)] if gpu is not None else []),
                ]
            )
            note(
                f"memory: {name} batch {batch}: train {train_r:.3f}, inference {inf_r:.3f} "
                f"({time.perf_counter() - t0:.1f} s)"
            )
    headers = [
        "spec",
        "batch",
        "train est MiB",
        "train real MiB",
        "est/real",
        "infer est MiB",
        "infer real MiB",
        "est/real",
        "torchinfo MiB",
        "torchinfo/real train",
        *(["CUDA max_allocated MiB"] if torch.cuda.is_available() else []),
    ]
    print(table(headers, rows))
    res.details["rows"] = records
    res.details["skipped"] = SKIP
    for key, label, est, real_key in (
        ("train", "training peak", "train_estimate", "train_measured"),
        ("inference", "inference peak", "inference_estimate", "inference_measured"),
    ):
        ratios = [r[est] / r[real_key] for r in records]
        worst = max(ratios, key=lambda x: abs(x - 1))
        bad = [f"{r['spec']}@{r['batch']}" for r, x in zip(records, ratios, strict=True)]
        bad = [b for b, x in zip(bad, ratios, strict=True) if abs(x - 1) > TARGET]
        res.add(
            Figure(
                f"{key}_worst",
                f"{label}: worst estimate/measured over {len(records)} spec×batch",
                worst,
                f"{worst:.3f} (range {min(ratios):.3f}–{max(ratios):.3f})",
                "within ±15%",
                not bad,
                "" if not bad else "outside on " + ", ".join(bad),
            )
        )
    info = [r["torchinfo"] / r["train_measured"] for r in records if r["torchinfo"]]
    if info:
        res.add(
            Figure(
                "torchinfo_range",
                "torchinfo's Estimated Total Size / measured training peak",
                max(info, key=lambda x: abs(x - 1)),
                f"{min(info):.2f}–{max(info):.2f}",
            )
        )
    res.save()
    print(res.summary())


if __name__ == "__main__":
    main()
