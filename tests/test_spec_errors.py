"""Located spec errors: every error class with its exact ``file:line:col``."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

import archspec
from archspec.errors import SpecError

ROOT = Path(__file__).resolve().parents[1]


def one_error(text: str, pattern: str) -> SpecError:
    """Loading ``text`` fails with exactly one problem, rendered to match ``pattern``."""
    with pytest.raises(SpecError, match=pattern) as info:
        archspec.loads(text, "s.yaml")
    assert len(info.value.problems) == 1, info.value.render()
    return info.value


def layers(*lines: str, input: str = "[1, 28, 28]") -> str:
    return f"input: {input}\nlayers:\n" + "".join(f"  {line}\n" for line in lines)


# ---------------------------------------------------------------- keys


def test_unknown_layer_key_suggests_the_known_one_and_no_missing_key() -> None:
    # `kernal` is one mistake: "missing 'kernel'" would be the same mistake again
    err = one_error(
        layers("- conv: {depth: 32, kernal: 5}"),
        r"^s\.yaml:3:23: layers\[0\]\.conv\.kernal: unknown key 'kernal' — "
        r"did you mean 'kernel'\?$",
    )
    assert err.problems[0].path == ("layers", 0, "conv", "kernal")


def test_unknown_top_level_key_and_no_missing_key() -> None:
    one_error(
        "input: [1, 8]\nlayer:\n  - relu\n",
        r"^s\.yaml:2:1: layer: unknown key 'layer' — did you mean 'layers'\?$",
    )


def test_unknown_key_far_from_any_lists_the_allowed_keys() -> None:
    one_error(
        layers("- dense: {units: 10, colour: red}", input="[4]"),
        r"^s\.yaml:3:24: layers\[0\]\.dense\.colour: unknown key 'colour' — allowed keys: units, ",
    )


def test_unknown_key_in_a_train_union_member() -> None:
    text = layers("- dense: 2", input="[4]") + (
        "train:\n  data: {dataset: mnist}\n  optimizer: {name: sgd, momentm: 0.9}\n"
    )
    one_error(
        text,
        r"^s\.yaml:6:26: train\.optimizer\.momentm: unknown key 'momentm' — "
        r"did you mean 'momentum'\?$",
    )


def test_missing_key_is_located_at_its_mapping() -> None:
    one_error(
        layers("- relu", "- conv: {depth: 32, padding: same}"),
        r"^s\.yaml:4:11: layers\[1\]\.conv\.kernel: missing required key 'kernel' — "
        r"add `kernel: \.\.\.`$",
    )


def test_missing_input() -> None:
    one_error("layers: [relu]\n", r"^s\.yaml:1:1: input: missing required key 'input' — add")


# ---------------------------------------------------------------- types and values


@pytest.mark.parametrize(
    ("line", "pattern"),
    [
        (
            "- conv: {depth: many, kernel: 3}",
            r"^s\.yaml:3:19: layers\[0\]\.conv\.depth: must be a valid integer.*; received 'many'",
        ),
        (
            "- conv: {depth: 8.5, kernel: 3}",
            r"^s\.yaml:3:19: layers\[0\]\.conv\.depth: .*received 8\.5 — use a whole number",
        ),
        (
            "- conv: {depth: true, kernel: 3}",
            r"^s\.yaml:3:19: layers\[0\]\.conv\.depth: must be a valid integer; received True",
        ),
        (
            "- conv: 5",
            r"^s\.yaml:3:11: layers\[0\]\.conv: must be a mapping of keys and values; received 5 — "
            r"write \{depth: \.\.\., kernel: \.\.\.\}$",
        ),
        (
            "- relu: 3",
            r"^s\.yaml:3:11: layers\[0\]\.relu: takes no parameters; received 3 — "
            r"write the kind alone",
        ),
        (
            "- 7",
            r"^s\.yaml:3:5: layers\[0\]: a layer is a kind name \(`- relu`\) or a one-key mapping "
            r"\(`- dense: 10`\); received int 7 — write the layer as",
        ),
    ],
)
def test_wrong_type(line: str, pattern: str) -> None:
    one_error(layers(line), pattern)


@pytest.mark.parametrize(
    ("line", "pattern"),
    [
        (
            "- dense: 0",
            r"^s\.yaml:4:12: layers\[1\]\.dense: must be greater than 0; received 0 — use a larger",
        ),
        (
            "- dense: {units: -3}",
            r"^s\.yaml:4:20: layers\[1\]\.dense\.units: must be greater than 0; received -3 — ",
        ),
        (
            "- dropout: 1.5",
            r"^s\.yaml:4:14: layers\[1\]\.dropout: must be less than 1; received 1\.5 — "
            r"use a smaller",
        ),
        (
            "- gelu: tahn",
            r"^s\.yaml:4:11: layers\[1\]\.gelu: must be 'none' or 'tanh'; received 'tahn' — "
            r"did you mean 'tanh'\?$",
        ),
        (
            "- pool: {size: 2, stride: [1, 0]}",  # a list item is located and indexed
            r"^s\.yaml:4:33: layers\[1\]\.pool\.stride\[1\]: must be greater than 0; received 0",
        ),
        (
            "- pool: {size: 2, stride: 0}",  # a scalar is not called stride[0]
            r"^s\.yaml:4:29: layers\[1\]\.pool\.stride: must be greater than 0; received 0 — ",
        ),
    ],
)
def test_bad_value(line: str, pattern: str) -> None:
    one_error(layers("- flatten", line), pattern)


def test_misspelt_padding_word() -> None:
    one_error(
        layers("- conv: {depth: 8, kernel: 3, padding: smae}"),
        r"^s\.yaml:3:42: layers\[0\]\.conv\.padding: padding must be a non-negative int, a list of "
        r"them \(one per spatial axis\), 'same', 'valid' or 'causal'; received 'smae' — "
        r"did you mean 'same'\?$",
    )


def test_input_shape_errors() -> None:
    one_error(
        "input: [0, 28, 28]\nlayers: [relu]\n",
        r"^s\.yaml:1:9: input\[0\]: must be greater than 0; received 0 — use a larger value$",
    )
    one_error(
        "input: [1, 2, 3, 4, 5]\nlayers: [relu]\n",
        r"^s\.yaml:1:8: input: must have at most 4 items; received 5 — remove items$",
    )
    one_error(
        "input: [1, 8]\nlayers: []\n",
        r"^s\.yaml:2:9: layers: must have at least 1 item; received 0 — add items$",
    )


def test_not_a_mapping() -> None:
    one_error(
        "- relu\n- flatten\n", r"^s\.yaml:1:1: a spec is a mapping with `input:` and `layers:`"
    )


# ---------------------------------------------------------------- kinds


def test_unknown_kind_suggests_a_close_one() -> None:
    one_error(
        layers("- cnov: {depth: 8, kernel: 3}"),
        r"^s\.yaml:3:5: layers\[0\]\.cnov: unknown layer kind 'cnov' — did you mean 'conv'\?$",
    )


def test_unknown_kind_far_from_any_lists_the_kinds() -> None:
    one_error(
        layers("- wavelets"),
        r"^s\.yaml:3:5: layers\[0\]\.wavelets: unknown layer kind 'wavelets' — "
        r"known kinds: conv, ",
    )


def test_two_kinds_in_one_item_points_at_the_second() -> None:
    one_error(
        layers("- conv: {depth: 8, kernel: 3}", "  relu:"),
        r"^s\.yaml:4:5: layers\[0\]\.relu: one list item holds 2 layers: conv, relu — "
        r"give each layer its own `- ` item$",
    )


def test_item_with_no_kind() -> None:
    one_error(
        layers("- name: x"),
        r"^s\.yaml:3:5: layers\[0\]: this layer has no kind, only name/from/repeat/when keys — ",
    )


def test_aliases_and_full_forms_validate() -> None:
    text = layers(
        "- convolution: {filters: 4, kernel: [3, 3], padding: valid}",
        "- batch_norm",
        "- pooling: {kind: max, size: [2, 2], stride: 2}",
        "- linear: {features: 10}",
        input="[1, 8, 8]",
    ).replace("- linear", "- flatten\n  - linear")
    plan = archspec.loads(text).plan()
    assert [node.kind for node in plan] == ["conv", "batchnorm", "pool", "flatten", "dense"]
    assert plan.output_shape == (10,)


# ---------------------------------------------------------------- impossible shapes


def test_pool_window_larger_than_its_input() -> None:
    err = one_error(
        layers("- conv: {depth: 8, kernel: 3}", "- pool: {kind: max, size: 4}", input="[1, 5, 5]"),
        r"^s\.yaml:4:29: layers\[1\]\.pool\.size: window 4 is larger than its input 3×3 "
        r"\(\+0 padding\) along axis 0 — remove the pool or pad the previous conv \(",
    )
    assert err.problems[0].notes[0] == "pool1: input 8×3×3"


def test_strides_that_leave_zero_outputs() -> None:
    # 28 → 13 → 6 → 2: the fourth 3×3 stride-2 conv has (2 - 3) // 2 + 1 = 0 outputs
    conv = "- conv: {depth: 4, kernel: 3, stride: 2}"
    one_error(
        layers(conv, conv, conv, conv),
        r"^s\.yaml:6:30: layers\[3\]\.conv\.kernel: the kernel spans 3 but the input is only 2 "
        r"\(\+0 padding\) along axis 0: \(2 \+ 0 - 3\) // 2 \+ 1 = 0 outputs — "
        r"use a smaller kernel",
    )


def test_dilation_counts_in_the_kernel_span() -> None:
    one_error(
        layers("- conv: {depth: 4, kernel: 3, dilation: 4}", input="[1, 8]"),
        r"^s\.yaml:3:30: layers\[0\]\.conv\.kernel: the kernel spans 9 but the input is only 8 ",
    )


def test_groups_must_divide_the_channels() -> None:
    one_error(
        layers("- conv: {depth: 8, kernel: 3, groups: 2}", input="[3, 8, 8]"),
        r"^s\.yaml:3:41: layers\[0\]\.conv\.groups: groups must divide the input channels: "
        r"3 % 2 = 1 — use a divisor of 3 such as 1 or 3",
    )


def test_groups_must_divide_the_depth() -> None:
    one_error(
        layers("- conv: {depth: 6, kernel: 3, groups: 4}", input="[8, 8, 8]"),
        r"^s\.yaml:3:41: layers\[0\]\.conv\.groups: groups must divide depth: 6 % 4 = 2 — "
        r"make depth a multiple of 4",
    )


def test_dense_after_an_unflattened_tensor_hints_flatten() -> None:
    one_error(
        layers("- conv: {depth: 64, kernel: 5, padding: same}", "- dense: 10"),
        r"^s\.yaml:4:12: layers\[1\]\.dense: dense needs a flat input, but receives 64×28×28 — "
        r"insert `- flatten` before it \(50,176 features\), or `- global_pool`",
    )


@pytest.mark.parametrize(
    ("line", "pattern"),
    [
        (
            "- conv: {depth: 4, kernel: [3, 3, 3]}",
            r"^s\.yaml:3:30: layers\[0\]\.conv\.kernel: kernel has 3 values but the input has 2 "
            r"spatial dimensions — give one value, or exactly 2",
        ),
        (
            "- conv: {depth: 4, kernel: 3, stride: [1, 2, 1]}",
            r"^s\.yaml:3:41: layers\[0\]\.conv\.stride: stride has 3 values but the input has 2 ",
        ),
        (
            "- pool: {size: [2, 2, 2]}",
            r"^s\.yaml:3:18: layers\[0\]\.pool\.size: size has 3 values but the input has 2 ",
        ),
    ],
)
def test_per_dim_list_must_match_the_rank(line: str, pattern: str) -> None:
    one_error(layers(line), pattern)


def test_lp_pool_has_no_padding() -> None:
    one_error(
        layers("- pool: {kind: lp, norm: 2, size: 2, padding: 1}"),
        r"^s\.yaml:3:49: layers\[0\]\.pool\.padding: lp pooling has no padding \(torch's LPPool "
        r"pads nothing\) — remove padding, or pad the previous conv",
    )


def test_dilation_only_for_max_pool() -> None:
    one_error(
        layers("- pool: {kind: avg, size: 2, dilation: 2}"),
        r"^s\.yaml:3:42: layers\[0\]\.pool\.dilation: dilation applies only to max pooling, not avg"
        r" — remove dilation or use kind: max",
    )


def test_pool_padding_over_half_the_window() -> None:
    one_error(
        layers("- pool: {size: 2, padding: 2}"),
        r"^s\.yaml:3:30: layers\[0\]\.pool\.padding: padding 2 is more than half the window 2 — "
        r"use padding ≤ 1",
    )


def test_flat_vector_into_a_conv() -> None:
    one_error(
        layers("- conv: {depth: 4, kernel: 3}", input="[16]"),
        r"^s\.yaml:3:11: layers\[0\]\.conv: conv needs a \[channels, length…\] input, but receives "
        r"a flat vector of shape \[16\]",
    )


@pytest.mark.parametrize(
    ("size", "stride", "kernel", "out"),
    [(28, 2, 3, 14), (28, 3, 3, 10), (7, 2, 5, 4), (5, 4, 1, 2)],
)
def test_same_padding_with_stride_is_keras_style(
    size: int, stride: int, kernel: int, out: int
) -> None:
    # archspec supports `same` with any stride: the output is ceil(size / stride)
    text = layers(
        f"- conv: {{depth: 2, kernel: {kernel}, stride: {stride}, padding: same}}",
        input=f"[1, {size}, {size}]",
    )
    assert archspec.loads(text).plan().output_shape == (2, out, out)
    assert out == -(-size // stride)


def test_a_failed_layer_hides_only_the_layers_after_it() -> None:
    # The first branch fails; the independent second branch is still checked.
    text = (
        "input: [1, 4, 4]\n"
        "layers:\n"
        "  - pool: 8\n"
        "    name: a\n"
        "  - conv: {depth: 2, kernel: 9}\n"
        "    from: input\n"
        "    name: b\n"
        "  - add:\n"
        "    from: [a, b]\n"
    )
    with pytest.raises(SpecError) as info:
        archspec.loads(text, "s.yaml")
    assert [line.split(": ", 2)[:2] for line in info.value.render().splitlines()] == [
        ["s.yaml:3:11", "layers[0].pool.size"],
        ["s.yaml:5:30", "layers[1].conv.kernel"],
    ]


# ---------------------------------------------------------------- train section


def train(body: str) -> str:
    return layers("- dense: 2", input="[4]") + "train:\n  data: {dataset: mnist}\n" + body


@pytest.mark.parametrize(
    ("body", "pattern"),
    [
        (
            "  optimizer: {name: adma, lr: 0.1}\n",
            r"^s\.yaml:6:14: train\.optimizer: needs a `name:` among 'adam', 'adamw' or 'sgd'; "
            r"received 'adma' — did you mean 'adam'\?$",
        ),
        (
            "  optimizer: sgdd\n",
            r"^s\.yaml:6:14: train\.optimizer: needs a `name:` among .*received 'sgdd' — "
            r"did you mean 'sgd'\?$",
        ),
        (
            "  optimizer: {lr: 0.1}\n",
            r"^s\.yaml:6:14: train\.optimizer: needs a `name:` among 'adam', 'adamw' or 'sgd' "
            r"— use",
        ),
        (
            "  batch_size: -5\n",
            r"^s\.yaml:6:15: train\.batch_size: must be greater than 0; received -5 — use a larger",
        ),
        (
            "  batch_size: 0.5\n",
            r"^s\.yaml:6:15: train\.batch_size: .*received 0\.5 — use a whole number",
        ),
        (
            "  device: gpu\n",
            r"^s\.yaml:6:11: train\.device: device must be auto, cpu, cuda, cuda:N or mps; "
            r"received 'gpu'",
        ),
        (
            "  batchsize: 8\n",
            r"^s\.yaml:6:3: train\.batchsize: unknown key 'batchsize' — "
            r"did you mean 'batch_size'\?$",
        ),
        (
            "  optimizer: {name: adam, lr: .inf}\n",
            r"^s\.yaml:6:31: train\.optimizer\.lr: must be a finite number; received inf — ",
        ),
        (
            "  schedule: {name: step}\n",
            r"^s\.yaml:6:13: train\.schedule\.every: missing required key 'every' — add",
        ),
        (
            "  epochs: 3\n  epochs: 4\n",
            r"^s\.yaml:7:3: train\.epochs: duplicate key 'epochs' \(first defined at line 6\)",
        ),
    ],
)
def test_train_section_errors(body: str, pattern: str) -> None:
    one_error(train(body), pattern)


def test_train_data_needs_a_source() -> None:
    one_error(
        layers("- dense: 2", input="[4]") + "train:\n  data: {val: 0.2}\n",
        r"^s\.yaml:5:9: train\.data: data needs `dataset:` \(mnist, fashion-mnist\) or `path:`",
    )


def test_train_union_value_reports_one_problem() -> None:
    one_error(
        layers("- dense: 2", input="[4]") + "train:\n  data: {dataset: mnist, val: 1.5}\n",
        r"^s\.yaml:5:31: train\.data\.val: must be less than 1; received 1\.5 — use a smaller",
    )


def test_train_that_is_not_a_mapping_reports_once() -> None:
    one_error(
        layers("- dense: 2", input="[4]") + "train: 5\n",
        r"^s\.yaml:4:8: train: must be a mapping of keys and values; received 5 — ",
    )


# ---------------------------------------------------------------- all at once

THREE_MISTAKES = """\
name: three-mistakes
input: [1, 28, 28]
layers:
  - conv: {depth: 32, kernal: 5, padding: same}
  - relu
  - pool: {kind: max, size: 2}
  - flatten
  - dense: 0
  - dropout: 0.5
  - dense: 10
