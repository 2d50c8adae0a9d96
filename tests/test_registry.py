"""Every layer kind has all of its parts, found by its name (DESIGN.md, "adding a kind").

A kind is its torch-free rule (archspec.shapes.kinds.REGISTRY: Params model, shape rule,
counting, description), its builder (archspec.compile.builders.BUILDERS), a parameter
strategy (tests/strategies.py PARAMS), a plain-torch reference (tests/test_differential.py
REFERENCE) and a place in specs/kinds_tour.yaml. A kind missing any of them fails here,
by name, before the differential tests would fail less clearly.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from strategies import PARAMS
from test_differential import REFERENCE

import archspec
from archspec.compile.builders import BUILDERS, NoBuilderError, build_node
from archspec.shapes import kinds
from archspec.shapes.params import Params

ROOT = Path(__file__).resolve().parents[1]
KINDS = sorted(kinds.REGISTRY)


@pytest.mark.parametrize("name", KINDS)
def test_rule_is_complete(name: str) -> None:
    kind = kinds.REGISTRY[name]
    assert kind.name == name
    assert issubclass(kind.params, Params), "a kind's params derive from shapes.params.Params"
    assert callable(kind.infer)
    assert kind.summary.strip(), "a one-line summary (docs and the schema use it)"
    assert kind.inputs[0] >= 1


@pytest.mark.parametrize("name", KINDS)
def test_every_field_is_documented_on_the_params_model(name: str) -> None:
    for field, info in kinds.REGISTRY[name].params.model_fields.items():
        assert info.examples, f"{name}.{field}: give Field(description=..., examples=[...])"


def test_every_rule_has_a_builder_and_every_builder_a_rule() -> None:
    assert sorted(BUILDERS) == KINDS, "add the kind's builder to archspec/compile/builders.py"


def test_every_kind_has_a_strategy_and_a_torch_reference() -> None:
    assert sorted(PARAMS) == KINDS, "add a parameter strategy to tests/strategies.py PARAMS"
    assert sorted(REFERENCE) == KINDS, "add a plain-torch reference to test_differential"


def test_tour_uses_every_kind() -> None:
    plan = archspec.load(ROOT / "specs" / "kinds_tour.yaml").plan()
    assert {node.kind for node in plan} == set(KINDS), "use the kind in specs/kinds_tour.yaml"


def test_every_counting_rule_agrees_with_torch() -> None:
    """Each kind's rule counts the parameters its built module has (the tour has them all)."""
    spec = archspec.load(ROOT / "specs" / "kinds_tour.yaml")
    plan = spec.plan()
    counts = spec.build().num_params()
    wrong = {n.kind: (n.num_params, counts[n.name]) for n in plan if n.num_params != counts[n.name]}
    assert wrong == {}, "kind: (rule's count, torch's count)"
    assert sum(n.macs for n in plan if n.kind in ("conv", "dense")) > 0


def test_a_kind_without_builder_is_named() -> None:
    node = archspec.loads("input: [4]\nlayers: [relu]\n").plan().nodes[0]
    ghost = type(node)(**{**node.__dict__, "kind": "ghost"})
    with pytest.raises(NoBuilderError, match=r"^no builder for kind 'ghost'$"):
        build_node(ghost)
    assert isinstance(build_node(node), torch.nn.ReLU)
