"""``archspec diff``: matching by name then position, what counts as a change, totals, the
three renderings and the exit status (0 identical, 1 different, 2 trouble)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

import archspec
from archspec.cli import main
from archspec.outputs import diff

ROOT = Path(__file__).resolve().parents[1]
SPECS = ROOT / "specs"

BASE = """\
name: small
input: [1, 28, 28]
layers:
  - conv: {depth: 8, kernel: 3}
    name: stem
  - relu
  - pool: 2
  - flatten
  - dense: 10
    name: head
"""


def _plan(text: str) -> archspec.api.Plan:
    return archspec.loads(text).plan()


def _statuses(d: diff.PlanDiff) -> list[tuple[str, str]]:
    return [(row.status, row.name) for row in d.layers]


def _write(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def test_identical_specs_have_no_changes() -> None:
    d = diff.diff_plans(_plan(BASE), _plan(BASE))
    assert d.identical
    assert {row.status for row in d.layers} == {"same"}


def test_an_inserted_layer_is_added_and_the_rest_still_match() -> None:
    new = BASE.replace("  - pool: 2\n", "  - pool: 2\n  - dropout: 0.25\n")
    d = diff.diff_plans(_plan(BASE), _plan(new))
    assert not d.identical
    assert ("added", "dropout1") in _statuses(d)
    assert d.count("added") == 1 and d.count("removed") == 0
    # the layer after it now reads the dropout: rewired, nothing else
    assert [(row.name, row.changed) for row in d.layers if row.status == "changed"] == [
        ("flatten1", ("inputs",))
    ]


def test_a_removed_layer_is_listed_where_it_was() -> None:
    new = BASE.replace("  - relu\n", "")
    d = diff.diff_plans(_plan(BASE), _plan(new))
    names = _statuses(d)
    assert names.index(("removed", "relu1")) == 1  # after stem, before the pool
    pool = next(row for row in d.layers if row.name == "pool1")
    assert pool.status == "changed" and pool.changed == ("inputs",)


def test_a_wider_conv_changes_its_settings_shape_params_and_macs_and_what_follows() -> None:
    d = diff.diff_plans(_plan(BASE), _plan(BASE.replace("depth: 8", "depth: 16")))
    stem = d.layers[0]
    assert stem.changed == ("settings", "shape", "params", "macs")
    head = next(row for row in d.layers if row.name == "head")
    assert head.changed == ("params", "macs")  # 8·13·13 → 16·13·13 inputs
    assert diff.cells(stem)[4] == "80 → 160 (+80)"


def test_layers_renamed_at_the_same_position_are_matched_by_position() -> None:
    d = diff.diff_plans(_plan(BASE), _plan(BASE.replace("name: head", "name: classifier")))
    row = d.layers[-1]
    assert (row.status, row.name, row.changed) == ("changed", "head → classifier", ("name",))


def test_a_different_kernel_changes_the_receptive_field() -> None:
    d = diff.diff_plans(_plan(BASE), _plan(BASE.replace("kernel: 3", "kernel: 5")))
    assert "receptive field" in d.layers[0].changed
    assert diff.cells(d.layers[0])[6] == "3×3 /1 → 5×5 /1"


def test_a_child_spec_against_its_parent_shows_the_overridden_width(
    capsys: pytest.CaptureFixture[str],
) -> None:
    args = [str(SPECS / "cifar_resnet.yaml"), str(SPECS / "cifar_resnet_wide.yaml")]
    assert main(["diff", "--json", *args]) == 1
    data = json.loads(capsys.readouterr().out)
    assert data["identical"] is False
    assert data["totals"]["params"] == [272_474, 1_084_586]
    assert data["layers"][0]["old"]["shape"] == [16, 32, 32]
    assert data["layers"][0]["new"]["shape"] == [32, 32, 32]


def test_cli_identical_is_exit_0(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["diff", "lenet5", str(SPECS / "lenet5.yaml")]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0] == "lenet5 → lenet5: identical"
    assert "summary: 0 added, 0 removed, 0 changed, 12 unchanged" in out


def test_cli_plain_table_and_markdown(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    old = _write(tmp_path, "a.yaml", BASE)
    new = _write(tmp_path, "b.yaml", BASE.replace("  - relu\n", "  - gelu\n"))
    assert main(["diff", old, new]) == 1
    out = capsys.readouterr().out
    assert "parameters: 13,610\n" in out  # equal on both sides: printed once
    # matched by position, as the names differ
    assert re.search(r"^~  relu1 → gelu1 +relu → gelu .* name, kind$", out, re.M)
    assert main(["diff", "--markdown", old, new]) == 1
    md = capsys.readouterr().out
    assert "| `~` | `relu1 → gelu1` | relu → gelu |" in md
    assert "- summary: 0 added, 0 removed, 1 changed, 4 unchanged" in md


def test_train_section_differences_make_specs_different(tmp_path: Path) -> None:
    train = "train:\n  data: {dataset: mnist}\n  epochs: 1\n"
    old = _write(tmp_path, "a.yaml", BASE + train)
    new = _write(tmp_path, "b.yaml", BASE + train.replace("epochs: 1", "epochs: 2"))
    assert main(["diff", old, new]) == 1
    assert main(["diff", old, old]) == 0


def test_an_invalid_spec_is_trouble_exit_2_with_its_location(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = _write(tmp_path, "bad.yaml", BASE.replace("  - flatten\n", ""))
    assert main(["diff", str(SPECS / "lenet5.yaml"), bad]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"archspec: {bad}:8:12: layers[3].dense: dense needs a flat input")


def test_a_missing_file_is_trouble_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["diff", "lenet5", "no/such.yaml"]) == 2
    assert "no/such.yaml" in capsys.readouterr().err


def test_json_and_markdown_together_are_a_usage_error() -> None:
    with pytest.raises(SystemExit) as exc:
        main(["diff", "--json", "--markdown", "lenet5", "lenet5"])
    assert exc.value.code == 2
