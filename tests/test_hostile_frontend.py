"""Hostile input to the front end, round 2 (issue #13, classes 1, 2, 3 and 5).

Each input ends in exit 1 with located one-line errors (``FILE:line:col: …``), or in
success where the input is legitimate; never exit 3, never a traceback.

1. layer names that are attributes of the compiled module (every name in
   ``dir(nn.Module())`` and ``dir(Network)``, ``_x``/``__x__``) are refused by ``check``;
2. every float parameter of every kind refuses NaN and ±inf (a registry walk);
3. sizes torch cannot represent are refused at plan time, located; ``export`` has a
   memory pre-flight;
5. a second ``<<`` merge key in one mapping is refused; Unicode lookalikes in expressions
   never evaluate as ASCII variables.
"""

from __future__ import annotations

import math
import re
import types
import typing
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

import archspec
from archspec.cli import main
from archspec.errors import SpecError
from archspec.shapes import kinds

LOCATED = re.compile(r"^s\.yaml:[1-9]\d*:[1-9]\d*: \S[^\n]* — \S")


def cli(capsys: pytest.CaptureFixture[str], tmp_path: Path, text: str, *args: str) -> tuple:
    """``archspec ARGS s.yaml`` in process (``{spec}`` in ``args`` is the file): exit code,
    stdout, stderr lines."""
    spec = tmp_path / "s.yaml"
    spec.write_text(text)
    argv = [a.replace("{spec}", str(spec)) for a in args]
    code = main(argv)
    out, err = capsys.readouterr()
    err = err.replace(str(tmp_path) + "/", "")
    assert "Traceback" not in err and "internal error" not in err, err
    return code, out, err.splitlines()


def refused(capsys: pytest.CaptureFixture[str], tmp_path: Path, text: str, *args: str) -> list:
    """The located error lines of a spec that must be refused with exit 1."""
    code, _, lines = cli(capsys, tmp_path, text, *(args or ("check", "{spec}")))
    assert code == 1, lines
    assert lines and all(LOCATED.match(line) for line in lines), lines
    return lines


# ------------------------------------------------------------ 1. names that are attributes
def module_attributes() -> list[str]:
    """Every attribute of an ``nn.Module`` and of archspec's Network, for this torch."""
    from torch import nn

    network = archspec.loads("input: [2]\nlayers: [relu]\n").build(device="meta")
    names = set(dir(nn.Module())) | set(dir(network)) | set(vars(network))
    return sorted(name for name in names if name != "relu1")


def test_the_attribute_list_is_long_enough() -> None:
    names = module_attributes()
    for name in ("plan", "trace", "num_params", "logits_only", "output_activation"):
        assert name in names
    for name in ("__class__", "__call__", "_modules", "_parameters", "training", "forward"):
        assert name in names
    assert len(names) > 100


