"""How long from a keystroke to its diagnostics in `archspec lsp`, for a 500-layer spec?

A real LSP client (tests/lsp_client.py: JSON-RPC over the server's stdin/stdout)
opens a 500-layer spec, warms the server up, then sends ``didChange`` edits one at
a time and times each until the ``publishDiagnostics`` of that version arrives.
The edits alternate between a valid spec (no diagnostics) and one with a layer
too big for its input (one diagnostic), so both paths are timed. A keystroke changes
one line (here: the last conv's kernel and padding), which the server parses alone
(``loader.reparse``); a second series changes two lines at once (also the first
conv's depth), so the whole buffer is parsed, and is reported beside it. Side by side,
alternated round by round, the same check runs in this process
(``analysis.analyze``: load, validate, infer, diagnostics), so the figure shows what
the protocol and the server add to the check itself. Target: median < 50 ms warm.

    python bench/lsp_latency.py [--quick] [--layers N] [--rounds N]
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from common import REPO, Figure, Results, Stats, note, parser, table

sys.path.insert(0, str(REPO / "tests"))
sys.path.insert(0, str(REPO))

from lsp_client import Client

from archspec.outputs.lsp import features
from archspec.outputs.lsp.analysis import analyze

TARGET_MS = 50.0


def spec(layers: int, broken: bool, first_depth: int = 16) -> str:
    """``layers`` layers: conv/relu pairs on a 3×64×64 input; ``broken`` makes the last
    conv's kernel larger than its input; ``first_depth``: the first conv's depth."""
    lines = ["name: big", "input: [3, 64, 64]", "layers:"]
    for i in range(layers // 2):
        kernel = 99 if broken and i == layers // 2 - 1 else 3
        pad = "valid" if broken and i == layers // 2 - 1 else "same"
        depth = first_depth if i == 0 else 16
        lines.append(f"  - conv: {{depth: {depth}, kernel: {kernel}, padding: {pad}}}")
        lines.append("  - relu")
    return "\n".join(lines) + "\n"


def timed_rounds(
    client: Client, uri: str, path: Path, texts: list[str], rounds: int
) -> tuple[list[float], list[float], list[float]]:
    """Send ``texts`` alternately as didChange; time each until its diagnostics arrive,
    and the same check in this process. Returns server, in-process and CPU ms."""
    server_ms: list[float] = []
    inproc_ms: list[float] = []
    cpu_ms: list[float] = []  # CPU time of the in-process check: what an idle core needs
    for i in range(rounds + 5):
        text = texts[i % 2]
        sent = time.perf_counter()
        version = client.change(uri, text)
        arrived, diags = client.diagnostics(uri, version)
        assert len(diags) == i % 2, diags  # the broken spec has exactly its one problem
        start, cpu = time.perf_counter(), time.process_time()
        features.diagnostics(analyze(text, path, str(path)))
        local, cpu = time.perf_counter() - start, time.process_time() - cpu
        if i >= 5:
            server_ms.append((arrived - sent) * 1e3)
            inproc_ms.append(local * 1e3)
            cpu_ms.append(cpu * 1e3)
    return server_ms, inproc_ms, cpu_ms


def main() -> None:
    p = parser(__doc__ or "")
    p.add_argument("--layers", type=int, default=500)
    p.add_argument("--rounds", type=int, default=None)
    args = p.parse_args()
    rounds = args.rounds or (10 if args.quick else 40)
    res = Results("lsp_latency", args.quick)
    one_line = [spec(args.layers, broken=False), spec(args.layers, broken=True)]
    two_lines = [one_line[0], spec(args.layers, broken=True, first_depth=17)]
    path = Path("/tmp/archspec_bench_lsp.yaml")
    path.write_text(one_line[0])
    uri = path.resolve().as_uri()
    client = Client()
    try:
        client.initialize()
        client.open(uri, one_line[0])
        client.diagnostics(uri, 1)
        note(f"lsp_latency: {args.layers} layers, {rounds} rounds (+5 warm-up) per edit")
        measured = {
            "one": timed_rounds(client, uri, path, one_line, rounds),
            "two": timed_rounds(client, uri, path, two_lines, rounds),
        }
    finally:
        client.close()
        path.unlink(missing_ok=True)
    rows = []
    for key, what in (("one", "one line"), ("two", "two lines")):
        srv, loc, cpu = (Stats.of(x) for x in measured[key])
        rows += [
            [f"{what}: didChange → publishDiagnostics", round(srv.median, 1),
             f"{srv.q1:.1f}–{srv.q3:.1f}", srv.n],
            [f"{what}: the check in-process", round(loc.median, 1),
             f"{loc.q1:.1f}–{loc.q3:.1f}", loc.n],
            [f"{what}:   its CPU time", round(cpu.median, 1), f"{cpu.q1:.1f}–{cpu.q3:.1f}",
             cpu.n],
        ]  # fmt: skip
    print(table(["edit", "median ms", "IQR ms", "n"], rows))
    srv, loc, cpu = (Stats.of(x) for x in measured["one"])
    srv2 = Stats.of(measured["two"][0])
    res.details.update(
        layers=args.layers,
        server_ms=measured["one"][0],
        in_process_ms=measured["one"][1],
        two_lines_server_ms=measured["two"][0],
        two_lines_in_process_ms=measured["two"][1],
    )
    res.add(
        Figure(
            "lsp_round_trip_ms",
            f"didChange→diagnostics, {args.layers} layers, a keystroke (one line changed)",
            srv.median,
            srv.text(digits=1, unit=" ms"),
            f"< {TARGET_MS:.0f} ms",
            srv.median < TARGET_MS,
            f"the check itself takes {loc.median:.1f} ms in-process (median); "
            f"the server adds {srv.median - loc.median:.1f} ms",
        )
    )
    res.add(
        Figure(
            "lsp_round_trip_two_lines_ms",
            f"didChange→diagnostics, {args.layers} layers, two lines changed at once "
            "(the whole buffer parsed)",
            srv2.median,
            srv2.text(digits=1, unit=" ms"),
        )
    )
    res.add(
        Figure("lsp_check_ms", "the one-line check in-process", loc.median,
               loc.text(digits=1, unit=" ms"))
    )  # fmt: skip
    res.add(
        Figure(
            "lsp_check_cpu_ms",
            "its CPU time (an idle core's wall time)",
            cpu.median,
            cpu.text(digits=1, unit=" ms"),
        )
    )
    res.save()
    print(res.summary())


if __name__ == "__main__":
    main()
