"""``archspec export --dynamic``: the exported program's symbolic sizes are exactly the legal set.

The legal sets here are written by hand (the symbolic-size engine computes them; see the one
end-to-end test at the bottom) — and each is first checked against the network itself: eager
PyTorch runs a size iff the hand-written set holds it, so the export tests test something.
Then the saved ``.pt2`` program, loaded back, runs every legal size tried (same numbers as the
network) and refuses every illegal one on torch's guard; the ONNX file names its axes.

The programs loaded here are ones these tests just wrote (``torch.export.load`` runs code).
"""

from __future__ import annotations

import doctest
import json
import re
from collections.abc import Callable
from pathlib import Path

import pytest
import torch

from archspec.api import Spec, load, loads
from archspec.cli import main
from archspec.errors import UsageError
from archspec.outputs import dynamic, export
from archspec.outputs.dynamic import DynamicError, Progression
from archspec.outputs.export import Source
from archspec.shapes.symbolic import LegalSet, Symbol

ROOT = Path(__file__).resolve().parent.parent
# flatten → dense fixes the pooled size at 2×2: legal 8 ≤ H ≤ 11 (⌊H/4⌋ = 2), W likewise
RANGE = """
name: pooled-dense
input: [1, 8, 8]
layers:
  - conv: {depth: 2, kernel: 3, padding: 1}
  - pool: {kind: max, size: 4}
  - flatten
  - dense: 3
"""
# the skip's concat needs pool-then-upsample to give back the size: H and W even
UNET = """
name: tiny-unet
input: [1, 8, 8]
layers:
  - conv: {depth: 2, kernel: 3, padding: 1}
    name: enc
  - pool: {kind: max, size: 2}
  - upsample: {scale: 2, mode: nearest}
    name: up
  - concat:
    from: [up, enc]
  - conv: {depth: 1, kernel: 1}
"""
# stride-2 conv then its transpose, added to the input: L odd, L ≥ 3
ODD = """
name: odd-length
input: [1, 9]
layers:
  - conv: {depth: 2, kernel: 3, stride: 2}
  - conv_transpose: {depth: 1, kernel: 3, stride: 2}
    name: up
  - add:
    from: [up, input]
"""
# two inputs, each reduced to features: any T, H, W
TWO = """
name: two-inputs
inputs:
  words: {shape: [6], dtype: int, vocab: 10}
  image: [1, 8, 8]
layers:
  - conv: {depth: 2, kernel: 3, padding: same}
    from: image
  - global_pool: avg
    name: pooled
  - embedding: {vocab: 10, dim: 2}
    from: words
  - mean: 0
    name: averaged
  - concat:
    from: [pooled, averaged]
  - dense: 2
"""
GRU = """
name: tiny-gru
input: {shape: [5, 2], layout: sequence}
layers:
  - gru: {units: 3, return: last}
  - dense: 2
"""
HANDWRITTEN = {
    "range": (RANGE, {"H": LegalSet("H", 8, 11), "W": LegalSet("W", 8, 11)}),
    "unet": (UNET, {"H": LegalSet("H", 2, 64, 2, (0,)), "W": LegalSet("W", 2, 64, 2, (0,))}),
    "odd": (ODD, {"L": LegalSet("L", 3, 33, 2, (1,))}),
}
SEVERAL = {  # sizes tried per case: legal ones (some where a pooled size is 1), illegal ones
    "range": ([(8, 8), (11, 9), (10, 11)], [(7, 8), (12, 8), (8, 13)]),
    "unet": ([(2, 2), (6, 10), (64, 8)], [(5, 8), (8, 3), (66, 8)]),
    "odd": ([(3,), (9,), (33,)], [(1,), (10,), (35,)]),
}


def spec_of(case: str) -> Spec:
    return loads(HANDWRITTEN[case][0])


def legal_of(spec: Spec, case: str) -> dict[Symbol, LegalSet]:
    sets = HANDWRITTEN[case][1]
    return {s: sets[s.name] for s in dynamic.all_symbols(spec.plan())}


def source_of(case: str) -> Source:
    spec = spec_of(case)
    torch.manual_seed(0)
    return Source(spec, spec.build().eval(), {"name": spec.name}, "test")


