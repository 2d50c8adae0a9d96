"""A layer-aware diff of two Plans: layers added, removed and changed, and the totals.

Layers are matched by name first (``conv1`` in both), then the rest by position: the
unmatched layers of each side are aligned in order by kind (``difflib``), so a layer
inserted in the middle shows as added rather than shifting every layer after it. A
matched pair is *changed* when its name, kind or settings, inputs, output shape, parameters,
MACs or receptive field differ. Torch-free.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import IO, Any, Literal, TypeVar

from archspec.errors import printable
from archspec.outputs.report import field_text
from archspec.shapes import kinds
from archspec.shapes.plan import Plan, PlanNode, format_shape

T = TypeVar("T")
Status = Literal["added", "removed", "changed", "same"]
SIGNS: dict[Status, str] = {"added": "+", "removed": "-", "changed": "~", "same": " "}
ASPECTS = ("kind", "settings", "inputs", "shape", "params", "macs", "receptive field")


@dataclass(frozen=True)
class LayerDiff:
    """One row: a layer of A, of B, or of both (matched)."""

    status: Status
    old: PlanNode | None
    new: PlanNode | None
    changed: tuple[str, ...] = ()  # which of ASPECTS differ

    @property
    def name(self) -> str:
        old, new = self.old, self.new
        if old is not None and new is not None and old.name != new.name:
            return f"{old.name} → {new.name}"
        node = new or old
        assert node is not None
        return node.name


@dataclass(frozen=True)
class PlanDiff:
    old: Plan
    new: Plan
    layers: tuple[LayerDiff, ...]
    train_changed: tuple[str, ...] = ()  # top-level train keys that differ

    @property
    def identical(self) -> bool:
        return (
            all(layer.status == "same" for layer in self.layers)
            and self.old.input_shape == self.new.input_shape
            and self.old.output == self.new.output
            and not self.train_changed
        )

    def count(self, status: Status) -> int:
        return sum(layer.status == status for layer in self.layers)


def kind_text(node: PlanNode) -> str:
    """``conv 3×3 /1 same`` — the kind and its settings, as the check table shows it."""
    return printable(f"{node.kind} {kinds.get(node.kind).describe(node)}".strip())


def _aspects(node: PlanNode) -> tuple[Any, ...]:
    return (
        node.kind,
        node.params,
        _reads(node, {}),
        node.shapes,  # several outputs: each one's
        node.num_params,
        node.macs,
        field_text(node.field),
    )


def _reads(node: PlanNode, renamed: dict[str, str]) -> tuple[tuple[str, int], ...]:
    """Each input as (producer, which of its outputs), producers renamed by the matching."""
    return tuple((renamed.get(x, x), node.port(i)) for i, x in enumerate(node.inputs))


def _compare(old: PlanNode, new: PlanNode, renamed: dict[str, str]) -> LayerDiff:
    a, b = _aspects(old), _aspects(new)
    # inputs are compared through the matching: A's producer `x` matched to B's `y` is equal
    a = (*a[:2], _reads(old, renamed), *a[3:])
    changed = tuple(aspect for aspect, x, y in zip(ASPECTS, a, b, strict=True) if x != y)
    if "kind" in changed:  # another kind's settings are not comparable
        changed = tuple(aspect for aspect in changed if aspect != "settings")
    if old.name != new.name:
        changed = ("name", *changed)
    return LayerDiff("changed" if changed else "same", old, new, changed)


def _match(old: Plan, new: Plan) -> dict[int, int]:
    """Index in ``old`` → index in ``new``: same name first, then aligned by kind."""
    new_index = {node.name: j for j, node in enumerate(new.nodes)}
    pairs = {i: new_index[node.name] for i, node in enumerate(old.nodes) if node.name in new_index}
    taken = set(pairs.values())
    rest_a = [i for i in range(len(old.nodes)) if i not in pairs]
    rest_b = [j for j in range(len(new.nodes)) if j not in taken]
    kinds_a = [old.nodes[i].kind for i in rest_a]
    kinds_b = [new.nodes[j].kind for j in rest_b]
    matcher = difflib.SequenceMatcher(None, kinds_a, kinds_b, autojunk=False)
    for tag, a0, a1, b0, b1 in matcher.get_opcodes():
        if tag in ("equal", "replace"):
            for i, j in zip(range(a0, a1), range(b0, b1), strict=False):
                pairs[rest_a[i]] = rest_b[j]
    return pairs


def diff_plans(old: Plan, new: Plan, train_changed: Sequence[str] = ()) -> PlanDiff:
    """Every layer of ``old`` and ``new``, in ``new``'s order, removed layers where they were."""
    pairs = _match(old, new)
    renamed = {old.nodes[i].name: new.nodes[j].name for i, j in pairs.items()}
    renamed["input"] = "input"
    partner = {j: i for i, j in pairs.items()}
    keyed: list[tuple[tuple[int, int, int], LayerDiff]] = []
    for j, node in enumerate(new.nodes):
        if j in partner:
            keyed.append(((j, 0, 0), _compare(old.nodes[partner[j]], node, renamed)))
        else:
            keyed.append(((j, 0, 0), LayerDiff("added", None, node)))
    anchor = -1  # the B row after which a removed layer goes: its A predecessor's partner
    for i, node in enumerate(old.nodes):
        if i in pairs:
            anchor = pairs[i]
        else:
            keyed.append(((anchor, 1, i), LayerDiff("removed", node, None)))
    keyed.sort(key=lambda item: item[0])
    return PlanDiff(old, new, tuple(row for _, row in keyed), tuple(train_changed))


