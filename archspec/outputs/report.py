"""Rendering a Plan: rows for a table (boxed and coloured on a terminal, plain text otherwise),
JSON, Markdown."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import IO, Any

from archspec import text as escape
from archspec.errors import printable
from archspec.shapes import counting, kinds
from archspec.shapes.memory import Profile, human
from archspec.shapes.plan import Plan, PlanNode, RField, field_dict, format_shape

HEADERS = ("#", "layer", "kind", "output", "params", "MACs", "receptive field", "jump")
NUMERIC = {0, 4, 5, 7}


@dataclass(frozen=True)
class Row:
    index: str
    name: str
    kind: str
    shape: str
    params: int
    macs: int
    field: str
    jump: str

    def cells(self) -> tuple[str, ...]:
        return (
            self.index,
            self.name,
            self.kind,
            self.shape,
            f"{self.params:,}",
            f"{self.macs:,}",
            self.field,
            self.jump,
        )


def _num(value: int | Fraction) -> str:
    return str(int(value)) if value.denominator == 1 else f"{float(value):.3g}"


def field_text(rf: RField) -> tuple[str, str]:
    """``("16×16", "4")`` — size and jump in input pixels; ``("all", "-")`` when global."""
    if rf is None:
        return "all", "-"
    sizes = [_num(axis.size) for axis in rf]
    jumps = [_num(axis.jump) for axis in rf]
    return "×".join(sizes) or "1", (jumps[0] if len(set(jumps)) == 1 else "×".join(jumps)) or "1"


def _kind_text(node: PlanNode) -> str:
    return printable(kinds.label(node))


def headers(count: str = counting.DEFAULT) -> tuple[str, ...]:
    """The column names; the MACs column is named after ``count`` (a convention or flops)."""
    return tuple(counting.describe(count) if h == "MACs" else h for h in HEADERS)


def rows(
    plan: Plan,
    depth: int | None = None,
    count: str = counting.DEFAULT,
    shapes: Mapping[str, str] | None = None,
) -> list[Row]:
    """One row per layer; with ``depth``, layers inside blocks nested deeper are summed.
    ``shapes``: a layer's output written another way (``8×⌈H/2⌉×⌈W/2⌉`` for symbolic
    input sizes) instead of its numbers.

    The MACs column holds each layer's count under ``count`` (see
    :mod:`archspec.shapes.counting`): a convention's MACs, or ``"flops"``.
    """
    counts = counting.per_layer(plan, count)
    shapes = shapes or {}
    out: list[Row] = []
    collapsed: dict[str, int] = {}
    for node in plan.nodes:
        group = node.group[depth - 1] if depth is not None and len(node.group) >= depth else None
        rf, jump = field_text(node.field)
        if group is None:
            out.append(
                Row(
                    str(len(out) + 1),
                    node.name,
                    _kind_text(node),
                    shapes.get(node.name) or node.shape_text(),
                    node.num_params,
                    counts[node.name],
                    rf,
                    jump,
                )
            )
            continue
        if group not in collapsed:
            collapsed[group] = len(out)
            out.append(Row(str(len(out) + 1), group, "block", "", 0, 0, "", ""))
        i = collapsed[group]
        row = out[i]
        out[i] = Row(
            row.index,
            group,
            row.kind,
            shapes.get(node.name) or node.shape_text(),
            row.params + node.num_params,
            row.macs + counts[node.name],
            rf,
            jump,
        )
    return out


def io_lines(plan: Plan) -> list[tuple[str, str]]:
    """One line per input and per output of a network with several (or int token ids):
    ``output boxes: 4 — 244 params, 7,632 MACs, receptive field 3×3, from image``. An
    output's params and MACs count every layer it depends on (shared ones in each); its
    receptive field is relative to the one input it descends from ("—" when several)."""
    if plan.plain_io:
        return [
            ("input", format_shape(plan.input_shape)),
            ("output", format_shape(plan.output_shape)),
        ]
    out = []
    for inp in plan.all_inputs:
        what = inp.layout if inp.vocab is None else f"int token ids in [0, {inp.vocab:,})"
        out.append((f"input {inp.name}", f"{format_shape(inp.shape)} {what}"))
    for i, (name, port) in enumerate(plan.all_outputs):
        nodes = plan.ancestors(name)
        origins = sorted(plan.origins(name))
        field = field_text(plan.node(name).field)[0] if len(origins) == 1 else "—"
        params = sum(n.num_params for n in nodes)
        macs = sum(n.macs for n in nodes)
        out.append(
            (
                f"output {plan.output_label(i)}",
                f"{format_shape(plan.shape_of(name, port))} — {params:,} params, {macs:,} "
                f"MACs, receptive field {field}, from {', '.join(origins)}",
            )
        )
    return out


def totals(plan: Plan, count: str = counting.DEFAULT) -> list[tuple[str, str]]:
    params = plan.total_params
    measure = [] if count == counting.DEFAULT else [(_total_label(count), _total(plan, count))]
    return [
        *io_lines(plan),
        ("layers", f"{len(plan.nodes):,}"),
        ("parameters", f"{params:,} ({params * 4 / 2**20:.2f} MiB as float32)"),
        ("MACs per sample", f"{plan.total_macs:,}"),
        *measure,
    ]


def _total_label(count: str) -> str:
    return f"{counting.describe(count)} per sample"


def _total(plan: Plan, count: str) -> str:
    return f"{counting.total(plan, count):,}"


def plain_table(
    plan: Plan,
    depth: int | None = None,
    count: str = counting.DEFAULT,
    shapes: Mapping[str, str] | None = None,
) -> str:
    """The table as aligned plain text (what `archspec check` prints when not on a terminal)."""
    lines = [printable(plan.name)]
    table = [headers(count), *(row.cells() for row in rows(plan, depth, count, shapes))]
    widths = [max(len(r[i]) for r in table) for i in range(len(HEADERS))]
    for r in table:
        cells = [
            c.rjust(w) if i in NUMERIC else c.ljust(w)
            for i, (c, w) in enumerate(zip(r, widths, strict=True))
        ]
        lines.append("  ".join(cells).rstrip())
    lines += [f"{label}: {value}" for label, value in totals(plan, count)]
    return "\n".join(lines)


def _styles() -> tuple[str, str, str, str]:
    """Bold, cyan, italic and reset as ANSI codes; none under NO_COLOR or TERM=dumb."""
    if "NO_COLOR" in os.environ or os.environ.get("TERM") == "dumb":
        return "", "", "", ""
    return "\x1b[1m", "\x1b[36m", "\x1b[3m", "\x1b[0m"


def terminal_table(
    plan: Plan,
    stream: IO[str],
    width: int,
    depth: int | None = None,
    count: str = counting.DEFAULT,
    shapes: Mapping[str, str] | None = None,
) -> None:
    """The table for a terminal ``width`` columns wide: boxed, bold headings, the output
    column in cyan; without the box where it would not fit (the plain layout, coloured).

    Drawn directly rather than through rich, which measured and laid out every cell:
    0.1–0.4 s for the 100–250 rows of a modern network, most of `archspec check`'s time
    on a terminal (issue 14). The cells are the plain table's (ours, or printable)."""
    bold, cyan, italic, reset = _styles()
    head = headers(count)
    body = [row.cells() for row in rows(plan, depth, count, shapes)]
    widths = [max(len(r[i]) for r in (head, *body)) for i in range(len(head))]

    def cells(r: Sequence[str], style: str = "") -> list[str]:
        out = []
        for i, (c, w) in enumerate(zip(r, widths, strict=True)):
            text = c.rjust(w) if i in NUMERIC else c.ljust(w)
            colour = style or (cyan if i == 3 else "")
            out.append(f"{colour}{text}{reset}" if colour else text)
        return out

    lines = [f"{italic}{printable(plan.name)}{reset}"]
    if sum(widths) + 3 * len(widths) + 1 <= width:  # │ cell │ cell │ (1 space each side)
        lines.append("┏" + "┳".join("━" * (w + 2) for w in widths) + "┓")
        lines.append("┃ " + " ┃ ".join(cells(head, bold)) + " ┃")
        lines.append("┡" + "╇".join("━" * (w + 2) for w in widths) + "┩")
        lines += ["│ " + " │ ".join(cells(r)) + " │" for r in body]
        lines.append("└" + "┴".join("─" * (w + 2) for w in widths) + "┘")
    else:
        lines.append("  ".join(cells(head, bold)).rstrip())
        lines += ["  ".join(cells(r)).rstrip() for r in body]
    lines += [f"{bold}{label}{reset}: {value}" for label, value in totals(plan, count)]
    stream.write("\n".join(lines) + "\n")


