"""``archspec graph``: Mermaid and DOT text, skip edges, collapsed blocks, escaping, Graphviz."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

import archspec
from archspec.cli import main
from archspec.errors import UsageError
from archspec.outputs import diagram
from archspec.outputs.diagram import ToolError

ROOT = Path(__file__).resolve().parent.parent
SPECS = sorted((ROOT / "specs").glob("*.yaml"))
needs_dot = pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz `dot` not installed")


def plan_of(name: str) -> archspec.Plan:
    return archspec.load(ROOT / "specs" / f"{name}.yaml").plan()


# ---------------------------------------------------------------- a strict Mermaid grammar
# The subset archspec emits, line by line: header, comments, nodes (stadium, box, subroutine)
# with quoted labels free of raw quotes, `subgraph ID ["label"]` … `end`, and `A --> B` edges.
_LABEL = r'[^"\n]*'
_LINE = {
    "node": re.compile(
        rf'^(\s*)(n\d+|b\d+)(\(\["{_LABEL}"\]\)|\["{_LABEL}"\]|\[\["{_LABEL}"\]\])$'
    ),
    "subgraph": re.compile(rf'^(\s*)subgraph (g\d+) \["{_LABEL}"\]$'),
    "end": re.compile(r"^(\s*)end$"),
    "edge": re.compile(r"^(\s*)(n\d+|b\d+) --> (n\d+|b\d+)$"),
    "comment": re.compile(r"^(\s*)%%[^\n]*$"),
}


def check_mermaid(text: str) -> tuple[set[str], list[tuple[str, str]]]:
    """Parse ``text`` with the grammar above; returns node ids and edges, or fails the test."""
    lines = text.splitlines()
    assert lines[0] == lines[2] == "---" and lines[1].startswith("title: ")
    assert isinstance(yaml.safe_load(lines[1])["title"], str)  # front matter is YAML
    assert lines[3] == "flowchart TD"
    nodes: set[str] = set()
    edges: list[tuple[str, str]] = []
    depth = 0
    for number, line in enumerate(lines[4:], start=5):
        kinds = [k for k, pattern in _LINE.items() if pattern.match(line)]
        assert len(kinds) == 1, f"line {number} is not in the grammar: {line!r}"
        match = _LINE[kinds[0]].match(line)
        assert match is not None
        if kinds[0] == "node":
            assert match[2] not in nodes, f"node {match[2]} defined twice"
            nodes.add(match[2])
            assert "#" not in re.sub(r"#(quot|lt|gt|amp|35|96);", "", match[3])
        depth += {"subgraph": 1, "end": -1}.get(kinds[0], 0)
        assert depth >= 0, f"line {number}: `end` without `subgraph`"
        if kinds[0] == "edge":
            edges.append((match[2], match[3]))
    assert depth == 0, "unclosed subgraph"
    assert {n for edge in edges for n in edge} <= nodes, "an edge names an undefined node"
    return nodes, edges


def labels(text: str) -> dict[str, str]:
    """Node id → its label's first line."""
    found = re.findall(r'^\s*(n\d+|b\d+)\W+"([^"<]*)', text, flags=re.M)
    return {node: label for node, label in found}


def test_mnist_mermaid_is_a_chain_with_shapes_and_parameters() -> None:
    text = diagram.mermaid(diagram.layout(plan_of("mnist_cnn")))
    nodes, edges = check_mermaid(text)
    assert len(nodes) == 12 + 2  # layers + input + output
    assert edges == [(f"n{i}", f"n{i + 1}") for i in range(13)]
    assert 'n0(["input<br/>1×28×28"])' in text
    assert 'n1["conv1<br/>conv 5×5 /1 same<br/>32×28×28"]' in text
    assert 'n3["pool1<br/>pool max 2×2<br/>32×14×14"]' in text
    assert 'n13(["output<br/>10"])' in text


def test_resnet_mermaid_shows_skip_connections_inside_block_clusters() -> None:
    text = diagram.mermaid(diagram.layout(plan_of("resnet18")))
    _, edges = check_mermaid(text)
    ids = {label: node for node, label in labels(text).items()}
    # identity shortcut: the block's input (pool1) feeds its add directly
    assert (ids["pool1"], ids["layer1.0.add1"]) in edges
    # projection shortcut: the downsample conv reads the stage's input
    assert (ids["layer1.1.relu2"], ids["layer2.0.downsample_conv"]) in edges
    assert (ids["layer2.0.downsample_bn"], ids["layer2.0.add1"]) in edges
    assert 'subgraph g1 ["layer1"]' in text and '["layer2.0"]' in text


@pytest.mark.parametrize("depth", [1, 2])
def test_depth_collapses_blocks_like_check_does(depth: int) -> None:
    plan = plan_of("resnet18")
    text = diagram.mermaid(diagram.layout(plan, depth))
    nodes, edges = check_mermaid(text)
    blocks = {node: label for node, label in labels(text).items() if node.startswith("b")}
    expected = (
        {"layer1", "layer2", "layer3", "layer4"}
        if depth == 1
        else {f"layer{i}.{j}" for i in range(1, 5) for j in range(2)}
    )
    assert set(blocks.values()) == expected
    assert ("subgraph" in text) == (depth == 2)
    assert len(nodes) == 2 + 6 + len(expected)  # io + top-level layers + blocks
    assert len(edges) == len(nodes) - 1  # collapsed: a chain again
    total = f"{plan.total_params:,}"
    assert total == f"{sum(n.num_params for n in plan.nodes):,}"


