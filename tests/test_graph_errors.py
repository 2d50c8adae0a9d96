"""Graph expansion errors: names and ``from:``, merges, blocks, ``repeat:``/``when:``,
``output:`` and ``extends:`` — each located."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import archspec
from archspec.errors import SpecError


def errors(text: str) -> list[str]:
    with pytest.raises(SpecError) as info:
        archspec.loads(text, "s.yaml")
    return info.value.render().splitlines()


def one_error(text: str, pattern: str) -> str:
    with pytest.raises(SpecError, match=pattern) as info:
        archspec.loads(text, "s.yaml")
    assert len(info.value.problems) == 1, info.value.render()
    return info.value.render()


CONV = "conv: {depth: 4, kernel: 3, padding: same}"


# ---------------------------------------------------------------- from: and names


def test_unknown_from_name_suggests_a_close_one() -> None:
    text = (
        f"input: [1, 8, 8]\nlayers:\n  - {CONV}\n    name: left\n  - {CONV}\n    name: right\n"
        + ("  - add:\n    from: [left, rigth]\n")
    )
    one_error(
        text,
        r"^s\.yaml:8:18: layers\[2\]\.from\[1\]: from names 'rigth', which is not a layer here — "
        r"did you mean 'right'\?$",
    )


def test_unknown_from_name_far_from_any_lists_the_names() -> None:
    text = f"input: [1, 8, 8]\nlayers:\n  - {CONV}\n    name: stem\n  - relu:\n    from: zzz\n"
    one_error(
        text,
        r"^s\.yaml:6:11: layers\[1\]\.from: from names 'zzz', which is not a layer here — "
        r"names here: stem, input$",
    )


def test_forward_references_that_loop_are_a_cycle() -> None:
    text = (
        "input: [1, 8, 8]\n"
        "layers:\n"
        f"  - {CONV}\n"
        "    name: a\n"
        "    from: c\n"  # line 5: a reads c, which is defined later
        f"  - {CONV}\n"
        "    name: b\n"
        "  - relu:\n"
        "    name: c\n"
    )
    one_error(
        text,
        r"^s\.yaml:5:11: layers\[0\]\.from: the layers form a cycle: a ← c ← b ← a \(each reads "
        r"the next through from:\) — a network is acyclic: make one of them read an earlier layer$",
    )


def test_forward_reference_without_a_loop_is_fine() -> None:
    text = (
        "input: [1, 8, 8]\n"
        "layers:\n"
        "  - add:\n"
        "    from: [late, input]\n"  # refers ahead; the graph is ordered, not the text
        "    name: out\n"
        "  - conv: {depth: 1, kernel: 3, padding: same}\n"
        "    from: input\n"
        "    name: late\n"
        "output: out\n"
    )
    plan = archspec.loads(text).plan()
    assert [node.name for node in plan] == ["late", "out"]


def test_unused_branch_never_reaches_the_output() -> None:
    text = (
        "input: [1, 8, 8]\nlayers:\n"
        f"  - {CONV}\n    name: trunk\n"
        f"  - {CONV}\n    name: side\n"
        "  - relu:\n    from: trunk\n"
    )
    one_error(
        text,
        r"^s\.yaml:5:5: layers\[1\]: layer 'side' never reaches the output \(nothing reads it\) — "
        r"feed it into a merge \(`from: \[\.\.\., side\]`\) or remove it$",
    )


def test_duplicate_names() -> None:
    text = f"input: [1, 8, 8]\nlayers:\n  - {CONV}\n    name: a\n  - relu:\n    name: a\n"
    one_error(
        text,
        r"^s\.yaml:6:11: layers\[1\]\.name: the name 'a' is already used in this scope — "
        r"give each layer a unique name$",
    )


@pytest.mark.parametrize("name", ["forward", "input", "parameters", "training", "output"])
def test_reserved_names(name: str) -> None:
    text = f"input: [1, 8, 8]\nlayers:\n  - relu:\n    name: {name}\n"
    one_error(
        text, rf"^s\.yaml:4:11: layers\[0\]\.name: '{name}' is reserved — choose another name$"
    )


@pytest.mark.parametrize("name", ["bad-name", "'a.b'", "x y", "[a]"])
def test_names_are_words(name: str) -> None:
    text = f"input: [1, 8, 8]\nlayers:\n  - relu:\n    name: {name}\n"
    one_error(
        text,
        r"^s\.yaml:4:11: layers\[0\]\.name: a layer name is a word of letters, digits and _; "
        r"received .* — rename it",
    )


def test_names_may_repeat_in_separate_block_instances() -> None:
    text = (
        "input: [2, 8, 8]\n"
        "blocks:\n"
        "  unit:\n"
        "    - conv: {depth: 2, kernel: 3, padding: same}\n"
        "      name: conv\n"
        "layers:\n"
        "  - unit:\n    name: first\n"
        "  - unit:\n    name: second\n"
    )
    names = [node.name for node in archspec.loads(text).plan()]
    assert names == ["first.conv", "second.conv"]


# ---------------------------------------------------------------- merges


def test_merge_with_mismatched_spatial_shapes_names_both_and_the_axis() -> None:
    text = (
        "input: [3, 8, 8]\nlayers:\n"
        f"  - {CONV}\n    name: a\n"
        "  - conv: {depth: 4, kernel: 3, stride: 2, padding: 1}\n    name: b\n"
        "  - add:\n    from: [a, b]\n"
    )
    rendered = one_error(
        text,
        r"^s\.yaml:7:9: layers\[2\]\.add: add needs matching shapes, but input 0 is 4×8×8 and "
        r"input 1 is 4×4×4 \(axis 1: 8 ≠ 4\) — give both branches the same stride/pooling, or "
        r"upsample the smaller one",
    )
    assert rendered.endswith("(add1: input 4×8×8, 4×4×4)")


def test_merge_with_mismatched_channels_hints_a_projection() -> None:
    text = (
        "input: [3, 8, 8]\nlayers:\n"
        f"  - {CONV}\n    name: a\n"
        "  - conv: {depth: 8, kernel: 1}\n    name: b\n"
        "  - multiply:\n    from: [a, b]\n"
    )
    one_error(
        text,
        r"^s\.yaml:7:14: layers\[2\]\.multiply: multiply needs matching shapes, but input 0 is "
        r"4×8×8 and input 1 is 8×8×8 \(channels: 4 ≠ 8\) — project one branch with a 1×1 conv",
    )


def test_concat_needs_matching_spatial_axes_only() -> None:
    base = f"input: [3, 8, 8]\nlayers:\n  - {CONV}\n    name: a\n"
    ok = base + "  - conv: {depth: 8, kernel: 1}\n    name: b\n  - concat:\n    from: [a, b]\n"
    assert archspec.loads(ok).plan().output_shape == (12, 8, 8)
    bad = base + "  - pool: 2\n    name: b\n  - concat:\n    from: [a, b]\n"
    one_error(
        bad,
        r"^s\.yaml:7:12: layers\[2\]\.concat: concat needs matching shapes, but input 0 is 4×8×8 "
        r"and input 1 is 4×4×4 \(axis 1: 8 ≠ 4\)",
    )


def test_merge_of_different_ranks() -> None:
    text = (
        "input: [3, 8, 8]\nlayers:\n"
        f"  - {CONV}\n    name: a\n"
        "  - flatten:\n    name: b\n"
        "  - add:\n    from: [a, b]\n"
    )
    one_error(
        text,
        r"^s\.yaml:7:9: layers\[2\]\.add: add needs inputs of the same rank: input 0 is 4×8×8, "
        r"input 1 is 256 — flatten both or neither",
    )


@pytest.mark.parametrize("kind", ["add", "concat", "multiply"])
def test_merge_with_one_input(kind: str) -> None:
    text = f"input: [1, 8, 8]\nlayers:\n  - {CONV}\n    name: a\n  - {kind}:\n    from: a\n"
    one_error(
        text,
        rf"^s\.yaml:6:11: layers\[1\]\.from: {kind} takes at least 2 inputs, but from names 1 — "
        r"list the inputs: `from: \[a, b\]`",
    )


def test_single_input_layer_with_two_inputs() -> None:
    text = f"input: [1, 8, 8]\nlayers:\n  - {CONV}\n    name: a\n  - relu:\n    from: [a, input]\n"
    one_error(
        text,
        r"^s\.yaml:6:11: layers\[1\]\.from: relu takes 1 input, but from names 2 — "
        r"merge the branches first with add, concat or multiply$",
    )


# ---------------------------------------------------------------- blocks

BLOCK = (
    "blocks:\n"
    "  unit:\n"
    "    args: {depth: ~, stride: 1}\n"
    "    layers:\n"
    "      - conv: {depth: depth, kernel: 3, stride: stride, padding: 1}\n"
    "      - relu\n"
)


def test_block_self_recursion() -> None:
    text = f"input: [1, 8, 8]\nblocks:\n  loop:\n    - {CONV}\n    - loop\nlayers:\n  - loop\n"
    rendered = one_error(
        text,
        r"^s\.yaml:5:7: blocks\.loop\[1\]\.loop: block 'loop' uses itself — a block cannot contain "
        r"itself, directly or through another block",
    )
    assert rendered.endswith("(in loop1 (block 'loop' used at line 7))")


def test_mutual_block_recursion() -> None:
    text = "input: [1, 8, 8]\nblocks:\n  ping: [pong]\n  pong: [ping]\nlayers: [ping]\n"
    one_error(text, r"^s\.yaml:4:10: blocks\.pong\[0\]\.ping: block 'ping' uses itself — ")


def test_unknown_block_argument_suggests_a_close_one_without_a_missing_one() -> None:
    text = f"input: [1, 8, 8]\n{BLOCK}layers:\n  - unit: {{depht: 4}}\n"
    one_error(
        text,
        r"^s\.yaml:9:12: layers\[0\]\.unit\.depht: block 'unit' has no argument 'depht' — "
        r"did you mean 'depth'\?$",
    )


def test_unknown_block_argument_far_from_any_lists_the_arguments() -> None:
    text = f"input: [1, 8, 8]\n{BLOCK}layers:\n  - unit: {{depth: 4, colour: 1}}\n"
    one_error(
        text,
        r"^s\.yaml:9:22: layers\[0\]\.unit\.colour: block 'unit' has no argument 'colour' — "
        r"its arguments: depth, stride$",
    )


def test_missing_block_argument() -> None:
    text = f"input: [1, 8, 8]\n{BLOCK}layers:\n  - unit: {{stride: 2}}\n"
    one_error(
        text,
        r"^s\.yaml:9:11: layers\[0\]\.unit: block 'unit' needs argument 'depth' — "
        r"add `depth: \.\.\.`$",
    )


def test_block_argument_shorthand_and_defaults() -> None:
    text = f"input: [1, 8, 8]\n{BLOCK}layers:\n  - unit: {{depth: 6}}\n" + (
        "  - unit: {depth: 2, stride: 2}\n"
    )
    plan = archspec.loads(text).plan()
    assert [(node.name, node.shape) for node in plan] == [
        ("unit1.conv1", (6, 8, 8)),
        ("unit1.relu1", (6, 8, 8)),
        ("unit2.conv1", (2, 4, 4)),
        ("unit2.relu1", (2, 4, 4)),
    ]


def test_a_mistake_inside_a_block_is_reported_once_with_where_it_was_used() -> None:
    text = (
        "input: [1, 8, 8]\n"
        "blocks:\n"
        "  unit:\n"
        "    - conv: {depth: 4, kernal: 3}\n"
        "layers:\n"
        "  - unit:\n    repeat: 3\n    name: u\n"
    )
    with pytest.raises(SpecError) as info:
        archspec.loads(text, "s.yaml")
    (problem,) = info.value.problems
    assert problem.render().startswith(
        "s.yaml:4:24: blocks.unit[0].conv.kernal: unknown key 'kernal' — did you mean 'kernel'?"
    )
    assert problem.notes == ("in u.0 (block 'unit' used at line 6)",)


# ---------------------------------------------------------------- repeat and when


@pytest.mark.parametrize("value", ["-1", "2.5", "true", "lots", "n - 3"])
def test_repeat_must_be_a_whole_number(value: str) -> None:
    text = f"input: [1, 8, 8]\nvars: {{n: 1}}\nlayers:\n  - relu:\n    repeat: {value}\n"
    one_error(
        text,
        r"^s\.yaml:5:13: layers\[0\]\.repeat: repeat must be a whole number from 0 to 10,000; "
        r"received .* — write e\.g\. `repeat: 3` \(0 places nothing\)$",
    )


def test_repeat_zero_places_nothing_and_its_name_aliases_the_input() -> None:
    text = (
        "input: [1, 8, 8]\nvars: {n: 1}\nblocks:\n  unit: [{conv: {depth: 2, kernel: 3}}]\n"
        "layers:\n  - conv: {depth: 3, kernel: 1}\n  - relu:\n    repeat: n - 1\n    name: r\n"
        "  - unit:\n    repeat: n - 1\n  - add:\n    from: [r, conv1]\n"
    )
    plan = archspec.loads(text).plan()
    assert [(n.name, n.inputs) for n in plan] == [
        ("conv1", ("input",)),
        ("add1", ("conv1", "conv1")),
    ]


def test_repeat_names_copies_and_chains_them() -> None:
    text = (
        "input: [1, 8, 8]\nlayers:\n  - conv: {depth: 2, kernel: 3}\n    repeat: 3\n    name: c\n"
    )
    plan = archspec.loads(text).plan()
    assert [(n.name, n.inputs, n.shape) for n in plan] == [
        ("c.0", ("input",), (2, 6, 6)),
        ("c.1", ("c.0",), (2, 4, 4)),
        ("c.2", ("c.1",), (2, 2, 2)),
    ]


@pytest.mark.parametrize(("value", "shown"), [("3", "3"), ("maybe", "'maybe'"), ("[1]", r"\[1\]")])
def test_when_must_be_a_boolean(value: str, shown: str) -> None:
    text = f"input: [1, 8, 8]\nlayers:\n  - relu:\n    when: {value}\n"
    one_error(
        text,
        r"^s\.yaml:4:11: layers\[0\]\.when: when must be true, false or a condition; "
        rf"received {shown} — use a boolean variable or a comparison",
    )


def test_when_with_a_numeric_variable_is_refused() -> None:
    text = "input: [1, 8, 8]\nvars: {blocks: 2}\nlayers:\n  - relu:\n    when: blocks\n"
    one_error(text, r"^s\.yaml:5:11: layers\[0\]\.when: when must be true, false or a condition")


@pytest.mark.parametrize(
    ("condition", "placed"),
    [
        ("n > 1", True),
        ("n == 1", False),
        ("n != 1 and deep", True),
        ("n < 2 or not deep", False),
        ("1 <= n - 1 < 3", True),
        ("not (n >= 2)", False),
    ],
)
def test_when_takes_comparisons(condition: str, placed: bool) -> None:
    text = (
        "input: [1, 8, 8]\nvars: {n: 2, deep: true}\nlayers:\n  - relu:\n"
        f"    when: {condition}\n  - flatten\n"
    )
    kinds = [n.kind for n in archspec.loads(text).plan()]
    assert kinds == (["relu", "flatten"] if placed else ["flatten"])


@pytest.mark.parametrize(
    ("condition", "message"),
    [
        ("n and deep", r"'n and deep' uses and/or/not on 2, which is not true or false"),
        ("deep < 3", r"'deep < 3' does arithmetic on True, which is not a number"),
        ("n == deep", r"'n == deep' compares 2 with True, a boolean with a non-boolean"),
        ("n > m", r"unknown variable 'm' in expression 'n > m'"),
    ],
)
def test_when_conditions_are_located_errors(condition: str, message: str) -> None:
    text = (
        f"input: [1, 8, 8]\nvars: {{n: 2, deep: true}}\nlayers:\n  - relu:\n    when: {condition}\n"
    )
    one_error(text, rf"^s\.yaml:5:11: layers\[0\]\.when: {message}")


def test_when_false_skips_a_layer_and_its_name_aliases_the_input() -> None:
    text = (
        "input: [1, 8, 8]\nvars: {use_bn: false}\nlayers:\n"
        "  - conv: {depth: 2, kernel: 3, padding: same}\n    name: c\n"
        "  - batchnorm:\n    name: bn\n    when: use_bn\n"
        "  - relu:\n    from: bn\n"
    )
    plan = archspec.loads(text).plan()
    assert [(n.name, n.inputs) for n in plan] == [("c", ("input",)), ("relu1", ("c",))]


# ---------------------------------------------------------------- output


def test_output_naming_an_unknown_layer() -> None:
    text = "input: [1, 8, 8]\nlayers:\n  - relu:\n    name: act\noutput: akt\n"
    one_error(
        text,
        r"^s\.yaml:5:9: output: output names 'akt', which is not a layer here — "
        r"did you mean 'act'\?$",
    )


def test_a_spec_has_exactly_one_output() -> None:
    text = "input: [1, 8, 8]\nlayers:\n  - relu:\n    name: a\n  - tanh:\n    name: b\n"
    text += "output: [a, b]\n"
    one_error(
        text,
        r"^s\.yaml:7:9: output: `output:` names one layer; received a list of 2 names — "
        r"to return several, write `outputs: \[a, b\]` instead$",
    )


def test_output_may_name_an_earlier_layer_when_nothing_is_left_dangling() -> None:
    text = "input: [1, 8, 8]\nlayers:\n  - relu:\n    name: a\n  - tanh:\n    from: input\n"
    one_error(
        text + "output: a\n",
        r"^s\.yaml:5:5: layers\[1\]: layer 'tanh1' never reaches the output",
    )


def test_output_input_means_no_layers_run() -> None:
    text = "input: [1, 8, 8]\nlayers: [relu]\noutput: input\n"
    assert errors(text)[0].startswith("s.yaml:2:9: layers: the network has no layers that run — ")


# ---------------------------------------------------------------- extends

BASE = """\
name: base
vars: {width: 16}
input: [1, 8, 8]
layers:
  - conv: {depth: width, kernel: 3, padding: same}
  - relu
  - flatten
  - dense: 10
