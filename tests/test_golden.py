"""Golden plan summaries of every ``specs/*.yaml``, plus the published numbers.

A golden file is the plan as compact JSON, one layer per line, so a change in any
shape, parameter count, MAC count or receptive field shows up as a readable diff.
Regenerate after an intended change with::

    ARCHSPEC_UPDATE_GOLDEN=1 python -m pytest tests/test_golden.py

A spec without a golden file yet is skipped (not failed), with the reason saying so.
"""

from __future__ import annotations

import json
import os
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest

import archspec
from archspec.shapes import kinds
from archspec.shapes.plan import Plan, RField

ROOT = Path(__file__).resolve().parents[1]
SPECS = sorted((ROOT / "specs").glob("*.yaml"))
GOLDEN = Path(__file__).resolve().parent / "golden"
UPDATE = os.environ.get("ARCHSPEC_UPDATE_GOLDEN") == "1"
REQUIRED = {"mnist_cnn", "lenet5", "timeseries_cnn", "resnet18", "kinds_tour"}


def _number(value: Fraction) -> int | str:
    """Exact: ``4``, or ``"1/2"`` for the sub-pixel jumps after upsampling."""
    return int(value) if value.denominator == 1 else f"{value.numerator}/{value.denominator}"


def _field(rf: RField) -> dict[str, Any] | str:
    if rf is None:
        return "all"
    return {"size": [_number(a.size) for a in rf], "jump": [_number(a.jump) for a in rf]}


def summary(plan: Plan) -> dict[str, Any]:
    data = plan.to_dict()  # named inputs/outputs, or int ids: each one listed
    several = {key: data[key] for key in ("inputs", "outputs") if key in data}
    return {
        "name": plan.name,
        "input": list(plan.input_shape),
        "output": list(plan.output_shape),
        **several,
        "total_params": plan.total_params,
        "total_macs": plan.total_macs,
        "layers": [
            {
                "name": node.name,
                "kind": node.kind,
                "inputs": list(node.inputs),
                "shape": list(node.shape),
                "params": node.num_params,
                "macs": node.macs,
                "field": _field(node.field),
            }
            for node in plan.nodes
        ],
    }


def render(data: dict[str, Any]) -> str:
    """Pretty JSON with each layer on its own single line."""
    head = {key: value for key, value in data.items() if key != "layers"}
    lines = [f"  {json.dumps(key)}: {json.dumps(value)}," for key, value in head.items()]
    layers = [f"    {json.dumps(layer, ensure_ascii=False)}" for layer in data["layers"]]
    return "{\n" + "\n".join(lines) + '\n  "layers": [\n' + ",\n".join(layers) + "\n  ]\n}\n"


def golden_path(spec: Path) -> Path:
    return GOLDEN / f"{spec.stem}.json"


@pytest.mark.parametrize("spec", SPECS, ids=[spec.stem for spec in SPECS])
def test_plan_matches_its_golden_file(spec: Path) -> None:
    actual = render(summary(archspec.load(spec).plan()))
    golden = golden_path(spec)
    if UPDATE:
        GOLDEN.mkdir(exist_ok=True)
        golden.write_text(actual, encoding="utf-8")
    if not golden.exists():
        pytest.skip(
            f"no golden file for specs/{spec.name} — create it with "
            "ARCHSPEC_UPDATE_GOLDEN=1 python -m pytest tests/test_golden.py"
        )
    assert json.loads(actual) == json.loads(golden.read_text(encoding="utf-8"))
    assert actual == golden.read_text(encoding="utf-8")  # and byte for byte, for clean diffs


def test_golden_files_cover_the_reference_specs() -> None:
    missing = [spec.stem for spec in SPECS if not golden_path(spec).exists()]
    if missing:
        print(f"specs without a golden file yet: {', '.join(missing)}")
    covered = {path.stem for path in GOLDEN.glob("*.json")}
    assert covered >= REQUIRED, f"missing golden files: {sorted(REQUIRED - covered)}"


def test_every_golden_file_has_a_spec() -> None:
    stale = {path.stem for path in GOLDEN.glob("*.json")} - {spec.stem for spec in SPECS}
    assert not stale, f"golden files whose spec is gone: {sorted(stale)}"


def test_golden_rendering_is_valid_json() -> None:
    data = summary(archspec.loads("input: [2, 4]\nlayers: [{upsample: 2}, flatten]").plan())
    assert json.loads(render(data)) == data
    assert data["layers"][0]["field"] == {"size": [1], "jump": ["1/2"]}


# ---------------------------------------------------------------- the published numbers


def test_mnist_cnn_shapes_and_parameters() -> None:
    plan = archspec.load(ROOT / "specs" / "mnist_cnn.yaml").plan()
    shapes = [plan.input_shape]
    for node in plan.nodes:
        if node.shape != shapes[-1]:
            shapes.append(node.shape)
    assert shapes == [
        (1, 28, 28),
        (32, 28, 28),
        (32, 14, 14),
        (64, 14, 14),
        (64, 7, 7),
        (3136,),
        (1024,),
        (10,),
    ]
    assert plan.total_params == 3_274_634
    assert plan.node("conv1").num_params == 5 * 5 * 1 * 32 + 32
    assert plan.node("conv2").num_params == 5 * 5 * 32 * 64 + 64
    assert plan.node("dense1").num_params == 7 * 7 * 64 * 1024 + 1024
    assert plan.node("dense2").num_params == 1024 * 10 + 10


def test_lenet5_parameters() -> None:
    plan = archspec.load(ROOT / "specs" / "lenet5.yaml").plan()
    assert plan.total_params == 61_706
    assert [n.shape for n in plan.nodes if n.kind in ("conv", "pool", "dense")] == [
        (6, 28, 28),
        (6, 14, 14),
        (16, 10, 10),
        (16, 5, 5),
        (120,),
        (84,),
        (10,),
    ]


def test_resnet18_matches_torchvision() -> None:
    plan = archspec.load(ROOT / "specs" / "resnet18.yaml").plan()
    assert plan.total_params == 11_689_512
    assert plan.node("layer4.1.relu2").shape == (512, 7, 7)
    assert plan.output_shape == (1000,)


# ---------------------------------------------------------------- every kind is exercised


def test_every_registered_kind_appears_in_some_spec() -> None:
    used: dict[str, set[str]] = {}
    for spec in SPECS:
        for node in archspec.load(spec).plan().nodes:
            used.setdefault(node.kind, set()).add(spec.name)
    assert sorted(set(kinds.REGISTRY) - set(used)) == []
    assert set(used) <= set(kinds.REGISTRY)


def test_kinds_tour_alone_uses_every_kind() -> None:
    plan = archspec.load(ROOT / "specs" / "kinds_tour.yaml").plan()
    assert {node.kind for node in plan.nodes} == set(kinds.REGISTRY)
    merges = [node for node in plan.nodes if node.kind in ("add", "concat", "multiply")]
    assert all(len(node.inputs) == 2 for node in merges)  # real skip connections
