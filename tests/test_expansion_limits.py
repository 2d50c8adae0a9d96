"""Expansion limits that must limit exactly and in bounded time (issue 13, class 4), and the
"did you mean" search returning a value (issue 12, item 5)."""

from __future__ import annotations

import re
import time

import pytest

import archspec
from archspec.errors import SpecError, did_you_mean, listing
from archspec.language.graph import MAX_BLOCK_DEPTH


def render(text: str, **kwargs: int) -> str:
    with pytest.raises(SpecError) as info:
        archspec.loads(text, "n.yaml", **kwargs)
    return info.value.render()


def relus(n: int) -> str:
    return "input: [4]\nlayers:\n" + "  - relu\n" * n


@pytest.mark.parametrize("limit", [1, 10, 37])
def test_max_layers_accepts_exactly_that_many(limit: int) -> None:
    """Regression: the check ran before each entry, so --max-layers 10 accepted 11."""
    assert len(archspec.loads(relus(limit), "n.yaml", max_layers=limit).plan().nodes) == limit
    line = render(relus(limit + 1), max_layers=limit)
    assert re.fullmatch(
        rf"n\.yaml:{limit + 3}:5: layers\[{limit}\]: the network expands to more than "
        rf"{limit:,} layers — lower `repeat:` counts or raise the layer limit \(--max-layers\)",
        line,
    )


def test_max_layers_counts_repeats_exactly() -> None:
    text = "input: [4]\nlayers:\n  - relu:\n    repeat: 5\n  - relu:\n    repeat: 5\n"
    assert len(archspec.loads(text, "n.yaml", max_layers=10).plan().nodes) == 10
    assert "more than 9 layers" in render(text, max_layers=9)


def block_chain(depth: int) -> str:
    """Block b0 uses b1, which uses b2, … down to a block of one relu."""
    lines = ["input: [4]", "blocks:"]
    lines += [f"  b{i}: [b{i + 1}]" for i in range(depth - 1)]
    lines += [f"  b{depth - 1}: [relu]", "layers:", "  - b0"]
    return "\n".join(lines) + "\n"


def test_a_deep_chain_of_blocks_is_a_located_error_not_a_crash() -> None:
    """Regression: 400 blocks using one another hit Python's recursion limit (exit 3)."""
    started = time.process_time()
    line = render(block_chain(400))
    assert time.process_time() - started < 10.0
    assert line.startswith(f"n.yaml:{MAX_BLOCK_DEPTH + 2}:9: blocks.b{MAX_BLOCK_DEPTH - 1}[0].b")
    assert f"blocks nest more than {MAX_BLOCK_DEPTH} deep here — " in line.splitlines()[0]


def test_blocks_nested_up_to_the_limit_expand() -> None:
    spec = archspec.loads(block_chain(MAX_BLOCK_DEPTH), "n.yaml")
    (node,) = spec.plan().nodes
    assert node.name == ".".join(f"b{i}1" for i in range(MAX_BLOCK_DEPTH)) + ".relu1"


def test_many_misspelt_names_are_checked_quickly() -> None:
    """Regression: 6,000 misspelt `from:` names among 6,000 layers took 120 s (the "did you
    mean" search compared every pair). Each still gets its suggestion."""
    n = 6000
    lines = ["input: [4]", "layers:"]
    for i in range(n):
        lines += [f"  - relu:\n    name: layer{i}"]
    lines += [f"  - add:\n    from: [layer{n - 1}, lyaer{i}]" for i in range(n)]
    started = time.process_time()  # CPU time: the test machine may be busy
    text = render("\n".join(lines) + "\n")
    assert time.process_time() - started < 20.0
    problems = text.splitlines()
    assert len(problems) == n
    assert "from names 'lyaer0', which is not a layer here — did you mean 'layer0'?" in problems[0]
    assert problems[-1].endswith(f"did you mean 'layer{n - 1}'?")


def test_did_you_mean_returns_the_name_or_none() -> None:
    assert did_you_mean("cnov", ["conv", "pool"]) == "conv"
    assert did_you_mean("qqqq", ["conv", "pool"]) is None
    many = [f"stage{i}_conv" for i in range(1000)]
    assert did_you_mean("stage517_cnov", many) == "stage517_conv"
    assert did_you_mean("stage517conv", many) == "stage517_conv"
    assert did_you_mean("x" * 10_000, many) is None


def test_a_long_list_of_names_is_cut_in_a_hint() -> None:
    assert listing(["a", "b"]) == "a, b"
    names = [f"n{i}" for i in range(100)]
    assert listing(names, limit=3) == "n0, n1, n2, … (100 in all)"
