"""What every importer produces: a flat list of archspec operations with their module scopes.

An importer (torch module, Keras config) turns its source into :class:`Op` values in
topological order — a kind, its parameters, the ops it reads, and the chain of module calls
it sits in — and lists what it cannot map as :class:`Unsupported`. ``fold.py`` then turns
the list into spec text with ``blocks:``. Nothing here imports torch.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from archspec.errors import ArchspecError
from archspec.language.graph import NAME, RESERVED
from archspec.shapes import kinds

INPUT = "input"  # the network input, as an Op's input


@dataclass(frozen=True)
class Scope:
    """One call of a container module: ``call`` is unique per call (``layer1.0``,
    ``layer1.0.relu@1`` for a second call), ``path`` its module path, ``type`` its class."""

    call: str
    path: str
    type: str


@dataclass
class Op:
    """One archspec layer. ``key`` is unique; ``inputs`` are keys of earlier ops or INPUT;
    ``path`` the source's name for it (a module path such as ``layer1.0.conv1`` or a Keras
    layer name; "" for a function call); ``weights``: whether it holds tensors to import."""

    key: str
    kind: str
    params: dict[str, Any]
    inputs: list[str]
    path: str = ""
    scopes: tuple[Scope, ...] = ()
    weights: bool = False


@dataclass(frozen=True)
class Unsupported:
    """An operation the language cannot express: where (module path / layer) and what."""

    where: str
    what: str

    def line(self) -> str:
        return f"{self.where or '<top level>'}: {self.what}"


@dataclass
class Imported:
    """An importer's result: the ops (up to the first unsupported one with ``partial``)."""

    name: str
    input_shape: tuple[int, ...]
    ops: list[Op]
    output: str
    unsupported: list[Unsupported] = field(default_factory=list)
    input_layout: str | None = None


class ImportFailed(ArchspecError):
    """The source cannot be imported (exit 1): one line per unsupported operation."""

    def __init__(self, lines: list[str], hint: str = "") -> None:
        super().__init__("\n".join(lines), hint)
        self.lines = lines

    def render(self) -> str:
        # One line per operation, each starting "archspec: " as the first one will (cli.py
        # prefixes it). One problem: "what — how to fix" on one line, like every error; a
        # list of unsupported operations: the hint is its summary line, after them.
        lines = list(self.lines)
        if self.hint and len(lines) == 1:
            lines[0] = f"{lines[0]} — {self.hint}"
        elif self.hint:
            lines.append(self.hint)
        return "\n".join([lines[0], *(f"archspec: {line}" for line in lines[1:])])


def legal_name(text: str, taken: set[str] | None = None) -> str:
    """A layer name from a source name: letters, digits and _, not reserved, unique in
    ``taken`` (which it joins).

    >>> legal_name("features.0.conv"), legal_name("output"), legal_name("_x")
    ('features_0_conv', 'output_', 'm_x')
    """
    name = re.sub(r"[^A-Za-z0-9_]", "_", text) or "layer"
    if name.startswith("_"):
        name = "m" + name
    if name in RESERVED:
        name += "_"
    base, n = name, 1
    while taken is not None and name in taken:
        name = f"{base}_{n}"
        n += 1
    assert NAME.match(name)
    if taken is not None:
        taken.add(name)
    return name


def block_name(type_name: str, taken: set[str]) -> str:
    """``BasicBlock`` → ``basic_block``; never a kind's name, unique in ``taken``."""
    snake = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", type_name).lower()
    snake = re.sub(r"[^a-z0-9_]", "_", snake).strip("_") or "block"
    if snake[0].isdigit():
        snake = "b" + snake
    if snake in kinds.REGISTRY or snake in kinds.ALIASES:
        snake += "_block"
    name, n = snake, 2
    while name in taken:
        name = f"{snake}_{n}"
        n += 1
    taken.add(name)
    return name


def defaults(kind: str) -> dict[str, Any]:
    """The kind's parameter defaults (required parameters are absent)."""
    model = kinds.REGISTRY[kind].params
    return {
        key: field.default
        for key, field in model.model_fields.items()
        if not field.is_required() and field.default is not None
    }


def uniform(value: Any) -> Any:
    """``(3, 3)`` → ``3``; lists become tuples; other values unchanged."""
    if isinstance(value, list | tuple):
        value = tuple(value)
        if value and all(v == value[0] for v in value) and isinstance(value[0], int):
            return value[0]
    return value


def reaching(ops: list[Op], output: str) -> list[Op]:
    """The ops the value ``output`` depends on, in order (every importer drops the rest)."""
    needed = {output}
    for op in reversed(ops):
        if op.key in needed:
            needed.update(op.inputs)
    return [op for op in ops if op.key in needed]
