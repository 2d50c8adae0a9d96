"""Layers with several outputs (``split``, ``chunk``): ``outputs: [a, b]`` names them,
``from: a`` reads one. Each mistake is one located line; the compiled network picks the
right piece of the tuple (compared with plain torch)."""

from __future__ import annotations

import pytest
import torch

import archspec
from archspec.compile.verify import verify
from archspec.errors import SpecError
from archspec.outputs import report


def one_error(text: str, pattern: str) -> str:
    with pytest.raises(SpecError, match=pattern) as info:
        archspec.loads(text, "s.yaml")
    assert len(info.value.problems) == 1, info.value.render()
    return info.value.render()


HEAD = "input: [8, 6, 6]\nlayers:\n"
SPLIT = "  - split: {sizes: [3, 5]}\n    outputs: [left, right]\n"
UNIT = (
    "input: [8, 6, 6]\n"
    "layers:\n"
    "  - chunk: 2\n"
    "    outputs: [x1, x2]\n"
    "  - conv: {depth: 4, kernel: 3, padding: same}\n"
    "    from: x2\n"
    "    name: b2\n"
    "  - concat:\n"
    "    from: [x1, b2]\n"
    "  - channel_shuffle: 2\n"
)


# ---------------------------------------------------------------- errors, located
def test_unknown_output_name_suggests_the_close_one() -> None:
    one_error(
        HEAD + SPLIT + "  - relu:\n    from: lefft\n",
        r"^s\.yaml:6:11: layers\[1\]\.from: from names 'lefft', which is not a layer here — "
        r"did you mean 'left'\?$",
    )


def test_outputs_on_a_kind_with_one_output() -> None:
    one_error(
        HEAD + "  - relu:\n    outputs: [a, b]\n",
        r"^s\.yaml:4:5: layers\[0\]\.outputs: relu has one output; `outputs:` names the "
        r"outputs of a layer with several \(split, chunk\) — remove `outputs:`",
    )


def test_outputs_on_a_block() -> None:
    text = "input: [8, 6, 6]\nblocks:\n  b: [relu]\nlayers:\n  - b:\n    outputs: [x, y]\n"
    one_error(text, r"^s\.yaml:6:5: layers\[0\]\.outputs: block 'b' has one output")


def test_sizes_must_add_up_to_the_axis() -> None:
    one_error(
        HEAD + "  - split: {sizes: [3, 4]}\n    outputs: [a, b]\n  - add:\n    from: [a, b]\n",
        r"^s\.yaml:3:20: layers\[0\]\.split\.sizes: split sizes \[3, 4\] add up to 7, but "
        r"axis 0 of a grid 8×6×6 has 8 — make the sizes add up to 8",
    )


def test_chunk_that_torch_cuts_into_fewer_parts() -> None:
    one_error(
        "input: [5, 6, 6]\nlayers:\n  - chunk: 4\n    outputs: [a, b, c, d]\n"
        "  - concat:\n    from: [a, b, c, d]\n",
        r"^s\.yaml:3:12: layers\[0\]\.chunk\.parts: chunk cannot cut axis 0 of a grid 5×6×6 "
        r"into 4 parts: torch\.chunk makes 3 \(2, 2, 1\) — use parts that divide 5",
    )


def test_reading_the_split_itself_names_its_outputs() -> None:
    one_error(
        HEAD + "  - split: {sizes: [4, 4]}\n    name: sp\n    outputs: [a, b]\n"
        "  - relu:\n    from: sp\n",
        r"^s\.yaml:7:11: layers\[1\]\.from: from names 'sp', which has 2 outputs \(a, b\) — "
        r"say which one: `from: a`$",
    )


def test_the_layer_after_a_split_must_say_which_output() -> None:
    one_error(
        HEAD + SPLIT + "  - relu\n",
        r"^s\.yaml:5:5: layers\[1\]: the layer before, 'split1', has 2 outputs \(left, right\)"
        r" — say which one: `from: left`$",
    )


def test_a_network_ending_in_a_split_must_name_its_output() -> None:
    one_error(
        HEAD + SPLIT,
        r"^s\.yaml:3:5: layers\[0\]: the last layer, 'split1', has 2 outputs \(left, right\), "
        r"and a network returns one — name the one it returns: `output: left`$",
    )


def test_several_outputs_need_names() -> None:
    one_error(
        HEAD + "  - split: {sizes: [4, 4]}\n",
        r"^s\.yaml:3:5: layers\[0\]\.split: split has several outputs, but they have no names",
    )


def test_as_many_names_as_outputs() -> None:
    text = HEAD + "  - split: [2, 2, 4]\n    outputs: [a, b]\n    name: s\n  - relu:\n    from: a\n"
    one_error(
        text,
        r"^s\.yaml:4:14: layers\[0\]\.outputs: split makes 3 outputs here, but `outputs:` "
        r"names 2 — name 3",
    )


