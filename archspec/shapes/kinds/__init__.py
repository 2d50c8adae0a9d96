"""The registry of layer kinds' torch-free rules: parameters, shape rule, counts, description.

Each kind's builder is in :data:`archspec.compile.builders.BUILDERS`, under the same name.

>>> get("dense").name, get("linear").name
('dense', 'dense')
"""

from __future__ import annotations

from archspec.shapes.kinds import (
    attention,
    conv,
    dense,
    elementwise,
    learned,
    merge,
    norm,
    padding,
    pool,
    recurrent,
    shuffle,
    tensor,
)
from archspec.shapes.kinds.base import Kind, ShapeError
from archspec.shapes.plan import PlanNode

REGISTRY: dict[str, Kind] = {}
ALIASES: dict[str, str] = {}

for _module in (
    conv,
    pool,
    elementwise,
    norm,
    shuffle,
    padding,
    dense,
    merge,
    tensor,
    attention,
    recurrent,
    learned,
):
    for _kind in _module.KINDS:
        REGISTRY[_kind.name] = _kind
        for _alias in _kind.aliases:
            ALIASES[_alias] = _kind.name


def canonical(name: str) -> str | None:
    """The registered name for ``name`` (itself or an alias), or ``None``."""
    if name in REGISTRY:
        return name
    return ALIASES.get(name)


def get(name: str) -> Kind:
    """The kind called ``name`` (or one of its aliases); ``KeyError`` if none."""
    kind = REGISTRY.get(name)  # the common case, first: called for every layer, often
    if kind is not None:
        return kind
    real = ALIASES.get(name)
    if real is None:
        raise KeyError(f"no layer kind '{name}'")
    return REGISTRY[real]


def names() -> list[str]:
    """Every kind name and alias a spec may use."""
    return sorted([*REGISTRY, *ALIASES])


def label(node: PlanNode) -> str:
    """``conv 5×5 /1 same``: the kind and its detail, as reports and diagrams show it."""
    return f"{node.kind} {get(node.kind).describe(node)}".strip()


__all__ = ["ALIASES", "REGISTRY", "Kind", "ShapeError", "canonical", "get", "label", "names"]
