"""Expansion limits that must limit exactly and in bounded time (issue 13, class 4), and the
"did you mean" search returning a value (issue 12, item 5)."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest
import yaml

import archspec
from archspec.errors import Names, SpecError, bounded_suggestions, did_you_mean, listing
from archspec.language.graph import MAX_BLOCK_DEPTH, Expander


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


def test_blocks_past_the_depth_limit_with_fan_out_fail_once() -> None:
    """Found by the fuzzer under load (a 10 s hang): 100 blocks in a chain whose lowest 11
    each use the one below three times failed at all 3^11 leaves, 6 s of the same error.
    After the first, no block is placed again: one located problem."""
    blocks = {"b0": {"layers": ["relu"]}}
    for i in range(1, MAX_BLOCK_DEPTH + 1):
        blocks[f"b{i}"] = {"layers": [f"b{i - 1}"] * (3 if i < 12 else 1)}
    text = yaml.safe_dump({"input": [4], "blocks": blocks, "layers": [f"b{MAX_BLOCK_DEPTH}"]})
    started = time.process_time()
    with pytest.raises(SpecError) as caught:
        archspec.loads(text, "n.yaml").plan()
    assert time.process_time() - started < 10.0
    (problem,) = caught.value.problems
    assert f"blocks nest more than {MAX_BLOCK_DEPTH} deep here" in problem.message


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
    text = render("\n".join(lines) + "\n", max_layers=2 * n)
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


def test_suggestions_share_a_bounded_budget() -> None:
    """Inside one load, "did you mean" searches are paid for and stop when the budget is
    spent (issue #13: 70,000 unknown kinds took 21 s); a word asked again is remembered."""
    kinds = [f"kind{i}" for i in range(100)]
    with bounded_suggestions(work=1_000):
        names = Names(kinds)
        assert [names.closest(f"kidn{i}") for i in range(10)] == [f"kind{i}" for i in range(10)]
        assert names.closest("kidn11") is None  # 11 searches of 100 names: spent
        assert names.closest("kidn3") == "kind3"  # asked before: free
        assert did_you_mean("kind1", kinds) is None
    assert Names(kinds).closest("kidn11") == "kind11"  # outside a load: unbounded


def test_one_index_serves_every_misspelt_variable() -> None:
    """Regression: each misspelt variable built a fresh index of every variable (300 among
    10,000 took 18 s). Every problem stays located; the first ones keep their suggestion."""
    n = 3000
    lines = ["input: [4]", "vars:", *(f"  width{i}: 3" for i in range(n)), "layers:"]
    lines += [f"  - dense: wdth{i} + 1" for i in range(n)]
    started = time.process_time()
    problems = render("\n".join(lines) + "\n").splitlines()
    assert time.process_time() - started < 20.0
    assert len(problems) == n
    assert all(
        re.match(rf"n\.yaml:{n + 4 + i}:\d+: layers\[{i}\]\.dense: ", p)
        for i, p in enumerate(problems)
    )
    assert "did you mean 'width0'?" in problems[0]


def test_unknown_kinds_are_reported_in_bounded_time() -> None:
    """A broken entry places no layer, so the layer limit does not bound them: 20,000
    distinct unknown kinds, each located; suggestions stop when the budget is spent."""
    n = 20_000
    started = time.process_time()
    problems = render("input: [4]\nlayers:\n" + "".join(f"  - relx{i}\n" for i in range(n)))
    assert time.process_time() - started < 20.0
    lines = problems.splitlines()
    assert len(lines) == n
    assert "unknown layer kind 'relx0' — did you mean 'relu'?" in lines[0]
    assert "unknown layer kind" in lines[-1] and "known kinds: " in lines[-1]


@pytest.mark.parametrize(
    ("layers", "at"),
    [
        ("  - relu\n  - {relu: null, repeat: 10000}\n", "n.yaml:6:5: layers[1]: "),
        ("  - relu\n  - {ten: null, repeat: 1000}\n", "n.yaml:6:5: layers[1]: "),
    ],
    ids=["layer", "block"],
)
def test_a_repeat_past_the_limit_is_refused_after_one_instance(
    layers: str, at: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`repeat:` that cannot fit is refused, at its entry, once one instance shows its size,
    not after expanding up to the limit (issue #13: a spec past the limit costs little)."""
    asked: list[object] = []
    room = Expander._room

    def counting(self: Expander, path: object) -> bool:
        asked.append(path)
        return room(self, path)

    monkeypatch.setattr(Expander, "_room", counting)
    text = "input: [4]\nblocks:\n  ten: [{relu: null, repeat: 10}]\nlayers:\n" + layers
    line = render(text, max_layers=10_000)
    assert line.startswith(at) and "the network expands to more than 10,000 layers" in line
    assert len(asked) <= 12  # the relu, the first instance, its 10 relus


def test_the_default_limit_is_10000_and_the_flag_raises_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The CLI's default is 10,000 layers (issue #13: every command within the cost bar);
    `check`, `summary` and `graph` take `--max-layers` for bigger specs."""
    from archspec.cli import main

    spec = tmp_path / "big.yaml"
    spec.write_text(relus(10_001))
    assert main(["check", "--no-memory-check", str(spec)]) == 1
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith(f"{spec}:10003:5: layers[10000]: the network expands to more than ")
    assert "10,000 layers — lower `repeat:` counts or raise the layer limit (--max-layers)" in line
    assert main(["graph", str(spec), "-o", str(tmp_path / "g.mmd")]) == 1
    assert "more than 10,000 layers" in capsys.readouterr().err
    assert main(["check", "--max-layers", "10001", "--no-memory-check", str(spec)]) == 0
    assert main(["graph", "--max-layers", "10001", str(spec), "-o", str(tmp_path / "g.mmd")]) == 0
    assert "(mermaid, 10001 layers)" in capsys.readouterr().out
    assert main(["graph", "--max-layers", "0", str(spec), "-o", str(tmp_path / "g.mmd")]) == 2


@pytest.mark.parametrize(
    "command",
    [
        ["check", "--no-memory-check"],
        ["summary", "--no-memory-check"],
        ["graph", "-o", "{tmp}/g.mmd"],
        ["export", "-o", "{tmp}/w.safetensors"],
        ["diff", "{spec}"],
        ["train", "--epochs", "1", "--out", "{tmp}/run"],
    ],
    ids=lambda c: c[0],
)
def test_every_command_that_reads_a_spec_takes_max_layers(
    command: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Issue #13: the layer limit is one flag on every verb that reads a spec; a spec past
    it is refused at the layer that crosses it (exit 1; diff's trouble is 2), before torch
    or a dataset is touched, and 0 is a usage error (exit 2)."""
    from archspec.cli import main

    spec = tmp_path / "s.yaml"
    spec.write_text(relus(12))
    args = [a.format(tmp=tmp_path, spec=spec) for a in command]
    verb, rest = args[0], args[1:]
    refused = 2 if verb == "diff" else 1
    assert main([verb, "--max-layers", "11", *rest, str(spec)]) == refused
    err = capsys.readouterr().err
    assert "expands to more than 11 layers" in err and "Traceback" not in err
    assert not (tmp_path / "run").exists() and not (tmp_path / "w.safetensors").exists()
    assert main([verb, "--max-layers", "0", *rest, str(spec)]) == 2
    assert "--max-layers must be at least 1; received 0" in capsys.readouterr().err


def test_verify_runs_small_networks_on_the_cpu_without_dynamo() -> None:
    """Issue #13: `check --verify` paid ~2.4 s for torch._dynamo, which torch imports at the
    first operation on the meta device. Small networks now run for real on the CPU (zeros,
    no gradients); networks past the budget still go to the meta device."""
    import subprocess
    import sys

    code = (
        "import sys, archspec\n"
        "from archspec.compile.verify import verify, verify_device\n"
        "small = archspec.load('specs/mnist_cnn.yaml').plan()\n"
        "big = archspec.loads('input: [4096]\\nlayers: [{dense: 65536}]').plan()\n"
        "assert verify_device(small) == 'cpu' and verify_device(big) == 'meta'\n"
        "verify(small)\n"
        "print('torch._dynamo' in sys.modules)\n"
    )
    root = Path(__file__).resolve().parent.parent
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=root, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "False", out.stderr