def sized(channels: int, sizes: tuple[int, ...], n: int = 3) -> torch.Tensor:
    return torch.randn((n, channels, *sizes), generator=torch.Generator().manual_seed(1))


def runs(fn: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor) -> bool:
    try:
        with torch.no_grad():
            fn(x)
    except (RuntimeError, AssertionError, ValueError):
        return False
    return True


# ---------------------------------------------------------------- the sets, torch-free


def test_dynamic_doctests_pass() -> None:
    result = doctest.testmod(dynamic)
    assert result.attempted >= 10
    assert result.failed == 0


@pytest.mark.parametrize(
    ("legal", "expected"),
    [
        (LegalSet("H", 28, 31), Progression(28, 1, 31)),
        (LegalSet("H", 32, 1024, 32, (0,)), Progression(32, 32, 1024)),
        (LegalSet("H", 1, 100, 4, (0, 2)), Progression(2, 2, 100)),  # {0, 2} mod 4 = even
        (LegalSet("H", 5, 6, 4, (1, 2)), Progression(5, 1, 6)),  # two residues, one run
        (LegalSet("H", 1, 9, 1, (0,), (9, 3, 6)), Progression(3, 3, 9)),
        (LegalSet("H", 1, 9, 1, (0,), (7,)), Progression(7, 1, 7)),
    ],
)
def test_expressible_sets_become_one_progression(legal: LegalSet, expected: Progression) -> None:
    p = dynamic.progression(legal)
    assert p == expected
    members = [v for v in range(1, 1100) if v in legal]
    assert members == [v for v in range(1, 1100) if v in p]  # the same set, not a superset


@pytest.mark.parametrize(
    ("legal", "match"),
    [
        (
            LegalSet("H", 8, 64, 4, (0, 1)),
            r"^the legal sizes of H \(8 ≤ H ≤ 64 and H ≡ 0, 1 \(mod 4\)\) are not one range or "
            r"one residue class \(2 residues modulo 4\): torch.export cannot express them",
        ),
        (
            LegalSet("W", 1, 99, 1, (0,), (28, 30, 31)),
            r"^the legal sizes of W \(W ∈ \{28, 30, 31\}\) are not one range or one residue class "
            r"\(no single step between its sizes\)",
        ),
        (
            LegalSet("T", 5, 7, 8, (0,)),
            r"^no size of T in 1..65536 is legal \(5 ≤ T ≤ 7 and T ≡ 0 \(mod 8\)\)",
        ),
        (LegalSet("T", 1, 9, 1, (0,), ()), r"^no size of T in 1..65536 is legal \(no value of T\)"),
    ],
)
def test_inexpressible_sets_are_refused_in_one_line(legal: LegalSet, match: str) -> None:
    with pytest.raises(DynamicError, match=match) as caught:
        dynamic.axes({Symbol(legal.symbol, "input", 1, 28): legal})
    assert "\n" not in str(caught.value)
    assert f"(--size {legal.symbol}=" in caught.value.hint


def test_a_derived_dim_needs_a_root_of_two() -> None:
    """torch.export specialises an example root of 0 or 1: {3, 7} = 4·k + 3, k ∈ {0, 1}."""
    legal = LegalSet("H", 1, 8, 4, (3,))
    with pytest.raises(DynamicError, match=r"^H takes 2 sizes \(3, 7\); torch.export needs"):
        dynamic.axes({Symbol("H", "input", 1, 3): legal})


def test_example_sizes_are_legal_near_the_spec_and_at_least_two_blocks() -> None:
    found = dynamic.axes(
        {
            Symbol("H", "input", 1, 224): LegalSet("H", 32, 1024, 32, (0,)),
            Symbol("W", "input", 2, 2): LegalSet("W", 2, 64, 2, (0,)),
            Symbol("T", "input", 0, 1): LegalSet("T", 1, 50),
        }
    )
    assert [a.example for a in found] == [224, 4, 2]
    assert [a.torch_text() for a in found] == [
        "32*Dim('H_blocks', min=1, max=32)",
        "2*Dim('W_blocks', min=1, max=32)",
        "Dim('T', min=1, max=50)",
    ]


