"""The JSON Schema of specs: shipped and current, valid draft 2020-12, accepts every spec archspec
accepts (the example specs, every surface form, Hypothesis-drawn networks), rejects typos.

Regenerate the shipped file with ``ARCHSPEC_UPDATE_SCHEMA=1 pytest tests/test_schema.py``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from strategies import valid_nets

import archspec
from archspec.cli import main
from archspec.outputs import schema
from archspec.shapes import kinds

ROOT = Path(__file__).resolve().parent.parent
SPECS = sorted((ROOT / "specs").glob("*.yaml"))
SCHEMA = schema.generate()
VALIDATOR = jsonschema.Draft202012Validator(SCHEMA)


def errors(data: Any) -> list[str]:
    return [e.message for e in VALIDATOR.iter_errors(data)]


def test_shipped_schema_is_current() -> None:
    if os.environ.get("ARCHSPEC_UPDATE_SCHEMA"):
        schema.write()
    shipped = schema.SCHEMA_FILE.read_text(encoding="utf-8") if schema.SCHEMA_FILE.exists() else ""
    assert shipped == schema.render(), (
        f"{schema.SCHEMA_FILE} is stale (a model or kind changed): regenerate it with "
        "ARCHSPEC_UPDATE_SCHEMA=1 python -m pytest tests/test_schema.py"
    )


def test_schema_is_valid_draft_2020_12() -> None:
    jsonschema.Draft202012Validator.check_schema(SCHEMA)
    assert SCHEMA["$schema"] == "https://json-schema.org/draft/2020-12/schema"


def test_generation_is_deterministic() -> None:
    assert schema.render() == schema.render()


@pytest.mark.parametrize("path", SPECS, ids=lambda p: p.name)
def test_every_example_spec_validates(path: Path) -> None:
    assert errors(yaml.safe_load(path.read_text(encoding="utf-8"))) == []


@pytest.mark.parametrize("path", SPECS, ids=lambda p: p.name)
def test_every_example_spec_names_the_schema_on_its_first_line(path: Path) -> None:
    first = path.read_text(encoding="utf-8").splitlines()[0]
    assert first == schema.SPEC_COMMENT, (
        f"make the first line of {path.name}: {schema.SPEC_COMMENT}"
    )


def test_the_comment_points_at_the_shipped_file_from_specs() -> None:
    relative = schema.SPEC_COMMENT.split("$schema=", 1)[1]
    assert (ROOT / "specs" / relative).resolve() == schema.SCHEMA_FILE.resolve()


VALID = {
    "every surface form": """
vars: {w: 4, k: 3, bn: true}
input: [1, w * 4, 16]
layers:
  - conv: {depth: w * 2, kernel: k, bias: bn, padding: same}
    repeat: 2
  - batchnorm:
    when: bn
  - relu
  - dropout: 0.5
  - pool: 2
  - upsample: [2, 2]
  - global_pool: max
  - dense: {features: 3}
  - leaky_relu: 0.1
  - gelu: tanh
""",
    "aliases": """
input: [1, 8, 8]
layers:
  - convolution: {filters: 4, kernel: [3, 3], padding: [1, 1]}
  - pooling: {kind: lp, norm: 2, size: 2, stride: [2, 2]}
  - flatten
  - linear: 10
  - dropout: {rate: 0.1}
""",
    "blocks, enum arguments, graphs": """
input: [2, 8, 8]
blocks:
  down:
    args: {pk: max}
    layers:
      - pool: {kind: pk, size: 2}
  bare: [relu]
layers:
  - down: {pk: avg}
    name: a
  - down: max
  - bare:
  - upsample: 2
  - concat:
    from: [upsample1, a]
    name: 0
  - down
""",
    "text variables": """
vars: {pk: avg}
input: [1, 8, 8]
layers:
  - pool: {kind: pk, size: 2}
""",
    "training": """
input: [4]
layers: [relu]
train:
  data: {path: d.npz, val: "test[8000:]", normalize: none}
  optimizer: sgd
  schedule: {name: step, every: 3, gamma: 0.5}
  loss: {label_smoothing: 0.1}
  device: "cuda:1"