def train_keys_changed(old: Any, new: Any) -> tuple[str, ...]:
    """The ``train:`` keys whose values differ between two specs' data (after extends)."""
    a = old.get("train") if isinstance(old, dict) else None
    b = new.get("train") if isinstance(new, dict) else None
    if not isinstance(a, dict) or not isinstance(b, dict):
        return () if a == b else ("train",)
    return tuple(sorted(str(k) for k in {*a, *b} if a.get(k) != b.get(k)))


# ---------------------------------------------------------------- rendering


def _pair(old: str | None, new: str | None) -> str:
    if old is None:
        return new or ""
    if new is None or old == new:
        return old
    return f"{old} → {new}"


def _delta(old: int | None, new: int | None) -> str:
    if old is None:
        return f"+{new:,}" if new else "0"
    if new is None:
        return f"-{old:,}" if old else "0"
    if old == new:
        return f"{new:,}"
    return f"{old:,} → {new:,} ({new - old:+,})"


def _field(node: PlanNode | None) -> str | None:
    if node is None:
        return None
    size, jump = field_text(node.field)
    return size if size == "all" else f"{size} /{jump}"


HEADERS = ("", "layer", "kind", "output", "params", "MACs", "receptive field", "changed")


def _of(node: PlanNode | None, value: Callable[[PlanNode], T]) -> T | None:
    return None if node is None else value(node)


def cells(row: LayerDiff) -> tuple[str, ...]:
    old, new = row.old, row.new

    def shape(n: PlanNode) -> str:
        return n.shape_text()

    def params(n: PlanNode) -> int:
        return n.num_params

    def macs(n: PlanNode) -> int:
        return n.macs

    return (
        SIGNS[row.status],
        printable(row.name),
        _pair(_of(old, kind_text), _of(new, kind_text)),
        _pair(_of(old, shape), _of(new, shape)),
        _delta(_of(old, params), _of(new, params)),
        _delta(_of(old, macs), _of(new, macs)),
        _pair(_field(old), _field(new)),
        ", ".join(row.changed),
    )


