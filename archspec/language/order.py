"""Resolving ``from:`` names, ordering the graph, and finding dead branches."""

from __future__ import annotations

import heapq
from collections.abc import Mapping

from archspec.errors import DataPath, Problem
from archspec.language.graph import (
    NO_INPUT,
    Node,
    Ref,
    Target,
    Unresolved,
    poison,
    resolve_port,
)
from archspec.loader.source import SourceMap


def resolve_inputs(
    nodes: list[Node],
    full_names: set[str],
    source: SourceMap,
    several: Mapping[str, tuple[str, ...]] = {},
    inputs: tuple[str, ...] = (),
) -> list[Problem]:
    """Fill each node's ``inputs`` with node names (and ``ports`` with which output of
    each); unknown names, a layer with several outputs read without picking one, and (with
    several network ``inputs``) a layer that does not say which input it reads, become
    problems."""
    problems = []
    for node in nodes:
        inputs_, ports = [], []
        for ref in node.refs:
            try:
                name, port = resolve_port(ref, full_names)
            except Unresolved as exc:
                problems.append(exc.problem("from", source, node.notes))
                inputs_.append(poison(exc.ref.at))
                ports.append(0)
                continue
            if name == NO_INPUT:
                at = ref.at if isinstance(ref, Ref) else node.entry
                problems.append(_no_input(inputs, at, source, node.notes, isinstance(ref, Ref)))
                inputs_.append(poison(at))
                ports.append(0)
                continue
            if port is None and name in several:
                at = ref.at if isinstance(ref, Ref) else node.entry
                implicit = not isinstance(ref, Ref)
                problems.append(
                    _unpicked(name, several[name], "from", at, source, node.notes, implicit)
                )
                name, port = poison(at), 0
            inputs_.append(name)
            ports.append(port or 0)
        node.inputs = tuple(inputs_)
        node.ports = tuple(ports) if any(ports) else ()
    return problems


def _no_input(
    inputs: tuple[str, ...],
    at: DataPath,
    source: SourceMap,
    notes: tuple[str, ...],
    explicit: bool,
) -> Problem:
    """A layer reading "the input" of a network with several."""
    names = ", ".join(inputs)
    if explicit:
        message = f"from: input is ambiguous: the network has {len(inputs)} inputs ({names})"
    else:
        count = f"{len(inputs)} inputs" if len(inputs) > 1 else "a named input"
        message = f"the network has {count} ({names}); this layer reads none"
    return Problem(
        message, f"name the one it reads: `from: {inputs[0]}`", source.locate(at), at, notes
    )


def unread_inputs(nodes: list[Node], inputs: tuple[str, ...], source: SourceMap) -> list[Problem]:
    """An input of ``inputs:`` that no layer reads is an error, like a layer whose result
    never reaches the output: a spec says what the network computes."""
    read = {x for node in nodes for x in node.inputs}
    return [
        Problem(
            f"input '{name}' is never read",
            f"read it with `from: {name}`, or remove it from `inputs:`",
            source.locate(("inputs", name), key=True),
            ("inputs", name),
        )
        for name in inputs
        if name not in read
    ]


def _unpicked(
    name: str,
    outputs: tuple[str, ...],
    role: str,
    at: DataPath,
    source: SourceMap,
    notes: tuple[str, ...] = (),
    implicit: bool = False,
) -> Problem:
    """``from: sp`` (or, ``implicit``, no ``from:`` right after it) where ``sp`` has
    several outputs."""
    local = name.rsplit(".", 1)[-1]
    names = ", ".join(outputs)
    if implicit:
        message = f"the layer before, '{local}', has {len(outputs)} outputs ({names})"
    else:
        message = f"{role} names '{local}', which has {len(outputs)} outputs ({names})"
    return Problem(
        message,
        f"say which one: `{role}: {outputs[0]}`",
        source.locate(at),
        at,
        notes,
    )


def resolve_output(
    target: Target,
    full_names: set[str],
    source: SourceMap,
    several: Mapping[str, tuple[str, ...]] = {},
    last: DataPath = ("layers",),
    role: str = "output",
) -> tuple[str, int, list[Problem]]:
    """The output node, which of its outputs, and the problems (``last``: the entry that
    is the output when `output:` is not written)."""
    try:
        name, port = resolve_port(target, full_names)
    except Unresolved as exc:
        return "", 0, [exc.problem(role, source)]
    if port is None and name in several:
        at = target.at if isinstance(target, Ref) else last
        problem = _unpicked(name, several[name], role, at, source)
        if not isinstance(target, Ref):
            problem = Problem(
                f"the last layer, '{name.rsplit('.', 1)[-1]}', has {len(several[name])} "
                f"outputs ({', '.join(several[name])}), and a network returns one",
                f"name the one it returns: `output: {several[name][0]}`",
                problem.location,
                at,
            )
        return poison(at), 0, [problem]
    return name, port or 0, []


def topological(nodes: list[Node], source: SourceMap) -> tuple[list[Node], list[Problem]]:
    """Nodes ordered so each comes after its inputs (written order where free); cycles reported."""
    index = {node.name: i for i, node in enumerate(nodes)}
    waiting = {node.name: {x for x in node.inputs if x in index} for node in nodes}
    users: dict[str, list[str]] = {node.name: [] for node in nodes}
    for node in nodes:
        for x in waiting[node.name]:
            users[x].append(node.name)
    ready = [index[name] for name, deps in waiting.items() if not deps]
    heapq.heapify(ready)
    order: list[Node] = []
    while ready:
        node = nodes[heapq.heappop(ready)]
        order.append(node)
        for user in users[node.name]:
            waiting[user].discard(node.name)
            if not waiting[user]:
                heapq.heappush(ready, index[user])
    if len(order) == len(nodes):
        return order, []
    return order, [_cycle(nodes, waiting, index, source)]


def _cycle(
    nodes: list[Node], waiting: dict[str, set[str]], index: dict[str, int], source: SourceMap
) -> Problem:
    start = min((name for name, deps in waiting.items() if deps), key=index.__getitem__)
    path = [start]
    while True:
        following = min(waiting[path[-1]], key=index.__getitem__)
        if following in path:
            loop = [*path[path.index(following) :], following]
            break
        path.append(following)
    node = nodes[index[loop[0]]]
    return Problem(
        f"the layers form a cycle: {' ← '.join(loop)} (each reads the next through from:)",
        "a network is acyclic: make one of them read an earlier layer",
        source.locate((*node.entry, "from")),
        (*node.entry, "from"),
        node.notes,
    )


def dead_nodes(nodes: list[Node], output: str | list[str], source: SourceMap) -> list[Problem]:
    """Layers whose result never reaches the output (any of ``output``, when several)."""
    by_name = {node.name: node for node in nodes}
    live: set[str] = set()
    stack = [output] if isinstance(output, str) else list(output)
    while stack:
        name = stack.pop()
        if name in live or name not in by_name:
            continue
        live.add(name)
        stack.extend(by_name[name].inputs)
    return [
        Problem(
            f"layer '{node.name}' never reaches the output (nothing reads it)",
            f"feed it into a merge (`from: [..., {node.name.rsplit('.', 1)[-1]}]`) or remove it",
            source.locate(node.entry),
            node.entry,
            node.notes,
        )
        for node in nodes
        if node.name not in live
    ]