""",
}


@pytest.mark.parametrize("text", VALID.values(), ids=VALID.keys())
def test_every_surface_form_validates_here_and_in_archspec(text: str) -> None:
    archspec.loads(text)  # the premise: archspec accepts it
    assert errors(yaml.safe_load(text)) == []


def test_an_extending_spec_may_leave_out_what_its_parent_gives(tmp_path: Path) -> None:
    base = tmp_path / "base.yaml"
    base.write_text(
        "input: [4]\nlayers: [relu]\ntrain: {data: {dataset: mnist}, optimizer: {name: sgd}}\n"
    )
    child = tmp_path / "child.yaml"
    child.write_text("extends: base.yaml\ntrain: {optimizer: {lr: 0.1}, epochs: 3}\n")
    archspec.load(child)
    assert errors(yaml.safe_load(child.read_text())) == []
    assert errors({"extends": "base.yaml", "train": {"optimizer": {"lr": 0.1, "bogus": 1}}})


INVALID = {
    "unknown key": ("input: [1, 8, 8]\nlayers:\n  - conv: {depth: 4, kernal: 3}\n", "layers"),
    "bad pool kind": ("input: [1, 8, 8]\nlayers:\n  - pool: {kind: maxx, size: 2}\n", "layers"),
    "unknown kind": ("input: [1, 8, 8]\nlayers:\n  - cnov: {depth: 4, kernel: 3}\n", "layers"),
    "top-level typo": ("input: [1, 8, 8]\nlayer: [relu]\n", "'layer' was unexpected"),
    "two kinds in one item": ("input: [1, 8, 8]\nlayers:\n  - {relu: null, tanh: null}\n", ""),
    "missing layers": ("input: [1, 8, 8]\n", "'layers' is a required property"),
    "kind that needs parameters": ("input: [1, 8, 8]\nlayers: [conv]\n", "layers"),
    "dense without units": ("input: [4]\nlayers: [{dense: null}]\n", "layers"),
    "negative dropout": ("input: [4]\nlayers: [{dropout: -0.5}]\n", "layers"),
    "unknown optimizer": (
        "input: [4]\nlayers: [relu]\ntrain: {data: {dataset: mnist}, optimizer: {name: adma}}\n",
        "train",
    ),
    "sgd has no betas": (
        "input: [4]\nlayers: [relu]\n"
        "train: {data: {dataset: mnist}, optimizer: {name: sgd, betas: [0.9, 0.9]}}\n",
        "train",
    ),
    "bad device": (
        "input: [4]\nlayers: [relu]\ntrain: {data: {dataset: mnist}, device: gpu}\n",
        "",
    ),
    "train without data": ("input: [4]\nlayers: [relu]\ntrain: {epochs: 3}\n", ""),
    "input too long": ("input: [1, 2, 3, 4, 5]\nlayers: [relu]\n", "input"),
}


@pytest.mark.parametrize(("text", "word"), INVALID.values(), ids=INVALID.keys())
def test_typos_fail_here_and_in_archspec(text: str, word: str) -> None:
    with pytest.raises(archspec.ArchspecError):
        archspec.loads(text)
    found = [e for e in VALIDATOR.iter_errors(yaml.safe_load(text))]
    assert found, "the schema accepted a spec archspec rejects"
    assert any(word in e.message or word in list(e.absolute_path) for e in found)


@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(valid_nets())
def test_every_drawn_network_validates(net: Any) -> None:
    assert errors(yaml.safe_load(net.text)) == []


def _resolve(node: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in node:
        target = SCHEMA["$defs"][node["$ref"].rsplit("/", 1)[1]]
        node = {**target, **{k: v for k, v in node.items() if k != "$ref"}}
    return node


def _properties() -> list[tuple[str, dict[str, Any]]]:
    """Every property of the top level and of every definition, with where it is."""
    out = [(f"#.{name}", prop) for name, prop in SCHEMA["properties"].items()]
    for def_name, definition in SCHEMA["$defs"].items():
        stack = [(def_name, definition)]
        while stack:
            where, node = stack.pop()
            for name, prop in node.get("properties", {}).items():
                out.append((f"{where}.{name}", prop))
            for key in ("anyOf", "oneOf", "allOf"):
                stack += [(f"{where}/{key}{i}", n) for i, n in enumerate(node.get(key, []))]
    return out


def test_every_field_has_a_description_and_valid_examples() -> None:
    missing, wrong = [], []
    for where, prop in _properties():
        resolved = _resolve(prop)
        if "description" not in resolved or not resolved.get("examples"):
            missing.append(where)
            continue
        check = jsonschema.Draft202012Validator({**prop, "$defs": SCHEMA["$defs"]})
        wrong += [f"{where}: {ex!r}" for ex in resolved["examples"] if not check.is_valid(ex)]
    assert missing == [], "document these fields: Field(description=..., examples=[...])"
    assert wrong == [], "these examples do not validate"


@pytest.mark.parametrize("spelling", kinds.names())
def test_every_kind_and_alias_completes_and_validates(spelling: str) -> None:
    layer_keys = [set(alt.get("properties", {})) for alt in SCHEMA["$defs"]["StrictLayer"]["anyOf"]]
    assert any(spelling in keys for keys in layer_keys)
    kind = kinds.get(spelling)
    example = SCHEMA["$defs"][f"kind_{kind.name}"]["examples"][0]
    entry = {spelling: example, "name": "x"}
    strict = jsonschema.Draft202012Validator(
        {**_resolve({"$ref": "#/$defs/StrictLayer"}), "$defs": SCHEMA["$defs"]}
    )
    assert strict.is_valid(entry)


def test_schema_command_prints_the_shipped_schema(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["schema"]) == 0
    assert json.loads(capsys.readouterr().out) == SCHEMA


def test_schema_command_writes_a_file(tmp_path: Path) -> None:
    out = tmp_path / "sub" / "s.json"
    assert main(["schema", "-o", str(out)]) == 0
    assert out.read_text(encoding="utf-8") == schema.render()
    assert [p.name for p in out.parent.iterdir()] == ["s.json"]  # written atomically: no temp left