def markdown_table(
    plan: Plan,
    depth: int | None = None,
    count: str = counting.DEFAULT,
    shapes: Mapping[str, str] | None = None,
) -> str:
    """A GitHub-flavoured Markdown table of the Plan, for papers and READMEs."""
    align = ["---:" if i in NUMERIC else ":---" for i in range(len(HEADERS))]
    title = f"**{escape.markdown(plan.name)}**"
    lines = [title, "", "| " + " | ".join(headers(count)) + " |", "|" + "|".join(align) + "|"]
    for row in rows(plan, depth, count, shapes):
        cells = [escape.markdown(c) for c in row.cells()]
        cells[1] = escape.markdown_code(row.cells()[1]).replace("|", "\\|")
        lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
    lines += [f"- {label}: {value}" for label, value in totals(plan, count)]
    return "\n".join(lines)


def plan_json(
    plans: Sequence[tuple[str, Plan | None, list[dict[str, Any]]]],
    count: str = counting.DEFAULT,
    extra: Sequence[dict[str, Any]] = (),
) -> str:
    """``{"specs": [{"file", "valid", "plan" | "errors"}]}``; with a ``count`` other than
    archspec's MACs, each plan also has ``count`` (its name), ``total_count`` and per
    layer ``count``. ``extra[i]``: more keys for spec ``i`` (``symbolic``)."""
    out = []
    for i, (file, plan, errors) in enumerate(plans):
        entry: dict[str, Any] = {"file": file, "valid": plan is not None}
        if i < len(extra):
            entry |= extra[i]
        if plan is not None:
            entry["plan"] = plan.to_dict()
            if count != counting.DEFAULT:
                _add_counts(entry["plan"], plan, count)
        else:
            entry["errors"] = errors
        out.append(entry)
    import json  # only --json needs it; a plain check does not pay for importing it

    return json.dumps({"specs": out}, indent=2)


