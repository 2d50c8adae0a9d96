"""LSP answers from an :class:`~archspec.outputs.lsp.analysis.Analysis`: diagnostics, inlay
hints, hover, completion, go-to-definition and document symbols. Torch-free.

Positions: the loader counts 1-based lines and columns in characters; LSP counts 0-based
lines and UTF-16 code units, so every column is converted through the line's text.
"""

from __future__ import annotations

import re
import typing
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from lsprotocol import types as lsp
from pydantic import BaseModel

from archspec.errors import DataPath, Location, Problem, format_path, printable
from archspec.language.graph import META_KEYS
from archspec.language.model import SpecModel
from archspec.outputs.lsp.analysis import Analysis, entry_op, walk_entries
from archspec.outputs.report import field_text
from archspec.shapes import kinds
from archspec.shapes.plan import PlanNode, format_shape

SOURCE = "archspec"


# ------------------------------------------------------------------------------ positions
def _utf16(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def position(a: Analysis, line: int, col: int) -> lsp.Position:
    """1-based loader line/column → LSP position."""
    text = a.lines[line - 1] if 0 < line <= len(a.lines) else ""
    return lsp.Position(max(line - 1, 0), _utf16(text[: max(col - 1, 0)]))


def _column(a: Analysis, pos: lsp.Position) -> tuple[str, int]:
    """The line's text and the 0-based character index of an LSP position in it."""
    text = a.lines[pos.line] if pos.line < len(a.lines) else ""
    units = 0
    for i, ch in enumerate(text):
        if units >= pos.character:
            return text, i
        units += 2 if ord(ch) > 0xFFFF else 1
    return text, len(text)


_CLOSE = {"[": "]", "{": "}"}


def token_end(text: str, start: int) -> int:
    """Where the YAML token starting at ``text[start]`` ends on its line (exclusive).

    >>> token_end("  - pool: {kind: max, size: 2}  # x", 10), token_end("kernel: 50, a", 8)
    (30, 10)
    """
    if start >= len(text):
        return len(text)
    first = text[start]
    if first in "'\"":
        i = start + 1
        while i < len(text):
            if text[i] == "\\" and first == '"':
                i += 2
                continue
            if text[i] == first:
                if first == "'" and text[i + 1 : i + 2] == "'":
                    i += 2
                    continue
                return i + 1
            i += 1
        return len(text)
    if first in _CLOSE:
        depth = 0
        for i in range(start, len(text)):
            if text[i] in _CLOSE:
                depth += 1
            elif text[i] in "]}":
                depth -= 1
                if depth == 0:
                    return i + 1
        return len(text.split(" #")[0].rstrip())
    if first == "-" and text[start + 1 : start + 2] in (" ", ""):
        return len(text.split(" #")[0].rstrip())
    match = re.compile(r"[^,\[\]{}#]*?(?=\s*(?:,|]|}|:\s|:$|\s#|$))").match(text, start)
    end = match.end() if match else len(text)
    return end if end > start else min(start + 1, len(text))


def _range(a: Analysis, loc: Location | None) -> lsp.Range:
    if loc is None or not (0 < loc.line <= len(a.lines)):
        return lsp.Range(lsp.Position(0, 0), lsp.Position(0, 0))
    text = a.lines[loc.line - 1]
    end = token_end(text, loc.col - 1)
    return lsp.Range(position(a, loc.line, loc.col), position(a, loc.line, end + 1))


def file_uri(path: Path) -> str:
    return path.resolve().as_uri()


# ---------------------------------------------------------------------------- diagnostics
def _message(problem: Problem) -> str:
    where = f"{format_path(problem.path)}: " if problem.path else ""
    hint = f" — {problem.hint}" if problem.hint else ""
    notes = "".join(f" ({note})" for note in problem.notes)
    return printable(f"{where}{problem.message}{hint}{notes}")


def _extends_location(a: Analysis) -> Location:
    return Location(a.file, _extends_line(a) or 1, 1)


def diagnostics(a: Analysis) -> list[lsp.Diagnostic]:
    """Every problem at its range; one found in a parent spec is shown at ``extends:``."""
    out = []
    for finding in a.findings:
        problem = finding.problem
        loc = problem.location
        related = None
        message = _message(problem)
        if loc is not None and not a.mine(loc):
            related = [
                lsp.DiagnosticRelatedInformation(
                    lsp.Location(file_uri(Path(loc.file)), _line_range(loc)), message
                )
            ]
            message = f"in {loc}: {message}"
            loc = _extends_location(a)
        out.append(
            lsp.Diagnostic(
                range=_range(a, loc),
                message=message,
                severity=(
                    lsp.DiagnosticSeverity.Warning
                    if finding.warning
                    else lsp.DiagnosticSeverity.Error
                ),
                source=SOURCE,
                related_information=related,
            )
        )
    return out


def _line_range(loc: Location) -> lsp.Range:
    start = lsp.Position(loc.line - 1, loc.col - 1)
    return lsp.Range(start, start)


# ---------------------------------------------------------------------------- inlay hints
def _shapes(nodes: Iterable[PlanNode]) -> str:
    """``64×56×56`` for one node; the distinct shapes of a block's layer over its uses."""
    shapes: list[str] = []
    for node in nodes:
        text = node.shape_text()
        if text not in shapes:
            shapes.append(text)
    if len(shapes) > 3:
        return f"{shapes[0]} … {shapes[-1]} ({len(shapes)} shapes)"
    return " | ".join(shapes)


def line_hint(a: Analysis, line: int) -> str | None:
    """The hint at the end of a layer line: ``→ 32×14×14``, or None."""
    nodes = a.nodes_by_line.get(line, [])
    groups = a.uses_by_line.get(line, [])
    outs = [node for node in (a.group_output(g) for g in groups) if node is not None]
    # a block-use line's own nodes live in the block; its result is the instances' output
    chosen = outs or [n for n in nodes if not n.group or n.group[-1] not in groups]
    if not chosen:
        return None
    uses = f" ({len(chosen)} uses)" if len(chosen) > 1 else ""
    return f"→ {_shapes(chosen)}{uses}"


def inlay_hints(a: Analysis, first: int, last: int) -> list[lsp.InlayHint]:
    """Hints for 0-based lines ``first``..``last``."""
    labels = {line: line_hint(a, line) for line in {*a.nodes_by_line, *a.uses_by_line}}
    if a.complete and a.validated and a.validated.data is not None:
        extends = _extends_line(a)  # a spec that extends another: the whole network's output
        if extends is not None:
            output = a.node_by_name.get(a.validated.output)
            shape = format_shape(output.shape) if output else "?"
            labels[extends] = f"→ {len(a.nodes)} layers, output {shape}"
    out = []
    for line, label in sorted(labels.items()):
        if label is None or not first <= line - 1 <= last:
            continue
        text = a.lines[line - 1] if line <= len(a.lines) else ""
        out.append(
            lsp.InlayHint(
                position=lsp.Position(line - 1, _utf16(text.rstrip())),
                label=label,
                kind=lsp.InlayHintKind.Type,
                padding_left=True,
            )
        )
    return out


def _extends_line(a: Analysis) -> int | None:
    for i, text in enumerate(a.lines, start=1):
        if text.startswith("extends:"):
            return i
    return None


# ---------------------------------------------------------------------------------- hover
def _num(value: Any) -> str:
    return f"{value:,}" if isinstance(value, int) else str(value)


def _kind_doc(kind_name: str) -> str:
    kind = kinds.get(kind_name)
    lines = [f"**{kind.name}** — {kind.summary}"]
    doc = (kind.params.__doc__ or "").strip()
    if doc and not doc.startswith("Base of every"):
        lines.append(doc)
    for name in kind.params.model_fields:
        text = field_doc(kind.name, name)
        if text:
            lines.append(f"- `{name}`: {text}")
    return "\n\n".join(lines[:2]) + ("\n\n" + "\n".join(lines[2:]) if lines[2:] else "")


def field_doc(owner: str, name: str) -> str:
    """A kind's parameter documentation, from its Params field (as the schema reads it)."""
    field = kinds.get(owner).params.model_fields.get(name)
    return (field.description or "") if field else ""


def _resolved(node: PlanNode) -> str:
    params = node.params
    if not isinstance(params, BaseModel):
        return ""
    items = []
    for key, value in params.model_dump().items():
        shown = list(value) if isinstance(value, tuple) else value
        items.append(f"{key}={shown}")
    return ", ".join(items)


def node_markdown(node: PlanNode) -> str:
    rf, jump = field_text(node.field)
    ins = ", ".join(format_shape(s) for s in node.in_shapes)
    detail = kinds.get(node.kind).describe(node)
    lines = [
        f"**{node.name}** — {node.kind} {detail}".rstrip(),
        f"input {ins} → output **{node.shape_text()}**",
        f"params {_num(node.num_params)} · MACs {_num(node.macs)} · "
        f"receptive field {rf} (jump {jump})",
    ]
    resolved = _resolved(node)
    if resolved:
        lines.append(f"resolved: `{resolved}`")
    return printable("  \n".join(lines))


def hover(a: Analysis, pos: lsp.Position) -> lsp.Hover | None:
    line = pos.line + 1
    entry = a.entry_at(line) or _entry_above(a, line)
    parts = _from_target(a, pos)
    groups = a.uses_by_line.get(_entry_line(a, entry) or line, [])
    nodes = [n for n in a.nodes_by_line.get(_entry_line(a, entry) or line, [])]
    for group in groups[:4]:
        members = a.group_members.get(group, [])
        out = a.group_output(group)
        if out is not None:
            params = sum(n.num_params for n in members)
            macs = sum(n.macs for n in members)
            ins = ", ".join(format_shape(s) for s in members[0].in_shapes) if members else "?"
            parts.append(
                printable(
                    f"**{group}** — block, {len(members)} layers  \n"
                    f"input {ins} → output **{format_shape(out.shape)}**  \n"
                    f"params {_num(params)} · MACs {_num(macs)}"
                )
            )
    if not groups:
        shown = nodes[:4]
        parts += [node_markdown(node) for node in shown]
        if len(nodes) > len(shown):
            parts.append(f"… and {len(nodes) - len(shown)} more uses of this layer")
    op = entry_op(a.data_at(entry)) if entry is not None else None
    if op is None:
        op = _word_at(a, pos)
    if op is not None and kinds.canonical(op) is not None:
        parts.append(_kind_doc(op))
    if not parts:
        return None
    return lsp.Hover(lsp.MarkupContent(lsp.MarkupKind.Markdown, "\n\n---\n\n".join(parts)))


def _from_target(a: Analysis, pos: lsp.Position) -> list[str]:
    """Hovering a name in ``from:``: what that layer gives (its first uses, in a block)."""
    word = _word_at(a, pos)
    text = a.lines[pos.line] if pos.line < len(a.lines) else ""
    if word is None or a.source is None:
        return []
    if not (re.search(r"\bfrom:", text) or _continues_from(a, pos.line + 1)):
        return []
    target = _name_definition(a, pos.line + 1, word)
    if target is None:
        return []
    nodes = a.nodes_by_line.get(target.range.start.line + 1, [])
    return [f"`from: {word}` reads:\n\n" + node_markdown(node) for node in nodes[:2]]


def _entry_line(a: Analysis, entry: DataPath | None) -> int | None:
    if entry is None or a.source is None:
        return None
    loc = a.source.values.get(entry)
    return loc.line if loc is not None and a.mine(loc) else None


def _entry_above(a: Analysis, line: int) -> DataPath | None:
    """The layer entry a parameter line belongs to (the nearest entry above, same list)."""
    for above in range(line - 1, max(line - 40, 0), -1):
        entry = a.entry_at(above)
        if entry is not None:
            indent = len(a.lines[above - 1]) - len(a.lines[above - 1].lstrip())
            here = a.lines[line - 1] if line <= len(a.lines) else ""
            if len(here) - len(here.lstrip()) > indent:
                return entry
            return None
    return None


_WORD = re.compile(r"[A-Za-z0-9_.]+")


def _word_at(a: Analysis, pos: lsp.Position) -> str | None:
    text, i = _column(a, pos)
    for match in _WORD.finditer(text):
        if match.start() <= i <= match.end():
            return match[0]
    return None


# ----------------------------------------------------------------------------- completion
def _literals(annotation: Any) -> list[Any]:
    """Every ``Literal`` value inside a field's annotation (through unions, ``Annotated``)."""
    if typing.get_origin(annotation) is typing.Literal:
        return list(typing.get_args(annotation))
    out: list[Any] = []
    for arg in typing.get_args(annotation):
        out += [v for v in _literals(arg) if v not in out]
    return out


def _is_bool(annotation: Any) -> bool:
    return annotation is bool or any(_is_bool(arg) for arg in typing.get_args(annotation))


_ITEM = re.compile(r"^(\s*)-\s*(\{\s*)?(\w*)$")
_FROM = re.compile(r"^\s*(?:-\s+)?(?:.*[{,]\s*)?from:\s*(?:\[[^\]]*)?(\w*)$")
_FLOW_KIND = re.compile(r"(?:^\s*-\s+|[{,]\s*)(\w+):\s*\{([^{}]*)$")
_FLOW_VALUE = re.compile(r"(\w+):\s*(\w*)$")
_KEY_LINE = re.compile(r"^(\s*)(?:-\s+)?(\w*)$")
_BLOCK_KEY = re.compile(r"^(\s*)(?:-\s+)?(\w+):\s*$")
_VALUE_LINE = re.compile(r"^(\s*)(?:-\s+)?(\w+):\s+(\w*)$")


def _items(
    words: Iterable[str], kind: lsp.CompletionItemKind, detail: str = ""
) -> list[lsp.CompletionItem]:
    return [lsp.CompletionItem(label=w, kind=kind, detail=detail or None) for w in words]


def _kind_items(a: Analysis) -> list[lsp.CompletionItem]:
    items = [
        lsp.CompletionItem(
            label=name,
            kind=lsp.CompletionItemKind.Class,
            detail=kinds.get(name).summary,
            documentation=lsp.MarkupContent(lsp.MarkupKind.Markdown, _kind_doc(name)),
        )
        for name in kinds.names()
    ]
    return items + _items(a.block_names(), lsp.CompletionItemKind.Module, "block")


def _param_items(kind_name: str, written: str) -> list[lsp.CompletionItem]:
    kind = kinds.get(kind_name)
    present = set(re.findall(r"(\w+)\s*:", written))
    return [
        lsp.CompletionItem(
            label=name,
            kind=lsp.CompletionItemKind.Field,
            detail=f"{kind.name} parameter",
            documentation=field_doc(kind.name, name) or None,
            insert_text=f"{name}: ",
        )
        for name in kind.params.model_fields
        if name not in present
    ]


def _value_items(a: Analysis, owner: str, key: str) -> list[lsp.CompletionItem]:
    items: list[lsp.CompletionItem] = []
    real = kinds.canonical(owner)
    if real is not None and key in kinds.get(real).params.model_fields:
        info = kinds.get(real).params.model_fields[key]
        values = _literals(info.annotation)
        if _is_bool(info.annotation):
            values += [v for v in (True, False) if v not in values]
        items += _items(
            [str(v).lower() if isinstance(v, bool) else str(v) for v in values],
            lsp.CompletionItemKind.EnumMember,
            f"{real}.{key}",
        )
    items += _items(a.var_names(), lsp.CompletionItemKind.Variable, "variable")
    return items


def _names_in_scope(a: Analysis, line: int) -> list[str]:
    """Layer names a ``from:`` on ``line`` may use: those of its layers list, and input."""
    section = _top_key_above(a, line)
    names: list[str] = []
    if section == "blocks":
        block = _block_above(a, line)
        entries = a.data_at(("blocks", block)) if block else None
        if isinstance(entries, dict):
            entries = entries.get("layers")
        for _, entry in walk_entries(entries, ()):
            if isinstance(entry, dict) and "name" in entry:
                names.append(str(entry["name"]))
    else:
        names += [n.name for n in a.nodes if not n.group]
        for _, entry in walk_entries(a.data_at(("layers",)), ()):
            if isinstance(entry, dict) and "name" in entry and str(entry["name"]) not in names:
                names.append(str(entry["name"]))
    return [*names, "input"]


def _top_key_above(a: Analysis, line: int) -> str | None:
    for i in range(line - 1, -1, -1):
        match = re.match(r"^(\w+):", a.lines[i]) if i < len(a.lines) else None
        if match:
            return match[1]
    return None


def _block_above(a: Analysis, line: int) -> str | None:
    for i in range(line - 1, -1, -1):
        match = re.match(r"^  (\w+):", a.lines[i]) if i < len(a.lines) else None
        if match:
            return match[1]
        if i < len(a.lines) and re.match(r"^\S", a.lines[i]):
            return None
    return None


def _owner_above(a: Analysis, line: int, indent: int) -> str | None:
    """The key that owns an indented block line: ``conv`` for ``kernel:`` under ``- conv:``."""
    for i in range(line - 1, -1, -1):
        text = a.lines[i] if i < len(a.lines) else ""
        if not text.strip() or text.lstrip().startswith("#"):
            continue
        own = len(text) - len(text.lstrip())
        if own < indent:
            match = _BLOCK_KEY.match(text)
            return match[2] if match else None
    return None


def completion(a: Analysis, pos: lsp.Position) -> list[lsp.CompletionItem]:
    text, i = _column(a, pos)
    before = text[:i]
    line = pos.line + 1
    if _FROM.match(before):
        return _items(_names_in_scope(a, line), lsp.CompletionItemKind.Reference, "layer")
    flow = _FLOW_KIND.search(before)
    if flow:
        inner = flow[2]
        value = _FLOW_VALUE.search(inner)
        if value and not inner.rstrip().endswith(","):
            return _value_items(a, flow[1], value[1])
        if kinds.canonical(flow[1]) is not None:
            return _param_items(kinds.get(flow[1]).name, inner)
        return _items(a.var_names(), lsp.CompletionItemKind.Variable, "variable")
    if _ITEM.match(before):
        return _kind_items(a)
    value_line = _VALUE_LINE.match(before)
    if value_line:
        owner = _owner_above(a, line, len(value_line[1]))
        return _value_items(a, owner or "", value_line[2])
    key_line = _KEY_LINE.match(before)
    if key_line:
        indent = len(key_line[1])
        if indent == 0:
            return _items(SpecModel.model_fields, lsp.CompletionItemKind.Property, "spec key")
        owner = _owner_above(a, line, indent)
        if owner is not None and kinds.canonical(owner) is not None:
            return _param_items(kinds.get(owner).name, "")
        if owner is None:  # a key beside the kind of a list item: name, from, repeat, when
            return _items(META_KEYS, lsp.CompletionItemKind.Keyword, "layer key")
    return []


# ----------------------------------------------------------------------------- definition
def definition(a: Analysis, pos: lsp.Position) -> lsp.Location | None:
    word = _word_at(a, pos)
    if word is None or a.source is None:
        return None
    line = pos.line + 1
    text = a.lines[pos.line] if pos.line < len(a.lines) else ""
    if text.startswith("extends:") and a.path is not None:
        target = a.path.parent / text.split(":", 1)[1].split("#")[0].strip().strip("'\"")
        if target.is_file():
            return lsp.Location(file_uri(target), lsp.Range(lsp.Position(0, 0), lsp.Position(0, 0)))
        return None
    if word in a.block_names() and a.source.keys.get(("blocks", word)) is not None:
        loc = a.source.keys[("blocks", word)]
        return _location(loc)
    if re.search(r"\bfrom:", text) or _continues_from(a, line):
        return _name_definition(a, line, word)
    return None


def _continues_from(a: Analysis, line: int) -> bool:
    """A block-style list under ``from:`` (``- a`` items on the lines below it)."""
    for i in range(line - 2, max(line - 10, -1), -1):
        text = a.lines[i]
        if re.search(r"\bfrom:\s*$", text):
            return True
        if not re.match(r"^\s*-\s+\w+\s*$", text):
            return False
    return False


def _name_definition(a: Analysis, line: int, word: str) -> lsp.Location | None:
    assert a.source is not None
    section = _top_key_above(a, line)
    list_path: DataPath = ("layers",)
    if section == "blocks":
        block = _block_above(a, line)
        raw = a.data_at(("blocks", block)) if block else None
        list_path = (
            ("blocks", str(block), "layers") if isinstance(raw, dict) else ("blocks", str(block))
        )
    for path, entry in walk_entries(a.data_at(list_path), list_path):
        if isinstance(entry, dict) and str(entry.get("name")) == word:
            loc = a.source.values.get((*path, "name"))
            if loc is not None:
                return _location(loc)
    node = a.node_by_name.get(word)  # a default name: conv1, relu2…
    if node is not None and node.location is not None:
        return _location(node.location)
    return None


def _location(loc: Location) -> lsp.Location:
    start = lsp.Position(loc.line - 1, loc.col - 1)
    return lsp.Location(file_uri(Path(loc.file)), lsp.Range(start, start))


# -------------------------------------------------------------------------------- symbols
def _span(a: Analysis, loc: Location | None, end_line: int) -> tuple[lsp.Range, lsp.Range]:
    if loc is None:
        zero = lsp.Range(lsp.Position(0, 0), lsp.Position(0, 0))
        return zero, zero
    start = position(a, loc.line, loc.col)
    last = max(end_line, loc.line)
    text = a.lines[last - 1] if last <= len(a.lines) else ""
    return lsp.Range(start, lsp.Position(last - 1, _utf16(text))), _range(a, loc)


def _entry_symbols(a: Analysis, list_path: DataPath, stop: int) -> list[lsp.DocumentSymbol]:
    assert a.source is not None
    entries = list(walk_entries(a.data_at(list_path), list_path))
    out = []
    locs = [a.source.values.get(path) for path, _ in entries]
    for k, (path, entry) in enumerate(entries):
        loc = locs[k]
        if loc is None or not a.mine(loc):
            continue
        following = next((x for x in locs[k + 1 :] if x is not None and a.mine(x)), None)
        end = following.line - 1 if following is not None else stop
        op = entry_op(entry) or "?"
        layers = a.layers_by_entry.get(path, [])
        name = str(entry["name"]) if isinstance(entry, dict) and "name" in entry else ""
        if not name and layers and not layers[0].group:
            name = layers[0].name
        hint = line_hint(a, loc.line)
        whole, selection = _span(a, loc, end)
        out.append(
            lsp.DocumentSymbol(
                name=printable(name or op),
                kind=lsp.SymbolKind.Module if op in a.block_names() else lsp.SymbolKind.Field,
                range=whole,
                selection_range=selection,
                detail=printable(f"{op} {hint or ''}".strip()),
            )
        )
    return out


def symbols(a: Analysis) -> list[lsp.DocumentSymbol]:
    """The layer outline; each block with its layers nested."""
    if a.source is None:
        return []
    out: list[lsp.DocumentSymbol] = []
    top_lines = sorted(
        loc.line for path, loc in a.source.keys.items() if len(path) == 1 and a.mine(loc)
    )
    blocks = a.data_at(("blocks",))
    if isinstance(blocks, dict):
        block_lines = [
            loc.line
            for p, loc in a.source.keys.items()
            if len(p) == 2 and p[0] == "blocks" and a.mine(loc)
        ]
        ends = sorted({*top_lines, *block_lines})
        for name, raw in blocks.items():
            key = a.source.keys.get(("blocks", name))
            if key is None or not a.mine(key):
                continue
            list_path: DataPath = (
                ("blocks", name, "layers") if isinstance(raw, dict) else ("blocks", name)
            )
            end = _next_line(ends, key.line, len(a.lines))
            whole, selection = _span(a, key, end)
            out.append(
                lsp.DocumentSymbol(
                    name=printable(str(name)),
                    kind=lsp.SymbolKind.Class,
                    range=whole,
                    selection_range=selection,
                    detail="block",
                    children=_entry_symbols(a, list_path, end),
                )
            )
    out += _entry_symbols(a, ("layers",), _next_line(top_lines, _layers_line(a), len(a.lines)))
    return out


def _layers_line(a: Analysis) -> int:
    assert a.source is not None
    loc = a.source.keys.get(("layers",))
    return loc.line if loc is not None and a.mine(loc) else 0


def _next_line(lines: list[int], after: int, last: int) -> int:
    """The last line before the next top-level key after ``after``."""
    return next((line - 1 for line in lines if line > after), last)