def test_every_module_attribute_is_refused_as_a_layer_name(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """Issue #13: `{relu: null, name: plan}` passed check, then build() died (exit 3)."""
    for name in module_attributes():
        text = f"input: [2, 4, 4]\nlayers:\n  - {{relu: null, name: {name}}}\n"
        lines = refused(capsys, tmp_path, text)
        assert lines == [
            f"s.yaml:3:24: layers[0].name: '{name}' is reserved — choose another name"
        ], lines


@pytest.mark.parametrize("name", ["plan", "__class__", "_modules", "trace"])
def test_attribute_names_are_refused_as_block_instances_too(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, name: str
) -> None:
    text = (
        "input: [2, 4, 4]\nblocks:\n  pair:\n    layers: [relu, relu]\n"
        f"layers:\n  - {{pair: null, name: {name}}}\n"
    )
    (line,) = refused(capsys, tmp_path, text)
    assert line.startswith("s.yaml:6:24: layers[0].name: ") and "is reserved" in line


def test_names_that_are_not_attributes_build_verify_and_export(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """The other side: names near the reserved ones are ordinary, and every path works."""
    names = ["plans", "trace_", "num_params2", "x_modules", "class_", "Training", "forward1"]
    layers = "".join(f"  - {{relu: null, name: {n}}}\n" for n in names)
    text = f"input: [2, 4, 4]\nlayers:\n{layers}"
    code, out, _ = cli(capsys, tmp_path, text, "check", "--verify", "{spec}")
    assert code == 0 and "verified: all 7 layers" in out
    network = archspec.loads(text).build()
    assert [name for name, _ in network.named_children()] == names
    code, out, _ = cli(capsys, tmp_path, text, "export", "{spec}", "-o", str(tmp_path / "x.pt"))
    assert code == 0 and out.startswith("wrote ")


def test_default_names_skip_module_attributes(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """A block named `bfloat` used 16 times would default-name its 16th use `bfloat16`."""
    text = "input: [2, 4]\nblocks:\n  bfloat:\n    layers: [relu]\nlayers:\n" + "  - bfloat\n" * 16
    code, out, _ = cli(capsys, tmp_path, text, "check", "--verify", "{spec}")
    assert code == 0 and "verified" in out
    names = [node.name for node in archspec.loads(text).plan()]
    assert "bfloat16.relu1" not in names and "bfloat17.relu1" in names


# ----------------------------------------------------------------- 2. non-finite floats
def _is_float(annotation: Any) -> bool:
    if annotation is float:
        return True
    args = typing.get_args(annotation)
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType, typing.Annotated) or origin is tuple:
        return any(_is_float(a) for a in args)
    return False


def float_fields() -> list[tuple[str, str]]:
    """(kind, field) for every float-valued parameter of every registered kind."""
    out = []
    for name in kinds.names():
        for field, info in kinds.get(name).params.model_fields.items():
            if _is_float(info.annotation):
                out.append((name, field))
    return out


def test_the_float_field_walk_finds_the_known_ones() -> None:
    found = set(float_fields())
    for pair in [
        ("leaky_relu", "slope"),
        ("elu", "alpha"),
        ("batchnorm", "eps"),
        ("batchnorm", "momentum"),
        ("dropout", "p"),
    ]:
        assert pair in found


@pytest.mark.parametrize(("kind", "field"), float_fields())
@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf, 1e308, -3.5e38])
def test_every_float_parameter_of_every_kind_is_finite(kind: str, field: str, value: float) -> None:
    """Finite, and within float32's range (torch turns a float parameter into a float32
    scalar: `leaky_relu: 1.0e+308` passed check and died in torch, exit 3, once --verify
    ran small networks for real)."""
    params = kinds.get(kind).params
    with pytest.raises(
        ValidationError, match=r"finite number|greater than|less than|float32's range"
    ):
        params.model_validate({field: value})


@pytest.mark.parametrize(
    ("layer", "where"),
    [
        ("{leaky_relu: {slope: .nan}}", "3:26: layers[0].leaky_relu.slope"),
        ("{elu: {alpha: .inf}}", "3:19: layers[0].elu.alpha"),
        ("{batchnorm: {eps: .inf}}", "3:23: layers[0].batchnorm.eps"),
        ("{batchnorm: {momentum: -.inf}}", "3:28: layers[0].batchnorm.momentum"),
        ("{dropout: .nan}", "3:15: layers[0].dropout"),
        ("{leaky_relu: 1.0e+308}", "3:18: layers[0].leaky_relu"),
    ],
)
def test_non_finite_parameters_are_located_errors(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, layer: str, where: str
) -> None:
    (line,) = refused(capsys, tmp_path, f"input: [2, 4, 4]\nlayers:\n  - {layer}\n")
    assert line.startswith(f"s.yaml:{where}"), line


# ------------------------------------------------------------- 3. sizes past int64
BIG = [
    (
        "input: [3, 8, 8]\nlayers: [{conv: {depth: 8, kernel: 999999999, padding: same}}]\n",
        r"^s\.yaml:2:17: layers\[0\]\.conv: the layer would have 2\.400e\+19 parameters, "
        r"more than 2⁵⁹−1",
    ),
    (
        "input: [1099511627776, 1099511627776]\nlayers: [relu]\n",
        r"^s\.yaml:1:8: input: the input has 1\.209e\+24 elements per example, more than 2⁵⁹−1",
    ),
    (
        "input: [4]\nlayers: [{dense: 1099511627776}, {dense: 1099511627776}]\n",
        r"^s\.yaml:2:42: layers\[1\]\.dense: the layer would have 1\.209e\+24 parameters",
    ),
    (
        "input: [3, 8, 8]\nlayers: [{pool: {kind: max, size: 2, stride: 9000000000000000000, "
        "ceil_mode: true}}]\n",
        r"^s\.yaml:2:46: layers\[0\]\.pool\.stride: stride 9000000000000000000 is larger than",
    ),
    (
        "input: [1, 4]\nlayers: [{upsample: 1000000000}, {upsample: 1000000000}]\n",
        r"^s\.yaml:2:45: layers\[1\]\.upsample: the output would have 4\.000e\+18 elements",
    ),
]