"""


def conv_dense_params(width: int) -> int:
    conv = 1 * width * 3 * 3 + width  # in·out·k·k + bias
    dense = width * 8 * 8 * 10 + 10
    return conv + dense


def test_variable_override_through_extends_changes_the_parameter_count(tmp_path: Path) -> None:
    (tmp_path / "base.yaml").write_text(BASE)
    (tmp_path / "wide.yaml").write_text("extends: base.yaml\nname: wide\nvars: {width: 32}\n")
    base = archspec.load(tmp_path / "base.yaml")
    wide = archspec.load(tmp_path / "wide.yaml")
    assert base.plan().total_params == conv_dense_params(16) == 10_410
    assert wide.plan().total_params == conv_dense_params(32) == 20_810
    assert wide.name == "wide"
    assert wide.plan().node("conv1").shape == (32, 8, 8)


def test_extends_from_a_subfolder(tmp_path: Path) -> None:
    (tmp_path / "base.yaml").write_text(BASE)
    (tmp_path / "variants").mkdir()
    (tmp_path / "variants" / "narrow.yaml").write_text("extends: ../base.yaml\nvars: {width: 4}\n")
    assert archspec.load(tmp_path / "variants" / "narrow.yaml").plan().total_params == (
        conv_dense_params(4)
    )


def test_an_error_in_the_parent_is_located_in_the_parent(tmp_path: Path) -> None:
    (tmp_path / "base.yaml").write_text(BASE)
    (tmp_path / "zero.yaml").write_text("extends: base.yaml\nvars: {width: 0}\n")
    with pytest.raises(
        SpecError,
        match=rf"^{re.escape(str(tmp_path / 'base.yaml'))}:5:19: layers\[0\]\.conv\.depth: "
        r"must be greater than 0; received 0",
    ):
        archspec.load(tmp_path / "zero.yaml")


def test_extends_cycle(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text("extends: b.yaml\n")
    (tmp_path / "b.yaml").write_text("extends: a.yaml\ninput: [4]\nlayers: [relu]\n")
    with pytest.raises(
        SpecError,
        match=rf"^{re.escape(str(tmp_path / 'b.yaml'))}:1:10: extends: extends makes a cycle: "
        r"a\.yaml → b\.yaml → a\.yaml — remove one of the extends$",
    ):
        archspec.load(tmp_path / "a.yaml")


def test_extends_itself(tmp_path: Path) -> None:
    (tmp_path / "me.yaml").write_text("extends: me.yaml\n")
    with pytest.raises(SpecError, match=r"me\.yaml:1:10: extends: extends makes a cycle: me\.yaml"):
        archspec.load(tmp_path / "me.yaml")


def test_extends_missing_parent(tmp_path: Path) -> None:
    (tmp_path / "orphan.yaml").write_text("name: orphan\nextends: nothere.yaml\n")
    with pytest.raises(
        SpecError,
        match=rf"^{re.escape(str(tmp_path / 'orphan.yaml'))}:2:10: extends: extends names "
        r"'nothere\.yaml', which does not exist \(looked at .*\) — "
        r"give a path relative to this spec$",
    ):
        archspec.load(tmp_path / "orphan.yaml")


def test_extends_must_be_a_path(tmp_path: Path) -> None:
    (tmp_path / "bad.yaml").write_text("extends: [a.yaml, b.yaml]\n")
    with pytest.raises(SpecError, match=r"bad\.yaml:1:10: extends: extends must be a file path — "):
        archspec.load(tmp_path / "bad.yaml")


def test_extends_in_text_has_no_folder() -> None:
    with pytest.raises(
        SpecError,
        match=r"^s\.yaml:1:10: extends: extends needs the spec to be a file \(its path is relative "
        r"to it\) — save the spec and load it with archspec\.load\(path\)$",
    ):
        archspec.loads("extends: base.yaml\ninput: [4]\nlayers: [relu]\n", "s.yaml")


def test_a_block_with_several_required_arguments_needs_a_mapping() -> None:
    block = BLOCK.replace("stride: 1", "stride: ~")
    one_error(
        f"input: [1, 8, 8]\n{block}layers:\n  - unit: 6\n",
        r"^s\.yaml:9:11: layers\[0\]\.unit: block 'unit' takes arguments depth, stride; write them "
        r"as a mapping — e\.g\. `unit: \{\.\.\.\}`$",
    )


def test_the_short_form_sets_the_only_required_argument() -> None:
    plan = archspec.loads(f"input: [1, 8, 8]\n{BLOCK}layers:\n  - unit: 6\n").plan()
    assert plan.nodes[0].shape == (6, 8, 8)


@pytest.mark.parametrize("name", ["half", "float", "input", "train"])
def test_torch_attribute_names_are_fine_as_arguments_and_variables(name: str) -> None:
    text = (
        f"input: [1, 8, 8]\nvars: {{{name}: 3}}\nblocks:\n  unit:\n    args: {{{name}: ~}}\n"
        f"    layers:\n      - conv: {{depth: {name}, kernel: 1}}\nlayers:\n  - unit: {name} + 1\n"
    )
    assert archspec.loads(text).plan().nodes[0].shape == (4, 8, 8)


def test_a_broken_block_mapping_is_not_also_told_to_be_a_list() -> None:
    text = (
        "input: [4]\nblocks:\n  unit: {args: {a: 1}, layers: [relu], outputs: x}\nlayers: [unit]\n"
    )
    one_error(text, r"^s\.yaml:3:40: blocks\.unit\.outputs: unknown key 'outputs'")


def test_the_unknown_key_message_lists_each_key_once() -> None:
    one_error(
        "input: [1, 8, 8]\nlayers:\n  - conv: {depth: 2, kernel: 1, xyz: 3}\n",
        r"allowed keys: depth, filters, kernel, stride, padding, dilation, groups, bias, "
        r"padding_mode$",
    )


def test_broadcasting_checks_every_input_against_all_before_it() -> None:
    """Found by test_differential after broadcasting landed: [1] + [3] + [2] passed, since
    each input was compared with input 0 only (size 1 there lets anything through)."""
    spec = """
input: [2, 4]
layers:
  - mean: {axes: [1], keepdims: true}
    name: a
  - slice: {axis: 1, start: 1}
    from: input
    name: b
  - add:
    from: [a, input, b]
"""
    with pytest.raises(SpecError, match=r"inputs 0–1 broadcast to 2×4 and input 2 is 2×3"):
        archspec.loads(spec).plan()