def test_axis_names_follow_the_input_layouts() -> None:
    def names(spec: str) -> list[tuple[str, str, int]]:
        plan = load(ROOT / "specs" / spec).plan()
        return [(s.name, s.input, s.axis) for s in dynamic.all_symbols(plan)]

    assert names("unet_tiny.yaml") == [("H", "input", 1), ("W", "input", 2)]
    assert names("timeseries_cnn.yaml") == [("L", "input", 1)]
    assert names("gru_classifier.yaml") == [("T", "input", 0)]
    assert names("text_classifier.yaml") == [("T", "input", 0)]  # token ids
    assert names("kinds_tour.yaml") == [
        ("image_H", "image", 1),
        ("image_W", "image", 2),
        ("words_T", "words", 0),
    ]
    assert names("two_tower.yaml") == [("H", "image", 1), ("W", "image", 2)]  # meta: features


def test_choose_symbols_takes_names_and_bounds() -> None:
    plan = load(ROOT / "specs" / "unet_tiny.yaml").plan()
    chosen = dynamic.choose_symbols(plan, ["W"], ["W=32..512"])
    assert chosen == (Symbol("W", "input", 2, 64, 32, 512),)
    everything = dynamic.choose_symbols(plan, None, ["H=..128"])
    assert [(s.name, s.minimum, s.maximum) for s in everything] == [
        ("H", 1, 128),
        ("W", 1, 65536),
    ]


@pytest.mark.parametrize(
    ("names", "sizes", "match"),
    [
        (["Q"], [], r"^--dynamic: this network has no input axis named 'Q'"),
        (None, ["H=9..3"], r"^--size 'H=9..3': the bounds must satisfy 1 ≤ LO ≤ HI"),
        (None, ["H=0..3"], r"^--size 'H=0..3': the bounds must satisfy"),
        (None, ["H:3..9"], r"^--size 'H:3..9': expected NAME=LO..HI"),
        (None, ["H=.."], r"^--size 'H=..': expected NAME=LO..HI"),
        (["H"], ["W=8..16"], r"^--size W: W is not among the axes --dynamic makes symbolic"),
    ],
)
def test_bad_dynamic_options_are_usage_errors(
    names: list[str] | None, sizes: list[str], match: str
) -> None:
    plan = load(ROOT / "specs" / "unet_tiny.yaml").plan()
    with pytest.raises(UsageError, match=match):
        dynamic.choose_symbols(plan, names, sizes)


# ---------------------------------------------------------------- the hand-written sets are right


@pytest.mark.parametrize("case", sorted(HANDWRITTEN))
def test_handwritten_legal_sets_match_the_network(case: str) -> None:
    """Eager PyTorch runs a size iff the hand-written set holds it (sizes within the bounds)."""
    source = source_of(case)
    sets = HANDWRITTEN[case][1]
    names = list(sets)
    channels = source.spec.plan().all_inputs[0].shape[0]
    grid = range(1, 34) if len(names) == 1 else [(h, w) for h in range(1, 16) for w in (8, 10)]
    for sizes in grid:
        tup = sizes if isinstance(sizes, tuple) else (sizes,)
        legal = all(v in sets[n] for n, v in zip(names, tup, strict=True))
        assert runs(source.network, sized(channels, tup, n=1)) == legal, (case, tup)


# ---------------------------------------------------------------- .pt2 round trip


@pytest.fixture(scope="module")
def programs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Source, Path]]:
    out = {}
    for case in HANDWRITTEN:
        source = source_of(case)
        dest = tmp_path_factory.mktemp("pt2") / f"{case}.pt2"
        export.export(source, "exported", dest, legal_of(source.spec, case))
        out[case] = (source, dest)
    return out


@pytest.mark.parametrize("case", sorted(HANDWRITTEN))
def test_saved_program_runs_legal_sizes_and_refuses_illegal_ones(
    case: str, programs: dict[str, tuple[Source, Path]]
) -> None:
    source, dest = programs[case]
    program = torch.export.load(dest).module()
    channels = source.spec.plan().all_inputs[0].shape[0]
    legal, illegal = SEVERAL[case]
    for sizes in legal:
        x = sized(channels, sizes)
        with torch.no_grad():
            torch.testing.assert_close(program(x), source.network(x), rtol=1e-5, atol=1e-5)
    for sizes in illegal:
        with pytest.raises((AssertionError, RuntimeError), match="Guard failed"):
            program(sized(channels, sizes))


