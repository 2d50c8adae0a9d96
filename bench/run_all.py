"""Run every benchmark, print every figure and ratio, and regenerate the README section.

    python bench/run_all.py                  # everything, full size (~15 min or more)
    python bench/run_all.py --quick          # everything, small (< 5 min on 2 cores)
    python bench/run_all.py --write-readme   # full run, then rewrite README's Benchmarks
    python bench/run_all.py --write-readme --no-run   # rewrite it from bench/results/

Each benchmark runs in its own process (its own torch threads and imports) and
writes bench/results/<name>.json; this script reads them back. The README section
(between ``<!-- bench:start -->`` and ``<!-- bench:end -->``) is only written from
full results: quick numbers are not the bar.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from datetime import datetime
from typing import Any

from common import BENCH, REPO, load_results, machine, note, parser, results_dir, table

BENCHMARKS = (
    "check_speed",
    "check_new_specs",
    "scaling",
    "build_overhead",
    "train_throughput",
    "accuracy",
    "memory",
    "symbolic_speed",
)
README = REPO / "README.md"
START, END = "<!-- bench:start -->", "<!-- bench:end -->"
COMMAND = "python bench/run_all.py --write-readme"
QUICK_BUDGET_S = 300


def run_benchmarks(names: list[str], quick: bool, save: bool) -> dict[str, Any]:
    """Run each benchmark script; returns wall times and exit codes (saved as
    ``run_all.json`` when ``save``: a complete run, whose wall time README reports)."""
    walls: dict[str, float] = {}
    codes: dict[str, int] = {}
    started = time.perf_counter()
    for name in names:
        note(f"\n=== {name}{' --quick' if quick else ''} ===")
        t0 = time.perf_counter()
        cmd = [sys.executable, str(BENCH / f"{name}.py"), *(["--quick"] if quick else [])]
        codes[name] = subprocess.run(cmd, cwd=REPO).returncode
        walls[name] = round(time.perf_counter() - t0, 1)
    total = round(time.perf_counter() - started, 1)
    summary = {
        "quick": quick,
        "date": datetime.now().isoformat(timespec="seconds"),
        "machine": machine(),
        "wall_s": total,
        "benchmark_wall_s": walls,
        "exit_codes": codes,
    }
    if save:
        folder = results_dir(quick)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "run_all.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    return summary


def collect(names: list[str], quick: bool) -> dict[str, dict[str, Any]]:
    out = {}
    for name in names:
        data = load_results(name, quick)
        if data is None:
            note(f"run_all: no results for {name} in {results_dir(quick)}")
        else:
            out[name] = data
    return out


def verdict(figure: dict[str, Any]) -> str:
    if figure["met"] is None:
        return ""
    return "met" if figure["met"] else "NOT met"


def print_figures(results: dict[str, dict[str, Any]]) -> None:
    rows = []
    for name, data in results.items():
        for f in data["figures"]:
            mode = " (quick)" if data["quick"] else ""
            rows.append([name + mode, f["label"], f["text"], f["target"] or "", verdict(f)])
    print(table(["benchmark", "figure", "measured", "target", ""], rows))


def readme_section(
    results: dict[str, dict[str, Any]], run: dict[str, Any] | None, quick_run: dict[str, Any] | None
) -> str:
    """The Markdown between the README markers."""
    first = next(iter(results.values()))
    m, date = first["machine"], first["date"][:10]
    loads = sorted(d["machine"]["load_avg_1m"] for d in results.values())
    lines = [
        f"Measured on {date}: {m['cpu']}, {m['cores']} cores, shared with other jobs while it "
        f"ran (1-minute load average {loads[0]:g}–{loads[-1]:g}), torch {m['torch']}, Python "
        f"{m['python']}. Contenders run side by side in one run, alternated; figures are "
        "medians with their interquartile range (IQR) and the 95% confidence interval (CI) "
        "of the median over n paired rounds. Regenerate with:",
        "",
        "```bash",
        COMMAND,
        "```",
        "",
        "| benchmark | figure | measured | target | |",
        "|---|---|---|---|---|",
    ]
    for name, data in results.items():
        for f in data["figures"]:
            mark = {"met": "✅ met", "NOT met": "❌ **not met**", "": ""}[verdict(f)]
            lines.append(f"| {name} | {f['label']} | {f['text']} | {f['target'] or ''} | {mark} |")
    lines += ["", *timing_lines(run, quick_run), *thread_lines(results), *missed_lines(results)]
    lines.append("What each benchmark does and how to run one alone: `bench/README.md`.")
    return "\n".join(lines)


def timing_lines(run: dict[str, Any] | None, quick_run: dict[str, Any] | None) -> list[str]:
    parts = []
    if run is not None:
        parts.append(f"The full run took {run['wall_s'] / 60:.1f} min")
    if quick_run is not None:
        ok = "within" if quick_run["wall_s"] < QUICK_BUDGET_S else "**over**"
        parts.append(
            f"`python bench/run_all.py --quick` took {quick_run['wall_s']:.0f} s "
            f"({ok} its {QUICK_BUDGET_S // 60}-minute budget)"
        )
    return ["; ".join(parts) + ".", ""] if parts else []


def thread_lines(results: dict[str, dict[str, Any]]) -> list[str]:
    """What train_throughput saw at archspec train's threads against one thread."""
    data = results.get("train_throughput")
    if data is None:
        return []
    figures = {f["key"]: f for f in data["figures"]}
    many, one = figures.get("ips"), figures.get("ips_1t")
    if many is None or one is None or one["value"] <= many["value"]:
        return []
    counts = [k.split("_")[1] for k in data["details"] if k.startswith("rates_")]
    threads = next((c for c in counts if c != "1"), "all")
    return [
        f"On this shared machine one torch thread trained the seed network "
        f"{one['value'] / many['value']:.1f}× faster than the {threads} threads `archspec "
        f"train` uses by default ({one['value']:.0f} vs {many['value']:.0f} images/s, both "
        "loops alike): two OpenMP threads stall on each other whenever the other jobs "
        "deschedule one. On a shared machine, `archspec train --threads 1`.",
        "",
    ]


