"""Does `archspec check` of every new spec of issue 14 take under 0.5 s? Whole processes.

Each contender is one fresh process ``archspec check specs/<name>.yaml`` (output
discarded), run through the real entry point (the console script beside this
interpreter; no shell wrapper such as pyenv's shims). Specs alternate round by round
(the order rotates), so a slow moment of this shared machine hits every spec alike.
Every process runs with one bytecode cache (``PYTHONPYCACHEPREFIX`` under
bench/results/), filled by an untimed warm-up round (this machine sets
``PYTHONDONTWRITEBYTECODE``, which would make archspec compile itself on every start).

Besides wall time, each child's CPU time (user + sys, from ``os.wait4``) is recorded:
on a loaded machine CPU time shows the work a process does, wall time what a user
waits. The 1-minute load average is read before and after the run. Two reference
processes show the floor: ``python -c pass`` and ``python -c "import archspec.cli"``.

Output goes to /dev/null, so check prints its plain table. ``--terminal`` runs every
process on a pseudo-terminal 160 columns wide instead (what a user at a terminal
waits for: check then draws its table with rich).

    python bench/check_new_specs.py [--quick] [--rounds N] [--spec NAME ...] [--terminal]
"""

from __future__ import annotations

import os
import pty
import shutil
import subprocess
import sys
import time
from collections.abc import Callable

from common import REPO, RESULTS, Figure, Results, Stats, note, parser, table

TARGET_S = 0.5  # issue 14: `archspec check` of every new spec takes under 0.5 s
NEW_SPECS = (
    "mobilenet_v2",
    "mobilenet_v3_small",
    "shufflenet_v2_x1_0",
    "efficientnet_b0",
    "convnext_tiny",
    "vit_b_16",
    "regnet_y_400mf",
    "lstm_forecaster",
    "gru_classifier",
    "tcn",
    "transformer_classifier",
    "text_classifier",
    "two_tower",
    "kinds_tour",
)
REFERENCES = {
    "python -c pass": ["-c", "pass"],
    "import archspec.cli": ["-c", "import archspec.cli"],
}


def archspec_exe() -> list[str]:
    """The console script beside this interpreter (the real entry point), else ``-m``."""
    exe = shutil.which("archspec", path=os.path.dirname(sys.executable))
    return [exe] if exe else [sys.executable, "-m", "archspec"]


def environment() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPYCACHEPREFIX"] = str(RESULTS / "pycache")
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    return env


def runner(cmd: list[str], env: dict[str, str]) -> Callable[[], tuple[float, float]]:
    """A timer of one whole process: (wall s, CPU s of the child: user + sys)."""

    def run() -> tuple[float, float]:
        with open(os.devnull, "wb") as null:
            start = time.perf_counter()
            proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=null, stderr=null)
            _, status, usage = os.wait4(proc.pid, 0)
            wall = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        if proc.returncode != 0:
            raise SystemExit(f"{' '.join(cmd)} exited {proc.returncode}")
        return wall, usage.ru_utime + usage.ru_stime

    return run


def terminal_runner(cmd: list[str], env: dict[str, str]) -> Callable[[], tuple[float, float]]:
    """:func:`runner` with the process on a pseudo-terminal (COLUMNS=160), its output read
    and discarded."""
    env = env | {"COLUMNS": "160", "LINES": "50"}

    def run() -> tuple[float, float]:
        start = time.perf_counter()
        pid, fd = pty.fork()
        if pid == 0:  # the child: run the command on the terminal
            os.chdir(REPO)
            os.execve(cmd[0], cmd, env)
        try:
            while os.read(fd, 65536):
                pass
        except OSError:  # EIO: the child closed the terminal
            pass
        _, status, usage = os.wait4(pid, 0)
        wall = time.perf_counter() - start
        os.close(fd)
        if os.waitstatus_to_exitcode(status) != 0:
            raise SystemExit(f"{' '.join(cmd)} exited {os.waitstatus_to_exitcode(status)}")
        return wall, usage.ru_utime + usage.ru_stime

    return run


