"""Ops → spec text: module calls with one input and one output become ``blocks:``.

Every call of a container module (a torchvision ``BasicBlock``, a ``Sequential``) that reads
one value and whose last op is the only one used outside becomes a block use named after its
attribute, so the expanded layer names are the module paths (``layer2.0.conv1``) and
``state_dict`` keys map one to one. Calls with the same structure (kinds, names, wiring,
non-scalar parameters) share one block; the scalar parameters that differ between the calls
become the block's arguments (``depth``), the others stay literal. A container whose
children are n ≥ 2 uses of one block with equal arguments, named ``0`` … ``n-1``, becomes
``repeat: n``. Calls that cannot be blocks (two inputs, an inner value used outside, a
module called twice) are inlined, their layers named by path with ``_`` for ``.``.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import yaml

from archspec.importers.graph import (
    INPUT,
    Imported,
    Op,
    Scope,
    block_name,
    defaults,
    legal_name,
    uniform,
)
from archspec.language.graph import RESERVED
from archspec.shapes import kinds

# Argument names that would read as something else in an expression or a parameter value.
_NOT_ARGS = frozenset({"min", "max", "and", "or", "not", "true", "false", "input", "same", "valid"})


@dataclass(eq=False)
class Node:
    """An op (``op``) or one call of a container module (``scope`` with ``items``)."""

    scope: Scope | None = None
    op: Op | None = None
    items: list[Node] = field(default_factory=list)
    broken: bool = False  # called again after other code ran: never a block
    keys: list[str] = field(default_factory=list)  # op keys inside, in order
    source: str = ""  # the one value read from outside (when folded)
    folded: bool = False
    entries: list[Entry] = field(default_factory=list)
    template: Template | None = None
    values: list[Any] = field(default_factory=list)  # scalar holes, in order
    args: list[Any] = field(default_factory=list)  # the template's argument values

    @property
    def out(self) -> str:
        return self.op.key if self.op is not None else self.keys[-1]


@dataclass(eq=False)
class Entry:
    """One layer line of a block (or of the top level)."""

    node: Node  # an op, or a folded call
    name: str | None
    inputs: list[str]
    refs: list[str] | None = None  # `from:` names; None: the previous layer


@dataclass(eq=False)
class Template:
    type: str
    name: str = ""  # given once it is known to be emitted
    instances: list[Node] = field(default_factory=list)
    args: list[str] = field(default_factory=list)
    columns: list[tuple[str, Any]] = field(default_factory=list)  # ("lit", v) | ("arg", a)
    repeat_of: Template | None = None  # a container of n equal uses of this block


HOLE = object()


def fold(imported: Imported) -> tuple[str, dict[str, str]]:
    """The spec text, and the spec name of every op holding weights → its source path."""
    root = _tree(imported.ops)
    consumers: dict[str, set[str]] = defaultdict(set)
    for op in imported.ops:
        for key in op.inputs:
            consumers[key].add(op.key)
    consumers[imported.output].add("<output>")
    _analyse(root, consumers)
    _entries(root, "", INPUT)
    templates = _templates(root)
    text = _emit(imported, root, templates)
    names: dict[str, str] = {}
    _full_names(root, "", names)
    return text, names


def _tree(ops: list[Op]) -> Node:
    root = Node()
    open_: dict[str, Node] = {}
    for op in ops:
        parent = root
        for scope in op.scopes:
            node = open_.get(scope.call)
            if node is None or not parent.items or parent.items[-1] is not node:
                fresh = Node(scope=scope)
                if node is not None:  # re-entered after other code: neither can be a block
                    node.broken = fresh.broken = True
                parent.items.append(fresh)
                open_[scope.call] = node = fresh
            parent = node
        parent.items.append(Node(op=op))
    return root


def _analyse(node: Node, consumers: dict[str, set[str]]) -> None:
    """Fill ``keys``, ``source`` and ``folded`` for every call, children first."""
    for item in node.items:
        if item.op is not None:
            node.keys.append(item.op.key)
        else:
            _analyse(item, consumers)
            node.keys.extend(item.keys)
    if node.scope is None:
        return
    inside = set(node.keys)
    ops = _ops(node)
    sources = {key for op in ops for key in op.inputs if key not in inside}
    used_outside = {key for key in node.keys if consumers[key] - inside}
    node.folded = (
        not node.broken and len(sources) == 1 and used_outside == {node.keys[-1]} and bool(ops)
    )
    if node.folded:
        node.source = next(iter(sources))


def _ops(node: Node) -> list[Op]:
    if node.op is not None:
        return [node.op]
    return [op for item in node.items for op in _ops(item)]


def _flat(node: Node) -> list[Node]:
    """The layers a folded call (or the top level) lists: ops and folded calls, with the
    contents of calls that cannot be blocks spliced in."""
    out: list[Node] = []
    for item in node.items:
        if item.op is not None or item.folded:
            out.append(item)
        else:
            out.extend(_flat(item))
    return out


def _relative(path: str, prefix: str) -> str:
    return path[len(prefix) + 1 :] if prefix and path.startswith(prefix + ".") else path


def _entries(node: Node, prefix: str, source: str) -> None:
    """Name the layers of ``node`` and wire their ``from:``; recurse into folded calls."""
    items = _flat(node)
    taken: set[str] = set()
    named: dict[int, str] = {}
    for i, item in enumerate(items):
        if item.op is not None and item.op.path:
            named[i] = legal_name(_relative(item.op.path, prefix), taken)
        elif item.scope is not None:
            named[i] = legal_name(_relative(item.scope.path, prefix), taken)
    producer = {item.out: i for i, item in enumerate(items)}
    counts: dict[str, int] = defaultdict(int)
    previous = source
    entries: list[Entry] = []
    for i, item in enumerate(items):
        inputs = item.op.inputs if item.op is not None else [item.source]
        entry = Entry(item, named.get(i), list(inputs))
        if not (len(inputs) == 1 and inputs[0] == previous):
            entry.refs = []
            for key in inputs:
                if key == source:
                    entry.refs.append("input")
                    continue
                j = producer[key]
                if j not in named:
                    made = items[j].op
                    kind = made.kind if made is not None else "layer"
                    counts[kind] += 1
                    named[j] = legal_name(f"{kind}_{counts[kind]}", taken)
                    entries[j].name = named[j]
                entry.refs.append(named[j])
        entries.append(entry)
        previous = item.out
    node.entries = entries
    for entry in entries:
        if entry.node.scope is not None:
            assert entry.name is not None
            _entries(entry.node, entry.node.scope.path, entry.node.source)


def _params(op: Op) -> list[tuple[str, Any]]:
    """Every parameter (given or defaulted) in the kind's own order."""
    full = {key: uniform(value) for key, value in defaults(op.kind).items()}
    full.update({key: uniform(value) for key, value in op.params.items()})
    return [(key, full[key]) for key in kinds.REGISTRY[op.kind].params.model_fields if key in full]