def missed_lines(results: dict[str, dict[str, Any]]) -> list[str]:
    missed = [
        (name, f) for name, data in results.items() for f in data["figures"] if f["met"] is False
    ]
    if not missed:
        return ["Every target is met.", ""]
    lines = [f"**{len(missed)} target{'s' if len(missed) > 1 else ''} not met:**", ""]
    for name, f in missed:
        why = f" Why: {f['why']}." if f["why"] else ""
        lines.append(
            f"- {name}: {f['label']} is {f['text'].split(' (')[0]}, target {f['target']}.{why}"
        )
    return [*lines, ""]


def write_readme(section: str) -> None:
    text = README.read_text(encoding="utf-8")
    if text.count(START) != 1 or text.count(END) != 1 or text.index(START) > text.index(END):
        raise SystemExit(f"README.md must hold exactly one {START} … {END} pair, in that order")
    head, rest = text.split(START)
    _, tail = rest.split(END)
    README.write_text(f"{head}{START}\n{section}\n{END}{tail}", encoding="utf-8")
    note(f"run_all: wrote the Benchmarks section of {README}")


def main() -> None:
    p = parser(__doc__ or "")
    p.add_argument(
        "--write-readme", action="store_true", help="rewrite README's Benchmarks section"
    )
    p.add_argument(
        "--no-run", action="store_true", help="use the results already in bench/results/"
    )
    p.add_argument("--only", nargs="+", choices=BENCHMARKS, help="run only these benchmarks")
    args = p.parse_args()
    if args.write_readme and args.quick:
        raise SystemExit("--write-readme needs full results: quick numbers are not the bar")
    names = list(args.only or BENCHMARKS)
    summary = None if args.no_run else run_benchmarks(names, args.quick, save=not args.only)
    results = collect(list(BENCHMARKS) if args.no_run else names, args.quick)
    print()
    print_figures(results)
    if summary is not None:
        walls = ", ".join(f"{k} {v:.0f} s" for k, v in summary["benchmark_wall_s"].items())
        print(f"\nrun_all{' --quick' if args.quick else ''}: {summary['wall_s']:.0f} s ({walls})")
        failed = [k for k, c in summary["exit_codes"].items() if c != 0]
        if failed:
            raise SystemExit(f"run_all: failed: {', '.join(failed)}")
    if args.write_readme:
        quick = [k for k, d in results.items() if d["quick"]]
        if quick:
            raise SystemExit(f"run_all: {', '.join(quick)} hold quick results; run without --quick")
        write_readme(
            readme_section(results, load_results("run_all"), load_results("run_all", quick=True))
        )


if __name__ == "__main__":
    main()