def main() -> None:
    p = parser(__doc__ or "")
    p.add_argument("--rounds", type=int, help="timed runs of each process (default 9, quick 3)")
    p.add_argument("--spec", action="append", choices=NEW_SPECS, help="only these specs")
    p.add_argument("--terminal", action="store_true", help="run on a pseudo-terminal (rich tables)")
    args = p.parse_args()
    rounds = args.rounds or (3 if args.quick else 9)
    env = environment()
    exe = archspec_exe()
    specs = args.spec or list(NEW_SPECS)
    cmds = {name: [*exe, "check", f"specs/{name}.yaml"] for name in specs}
    cmds |= {name: [sys.executable, *argv] for name, argv in REFERENCES.items()}
    make = terminal_runner if args.terminal else runner
    runners = {name: make(cmd, env) for name, cmd in cmds.items()}
    load_before = os.getloadavg()[0]
    note(f"check_new_specs: warm-up round, then {rounds} alternating rounds of {len(cmds)}")
    for run in runners.values():  # fills the bytecode cache; untimed
        run()
    res = Results("check_new_specs_terminal" if args.terminal else "check_new_specs", args.quick)
    names = list(runners)
    wall: dict[str, list[float]] = {n: [] for n in names}
    cpu: dict[str, list[float]] = {n: [] for n in names}
    for r in range(rounds):
        shift = r % len(names)
        for name in names[shift:] + names[:shift]:
            w, c = runners[name]()
            wall[name].append(w)
            cpu[name].append(c)
    load_after = os.getloadavg()[0]
    report(specs, wall, cpu, (load_before, load_after), res)


def report(
    specs: list[str],
    wall: dict[str, list[float]],
    cpu: dict[str, list[float]],
    load: tuple[float, float],
    res: Results,
) -> None:
    rows = []
    for name in wall:
        w, c = Stats.of(wall[name]), Stats.of(cpu[name])
        verdict = ("met" if w.median < TARGET_S else "NOT met") if name in specs else ""
        rows.append(
            [
                name,
                round(w.median * 1e3),
                f"{w.q1 * 1e3:.0f}–{w.q3 * 1e3:.0f}",
                round(c.median * 1e3),
                f"{c.q1 * 1e3:.0f}–{c.q3 * 1e3:.0f}",
                verdict,
            ]
        )
    headers = ["process", "wall ms", "wall IQR", "CPU ms", "CPU IQR", f"< {TARGET_S} s"]
    print(table(headers, rows))
    print(f"\n1-minute load average: {load[0]:.2f} before, {load[1]:.2f} after")
    worst = max(specs, key=lambda n: Stats.of(wall[n]).median)
    worst_wall, worst_cpu = Stats.of(wall[worst]), Stats.of(cpu[worst])
    met = [n for n in specs if Stats.of(wall[n]).median < TARGET_S]
    load_text = f"load average {load[0]:.2f}–{load[1]:.2f}"
    res.add(
        Figure(
            "worst_wall_s",
            f"slowest new spec's check, median wall ({worst})",
            worst_wall.median,
            worst_wall.text(1e3, 0, " ms") + f", {load_text}",
            f"< {TARGET_S} s",
            worst_wall.median < TARGET_S,
            ""
            if worst_wall.median < TARGET_S
            else f"{len(specs) - len(met)} of {len(specs)} specs at or above {TARGET_S} s "
            f"wall at {load_text} (CPU {worst_cpu.median * 1e3:.0f} ms for {worst})",
        )
    )
    res.add(
        Figure(
            "worst_cpu_s",
            f"slowest new spec's check, median CPU user+sys ({worst})",
            worst_cpu.median,
            worst_cpu.text(1e3, 0, " ms"),
        )
    )
    res.add(
        Figure(
            "specs_met",
            f"new specs checked under {TARGET_S} s (median wall)",
            len(met),
            f"{len(met)} of {len(specs)}",
        )
    )
    res.details = {
        "wall_s": wall,
        "cpu_s": cpu,
        "load_avg_1m": {"before": load[0], "after": load[1]},
    }
    res.save()
    print(res.summary())


if __name__ == "__main__":
    main()