def test_labels_are_escaped_for_both_syntaxes() -> None:
    spec = archspec.loads("name: 'say \"hi\" #1 <b> & `x`'\ninput: [4]\nlayers: [relu]")
    plan = spec.plan()
    mermaid = diagram.mermaid(diagram.layout(plan))
    check_mermaid(mermaid)
    assert mermaid.splitlines()[1] == 'title: "say \\"hi\\" #1 <b> & `x`"'
    text = 'say "hi" #1 <b> & `x` ×→'
    assert diagram.mermaid_text(text) == "say #quot;hi#quot; #35;1 #lt;b#gt; #amp; #96;x#96; ×→"
    dot = diagram.dot(diagram.layout(plan))
    assert 'digraph "say \\"hi\\" #1 <b> & `x`" {' in dot
    assert diagram.mermaid_text("a\nb") == "a b"  # never a raw line break
    assert diagram.dot_text("C:\\dir") == '"C:\\\\dir"'


@needs_dot
@pytest.mark.parametrize("path", SPECS, ids=lambda p: p.stem)
def test_graphviz_accepts_the_dot_output(path: Path) -> None:
    plan = archspec.load(path).plan()
    for depth in (None, 1):
        done = subprocess.run(
            ["dot", "-Tsvg"],
            input=diagram.dot(diagram.layout(plan, depth)),
            capture_output=True,
            text=True,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        assert done.stderr == ""
        assert "<svg" in done.stdout


@needs_dot
def test_graphviz_accepts_escaped_names(tmp_path: Path) -> None:
    plan = archspec.loads("name: 'a \"b\" \\\\ c'\ninput: [4]\nlayers: [relu]").plan()
    svg = diagram.render(plan, "svg")
    assert b"<svg" in svg and b"a &quot;b&quot;" in svg


@pytest.mark.parametrize("path", SPECS, ids=lambda p: p.stem)
def test_mermaid_output_of_every_spec_parses(path: Path) -> None:
    plan = archspec.load(path).plan()
    nodes, edges = check_mermaid(diagram.mermaid(diagram.layout(plan)))
    assert len(nodes) == len(plan.nodes) + len(plan.all_inputs) + len(plan.all_outputs)
    assert len(edges) >= len(nodes) - 1


@pytest.mark.parametrize(("name", "fmt"), [("m.mmd", "mermaid"), ("m.dot", "dot"), ("m.gv", "dot")])
def test_cli_writes_text_formats_by_extension(
    tmp_path: Path, name: str, fmt: str, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / name
    assert main(["graph", str(ROOT / "specs" / "lenet5.yaml"), "-o", str(out)]) == 0
    expected = diagram.render(plan_of("lenet5"), fmt)
    assert out.read_bytes() == expected
    assert capsys.readouterr().out == f"wrote {out} ({fmt}, 12 layers)\n"


@needs_dot
@pytest.mark.parametrize(("suffix", "magic"), [(".svg", b"<?xml"), (".png", b"\x89PNG")])
def test_cli_renders_images_with_graphviz(tmp_path: Path, suffix: str, magic: bytes) -> None:
    out = tmp_path / f"net{suffix}"
    assert main(["graph", "kinds_tour", "-o", str(out), "--depth", "1"]) == 0  # a bundled name
    assert out.read_bytes().startswith(magic)


def test_cli_prints_text_to_stdout(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["graph", "mnist_cnn", "-o", "-", "--format", "mermaid"]) == 0
    check_mermaid(capsys.readouterr().out)


def test_missing_graphviz_is_one_clear_line(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(shutil, "which", lambda name: None)
    with pytest.raises(ToolError, match=r"^svg output needs Graphviz's `dot` program"):
        diagram.render(plan_of("lenet5"), "svg")
    out = tmp_path / "net.png"
    assert main(["graph", "lenet5", "-o", str(out)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "apt-get install graphviz" in err
    assert not out.exists()


@needs_dot
def test_a_failing_dot_keeps_the_old_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    out = tmp_path / "net.svg"
    out.write_text("old")
    monkeypatch.setattr(diagram, "dot", lambda d: "digraph { this is not dot")
    with pytest.raises(ToolError, match=r"^dot could not render the diagram: .*syntax error"):
        diagram.write(plan_of("lenet5"), out, "svg")
    assert out.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["net.svg"]  # no temp file left


def test_unknown_extension_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(UsageError, match=r"^cannot tell the diagram format from 'x\.txt'"):
        diagram.format_for("x.txt", None)
    assert main(["graph", "lenet5", "-o", "x.txt"]) == 2
    assert "--format mermaid|dot|svg|png" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["-o", "-"], r"-o - prints text: say which with --format mermaid or --format dot"),
        (["-o", "-", "--format", "png"], r"png is binary or an image: write it to a file"),
        (["-o", "x.mmd", "--depth", "0"], r"--depth must be at least 1; received 0"),
    ],
)
def test_usage_errors(args: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["graph", "lenet5", *args]) == 2
    assert re.match(rf"^archspec: {message}", capsys.readouterr().err)


def test_an_invalid_spec_is_reported_not_drawn(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("input: [4]\nlayers: [{dense: 0}]\n")
    out = tmp_path / "bad.mmd"
    assert main(["graph", str(bad), "-o", str(out)]) == 1
    assert re.match(r"^archspec: .*bad\.yaml:2:18: layers\[0\]\.dense", capsys.readouterr().err)
    assert not out.exists()