def _scalar(value: Any) -> bool:
    return isinstance(value, bool | int | float | str)


def _structure(node: Node) -> tuple[Any, ...]:
    parts: list[Any] = [node.scope.type if node.scope else ""]
    for entry in node.entries:
        refs = tuple(entry.refs) if entry.refs is not None else None
        if entry.node.op is not None:
            params = tuple(
                (key, HOLE if _scalar(value) else value) for key, value in _params(entry.node.op)
            )
            parts.append(("op", entry.node.op.kind, params, entry.name, refs))
        else:
            assert entry.node.template is not None
            parts.append(("use", id(entry.node.template), entry.name, refs))
    return tuple(parts)


def _templates(root: Node) -> list[Template]:
    """Group folded calls by structure (children first), then find each block's arguments."""
    by_key: dict[tuple[Any, ...], Template] = {}
    order: list[Template] = []
    taken: set[str] = set()

    def visit(node: Node) -> None:
        for entry in node.entries:
            if entry.node.scope is not None:
                visit(entry.node)
        if node.scope is None:
            return
        key = _structure(node)
        if key not in by_key:
            by_key[key] = Template(node.scope.type)
            order.append(by_key[key])
        node.template = by_key[key]
        node.template.instances.append(node)

    visit(root)
    for template in order:
        for node in template.instances:
            node.values = _values(node)
        _columns(template)
        _find_repeat(template)
        if template.repeat_of is None:
            template.name = block_name(_label(template), taken)
    root.values = _values(root)
    return order


def _label(template: Template) -> str:
    """The class name; for a plain container used once (``features``), its attribute."""
    only = template.instances[0].scope
    if len(template.instances) == 1 and only is not None and template.type in _CONTAINERS:
        return only.path.rsplit(".", 1)[-1]
    return template.type


_CONTAINERS = frozenset({"Sequential", "ModuleList", "ModuleDict"})


def _values(node: Node) -> list[Any]:
    values: list[Any] = []
    for entry in node.entries:
        if entry.node.op is not None:
            values.extend(v for _, v in _params(entry.node.op) if _scalar(v))
        else:
            values.extend(entry.node.args)
    return values


def _hole_names(template: Template) -> list[str]:
    names: list[str] = []
    for entry in template.instances[0].entries:
        if entry.node.op is not None:
            names.extend(k for k, v in _params(entry.node.op) if _scalar(v))
        else:
            assert entry.node.template is not None
            names.extend(entry.node.template.args)
    return names


def _typed(value: Any) -> tuple[type, Any]:
    return (type(value), value)


def _columns(template: Template) -> None:
    """Equal across calls → literal; differing → an argument (one per distinct column)."""
    names = _hole_names(template)
    by_column: dict[tuple[Any, ...], str] = {}
    taken: set[str] = set()
    for i, name in enumerate(names):
        column = tuple(_typed(node.values[i]) for node in template.instances)
        if len(set(column)) == 1:
            template.columns.append(("lit", template.instances[0].values[i]))
            continue
        if column not in by_column:
            arg = name if name not in _NOT_ARGS and name not in RESERVED else f"{name}_"
            base, n = arg, 2
            while arg in taken:
                arg = f"{base}{n}"
                n += 1
            taken.add(arg)
            by_column[column] = arg
            template.args.append(arg)
        template.columns.append(("arg", by_column[column]))
    for node in template.instances:
        node.args = [
            node.values[next(i for i, c in enumerate(template.columns) if c == ("arg", arg))]
            for arg in template.args
        ]


