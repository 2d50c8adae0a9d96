"""``archspec fit`` and declared variables: the search finds the same best values as a
brute-force oracle (a closed-form parameter count), keeps to ``multiple_of``/``min``/``max``,
writes a spec that extends the original, and every bad option or declaration is one
located line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import archspec
from archspec.cli import main
from archspec.errors import SpecError, UsageError
from archspec.language.extends import read_spec
from archspec.language.variables import Constraint
from archspec.outputs import fit

SPEC = """\
name: fitme
input: [3, 32, 32]
vars:
  width: {value: 16, multiple_of: 8, max: 128}
  depth: 2
blocks:
  unit:
    args: {w: ~}
    layers:
      - conv: {depth: w, kernel: 3, padding: 1}
      - relu
layers:
  - unit: {w: width}
    repeat: depth
  - global_pool: avg
  - dense: 10
"""


def params(width: int, depth: int) -> int:
    """The closed form: a 3→w conv, depth − 1 w→w convs, a w→10 dense (all with bias)."""
    return (27 * width + width) + (depth - 1) * (9 * width * width + width) + 10 * width + 10


@pytest.fixture
def spec(tmp_path: Path) -> Path:
    path = tmp_path / "fitme.yaml"
    path.write_text(SPEC)
    return path


def _grid(spec: Path, *vary: str) -> list[fit.Vary]:
    return fit.grid(read_spec(spec), [fit.parse_vary(v) for v in vary])[0]


# ---------------------------------------------------------------- declared variables


def _check(tmp_path: Path, declaration: str) -> None:
    path = tmp_path / "v.yaml"
    path.write_text(f"input: [4]\nvars:\n  width: {declaration}\nlayers:\n  - dense: width\n")
    archspec.load(path)


@pytest.mark.parametrize(
    ("declaration", "message"),
    [
        (
            "{value: 20, multiple_of: 8}",
            r"3:18: vars\.width\.value: 20 is not a multiple of 8 "
            r"\(declared multiple_of\) — use 16 or 24",
        ),
        ("{value: 4, min: 8}", r"3:18: vars\.width\.value: 4 is below the declared min 8"),
        ("{value: 2 * 8, max: 12}", r"3:18: vars\.width\.value: 16 is above the declared max 12"),
        ("{value: 16, multiple_of: 0}", r"3:35: vars\.width\.multiple_of: must be greater than 0"),
        ("{value: 16, mutliple_of: 8}", r"3:22: vars\.width\.mutliple_of: unknown key"),
        ("{multiple_of: 8}", r"3:10: vars\.width\.value: missing required key 'value'"),
    ],
)
def test_a_broken_declaration_is_one_located_error(
    tmp_path: Path, declaration: str, message: str
) -> None:
    with pytest.raises(SpecError, match=rf"^{tmp_path / 'v.yaml'}:{message}") as exc:
        _check(tmp_path, declaration)
    assert len(exc.value.problems) == 1


def test_a_declared_value_is_used_like_a_plain_one(tmp_path: Path) -> None:
    path = tmp_path / "v.yaml"
    path.write_text(
        "input: [4]\nvars:\n  width: {value: 2 * 8, multiple_of: 8}\nlayers: [{dense: width}]\n"
    )
    assert archspec.load(path).plan().total_params == 4 * 16 + 16


def test_a_child_value_keeps_the_parent_declaration(spec: Path) -> None:
    child = spec.parent / "child.yaml"
    child.write_text("extends: fitme.yaml\nvars: {width: 20}\n")
    with pytest.raises(
        SpecError, match=r"child\.yaml:2:15: vars\.width\.value: 20 is not a multiple"
    ):
        archspec.load(child)
    child.write_text("extends: fitme.yaml\nvars: {width: 24}\n")
    assert archspec.load(child).plan().total_params == params(24, 2)


def test_constraint_rules() -> None:
    rule = Constraint(multiple_of=8, min=16, max=64)
    assert [v for v in range(0, 80) if rule.allows(v)] == [16, 24, 32, 40, 48, 56, 64]
    assert rule.violation(12) == ("12 is not a multiple of 8 (declared multiple_of)", "use 8 or 16")


# ---------------------------------------------------------------- options


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("5M", 5e6),
        ("1.5G", 1.5e9),
        ("300k", 3e5),
        ("2_000", 2000),
        ("5e6", 5e6),
        ("2GiB", 2 * 2**30),
        ("512MB", 512e6),
    ],
)
def test_numbers_take_decimal_suffixes(text: str, value: float) -> None:
    assert fit.parse_number(text, "x") == value


def test_targets_parse_and_bad_ones_say_how() -> None:
    assert fit.parse_target("macs<=600M") == fit.Target("macs", "<=", 6e8)
    with pytest.raises(UsageError, match=r"^--target 'params' is not METRIC=VALUE"):
        fit.parse_target("params")
    with pytest.raises(UsageError, match=r"^--target: unknown metric 'parms'") as exc:
        fit.parse_target("parms=5M")
    assert exc.value.hint == "did you mean 'params'?"
    with pytest.raises(UsageError, match=r"^--target params: '5X' is not a number"):
        fit.parse_target("params=5X")


def test_vary_keeps_to_the_declaration(spec: Path) -> None:
    (width,) = _grid(spec, "width=10..200")
    assert width.values == tuple(range(16, 129, 8))  # multiple_of 8, max 128


def test_vary_an_unknown_variable_suggests_one(spec: Path) -> None:
    with pytest.raises(
        UsageError, match=r"^--vary widht: .*fitme\.yaml:4:3: the spec has no"
    ) as exc:
        _grid(spec, "widht=1..4")
    assert exc.value.hint == "did you mean 'width'?"


def test_vary_with_nothing_allowed_names_the_declaration(spec: Path) -> None:
    with pytest.raises(
        UsageError,
        match=r"^--vary width=9\.\.15: no value allowed by the "
        r"declaration at .*fitme\.yaml:4:10 \(multiple_of 8, max 128\)",
    ):
        _grid(spec, "width=9..15")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("width", r"is not NAME=LOW\.\.HIGH"),
        ("width=9..3", "an empty range"),
        ("width=8,x", "'x' is not a whole number"),
    ],
)
def test_bad_vary_values(spec: Path, text: str, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        _grid(spec, text)


# ---------------------------------------------------------------- the search


def test_closest_to_a_target_matches_the_brute_force_oracle(spec: Path) -> None:
    doc = read_spec(spec)
    varies = _grid(spec, "width=16..128", "depth=1..6")
    result = fit.search(doc, spec, varies, [fit.parse_target("params=50k")], top=3)
    oracle = sorted(
        (abs(params(w, d) - 50_000), w, d) for w in range(16, 129, 8) for d in range(1, 7)
    )
    assert [(c.values["width"], c.values["depth"]) for c in result.best] == [
        (w, d) for _, w, d in oracle[:3]
    ]
    assert all(
        c.totals["params"] == params(c.values["width"], c.values["depth"]) for c in result.best
    )
    assert result.evaluated == 15 * 6 and result.invalid == 0


def test_bounds_and_an_objective(spec: Path) -> None:
    doc = read_spec(spec)
    varies = _grid(spec, "width=16..128", "depth=1..6")
    targets = [fit.parse_target("params=50k")]  # with --maximize: an upper bound
    result = fit.search(doc, spec, varies, targets, objective=("params", 1), top=1)
    best = max(
        params(w, d) for w in range(16, 129, 8) for d in range(1, 7) if params(w, d) <= 50_000
    )
    assert result.best[0].totals["params"] == best
    assert result.out_of_bounds == sum(
        params(w, d) > 50_000 for w in range(16, 129, 8) for d in range(1, 7)
    )


def test_a_memory_bound_uses_the_training_estimate(spec: Path) -> None:
    from archspec.shapes import memory

    doc = read_spec(spec)
    varies = _grid(spec, "width=16..64", "depth=1..3")
    result = fit.search(doc, spec, varies, [fit.parse_target("memory<=2MiB")], ("params", 1))
    best = result.best[0]
    child = spec.parent / "child.yaml"
    child.write_text(f"extends: fitme.yaml\nvars: {dict(best.values)}\n")
    expected = memory.training_estimate(archspec.load(child).plan(), None).total
    assert best.totals["memory"] == expected <= 2 * 2**20
    assert result.out_of_bounds > 0


def test_invalid_combinations_are_counted_not_fatal(tmp_path: Path) -> None:
    path = tmp_path / "pools.yaml"
    path.write_text(
        "input: [1, 16, 16]\nvars: {n: 1}\nlayers:\n  - pool: 2\n    repeat: n\n"
        "  - flatten\n  - dense: 2\n"
    )
    doc = read_spec(path)
    result = fit.search(doc, path, _grid(path, "n=1..6"), [fit.parse_target("params<=1G")])
    assert result.invalid == 2  # 16 → 8 → 4 → 2 → 1; a fifth and sixth pool have no input
    assert result.evaluated == 6


# ---------------------------------------------------------------- the command


def test_cli_writes_a_spec_extending_the_original(
    spec: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out" / "best.yaml"
    args = [
        "fit",
        str(spec),
        "--vary",
        "width=16..128",
        "--vary",
        "depth=1..6",
        "--target",
        "params=50k",
        "--write",
        str(out),
    ]
    assert main(args) == 0
    text = capsys.readouterr().out
    assert "width: 15 values, 16..128 (98 ruled out by its declaration)" in text
    assert "evaluated 90 combinations" in text
    written = out.read_text()
    assert 'extends: "../fitme.yaml"' in written and "vars: {width: 72, depth: 2}" in written
    assert archspec.load(out).plan().total_params == params(72, 2)


def test_cli_json(spec: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["fit", str(spec), "--vary", "depth=1..3", "--minimize", "macs", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["best"][0]["values"] == {"depth": 1}
    assert data["evaluated"] == 3


def test_cli_no_combination_meets_the_targets_is_exit_1(
    spec: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["fit", str(spec), "--vary", "depth=1..2", "--target", "params<=10"]) == 1
    assert "archspec: no combination meets the targets" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--vary", "depth=1..2"], "archspec: give a --target"),
        (["--target", "params=1M"], "archspec: give at least one --vary"),
        (["--vary", "depth=1..2", "--maximize", "speed"], "archspec: --maximize: unknown metric"),
    ],
)
def test_cli_usage_errors_are_exit_2(
    spec: Path, args: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["fit", str(spec), *args]) == 2
    assert capsys.readouterr().err.startswith(message)


def test_cli_an_invalid_spec_is_exit_1_located(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(SPEC.replace("multiple_of: 8", "multiple_of: 5"))
    assert main(["fit", str(path), "--vary", "depth=1..2", "--target", "params=1M"]) == 1
    assert capsys.readouterr().err.startswith(f"archspec: {path}:4:18: vars.width.value: 16 is not")


def test_fit_diff_and_counting_never_import_torch(spec: Path) -> None:
    """Principle 2 of DESIGN.md for the analyses: a fresh interpreter runs fit, diff and
    check --convention/--flops without torch or numpy."""
    import subprocess
    import sys

    code = (
        "import sys, contextlib, io\n"
        "from archspec.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        f"    assert main(['fit', {str(spec)!r}, '--vary', 'depth=1..3', '--minimize', 'macs'])"
        " == 0\n"
        "    assert main(['diff', 'lenet5', 'mnist_cnn']) == 1\n"
        "    assert main(['check', 'unet_tiny', '--convention', 'thop']) == 0\n"
        "    assert main(['check', 'unet_tiny', '--flops', '--json']) == 0\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'numpy')))\n"
    )
    run = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=Path(__file__).resolve().parents[1],
    )
    assert run.returncode == 0, run.stderr
    assert run.stdout.splitlines()[-1] == "[]"