def _add_counts(data: dict[str, Any], plan: Plan, count: str) -> None:
    per_layer = counting.per_layer(plan, count)
    data["count"] = count
    data["total_count"] = sum(per_layer.values())
    for layer in data["layers"]:
        layer["count"] = per_layer[layer["name"]]


__all__ = [
    "field_dict",
    "markdown_table",
    "plain_table",
    "plan_json",
    "rows",
    "terminal_table",
]


# ----------------------------------------------------------------------------- memory
MEMORY_HEADERS = ("#", "layer", "kind", "output", "params", "grads", "optimizer", "saved", "live")
MEMORY_NUMERIC = {0, 4, 5, 6, 7, 8}


def _bytes(n: int) -> str:
    return human(n) if n else "-"


def memory_cells(prof: Profile) -> list[list[str]]:
    """One row per layer of a :class:`archspec.shapes.memory.Profile`: its parameters,
    gradients and optimizer state, what backward keeps of it at the batch size, and the
    activations live while it runs at inference."""
    return [
        [
            str(i),
            printable(row.node.name),
            row.node.kind,
            row.node.shape_text(),
            _bytes(row.params),
            _bytes(row.grads),
            _bytes(row.optimizer),
            _bytes(row.saved),
            _bytes(row.inference),
        ]
        for i, row in enumerate(prof.rows, start=1)
    ]


def memory_totals(prof: Profile) -> list[tuple[str, str]]:
    return [
        ("batch", f"{prof.batch_size:,}"),
        ("parameters and buffers", human(prof.params)),
        ("optimizer state", human(prof.optimizer)),
        ("saved for backward", human(prof.saved)),
        ("training peak", f"{human(prof.train_peak)} (at the {prof.train_phase})"),
        ("inference peak", f"{human(prof.inference_peak)} (at {printable(prof.inference_layer)})"),
    ]


def memory_table(plan: Plan, prof: Profile, stream: IO[str] | None, markdown: bool = False) -> str:
    """The memory table: rich on a terminal (``stream``), else plain text or Markdown."""
    title = f"{printable(plan.name)}: memory at batch {prof.batch_size:,}"
    cells = memory_cells(prof)
    if stream is not None:
        from rich.console import Console
        from rich.table import Table
        from rich.text import Text

        table = Table(title=Text(title), title_justify="left")
        for i, header in enumerate(MEMORY_HEADERS):
            table.add_column(header, justify="right" if i in MEMORY_NUMERIC else "left")
        for row in cells:
            table.add_row(*(Text(c) for c in row))
        console = Console(file=stream)
        console.print(table)
        for label, value in memory_totals(prof):
            console.print(Text.assemble((label, "bold"), f": {value}"))
        return ""
    if markdown:
        align = ["---:" if i in MEMORY_NUMERIC else ":---" for i in range(len(MEMORY_HEADERS))]
        lines = [f"**{escape.markdown(title)}**", "", "| " + " | ".join(MEMORY_HEADERS) + " |"]
        lines.append("|" + "|".join(align) + "|")
        lines += ["| " + " | ".join(escape.markdown(c) for c in row) + " |" for row in cells]
        lines += [""] + [f"- {label}: {value}" for label, value in memory_totals(prof)]
        return "\n".join(lines)
    grid = [list(MEMORY_HEADERS), *cells]
    widths = [max(len(r[i]) for r in grid) for i in range(len(MEMORY_HEADERS))]
    lines = [title]
    for r in grid:
        lines.append(
            "  ".join(
                c.rjust(w) if i in MEMORY_NUMERIC else c.ljust(w)
                for i, (c, w) in enumerate(zip(r, widths, strict=True))
            ).rstrip()
        )
    lines += [f"{label}: {value}" for label, value in memory_totals(prof)]
    return "\n".join(lines)


def memory_json(prof: Profile) -> dict[str, Any]:
    """The profile as JSON: bytes, per layer and in total."""
    return {
        "batch_size": prof.batch_size,
        "params": prof.params,
        "optimizer": prof.optimizer,
        "saved": prof.saved,
        "train_peak": prof.train_peak,
        "train_phase": prof.train_phase,
        "inference_peak": prof.inference_peak,
        "inference_layer": prof.inference_layer,
        "layers": [
            {
                "name": row.node.name,
                "kind": row.node.kind,
                "params": row.params,
                "grads": row.grads,
                "optimizer": row.optimizer,
                "saved": row.saved,
                "live": row.inference,
            }
            for row in prof.rows
        ],
    }
