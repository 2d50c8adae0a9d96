"""Is `archspec check` a fraction of `import torch`? Whole processes, alternated.

Contenders (each a fresh process, output discarded):

* ``archspec check specs/mnist_cnn.yaml``
* ``python -c "import torch"``
* a torchinfo summary of the same network written by hand (import torch + torchinfo)
* for the breakdown: ``python -c pass``, ``python -c "import archspec.cli"`` and the
  floor any Pydantic + PyYAML program pays (import both, validate one one-field model:
  pydantic_core pulls in asyncio, the first validator pydantic's plugin lookup and
  importlib.metadata), so what archspec itself adds shows apart from its dependencies

Every process runs with one bytecode cache (``PYTHONPYCACHEPREFIX`` under
bench/results/) filled by an untimed warm-up round, so no contender pays for
compiling its sources (this machine sets ``PYTHONDONTWRITEBYTECODE``, which would
otherwise make archspec, an editable install, compile itself on every start).

    python bench/check_speed.py [--quick] [--rounds N]
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable

from common import (
    REPO,
    RESULTS,
    Figure,
    Results,
    Stats,
    alternate,
    note,
    parser,
    ratios,
    table,
    timed,
)

SPEC = "specs/mnist_cnn.yaml"
TORCHINFO = (
    "import sys; sys.path.insert(0, 'bench'); import torchinfo; "
    "from handwritten import seed_network; "
    "torchinfo.summary(seed_network(softmax=True), input_size=(1, 1, 28, 28))"
)
# the floor: what check's dependencies cost before any of archspec's own code runs
FLOOR = (
    "import yaml, annotated_types; from pydantic import BaseModel; "
    "type('M', (BaseModel,), {'__annotations__': {'x': int}}).model_validate({'x': 1})"
)
TARGET_TORCH = 0.1  # issue 12: at most 0.10 × `import torch` (was 0.2)


def commands() -> dict[str, list[str]]:
    exe = shutil.which(
        "archspec", path=os.path.dirname(sys.executable) + os.pathsep + os.environ["PATH"]
    )
    check = [exe] if exe else [sys.executable, "-m", "archspec"]
    return {
        "archspec check": [*check, "check", SPEC],
        "import torch": [sys.executable, "-c", "import torch"],
        "torchinfo summary": [sys.executable, "-c", TORCHINFO],
        "python -c pass": [sys.executable, "-c", "pass"],
        "import archspec.cli": [sys.executable, "-c", "import archspec.cli"],
        "pydantic + yaml floor": [sys.executable, "-c", FLOOR],
    }


def environment() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPYCACHEPREFIX"] = str(RESULTS / "pycache")
    return env


def runner(cmd: list[str], env: dict[str, str]) -> Callable[[], float]:
    """A timer of one whole process running ``cmd`` (seconds, output discarded)."""

    def run() -> None:
        subprocess.run(
            cmd, cwd=REPO, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )

    return lambda: timed(run)


def main() -> None:
    p = parser(__doc__ or "")
    p.add_argument("--rounds", type=int, help="timed runs of each process (default 15, quick 5)")
    args = p.parse_args()
    rounds = args.rounds or (5 if args.quick else 15)
    env = environment()
    cmds = commands()
    note(f"check_speed: warm-up round, then {rounds} alternating rounds of {len(cmds)} processes")
    runners = {name: runner(cmd, env) for name, cmd in cmds.items()}
    for run in runners.values():  # fills the bytecode cache; untimed
        run()
    res = Results("check_speed", args.quick)
    times = alternate(runners, rounds)
    report(times, res)


def breakdown(stats: dict[str, Stats]) -> dict[str, float]:
    """check's median split into interpreter start, archspec's imports and the work (ms),
    and the part of the whole that Pydantic + PyYAML cost in any program (the floor);
    differences of medians, so a part lost in the noise shows as 0."""
    base = stats["python -c pass"].median
    imported = max(stats["import archspec.cli"].median, base)
    floor = max(stats["pydantic + yaml floor"].median, base)
    return {
        "interpreter": base * 1e3,
        "import_archspec": (imported - base) * 1e3,
        "check_work": max(stats["archspec check"].median - imported, 0.0) * 1e3,
        "dependencies_floor": (floor - base) * 1e3,
        "archspec_own": max(stats["archspec check"].median - floor, 0.0) * 1e3,
    }


def report(times: dict[str, list[float]], res: Results) -> None:
    stats = {name: Stats.of(t) for name, t in times.items()}
    torch_s = stats["import torch"].median
    rows = [
        [
            name,
            round(s.median * 1e3),
            round(s.q1 * 1e3),
            round(s.q3 * 1e3),
            f"{s.median / torch_s:.3f}",
        ]
        for name, s in stats.items()
    ]
    print(table(["process", "median ms", "q1 ms", "q3 ms", "× import torch"], rows))
    vs_torch = Stats.of(ratios(times["archspec check"], times["import torch"]))
    vs_info = Stats.of(ratios(times["archspec check"], times["torchinfo summary"]))
    parts = breakdown(stats)
    split = (
        f"interpreter {parts['interpreter']:.0f} ms + importing archspec (pydantic, yaml) "
        f"{parts['import_archspec']:.0f} ms + the work {parts['check_work']:.0f} ms"
    )
    print(f"\ncheck / import torch (paired per round): {vs_torch.text(ci=True)}")
    print(f"check / torchinfo summary (paired per round): {vs_info.text(ci=True)}")
    floor_ms = parts["interpreter"] + parts["dependencies_floor"]
    own = (
        f"interpreter + pydantic/yaml floor {floor_ms:.0f} ms + archspec's own imports "
        f"and work {parts['archspec_own']:.0f} ms"
    )
    vs_floor = Stats.of(ratios(times["pydantic + yaml floor"], times["import torch"]))
    print(f"check = {split}")
    print(f"check = {own}")
    print(f"floor / import torch (paired per round): {vs_floor.text(ci=True)}")
    met = vs_torch.median < TARGET_TORCH
    res.add(
        Figure(
            "check_vs_torch",
            "archspec check / import torch (whole processes)",
            vs_torch.median,
            vs_torch.text(ci=True),
            f"< {TARGET_TORCH}",
            met,
            "" if met else f"check's time is {split}; {own}",
        )
    )
    res.add(
        Figure(
            "floor_vs_torch",
            "pydantic + yaml floor (import both, validate one model) / import torch",
            vs_floor.median,
            vs_floor.text(ci=True),
        )
    )
    res.add(
        Figure(
            "check_vs_torchinfo",
            "archspec check / torchinfo summary (whole processes)",
            vs_info.median,
            vs_info.text(ci=True),
        )
    )
    check = stats["archspec check"]
    res.add(
        Figure(
            "check_ms",
            "archspec check, median wall time",
            check.median,
            check.text(1e3, 0, " ms") + f" = {split}",
        )
    )
    res.add(
        Figure(
            "torch_ms",
            "import torch, median wall time",
            torch_s,
            stats["import torch"].text(1e3, 0, " ms"),
        )
    )
    res.details = {"times_s": times, "breakdown_ms": parts}
    res.save()
    print(res.summary())


if __name__ == "__main__":
    main()
