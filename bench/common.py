"""Shared helpers for the benchmarks: statistics, alternation, tables, results JSON.

Every benchmark measures its contenders side by side in one run, alternating them
(the machine is shared, so a slow moment hits both), and reports medians, the
interquartile range and ratios. Results go to ``bench/results/<name>.json``::

    {"benchmark": ..., "quick": ..., "date": ..., "machine": {...}, "wall_s": ...,
     "figures": [{"key", "label", "value", "text", "target", "met", "why"}, ...],
     "details": {...}}

A figure with ``target: null`` is informational; ``met`` is then ``null`` too.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from importlib import metadata
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
RESULTS = BENCH / "results"  # full runs: the figures README's Benchmarks section shows


def results_dir(quick: bool) -> Path:
    """Quick runs keep their own folder, so they never overwrite a full run's figures."""
    return RESULTS / "quick" if quick else RESULTS


# ------------------------------------------------------------------ statistics
@dataclass(frozen=True)
class Stats:
    """Median and spread of repeated measurements, with a 95% confidence interval of
    the median (distribution-free: order statistics of the binomial, normal approx.)."""

    median: float
    q1: float
    q3: float
    low: float
    high: float
    n: int
    ci_low: float
    ci_high: float

    @staticmethod
    def of(values: Sequence[float]) -> Stats:
        if not values:
            raise ValueError("no measurements")
        ordered = sorted(values)
        q1, q3 = quartiles(ordered)
        lo, hi = median_ci(ordered)
        return Stats(
            statistics.median(ordered), q1, q3, ordered[0], ordered[-1], len(ordered), lo, hi
        )

    def text(self, scale: float = 1.0, digits: int = 3, unit: str = "", ci: bool = False) -> str:
        """``1.23 (IQR 1.20–1.26, n=15)`` with the values multiplied by ``scale``;
        ``ci`` adds the 95% confidence interval of the median."""
        m, a, b = self.median * scale, self.q1 * scale, self.q3 * scale
        extra = ""
        if ci:
            extra = f", 95% CI {self.ci_low * scale:.{digits}f}–{self.ci_high * scale:.{digits}f}"
        return f"{m:.{digits}f}{unit} (IQR {a:.{digits}f}–{b:.{digits}f}{extra}, n={self.n})"


def median_ci(ordered: Sequence[float]) -> tuple[float, float]:
    """95% interval of the median: the order statistics at n/2 ∓ 0.98·√n (1-based, clamped)."""
    n = len(ordered)
    half_width = 1.96 * math.sqrt(n) / 2
    lo = max(math.floor(n / 2 - half_width), 1)
    hi = min(math.ceil(n / 2 + half_width + 1), n)
    return ordered[lo - 1], ordered[hi - 1]


def ratio_why(r: Stats, target: str, neutral: float = 1.0) -> str:
    """Why a ratio missed its target, judged against the noise: its 95% interval."""
    span = f"the 95% confidence interval of the median ratio is {r.ci_low:.3f}–{r.ci_high:.3f}"
    if r.ci_low <= neutral <= r.ci_high:
        return (
            f"{span}, which includes {neutral:.2f}: at this machine's noise no difference "
            f"between the contenders is resolved, so missing {target} is not evidence of "
            "overhead"
        )
    return f"{span}, which excludes {neutral:.2f}: the difference is real"


def quartiles(ordered: Sequence[float]) -> tuple[float, float]:
    """First and third quartiles (inclusive method); one value is its own quartiles."""
    if len(ordered) < 2:
        return ordered[0], ordered[0]
    q = statistics.quantiles(ordered, n=4, method="inclusive")
    return q[0], q[2]


def ratios(top: Sequence[float], bottom: Sequence[float]) -> list[float]:
    """Paired ratios ``top[i] / bottom[i]`` (measured in the same round)."""
    return [a / b for a, b in zip(top, bottom, strict=True)]


def alternate(contenders: dict[str, Callable[[], float]], rounds: int) -> dict[str, list[float]]:
    """Run every contender once per round, rotating who goes first, and collect what
    each returns (a time, a rate...). Rotation spreads order effects evenly."""
    names = list(contenders)
    out: dict[str, list[float]] = {name: [] for name in names}
    for r in range(rounds):
        shift = r % len(names)
        for name in names[shift:] + names[:shift]:
            out[name].append(contenders[name]())
    return out


def timed(fn: Callable[[], Any]) -> float:
    """Seconds ``fn()`` takes."""
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


# ---------------------------------------------------------------- environment
def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"


def machine() -> dict[str, Any]:
    """What the numbers were measured on (no torch import: check_speed must stay light)."""
    load = os.getloadavg() if hasattr(os, "getloadavg") else (0.0, 0.0, 0.0)
    return {
        "cpu": cpu_model(),
        "cores": cores(),
        "torch": version("torch"),
        "python": platform.python_version(),
        "load_avg_1m": round(load[0], 2),
    }


# -------------------------------------------------------------------- results
@dataclass
class Figure:
    """One reported number: what it is, its value, and the target it is held to."""

    key: str
    label: str
    value: float
    text: str
    target: str | None = None
    met: bool | None = None
    why: str = ""


@dataclass
class Results:
    benchmark: str
    quick: bool
    figures: list[Figure] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)
    started: float = field(default_factory=time.perf_counter)

    def add(self, figure: Figure) -> Figure:
        self.figures.append(figure)
        return figure

    def save(self) -> Path:
        folder = results_dir(self.quick)
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{self.benchmark}.json"
        body = {
            "benchmark": self.benchmark,
            "quick": self.quick,
            "date": datetime.now().isoformat(timespec="seconds"),
            "machine": machine(),
            "wall_s": round(time.perf_counter() - self.started, 1),
            "figures": [asdict(f) for f in self.figures],
            "details": self.details,
        }
        tmp = path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(body, indent=2) + "\n", encoding="utf-8")
        tmp.replace(path)
        return path

    def summary(self) -> str:
        """The one-line summary every benchmark ends with."""
        shown = [f for f in self.figures if f.target] or self.figures
        parts = [f"{f.label}: {f.text.split(' (')[0]}{_verdict(f)}" for f in shown]
        mode = " [quick run: not the bar]" if self.quick else ""
        return f"{self.benchmark}{mode}: " + "; ".join(parts)


def _verdict(f: Figure) -> str:
    if f.met is None:
        return ""
    return f" (target {f.target}: {'met' if f.met else 'NOT met'})"


def load_results(name: str, quick: bool = False) -> dict[str, Any] | None:
    path = results_dir(quick) / f"{name}.json"
    if not path.is_file():
        return None
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


# --------------------------------------------------------------------- output
def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A plain fixed-width table (numbers right-aligned)."""
    cells = [[str(h) for h in headers]] + [[_cell(v) for v in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    numeric = [all(_is_number(row[i]) for row in rows) and rows for i in range(len(headers))]
    lines = []
    for j, row in enumerate(cells):
        parts = [
            c.rjust(w) if numeric[i] and j else c.ljust(w)
            for i, (c, w) in enumerate(zip(row, widths, strict=True))
        ]
        lines.append("  ".join(parts).rstrip())
        if j == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:,.4g}" if abs(value) < 1e4 else f"{value:,.0f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def parser(description: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--quick", action="store_true", help="a small run (not the bar)")
    return p


def note(text: str) -> None:
    """Progress for the reader, on stderr so tables stay clean."""
    print(text, file=sys.stderr, flush=True)