def test_a_layer_with_several_outputs_is_not_repeated() -> None:
    one_error(
        HEAD + "  - chunk: 2\n    outputs: [a, b]\n    repeat: 2\n",
        r"^s\.yaml:5:13: layers\[0\]\.repeat: a layer with several outputs cannot be repeated",
    )


@pytest.mark.parametrize(
    ("names", "pattern"),
    [
        ("[a, a]", r"outputs names 'a' twice"),
        ("[a, forward]", r"'forward' is reserved"),
        ("[a, 'b-c']", r"an output name is a word of letters, digits and _"),
        ("5", r"outputs must be a list of names; received 5"),
    ],
)
def test_output_names(names: str, pattern: str) -> None:
    one_error(HEAD + f"  - chunk: 2\n    outputs: {names}\n", r"^s\.yaml:4:\d+: .*" + pattern)


def test_an_output_name_taken_by_a_layer() -> None:
    text = HEAD + "  - relu:\n    name: a\n  - chunk: 2\n    outputs: [a, b]\n"
    one_error(text, r"^s\.yaml:6:15: layers\[1\]\.outputs\[0\]: the name 'a' is already used")


# ---------------------------------------------------------------- meaning
def test_plan_has_each_outputs_shape_and_what_each_reader_picks() -> None:
    plan = archspec.loads(HEAD + SPLIT + "  - relu:\n    from: right\n").plan()
    split, relu = plan.nodes
    assert split.shapes == ((3, 6, 6), (5, 6, 6))
    assert [(o.name, o.layout) for o in split.outputs] == [("left", "grid"), ("right", "grid")]
    assert relu.inputs == ("split1",) and relu.ports == (1,) and relu.shape == (5, 6, 6)
    assert plan.output_shape == (5, 6, 6)
    assert "left 3×6×6 · right 5×6×6" in report.plain_table(plan)
    assert plan.to_dict()["layers"][0]["outputs"] == {"left": [3, 6, 6], "right": [5, 6, 6]}


def test_output_may_name_one_output() -> None:
    spec = archspec.loads("input: [8]\noutput: b\nlayers:\n  - chunk: 2\n    outputs: [a, b]\n")
    plan = spec.plan()
    assert plan.output_port == 1 and plan.output_shape == (4,)
    x = torch.randn(3, 8)
    assert torch.equal(spec.build()(x), x[:, 4:])


def test_a_skipped_split_passes_its_input_to_each_name() -> None:
    text = HEAD + "  - chunk: 2\n    outputs: [a, b]\n    when: false\n  - add:\n    from: [a, b]\n"
    plan = archspec.loads(text).plan()
    assert [n.kind for n in plan.nodes] == ["add"] and plan.nodes[0].inputs == ("input", "input")


def test_outputs_inside_a_repeated_block() -> None:
    text = (
        "input: [8, 6, 6]\n"
        "blocks:\n"
        "  unit:\n"
        "    - chunk: 2\n"
        "      outputs: [x1, x2]\n"
        "    - relu:\n"
        "      from: x2\n"
        "      name: r\n"
        "    - concat:\n"
        "      from: [x1, r]\n"
        "layers:\n"
        "  - unit:\n"
        "    name: u\n"
        "    repeat: 3\n"
    )
    plan = archspec.loads(text).plan()
    assert [n.name for n in plan.nodes][:3] == ["u.0.chunk1", "u.0.r", "u.0.concat1"]
    assert plan.node("u.2.concat1").inputs == ("u.2.chunk1", "u.2.r")
    assert plan.node("u.2.concat1").ports == ()  # x1 is output 0
    assert plan.node("u.2.r").ports == (1,)


def test_compiled_unit_equals_plain_torch() -> None:
    """ShuffleNet's unit: chunk, one half through a conv, concat, shuffle."""
    spec = archspec.loads(UNIT)
    plan = spec.plan()
    verify(plan)
    network = spec.build().eval()
    torch.manual_seed(0)
    x = torch.randn(2, 8, 6, 6)
    conv = network.get_submodule("b2")
    with torch.no_grad():
        x1, x2 = x.chunk(2, dim=1)
        expected = torch.nn.functional.channel_shuffle(torch.cat([x1, conv(x2)], dim=1), 2)
        assert torch.equal(network(x), expected)
    assert network.trace(x)["chunk1"] == ((4, 6, 6), (4, 6, 6))


def test_diff_sees_a_reader_switch_outputs() -> None:
    """Reading x1 instead of x2 is a change, although the producer is the same layer."""
    from archspec.outputs import diff

    switched = UNIT.replace("from: x2", "from: x1").replace("[x1, b2]", "[x2, b2]")
    d = diff.diff_plans(archspec.loads(UNIT).plan(), archspec.loads(switched).plan())
    changed = {row.new.name: row.changed for row in d.layers if row.new and row.changed}
    assert changed == {"b2": ("inputs",), "concat1": ("inputs",)}
