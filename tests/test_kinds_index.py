"""The kind registry's written-out index (archspec.shapes.kinds.INDEX and ALIASES) matches
what the kind modules define, so importing only the modules a spec uses changes nothing."""

from __future__ import annotations

import subprocess
import sys

import pytest

from archspec.shapes import kinds
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

MODULES = {
    "conv": conv,
    "pool": pool,
    "elementwise": elementwise,
    "norm": norm,
    "shuffle": shuffle,
    "padding": padding,
    "dense": dense,
    "merge": merge,
    "tensor": tensor,
    "attention": attention,
    "recurrent": recurrent,
    "learned": learned,
}


def test_index_lists_every_module_and_kind_in_order() -> None:
    assert list(kinds.INDEX) == list(MODULES)
    for name, module in MODULES.items():
        assert kinds.INDEX[name] == tuple(k.name for k in module.KINDS), (
            f"kinds.INDEX['{name}'] must list archspec.shapes.kinds.{name}.KINDS in order"
        )


def test_aliases_are_the_kinds_own() -> None:
    declared = {a: k.name for m in MODULES.values() for k in m.KINDS for a in k.aliases}
    assert declared == kinds.ALIASES


def test_registry_behaves_as_the_mapping_it_was() -> None:
    everything = [k for m in MODULES.values() for k in m.KINDS]
    assert list(kinds.REGISTRY) == [k.name for k in everything]
    assert list(kinds.REGISTRY.values()) == everything
    assert len(kinds.REGISTRY) == len(everything)
    assert "conv" in kinds.REGISTRY and "linear" not in kinds.REGISTRY
    assert kinds.REGISTRY.get("no_such_kind") is None
    with pytest.raises(KeyError):
        kinds.REGISTRY["no_such_kind"]
    assert kinds.get("linear") is dense.KINDS[1]
    assert kinds.canonical("lrn") == "local_response_norm"
    assert kinds.names() == sorted([*kinds.REGISTRY, *kinds.ALIASES])


def test_a_lookup_imports_only_that_kinds_module() -> None:
    code = (
        "import sys; from archspec.shapes import kinds; "
        "before = {m for m in sys.modules if m.startswith('archspec.shapes.kinds.')}; "
        "kinds.get('relu'); kinds.canonical('lstm'); list(kinds.REGISTRY); "
        "after = {m for m in sys.modules if m.startswith('archspec.shapes.kinds.')}; "
        "print(sorted(after - before))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "['archspec.shapes.kinds.elementwise']"