def totals(d: PlanDiff) -> list[tuple[str, str]]:
    a, b = d.old, d.new
    out = [
        ("layers", _delta(len(a.nodes), len(b.nodes))),
        ("parameters", _delta(a.total_params, b.total_params)),
        ("MACs per sample", _delta(a.total_macs, b.total_macs)),
        ("input", _pair(format_shape(a.input_shape), format_shape(b.input_shape))),
        ("output", _pair(format_shape(a.output_shape), format_shape(b.output_shape))),
        (
            "summary",
            f"{d.count('added')} added, {d.count('removed')} removed, "
            f"{d.count('changed')} changed, {d.count('same')} unchanged",
        ),
    ]
    if d.train_changed:
        out.append(("train", "differs in " + ", ".join(d.train_changed)))
    return out


def _shown(d: PlanDiff, everything: bool) -> list[LayerDiff]:
    return [row for row in d.layers if everything or row.status != "same"]


def _title(d: PlanDiff) -> str:
    verdict = "identical" if d.identical else "different"
    return printable(f"{d.old.name} → {d.new.name}: {verdict}")


def plain(d: PlanDiff, everything: bool = False) -> str:
    """Aligned plain text (what `archspec diff` prints when stdout is not a terminal)."""
    table = [HEADERS, *(cells(row) for row in _shown(d, everything))]
    widths = [max(len(r[i]) for r in table) for i in range(len(HEADERS))]
    lines = [_title(d)]
    if len(table) > 1:
        lines += [
            "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in table
        ]
    lines += [f"{label}: {value}" for label, value in totals(d)]
    return "\n".join(lines)


_STYLES: dict[Status, str | None] = {
    "added": "green",
    "removed": "red",
    "changed": "yellow",
    "same": None,
}


def rich(d: PlanDiff, stream: IO[str], everything: bool = False) -> None:
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    table = Table(title=Text(_title(d)), title_justify="left")
    for header in HEADERS:
        table.add_column(header)
    for row in _shown(d, everything):
        table.add_row(*(Text(c) for c in cells(row)), style=_STYLES[row.status])
    console = Console(file=stream)
    if table.row_count:
        console.print(table)
    else:
        console.print(Text(_title(d), "bold"))
    for label, value in totals(d):
        console.print(Text.assemble((label, "bold"), f": {value}"))


def markdown(d: PlanDiff, everything: bool = False) -> str:
    """A GitHub-flavoured Markdown table, for pull requests."""
    lines = [f"**{_title(d)}**", ""]
    rows = _shown(d, everything)
    if rows:
        lines += ["| " + " | ".join(HEADERS) + " |", "|" + "|".join(":---" for _ in HEADERS) + "|"]
        for row in rows:
            c = [x.replace("|", "\\|") for x in cells(row)]
            c[0] = c[0].strip() and f"`{c[0]}`"
            c[1] = f"`{c[1]}`"
            lines.append("| " + " | ".join(c) + " |")
        lines.append("")
    lines += [f"- {label}: {value}" for label, value in totals(d)]
    return "\n".join(lines)


def _node_json(node: PlanNode | None) -> dict[str, Any] | None:
    if node is None:
        return None
    return {
        "name": node.name,
        "kind": kind_text(node),
        "inputs": list(node.inputs),
        "shape": list(node.shape),
        "params": node.num_params,
        "macs": node.macs,
        "receptive_field": _field(node),
    }


def to_json(d: PlanDiff, old_file: str, new_file: str) -> str:
    a, b = d.old, d.new
    return json.dumps(
        {
            "old": old_file,
            "new": new_file,
            "identical": d.identical,
            "totals": {
                "layers": [len(a.nodes), len(b.nodes)],
                "params": [a.total_params, b.total_params],
                "macs": [a.total_macs, b.total_macs],
                "input": [list(a.input_shape), list(b.input_shape)],
                "output": [list(a.output_shape), list(b.output_shape)],
            },
            "train_changed": list(d.train_changed),
            "layers": [
                {
                    "status": row.status,
                    "changed": list(row.changed),
                    "old": _node_json(row.old),
                    "new": _node_json(row.new),
                }
                for row in d.layers
            ],
        },
        indent=2,
    )
