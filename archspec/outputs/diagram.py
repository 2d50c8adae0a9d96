"""Diagrams of a Plan: Mermaid flowcharts and Graphviz DOT (SVG/PNG through Graphviz's ``dot``).

Each layer is a box showing its name, kind with key parameters (the same text as
``archspec check``) and output shape; edges follow the Plan's ``inputs``, so skip
connections show. Blocks become nested clusters; ``depth`` collapses blocks nested
deeper than N into one box, like ``archspec check --depth``. Torch-free.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from archspec import text as escape
from archspec.errors import ArchspecError, UsageError
from archspec.io import format_from_suffix, write_bytes
from archspec.shapes import kinds
from archspec.shapes.plan import Plan, PlanNode, format_shape

FORMATS = ("mermaid", "dot", "svg", "png")
EXTENSIONS = {
    ".mmd": "mermaid",
    ".mermaid": "mermaid",
    ".dot": "dot",
    ".gv": "dot",
    ".svg": "svg",
    ".png": "png",
}
DOT_TIMEOUT_S = 120


class ToolError(ArchspecError):
    """An external program this output needs is missing or failed (e.g. Graphviz's ``dot``)."""


@dataclass
class Box:
    id: str
    lines: list[str]
    role: str  # "io", "layer" or "block"
    groups: tuple[str, ...]  # the enclosing clusters, outermost first


@dataclass
class Diagram:
    title: str
    boxes: list[Box]
    edges: list[tuple[str, str]]
    clusters: dict[str, str] = field(default_factory=dict)  # group name → cluster id


def layout(plan: Plan, depth: int | None = None) -> Diagram:
    """Boxes, edges and clusters of ``plan``; blocks nested deeper than ``depth`` collapse."""
    plain = plan.plain_io
    boxes: list[Box] = []
    shown: dict[str, str] = {}  # node name → id of the box that shows it
    for k, inp in enumerate(plan.all_inputs):
        # n0, layers n1…nN, the first output n(N+1); further inputs and outputs after it
        ident = "n0" if k == 0 else f"n{len(plan.nodes) + 1 + k}"
        label = "input" if plain else f"input {inp.name}"
        boxes.append(Box(ident, [label, format_shape(inp.shape)], "io", ()))
        shown[inp.name] = ident
    blocks: dict[str, list[PlanNode]] = {}  # collapsed block → its layers
    ids: dict[str, str] = {}  # collapsed block → its box id
    for i, node in enumerate(plan.nodes, start=1):
        if depth is None or len(node.group) < depth:
            lines = [node.name, kinds.label(node), node.shape_text()]
            boxes.append(Box(f"n{i}", lines, "layer", node.group))
            shown[node.name] = f"n{i}"
            continue
        group = node.group[depth - 1]
        if group not in blocks:
            blocks[group] = []
            ids[group] = f"b{len(ids) + 1}"
            boxes.append(Box(ids[group], [group], "block", node.group[: depth - 1]))
        blocks[group].append(node)
        shown[node.name] = ids[group]
    for box in boxes:
        if box.role == "block":
            layers = blocks[box.lines[0]]
            params = sum(node.num_params for node in layers)
            box.lines += [
                f"block: {len(layers)} layers, {params:,} params",
                layers[-1].shape_text(),
            ]
    edges = _edges(plan, shown)
    for k, (name, port) in enumerate(plan.all_outputs):
        out = f"n{len(plan.nodes) + 1 + (k and len(plan.all_inputs) - 1 + k)}"
        label = "output" if plain else f"output {plan.output_label(k)}"
        boxes.append(Box(out, [label, format_shape(plan.shape_of(name, port))], "io", ()))
        edges.append((shown[name], out))
    names = sorted({g for box in boxes for g in box.groups}, key=lambda g: (g.count("."), g))
    return Diagram(plan.name, boxes, edges, {g: f"g{i}" for i, g in enumerate(names, start=1)})


def _edges(plan: Plan, shown: dict[str, str]) -> list[tuple[str, str]]:
    """Each distinct edge once, in order (a set beside the list: issue #13, a 40,000-layer
    chain took 33 s with a list membership test)."""
    edges: list[tuple[str, str]] = []
    seen: set[tuple[str, str]] = set()
    for node in plan.nodes:
        for source in node.inputs:
            edge = (shown[source], shown[node.name])
            if edge[0] != edge[1] and edge not in seen:
                seen.add(edge)
                edges.append(edge)
    return edges


@dataclass
class _Cluster:
    """A cluster's contents in first-appearance order: boxes and nested clusters."""

    name: str
    items: list[Box | _Cluster] = field(default_factory=list)


def _tree(diagram: Diagram) -> _Cluster:
    """The cluster tree of the diagram's boxes, built in one pass (linear in boxes × depth)."""
    root = _Cluster("")
    index: dict[tuple[str, ...], _Cluster] = {(): root}
    for box in diagram.boxes:
        parent = root
        for level in range(len(box.groups)):
            key = box.groups[: level + 1]
            cluster = index.get(key)
            if cluster is None:
                cluster = index[key] = _Cluster(box.groups[level])
                parent.items.append(cluster)
            parent = cluster
        parent.items.append(box)
    return root


def _walk(root: _Cluster) -> Iterator[tuple[str, Box | str, int]]:
    """``("box", box, level)``, ``("open", group, level)`` and ``("close", group, level)``
    in document order, iteratively (deep block nesting must not hit the recursion limit)."""
    stack: list[tuple[_Cluster, int, int]] = [(root, 0, 0)]  # cluster, next item, level
    while stack:
        cluster, i, level = stack.pop()
        if i == len(cluster.items):
            if level:
                yield "close", cluster.name, level - 1
            continue
        stack.append((cluster, i + 1, level))
        item = cluster.items[i]
        if isinstance(item, Box):
            yield "box", item, level
        else:
            yield "open", item.name, level
            stack.append((item, 0, level + 1))


def _one_line(text: str) -> str:
    return " ".join(text.split())


# ------------------------------------------------------------------------------- Mermaid
_MERMAID_SHAPES = {"io": ('(["', '"])'), "layer": ('["', '"]'), "block": ('[["', '"]]')}


def mermaid_text(text: str) -> str:
    """``text`` safe inside a quoted Mermaid label (entity codes for ``# " < > & `````).

    >>> mermaid_text('a "b" <c> #1')
    'a #quot;b#quot; #lt;c#gt; #35;1'
    """
    return escape.mermaid(text)


def mermaid(diagram: Diagram) -> str:
    """A Mermaid flowchart (top to bottom) of the diagram, titled in its front matter."""
    # a YAML-safe scalar
    title = json.dumps(escape.terminal(_one_line(diagram.title)), ensure_ascii=False)
    lines = ["---", f"title: {title}", "---", "flowchart TD", "  %% generated by archspec graph"]
    lines += _mermaid_cluster(diagram, "  ")
    lines += [f"  {a} --> {b}" for a, b in diagram.edges]
    return "\n".join(lines) + "\n"


def _mermaid_cluster(diagram: Diagram, pad: str) -> list[str]:
    lines = []
    for event, item, level in _walk(_tree(diagram)):
        indent = pad + "  " * level
        if isinstance(item, Box):
            left, right = _MERMAID_SHAPES[item.role]
            label = "<br/>".join(mermaid_text(line) for line in item.lines if line)
            lines.append(f"{indent}{item.id}{left}{label}{right}")
        elif event == "open":
            lines.append(f'{indent}subgraph {diagram.clusters[item]} ["{mermaid_text(item)}"]')
        else:
            lines.append(f"{indent}end")
    return lines


# ----------------------------------------------------------------------------------- DOT
_DOT_SHAPES = {
    "io": "shape=oval",
    "layer": "shape=box, style=rounded",
    "block": 'shape=box, style="rounded,bold"',
}


def dot_text(text: str) -> str:
    r"""``text`` as a double-quoted DOT string (backslashes and quotes escaped).

    >>> print(dot_text('a "b" \\N'))
    "a \"b\" \\N"
    """
    return escape.dot(text)


def dot(diagram: Diagram) -> str:
    """A Graphviz digraph (top to bottom) of the diagram."""
    lines = [
        f"digraph {dot_text(diagram.title)} {{",
        f'  graph [label={dot_text(diagram.title)}, labelloc=t, fontname="Helvetica"];',
        '  node [fontname="Helvetica", fontsize=10];',
        "  edge [arrowsize=0.7];",
    ]
    lines += _dot_cluster(diagram, "  ")
    lines += [f"  {a} -> {b};" for a, b in diagram.edges]
    return "\n".join([*lines, "}"]) + "\n"


def _dot_cluster(diagram: Diagram, pad: str) -> list[str]:
    lines = []
    for event, item, level in _walk(_tree(diagram)):
        indent = pad + "  " * level
        if isinstance(item, Box):
            label = "\\n".join(dot_text(line)[1:-1] for line in item.lines if line)
            lines.append(f'{indent}{item.id} [label="{label}", {_DOT_SHAPES[item.role]}];')
        elif event == "open":
            lines.append(f"{indent}subgraph cluster_{diagram.clusters[item]} {{")
            lines.append(f"{indent}  label={dot_text(item)}; style=dashed;")
        else:
            lines.append(f"{indent}}}")
    return lines


# ------------------------------------------------------------------------- files, Graphviz
def format_for(path: str, fmt: str | None) -> str:
    """The output format: ``fmt`` if given, else from the file's extension."""
    return format_from_suffix(path, fmt, EXTENSIONS, "diagram", "mermaid|dot|svg|png")


def render(plan: Plan, fmt: str, depth: int | None = None) -> bytes:
    """The diagram in ``fmt``; svg and png run Graphviz's ``dot`` on the DOT text."""
    diagram = layout(plan, depth)
    if fmt == "mermaid":
        return mermaid(diagram).encode()
    if fmt == "dot":
        return dot(diagram).encode()
    if fmt not in FORMATS:
        raise UsageError(f"unknown diagram format '{fmt}'", f"use one of {', '.join(FORMATS)}")
    return run_dot(dot(diagram), fmt)


def run_dot(text: str, fmt: str) -> bytes:
    """``dot -T<fmt>`` of ``text``; a missing or failing ``dot`` is a one-line error."""
    program = shutil.which("dot")
    if program is None:
        raise ToolError(
            f"{fmt} output needs Graphviz's `dot` program, which is not installed",
            "apt-get install graphviz (brew install graphviz on macOS), or write .mmd/.dot instead",
        )
    try:
        done = subprocess.run(
            [program, f"-T{fmt}"],
            input=text.encode(),
            capture_output=True,
            timeout=DOT_TIMEOUT_S,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ToolError(
            f"running {program} failed: {exc}", "check the Graphviz installation"
        ) from None
    if done.returncode != 0:
        reason = _one_line(done.stderr.decode(errors="replace")) or f"exit code {done.returncode}"
        raise ToolError(
            f"dot could not render the diagram: {reason}", "write .dot instead and inspect it"
        )
    return done.stdout


def write(plan: Plan, path: Path, fmt: str, depth: int | None = None) -> None:
    """Render and write the diagram atomically (a failure leaves no partial file)."""
    write_bytes(path, render(plan, fmt, depth))