def _find_repeat(template: Template) -> None:
    entries = template.instances[0].entries
    children = {id(e.node.template) for e in entries}
    child = entries[0].node.template
    if (
        len(entries) < 2
        or child is None
        or child.repeat_of is not None
        or len(children) != 1
        or any(e.node.scope is None for e in entries)
        or [e.name for e in entries] != [str(i) for i in range(len(entries))]
        or any(e.refs is not None for e in entries)
    ):
        return
    width = len(child.args)
    for node in template.instances:
        first = node.values[:width]
        if any(node.values[i * width : (i + 1) * width] != first for i in range(len(entries))):
            return
    template.repeat_of = child


Resolve = dict[int, tuple[str, Any]]


def _emit(imported: Imported, root: Node, templates: list[Template]) -> str:
    shape = list(imported.input_shape)
    header: dict[str, Any] = {"name": imported.name}
    header["input"] = (
        {"shape": shape, "layout": imported.input_layout} if imported.input_layout else shape
    )
    lines = ["# Imported by `archspec import`; layer names are the source's module paths."]
    lines += [_dump(header)]
    blocks = [t for t in templates if t.repeat_of is None]
    if blocks:
        lines.append("blocks:")
        for template in blocks:
            lines.append(f"  {template.name}:")
            if template.args:
                lines.append(f"    args: {_flow({a: None for a in template.args})}")
            lines.append("    layers:")
            columns = dict(enumerate(template.columns))
            lines += _layers(template.instances[0], columns, "      ")
    lines.append("layers:")
    lines += _layers(root, {i: ("lit", v) for i, v in enumerate(root.values)}, "  ")
    if root.entries and root.entries[-1].node.out != imported.output:
        (last,) = [e for e in root.entries if e.node.out == imported.output]
        lines.append(f"output: {last.name}")
    return "\n".join(lines) + "\n"


def _layers(node: Node, columns: Resolve, indent: str) -> list[str]:
    lines: list[str] = []
    cursor = 0
    for entry in node.entries:
        layer: dict[str, Any] = {}
        if entry.node.op is not None:
            op = entry.node.op
            base = {k: uniform(v) for k, v in defaults(op.kind).items()}
            params: dict[str, Any] = {}
            for key, value in _params(op):
                if _scalar(value):
                    how, got = columns[cursor]
                    cursor += 1
                    if how == "arg" or _typed(got) != _typed(base.get(key, HOLE)):
                        params[key] = got
                elif value != base.get(key, HOLE):
                    params[key] = list(value)
            layer[op.kind] = params or None
        else:
            template = entry.node.template
            assert template is not None
            mine = {a: columns[cursor + i][1] for i, a in enumerate(template.args)}
            cursor += len(template.args)
            if template.repeat_of is not None:
                child = template.repeat_of
                params = {
                    a: (mine[got] if how == "arg" else got)
                    for a, (how, got) in zip(child.args, template.columns, strict=False)
                }
                layer[child.name] = params or None
                layer["repeat"] = len(entry.node.entries)
            else:
                layer[template.name] = mine or None
        if entry.name is not None:
            layer["name"] = entry.name
        if entry.refs is not None:
            layer["from"] = entry.refs[0] if len(entry.refs) == 1 else entry.refs
        if len(layer) == 1 and next(iter(layer.values())) is None:
            lines.append(f"{indent}- {next(iter(layer))}")
        else:
            lines.append(f"{indent}- {_flow(layer)}")
    return lines


def _flow(value: Any) -> str:
    text: str = yaml.safe_dump(value, default_flow_style=True, sort_keys=False, width=10**6)
    return text.strip().removesuffix("...").strip()


def _dump(value: dict[str, Any]) -> str:
    return "\n".join(f"{key}: {_flow(v)}" for key, v in value.items())


# Kinds whose layer holds one tensor that an importer reads from the source's tensor itself
# (torchvision's ViT ``class_token``, ``encoder.pos_embedding``): its name maps to the spec
# key of that tensor (the builder's attribute), not to the layer's.
TENSOR_KEYS = {"parameter": "weight", "positional_embedding": "pos_embedding"}


def _full_names(node: Node, prefix: str, names: dict[str, str]) -> None:
    for entry in node.entries:
        if entry.node.op is not None:
            if entry.node.op.weights:
                assert entry.name is not None
                key = TENSOR_KEYS.get(entry.node.op.kind)
                name = prefix + entry.name + (f".{key}" if key else "")
                names[name] = entry.node.op.path
        else:
            assert entry.name is not None
            _full_names(entry.node, f"{prefix}{entry.name}.", names)