train:
  data: {dataset: mnist}
  optimizer: {name: adma}
"""


def test_three_independent_mistakes_in_one_call() -> None:
    with pytest.raises(SpecError) as info:
        archspec.loads(THREE_MISTAKES, "s.yaml")
    assert [(str(p.location), p.message) for p in info.value.problems] == [
        ("s.yaml:4:23", "unknown key 'kernal'"),
        ("s.yaml:8:12", "must be greater than 0; received 0"),
        ("s.yaml:13:14", "needs a `name:` among 'adam', 'adamw' or 'sgd'; received 'adma'"),
    ]


def test_three_independent_mistakes_through_the_cli(tmp_path: Path) -> None:
    spec = tmp_path / "three.yaml"
    spec.write_text(THREE_MISTAKES)
    run = subprocess.run(
        [sys.executable, "-m", "archspec", "check", str(spec)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
    )
    assert run.returncode == 1
    assert run.stdout == ""
    located = [
        line
        for line in run.stderr.splitlines()
        if re.match(rf"^{re.escape(str(spec))}:\d+:\d+: ", line)
    ]
    assert len(located) == 3, run.stderr
    assert len(run.stderr.splitlines()) == 3
    assert "Traceback" not in run.stderr


def test_causal_padding_is_for_one_dimensional_inputs() -> None:
    text = "input: [3, 8, 8]\nlayers:\n  - conv: {depth: 4, kernel: 3, padding: causal}\n"
    with pytest.raises(SpecError) as caught:
        archspec.loads(text, "s.yaml")
    assert "padding: causal is for 1-D (temporal) inputs" in str(caught.value)
    ok = "input: [3, 20]\nlayers:\n  - conv: {depth: 4, kernel: 3, dilation: 4, padding: causal}\n"
    node = archspec.loads(ok).plan().nodes[0]
    assert node.shape == (4, 20)
    assert node.geometry.pads == ((8, 0),)  # type: ignore[union-attr]