def test_saved_program_carries_the_legal_sets(programs: dict[str, tuple[Source, Path]]) -> None:
    extra = {"archspec.json": ""}
    torch.export.load(programs["unet"][1], extra_files=extra)
    meta = json.loads(extra["archspec.json"])
    assert meta["dynamic_exact"] is True  # exported under backed_size_oblivious
    assert meta["dynamic"]["H"] == {
        "input": "input",
        "axis": 1,
        "legal": "2 ≤ H ≤ 64 and H ≡ 0 (mod 2)",
        "first": 2,
        "step": 2,
        "last": 64,
    }


@pytest.mark.filterwarnings("ignore:The tensor attributes:UserWarning")  # torch's, on nn.GRU
def test_a_length_torch_traces_at_one_size_is_refused_in_one_line(tmp_path: Path) -> None:
    """nn.GRU: torch.export unrolls the steps, fixing T at the example's length."""
    spec = loads(GRU)
    source = Source(spec, spec.build().eval(), {"name": spec.name}, "test")
    legal = {s: LegalSet("T", 1, 64) for s in dynamic.all_symbols(spec.plan())}
    with pytest.raises(
        export.FixedSizeError,
        match=r"^torch.export cannot keep T symbolic in tiny-gru: "
        r"tracing fixed it at 5 \(a layer torch traces at one size",
    ) as caught:
        export.export(source, "exported", tmp_path / "gru.pt2", legal)
    assert caught.value.hint.startswith("leave T out of --dynamic")
    assert not (tmp_path / "gru.pt2").exists()


def test_dynamic_refuses_formats_without_symbolic_sizes(tmp_path: Path) -> None:
    source = source_of("range")
    with pytest.raises(UsageError, match=r"^--dynamic: the safetensors format has no symbolic"):
        export.export(
            source, "safetensors", tmp_path / "w.safetensors", legal_of(source.spec, "range")
        )
    assert not (tmp_path / "w.safetensors").exists()


# ---------------------------------------------------------------- ONNX


def test_onnx_names_the_symbolic_axes_and_runs_two_sizes(tmp_path: Path) -> None:
    """Two inputs (token ids and an image). The sets given are narrower than what the
    network accepts (any size): a program may be asked for fewer sizes, and image_H/W as
    derived dims (``2*image_H_blocks`` in torch's file) are renamed too."""
    onnx = pytest.importorskip("onnx", reason="ONNX export needs archspec[onnx]")
    pytest.importorskip("onnxscript", reason="ONNX export needs archspec[onnx]")
    spec = loads(TWO)
    torch.manual_seed(0)
    source = Source(spec, spec.build().eval(), {"name": spec.name}, "test")
    sets = {
        "words_T": LegalSet("words_T", 1, 64),
        "image_H": LegalSet("image_H", 2, 64, 2, (0,)),
        "image_W": LegalSet("image_W", 2, 64, 2, (0,)),
    }
    legal = {s: sets[s.name] for s in dynamic.all_symbols(spec.plan())}
    dest = tmp_path / "two.onnx"
    export.export(source, "onnx", dest, legal)
    model = onnx.load(str(dest))

    def dims(value: object) -> list[object]:
        shape = value.type.tensor_type.shape  # type: ignore[attr-defined]
        return [d.dim_param or d.dim_value for d in shape.dim]

    assert [dims(v) for v in [*model.graph.input, *model.graph.output]] == [
        ["batch", "words_T"],
        ["batch", 1, "image_H", "image_W"],
        ["batch", 2],
    ]
    meta = json.loads({p.key: p.value for p in model.metadata_props}["archspec"])
    assert meta["dynamic"]["words_T"]["legal"] == "1 ≤ words_T ≤ 64"
    ort = pytest.importorskip("onnxruntime", reason="running the ONNX file needs onnxruntime")
    session = ort.InferenceSession(str(dest), providers=["CPUExecutionProvider"])
    for t, h, w in [(3, 6, 10), (40, 16, 4)]:
        ids = torch.randint(0, 10, (3, t), generator=torch.Generator().manual_seed(2))
        image = sized(1, (h, w))
        (got,) = session.run(None, {"words": ids.numpy(), "image": image.numpy()})
        with torch.no_grad():
            want = source.network(ids, image)
        torch.testing.assert_close(torch.from_numpy(got), want, rtol=1e-4, atol=1e-5)


