"""``archspec check``: tables, JSON, Markdown, ``--input``/``--depth``/``--verify``, exit codes."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from archspec.cli import main

ROOT = Path(__file__).resolve().parents[1]
MNIST = str(ROOT / "specs" / "mnist_cnn.yaml")
LENET = str(ROOT / "specs" / "lenet5.yaml")
RESNET = str(ROOT / "specs" / "resnet18.yaml")

BROKEN = """\
input: [1, 28, 28]
layers:
  - conv: {depth: 8, kernel: 3}
  - dense: 10
"""


def archspec(*args: str) -> subprocess.CompletedProcess[str]:
    """Run ``python -m archspec`` in a fresh interpreter (exit codes and streams as a user sees)."""
    return subprocess.run(
        [sys.executable, "-m", "archspec", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )


@pytest.fixture
def broken(tmp_path: Path) -> str:
    path = tmp_path / "broken.yaml"
    path.write_text(BROKEN)
    return str(path)


# ---------------------------------------------------------------- output formats


def test_table_shows_every_layer_and_the_totals(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", MNIST]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0] == "mnist-cnn"
    assert re.search(
        r"^ 1\s+conv1\s+conv 5×5 /1 same\s+32×28×28\s+832\s+627,200\s+5×5\s+1$", out, re.M
    )
    assert re.search(
        r"^ 8\s+dense1\s+dense 1024\s+1024\s+3,212,288\s+3,211,264\s+all\s+-$", out, re.M
    )
    assert "parameters: 3,274,634 (12.49 MiB as float32)" in out
    assert "MACs per sample: 13,883,904" in out
    assert "input: 1×28×28" in out and "output: 10" in out


def test_json_parses_and_has_totals(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", "--json", MNIST, LENET]) == 0
    data = json.loads(capsys.readouterr().out)
    mnist, lenet = data["specs"]
    assert (mnist["file"], mnist["valid"]) == (MNIST, True)
    assert mnist["plan"]["total_params"] == 3_274_634
    assert mnist["plan"]["total_macs"] == 13_883_904
    assert mnist["plan"]["output"] == [10]
    assert lenet["plan"]["total_params"] == 61_706
    first = mnist["plan"]["layers"][0]
    assert first["name"] == "conv1" and first["shape"] == [32, 28, 28]
    assert first["receptive_field"] == {
        "global": False,
        "size": [5, 5],
        "jump": [1, 1],
        "start": [0, 0],
    }
    assert first["line"] == 8  # where the layer is written (line 1 is the schema comment)


def test_json_lists_errors_of_an_invalid_spec(
    capsys: pytest.CaptureFixture[str], broken: str
) -> None:
    assert main(["check", "--json", broken]) == 1
    captured = capsys.readouterr()
    assert captured.err == ""  # everything is in the JSON
    (entry,) = json.loads(captured.out)["specs"]
    assert entry["valid"] is False and "plan" not in entry
    (error,) = entry["errors"]
    assert (error["file"], error["line"], error["col"]) == (broken, 4, 12)
    assert error["path"] == "layers[1].dense"
    assert error["message"] == "dense needs a flat input, but receives 8×26×26"
    assert error["hint"].startswith("insert `- flatten` before it (5,408 features)")


def test_markdown(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", "--markdown", LENET]) == 0
    out = capsys.readouterr().out
    assert out.startswith(
        "**lenet5**\n\n| # | layer | kind | output | params | MACs | receptive field | jump |\n"
    )
    assert "|---:|:---|:---|:---|---:|---:|:---|---:|" in out
    assert "| 1 | `conv1` | conv 5×5 /1 valid | 6×28×28 | 156 | 117,600 | 5×5 | 1 |" in out
    assert "- parameters: 61,706 (0.24 MiB as float32)" in out


# ---------------------------------------------------------------- --input and --depth


def test_input_changes_the_shapes(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", "--json", "--input", "1x32x32", MNIST]) == 0
    plan = json.loads(capsys.readouterr().out)["specs"][0]["plan"]
    assert plan["input"] == [1, 32, 32]
    shapes = {layer["name"]: layer["shape"] for layer in plan["layers"]}
    assert shapes["pool2"] == [64, 8, 8]
    assert shapes["flatten1"] == [4096]
    assert plan["total_params"] == 3_274_634 + (4096 - 3136) * 1024


@pytest.mark.parametrize("text", ["3×28×28", "3,28,28", "[3, 28, 28]"])
def test_input_spellings(text: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", "--json", "--input", text, MNIST]) == 0
    plan = json.loads(capsys.readouterr().out)["specs"][0]["plan"]
    assert plan["layers"][0]["params"] == 5 * 5 * 3 * 32 + 32


def test_input_that_makes_a_pool_impossible_is_located(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", "--input", "1x2x2", MNIST]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert re.match(
        rf"^{re.escape(MNIST)}:13:29: layers\[5\]\.pool\.size: window 2 is larger than its input "
        r"1×1 \(\+0 padding\) along axis 0 — remove the pool or pad the previous conv",
        captured.err,
    )


def test_depth_1_collapses_resnet_blocks(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", "--depth", "1", RESNET]) == 0
    out = capsys.readouterr().out
    rows = [line for line in out.splitlines() if re.match(r"^\s*\d+\s", line)]
    assert [row.split()[1] for row in rows] == [
        "conv1",
        "bn1",
        "relu1",
        "pool1",
        "layer1",
        "layer2",
        "layer3",
        "layer4",
        "global_pool1",
        "fc",
    ]
    assert re.search(r"^\s*5\s+layer1\s+block\s+64×56×56\s+147,968\s", out, re.M)
    assert re.search(r"^\s*8\s+layer4\s+block\s+512×7×7\s+8,393,728\s", out, re.M)
    assert "parameters: 11,689,512" in out


def test_without_depth_every_layer_is_a_row(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", RESNET]) == 0
    assert "layer3.1.downsample_conv" not in capsys.readouterr().out  # `when: project` is false
    assert main(["check", RESNET]) == 0
    assert re.search(r"^\s*68\s+fc\s", capsys.readouterr().out, re.M)


# ---------------------------------------------------------------- --verify


def test_verify_builds_and_confirms_the_shapes(capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("torch")
    assert main(["check", "--verify", LENET]) == 0
    out = capsys.readouterr().out
    assert out.rstrip().endswith(
        "verified: all 12 layers have the inferred shapes and parameter counts in torch"
    )


# ---------------------------------------------------------------- several specs, exit codes


def test_one_invalid_spec_among_several(broken: str) -> None:
    run = archspec("check", MNIST, broken, LENET)
    assert run.returncode == 1
    assert "mnist-cnn" in run.stdout and "lenet5" in run.stdout  # the valid ones still print
    assert "parameters: 3,274,634" in run.stdout and "parameters: 61,706" in run.stdout
    assert run.stderr.splitlines() == [
        f"{broken}:4:12: layers[1].dense: dense needs a flat input, but receives 8×26×26 — "
        "insert `- flatten` before it (5,408 features), or `- global_pool` (one value per "
        "channel) (dense1: input 8×26×26)"
    ]


def test_missing_spec_file_is_exit_1_located() -> None:
    run = archspec("check", "specs/no_such_spec.yaml")
    assert run.returncode == 1
    assert run.stderr == "specs/no_such_spec.yaml:1:1: no such file — check the path\n"
    assert "Traceback" not in run.stderr


def test_a_misspelt_bundled_name_lists_the_bundled_specs() -> None:
    run = archspec("check", "mnist_cnnn")
    assert run.returncode == 1
    assert run.stderr.startswith("mnist_cnnn:1:1: no such file — check the path, or name a ")
    assert "mnist_cnn, mnist_cnn_8k" in run.stderr and "Traceback" not in run.stderr


def test_valid_spec_is_exit_0() -> None:
    run = archspec("check", "specs/mnist_cnn.yaml")
    assert (run.returncode, run.stderr) == (0, "")
    assert run.stdout.startswith("mnist-cnn\n")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["check", "--bogus", MNIST], r"archspec: error: unrecognized arguments: --bogus"),
        (
            ["check", "--input", "abc", MNIST],
            r"argument --input: 'abc' is not a shape: write channels",
        ),
        (
            ["check", "--input", "0x28x28", MNIST],
            r"argument --input: '0x28x28': every dimension must",
        ),
        (["check", "--input", "1x2x3x4x5", MNIST], r"argument --input: '1x2x3x4x5' is not a shape"),
        (["check"], r"the following arguments are required: SPEC"),
        ([], r"the following arguments are required: COMMAND"),
        (["chek", MNIST], r"argument COMMAND: invalid choice: 'chek'"),
        (["check", "--depth", "0", MNIST], r"^archspec: --depth must be at least 1$"),
    ],
)
def test_usage_errors_exit_2(args: list[str], message: str) -> None:
    run = archspec(*args)
    assert run.returncode == 2, run.stderr
    assert re.search(message, run.stderr, re.M), run.stderr
    assert run.stdout == ""
    assert "Traceback" not in run.stderr


def test_usage_error_in_process_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["check", "--input", "abc", MNIST])
    assert info.value.code == 2
    assert "'abc' is not a shape" in capsys.readouterr().err


@pytest.mark.parametrize(
    "text",
    [
        "input: [1, 8]\nlayers: !!python/object/apply:os.system ['true']\n",
        "a: &a [*a]\n",
        "input: [1, 8]\nlayers:\n\t- relu\n",
        "input: [1, 8]\nlayers:\n  - conv: {depth: '1e400', kernel: 3}\n",
        "input: [1, 8]\nvars: {n: 3}\nlayers:\n  - conv: {depth: 'min(n)', kernel: 1}\n"
        "  - relu:\n    when: n\n",
        "input: [1, 8]\nlayers:\n  - dense: 3\n  - add:\n    from: [dense1, input]\n",
        "\xff\xfe",
    ],
)
def test_hostile_specs_never_crash(
    tmp_path: Path, text: str, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = tmp_path / "hostile.yaml"
    spec.write_bytes(text.encode("latin-1") if text == "\xff\xfe" else text.encode())
    assert main(["check", str(spec)]) == 1  # 3 would be an internal error (a crash)
    err = capsys.readouterr().err
    assert "internal error" not in err
    assert re.match(rf"^{re.escape(str(spec))}:\d+:\d+: ", err)