@pytest.mark.parametrize(("text", "message"), BIG)
@pytest.mark.parametrize("command", ["check", "verify", "export"])
def test_sizes_torch_cannot_represent_are_refused_at_plan_time(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, text: str, message: str, command: str
) -> None:
    args = {
        "check": ("check", "{spec}"),
        "verify": ("check", "--verify", "--no-memory-check", "{spec}"),
        "export": ("export", "{spec}", "-o", str(tmp_path / "x.safetensors")),
    }[command]
    code, _, lines = cli(capsys, tmp_path, text, *args)
    assert code == 1
    line = lines[-1].removeprefix("archspec: ")
    assert re.match(message, line), line
    with pytest.raises(SpecError):
        archspec.loads(text, "s.yaml").build(device="meta")


def test_an_input_size_past_int64_on_the_command_line(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    text = "input: [4]\nlayers: [{dense: 10}]\n"
    args = ("check", "--verify", "--no-memory-check", "--input", "99999999999999999999999")
    (line,) = refused(capsys, tmp_path, text, *args, "{spec}")
    assert line.startswith("s.yaml:1:8: input: the input has 1.000e+23 elements per example")


@pytest.mark.parametrize(
    "text",
    ["input: [4]\nlayers: [{dense: 1099511627776}]\n", "input: [1099511627776]\nlayers: [relu]\n"],
)
def test_huge_but_representable_networks_verify_on_meta_and_export_refuses_them(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, text: str
) -> None:
    """Legitimate for `check --verify` (the meta device allocates nothing); `export` would
    allocate terabytes: its pre-flight refuses before building, in one line (exit 1)."""
    code, out, _ = cli(capsys, tmp_path, text, "check", "--verify", "--no-memory-check", "{spec}")
    assert code == 0 and "verified" in out
    archspec.loads(text).build(device="meta")
    dest = tmp_path / "x.pt"
    code, _, lines = cli(capsys, tmp_path, text, "export", "{spec}", "-o", str(dest))
    assert code == 1 and len(lines) == 1
    assert re.match(
        r"^archspec: s\.yaml: exporting s needs about \d+\.\d\d TiB .* but this machine has "
        r".* available — make the layers smaller, or export on a machine with more memory$",
        lines[0],
    ), lines
    assert not dest.exists()


# ------------------------------------------------------------------- 5. YAML corners
def test_two_merge_keys_in_one_mapping_are_refused(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    text = (
        "input: [2, 8, 8]\nlayers:\n  - &c {conv: {depth: 4, kernel: 3}}\n"
        "  - conv:\n      <<: {depth: 4}\n      <<: {kernel: 3}\n"
    )
    assert refused(capsys, tmp_path, text) == [
        "s.yaml:6:7: layers[1].conv.<<: a second merge key '<<' in one mapping (first at "
        "line 5) — merge several mappings with one key: `<<: [*first, *second]`"
    ]


def test_one_merge_key_with_a_list_still_merges(tmp_path: Path) -> None:
    text = "input: [2, 8, 8]\nlayers:\n  - conv:\n      <<: [{depth: 4}, {kernel: 3}]\n"
    assert archspec.loads(text).plan().output_shape == (4, 6, 6)


@pytest.mark.parametrize("expr", ["ａ + 1", "ª * 2", "ᵃ + 1", "𝐚 + 1", "a + １"])
def test_unicode_lookalikes_never_evaluate_as_ascii_names(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, expr: str
) -> None:
    text = f"vars: {{a: 3}}\ninput: [4]\nlayers:\n  - dense: '{expr}'\n"
    (line,) = refused(capsys, tmp_path, text)
    assert line.startswith("s.yaml:4:12: layers[0].dense: must be a valid integer; received"), line
    assert archspec.loads(text.replace(expr, "a + 1")).plan().output_shape == (4,)