# ---------------------------------------------------------------- the CLI


@pytest.fixture
def spec_file(tmp_path: Path) -> Path:
    path = tmp_path / "unet.yaml"
    path.write_text(UNET)
    return path


@pytest.mark.parametrize(
    ("extra", "match"),
    [
        (["-o", "w.safetensors", "--dynamic"], r"--dynamic: the safetensors format has no"),
        (["-o", "m.pt", "--dynamic"], r"--dynamic: the torchscript format has no"),
        (["-o", "m.pt2", "--size", "H=8..16"], r"--size needs --dynamic"),
        (["-o", "m.pt2", "--dynamic", "H,Q"], r"no input axis named 'Q' — its axes are H, W"),
        (["-o", "m.pt2", "--dynamic", "--size", "H=16..8"], r"--size 'H=16..8': the bounds"),
    ],
)
def test_cli_usage_errors_exit_2_in_one_line(
    spec_file: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    extra: list[str],
    match: str,
) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["export", str(spec_file), *extra]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert re.search(match, err), err
    assert not list(tmp_path.glob("m.*")) and not list(tmp_path.glob("w.*"))


def test_cli_prints_each_symbolic_axis(
    spec_file: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The engine's answer stubbed (``_legal``): what the CLI passes it, and prints."""
    asked: list[tuple[Symbol, ...]] = []

    def fake(plan: object, symbols: tuple[Symbol, ...]) -> dict[str, LegalSet]:
        asked.append(symbols)
        return {s.name: LegalSet(s.name, 2, 32, 2, (0,)) for s in symbols}

    monkeypatch.setattr(dynamic, "_legal", fake)
    dest = tmp_path / "m.pt2"
    argv = ["export", str(spec_file), "-o", str(dest), "--dynamic", "W", "--size", "W=2..32"]
    assert main(argv) == 0
    assert asked == [(Symbol("W", "input", 2, 8, 2, 32),)]
    out = capsys.readouterr().out.splitlines()
    assert out[1:] == ["  2 ≤ W ≤ 32 and W ≡ 0 (mod 2)  →  2*Dim('W_blocks', min=1, max=16)"]
    program = torch.export.load(dest).module()
    program(torch.randn(1, 1, 8, 32))  # W dynamic
    with pytest.raises((AssertionError, RuntimeError), match="Guard failed"):
        program(torch.randn(1, 1, 10, 32))  # H static: the spec's 8


def test_cli_refuses_a_set_torch_cannot_express_exit_1(
    spec_file: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def fake(plan: object, symbols: tuple[Symbol, ...]) -> dict[str, LegalSet]:
        return {s.name: LegalSet(s.name, 2, 64, 4, (0, 2, 3)) for s in symbols}

    monkeypatch.setattr(dynamic, "_legal", fake)
    dest = tmp_path / "m.onnx"
    assert main(["export", str(spec_file), "-o", str(dest), "--dynamic", "H"]) == 1
    err = capsys.readouterr().err.splitlines()
    assert err[-1] == (
        "archspec: the legal sizes of H (2 ≤ H ≤ 64 and H ≡ 0, 2, 3 (mod 4)) are not one range "
        "or one residue class (3 residues modulo 4): torch.export cannot express them — fix H "
        "(--size H=N) or leave it out of --dynamic"
    )
    assert not dest.exists()


def test_cli_end_to_end_with_the_engine(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """mnist_cnn: flatten → dense fixes ⌊⌊H/2⌋/2⌋ = 7, so 28 ≤ H ≤ 31 (W likewise)."""
    dest = tmp_path / "mnist.pt2"
    assert main(["export", "mnist_cnn", "-o", str(dest), "--dynamic", "--size", "H=1..64"]) == 0
    out = capsys.readouterr().out
    assert "28 ≤ H ≤ 31  →  Dim('H', min=28, max=31)" in out
    program = torch.export.load(dest).module()
    assert program(torch.randn(2, 1, 31, 29)).shape == (2, 10)
    with pytest.raises((AssertionError, RuntimeError), match="Guard failed"):
        program(torch.randn(2, 1, 32, 28))
