"""Worst-case specs under the 1 MB size limit, and every command's cost on them (issue #13).

The bar: every command (check, check --verify, summary, graph as Mermaid and DOT, export,
schema) on every spec below the loader's 1 MB limit finishes in 5 s and 1 GB RSS on 2 cores.
:data:`CASES` generates the shapes that stress each stage: long chains, wide fan-in, deep
block nesting, many misspelt names, huge repeat counts, long chains of variables.

``python tests/worst_cases.py run CASE DIR`` writes the case to ``DIR`` and runs every command
on it in this one process, printing one JSON line per command with its CPU seconds (user +
system, what a 2-core budget is spent on, unlike wall time on a shared machine) and exit code.
The last line is the process's own peak RSS, :func:`peak_rss` (tests/test_bounded_cost.py,
and ``python tests/worst_cases.py table`` prints the figures quoted in tests/README.md).
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import resource
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

MAX_BYTES = 1_000_000  # archspec.loader.source.Limits.max_bytes
MAX_LAYERS = 10_000  # archspec.language.load.DEFAULT_MAX_LAYERS, the CLI's default --max-layers


def _fill(
    head: list[str],
    line: Callable[[int], str],
    tail: Callable[[int], list[str]],
    tail_cost: Callable[[int], int] = lambda i: 0,
    items: int | None = MAX_LAYERS - 2,
) -> str:
    """``head``, then ``line(i)`` for as many i as fit in MAX_BYTES (and at most ``items``:
    by default, as many as the layer limit allows) with ``tail(n)`` after them
    (``tail_cost(i)``: the bytes item i adds to the tail)."""
    budget = MAX_BYTES - 1_000 - sum(len(x) + 1 for x in [*head, *tail(0)])
    body: list[str] = []
    used = 0
    while items is None or len(body) < items:
        text = line(len(body))
        extra = len(text) + 1 + tail_cost(len(body))
        if used + extra > budget:
            break
        body.append(text)
        used += extra
    return "\n".join([*head, *body, *tail(len(body))]) + "\n"


def chain() -> str:
    """The longest chain the layer limit allows: 9,998 relus (≈ 90 KB)."""
    return _fill(["input: [4]", "layers:"], lambda i: "  - relu", lambda n: [])


def long_chain() -> str:
    """A chain of 110,997 relus (≈ 1 MB), past the layer limit: refused, located, before
    the layers are validated or inferred."""
    return _fill(["input: [4]", "layers:"], lambda i: "  - relu", lambda n: [], items=None)


def named_chain() -> str:
    """A chain where every layer names its input explicitly (``from:``)."""
    return _fill(
        ["input: [4]", "layers:", "  - {relu: null, name: l0}"],
        lambda i: f"  - {{relu: null, name: l{i + 1}, from: l{i}}}",
        lambda n: [],
    )


def fan_in() -> str:
    """Thousands of branches from the input, all concatenated by one layer."""

    def tail(n: int) -> list[str]:
        return ["  - concat: null", f"    from: [{', '.join(f'b{i}' for i in range(n))}]"]

    return _fill(
        ["input: [1, 4]", "layers:"],
        lambda i: f"  - {{relu: null, name: b{i}, from: input}}",
        tail,
        lambda i: len(f", b{i}"),
    )


def misspellings() -> str:
    """As many ``from:`` names as the layer limit allows, each one letter off one of 100
    real names (exhaustive "did you mean" search) or of the layers before (the index)."""
    return _fill(
        ["input: [4]", "layers:", *(f"  - {{relu: null, name: layer{i}}}" for i in range(100))],
        lambda i: f"  - {{relu: null, name: n{i}, from: {'lyer' if i % 2 else 'm'}{i // 2}}}",
        lambda n: [],
        items=MAX_LAYERS - 102,
    )


def unknown_kinds() -> str:
    """70,000 distinct unknown kinds (a broken entry places no layer, so the layer limit
    does not stop them): each asks "did you mean" among every kind."""
    return _fill(["input: [4]", "layers:"], lambda i: f"  - relx{i}", lambda n: [], items=None)


def misspelt_vars() -> str:
    """10,000 variables, then as many layers as the limit allows, each naming a misspelt
    one (alone or in an expression): each search is among all 10,000 (a fresh index each
    took 60 ms: 300 of them took 18 s)."""
    head = ["input: [4]", "vars:", *(f"  width{i}: {i % 7 + 1}" for i in range(10_000))]
    head.append("layers:")
    return _fill(head, lambda i: f"  - dense: wdth{i}{' + 1' * (i % 2)}", lambda n: [])


def deep_blocks(depth: int = 60) -> str:
    """Blocks that each use the one before twice: nesting ``depth`` deep, expansion capped by
    the layer limit (2^depth layers asked for)."""
    lines = ["input: [4]", "blocks:", "  b0:", "    layers: [relu]"]
    for i in range(1, depth + 1):
        lines += [f"  b{i}:", f"    layers: [b{i - 1}, b{i - 1}]"]
    return "\n".join([*lines, "layers:", f"  - b{depth}"]) + "\n"


def block_chain(depth: int = 400) -> str:
    """A chain of ``depth`` blocks, each using the one before once (issue #13: 5.8 KB)."""
    lines = ["input: [4]", "blocks:", "  b0:", "    layers: [relu]"]
    for i in range(1, depth + 1):
        lines += [f"  b{i}:", f"    layers: [b{i - 1}]"]
    return "\n".join([*lines, "layers:", f"  - b{depth}"]) + "\n"


def huge_repeat() -> str:
    """One line asking for a billion layers, nested repeats that multiply, and a repeat
    just under the limit after others (refused after one instance, not after 9,999)."""
    return (
        "input: [4]\nblocks:\n  twice:\n    layers:\n      - {relu: null, repeat: 1000}\n"
        "layers:\n  - {twice: null, repeat: 1000}\n  - {relu: null, repeat: 1000000000}\n"
        "  - {relu: null, repeat: 9999}\n  - {twice: null, repeat: 9}\n"
    )


def deep_vars() -> str:
    """A long chain of variables, each defined from the one before, then used."""

    def tail(n: int) -> list[str]:
        return ["layers:", f"  - dense: v{n - 1} % 7 + 1"]

    return _fill(
        ["input: [4]", "vars:", "  v0: 1"], lambda i: f"  v{i + 1}: v{i} + 1", tail, items=None
    )


def wide_expression() -> str:
    """The longest arithmetic expression the evaluator takes, nested parentheses included."""
    expr = "(" * 30 + "w0" + " + 1)" * 30 + " + 1" * 4  # 198 of the 200 characters allowed
    return f"input: [4]\nvars: {{w0: 2, w: '{expr}'}}\nlayers:\n  - dense: w\n"


CASES: dict[str, Callable[[], str]] = {
    "chain": chain,
    "long_chain": long_chain,
    "named_chain": named_chain,
    "fan_in": fan_in,
    "misspellings": misspellings,
    "unknown_kinds": unknown_kinds,
    "misspelt_vars": misspelt_vars,
    "deep_blocks": deep_blocks,
    "block_chain": block_chain,
    "huge_repeat": huge_repeat,
    "deep_vars": deep_vars,
    "wide_expression": wide_expression,
}


def commands(spec: Path, out: Path) -> dict[str, list[str]]:
    s = str(spec)
    return {
        "check": ["check", s],
        "check --verify": ["check", "--verify", "--no-memory-check", s],
        "summary": ["summary", s],
        "graph mmd": ["graph", s, "-o", str(out / "g.mmd")],
        "graph dot": ["graph", s, "-o", str(out / "g.dot")],
        "export": ["export", s, "-o", str(out / "e.safetensors")],
        "schema": ["schema", "-o", str(out / "schema.json")],
    }


def peak_rss() -> int:
    """This process's peak resident set in bytes: ``VmHWM``, its own address space's high-water
    mark. Not ``ru_maxrss``: a child started with vfork (``subprocess`` does) inherits its
    parent's peak there at exec, so a test worker's size leaked into every measurement."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024  # kB
    raise RuntimeError("no VmHWM in /proc/self/status")


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def run_case(name: str, out: Path) -> None:
    """Every command on case ``name``, in this process; one JSON line each on stdout."""
    from archspec.cli import as_program, main

    as_program()  # the settings `archspec` itself runs with

    spec = out / f"{name}.yaml"
    spec.write_text(CASES[name]())
    report = sys.stdout
    for label, argv in commands(spec, out).items():
        start = _cpu()
        sink = io.StringIO()
        with contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink):
            try:
                code = main(argv)
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else 2
        seconds = _cpu() - start
        last = sink.getvalue().strip().splitlines()[-1:] or [""]
        line = {"command": label, "cpu_s": round(seconds, 3), "rc": code, "last": last[0][:300]}
        print(json.dumps(line), file=report, flush=True)
    print(json.dumps({"peak_rss": peak_rss()}), file=report, flush=True)


def measure(name: str, out: Path) -> tuple[list[dict[str, object]], int]:
    """Run the case in a fresh interpreter; its per-command lines and peak RSS in bytes."""
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    log = out / f"{name}.jsonl"
    with open(log, "w") as handle:
        done = subprocess.run(
            [sys.executable, __file__, "run", name, str(out)], stdout=handle, env=env
        )
    assert done.returncode == 0, f"{name}: the runner exited {done.returncode}"
    *lines, last = [json.loads(x) for x in log.read_text().splitlines()]
    return lines, int(last["peak_rss"])


def table(out: Path) -> None:
    print(f"| case | size | {' | '.join(commands(Path('x'), out))} | peak RSS |")
    print("|---|---:|" + "---:|" * (len(commands(Path("x"), out)) + 1))
    for name in CASES:
        lines, rss = measure(name, out)
        cells = [f"{x['cpu_s']:.2f} s (exit {x['rc']})" for x in lines]
        size = len(CASES[name]().encode())
        print(f"| {name} | {size / 1000:.0f} KB | {' | '.join(cells)} | {rss / 2**20:.0f} MiB |")


if __name__ == "__main__":
    if sys.argv[1] == "run":
        run_case(sys.argv[2], Path(sys.argv[3]))
    else:
        import tempfile

        with tempfile.TemporaryDirectory() as tmp:
            table(Path(tmp))
