"""`archspec lsp`, driven over stdio as an editor drives it (tests/lsp_client.py speaks
JSON-RPC to a real server process; nothing of the protocol is mocked)."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import archspec

pytest.importorskip("pygls", reason="the language server needs the lsp extra (pygls)")

from lsp_client import ROOT, Client

SPEC = """\
name: tiny
vars: {width: 8}
blocks:
  unit:
    args: {depth: ~}
    layers:
      - conv: {depth: depth, kernel: 3, padding: same}
        name: c
      - relu:
        name: r
      - add:
        from: [r, input]
input: [8, 28, 28]
layers:
  - conv: {depth: width, kernel: 5, padding: same}
    name: stem
  - unit: {depth: 8}
    name: u
  - pool: {kind: max, size: 2}
  - conv: {depth: 16, kernel: 3, stride: 2}
  - add:
    from: [conv1, conv1]
  - flatten
  - dense: 10
"""


@pytest.fixture(scope="module")
def client() -> Iterator[Client]:
    c = Client()
    c.initialize()
    yield c
    c.close()


def _open(client: Client, path: Path, text: str) -> tuple[str, list[dict[str, Any]]]:
    path.write_text(text)
    uri = path.resolve().as_uri()
    client.open(uri, text)
    return uri, client.diagnostics(uri, 1)[1]


def _line(text: str, needle: str) -> int:
    """0-based line of the first line containing ``needle``."""
    return next(i for i, line in enumerate(text.splitlines()) if needle in line)


def test_initialize_announces_the_features() -> None:
    fresh = Client()
    try:
        got = fresh.initialize()["capabilities"]
    finally:
        fresh.close()
    for feature in ("hoverProvider", "completionProvider", "definitionProvider"):
        assert got[feature]
    assert got["inlayHintProvider"] and got["documentSymbolProvider"]


def test_valid_spec_has_no_diagnostics(client: Client, tmp_path: Path) -> None:
    _, diags = _open(client, tmp_path / "ok.yaml", SPEC)
    assert diags == []


def test_problem_at_its_exact_range_with_the_hint_and_cleared_when_fixed(
    client: Client, tmp_path: Path
) -> None:
    bad = SPEC.replace("kernel: 3, stride", "kernel: 30, stride")
    uri, diags = _open(client, tmp_path / "bad.yaml", bad)
    assert len(diags) == 1
    d = diags[0]
    line = _line(bad, "kernel: 30")
    col = bad.splitlines()[line].index("30")
    assert d["range"] == {
        "start": {"line": line, "character": col},
        "end": {"line": line, "character": col + 2},
    }
    assert d["severity"] == 1 and d["source"] == "archspec"
    assert "the kernel spans 30" in d["message"] and " — " in d["message"]  # rule — hint
    # the same problem, in the same words, as `archspec check`
    with pytest.raises(archspec.SpecError) as exc:
        archspec.loads(bad, "x.yaml")
    assert exc.value.problems[0].message in d["message"]
    version = client.change(uri, SPEC)
    assert client.diagnostics(uri, version)[1] == []


def test_unknown_kind_and_every_independent_problem(client: Client, tmp_path: Path) -> None:
    bad = SPEC.replace("  - flatten", "  - flaten").replace("size: 2}", "size: 2, sise: 3}")
    _, diags = _open(client, tmp_path / "two.yaml", bad)
    messages = sorted(d["message"] for d in diags)
    assert len(diags) == 2, messages
    unknown = next(d for d in diags if "unknown layer kind" in d["message"])
    line = _line(bad, "- flaten")
    assert unknown["range"]["start"] == {"line": line, "character": 4}
    assert unknown["range"]["end"] == {"line": line, "character": 10}
    assert "did you mean 'flatten'" in unknown["message"]


def test_inlay_hints_are_the_plans_shapes(client: Client, tmp_path: Path) -> None:
    uri, _ = _open(client, tmp_path / "hints.yaml", SPEC)
    hints = client.request(
        "textDocument/inlayHint",
        {"textDocument": {"uri": uri}, "range": _whole(SPEC)},
    )
    by_line = {h["position"]["line"]: h["label"] for h in hints}
    plan = archspec.loads(SPEC).plan()
    lines = SPEC.splitlines()
    assert by_line[_line(SPEC, "kernel: 5")] == "→ 8×28×28"
    assert by_line[_line(SPEC, "- unit:")] == "→ 8×28×28"  # the block instance's output
    assert by_line[_line(SPEC, "pool:")] == "→ 8×14×14"
    assert by_line[_line(SPEC, "stride: 2")] == "→ 16×6×6"
    assert by_line[_line(SPEC, "- dense")] == f"→ {plan.output_shape[0]}"
    # at the end of the line
    line = _line(SPEC, "pool:")
    hint = next(h for h in hints if h["position"]["line"] == line)
    assert hint["position"]["character"] == len(lines[line])
    # one hint per layer line: every top-level layer has its shape
    top = [n for n in plan.nodes if not n.group]
    assert {n.location.line - 1 for n in top if n.location} <= set(by_line)


def _whole(text: str) -> dict[str, Any]:
    return {
        "start": {"line": 0, "character": 0},
        "end": {"line": len(text.splitlines()), "character": 0},
    }


def test_hover_shows_shapes_counts_field_resolved_params_and_docs(
    client: Client, tmp_path: Path
) -> None:
    uri, _ = _open(client, tmp_path / "hover.yaml", SPEC)
    line = _line(SPEC, "kernel: 5")
    text = client.request("textDocument/hover", client.at(uri, line, 6))["contents"]["value"]
    node = archspec.loads(SPEC).plan().node("stem")
    assert "input 8×28×28 → output **8×28×28**" in text
    assert f"params {node.num_params:,}" in text and f"MACs {node.macs:,}" in text
    assert "receptive field 5×5 (jump 1)" in text
    assert "depth=8" in text  # `depth: width` resolved through vars
    assert "Number of filters" in text  # the kind's documentation
    # a layer inside a block: every use, with its instance name
    inner = client.request("textDocument/hover", client.at(uri, _line(SPEC, "name: c"), 8))
    assert "**u.c**" in inner["contents"]["value"]
    # a name in from: → what that layer gives
    line = _line(SPEC, "from: [conv1")
    got = client.request("textDocument/hover", client.at(uri, line, 12))["contents"]["value"]
    assert got.startswith("`from: conv1` reads:") and "output **16×6×6**" in got


def test_completion_kinds_params_enums_names_blocks_vars(client: Client, tmp_path: Path) -> None:
    uri, _ = _open(client, tmp_path / "comp.yaml", SPEC)

    def labels(text: str, line_text: str) -> list[str]:
        """Type ``line_text`` in place of the last layer; complete at its end."""
        lines = text.splitlines()
        i = _line(text, "- dense: 10")
        lines[i] = line_text
        new = "\n".join(lines) + "\n"
        client.change(uri, new)
        got = client.request("textDocument/completion", client.at(uri, i, len(line_text)))
        return [item["label"] for item in got["items"]]

    kinds = labels(SPEC, "  - ")
    assert {"conv", "pool", "dense", "relu", "unit"} <= set(kinds)  # kinds and block names
    assert {"kernel", "stride", "dilation"} <= set(labels(SPEC, "  - conv: {depth: 4, "))
    assert "depth" not in labels(SPEC, "  - conv: {depth: 4, ")  # already written
    assert set(labels(SPEC, "  - pool: {kind: ")) >= {"max", "avg", "lp"}
    assert "width" in labels(SPEC, "  - conv: {depth: ")  # vars
    names = labels(SPEC, "    from: [")
    assert {"stem", "u", "conv1", "input"} <= set(names)
    assert {"true", "false"} <= set(labels(SPEC, "  - conv: {depth: 4, bias: "))


def test_definition_of_from_names_block_uses_and_extends(client: Client, tmp_path: Path) -> None:
    uri, _ = _open(client, tmp_path / "defs.yaml", SPEC)
    # from: [r, input] inside the block → the layer named r
    line = _line(SPEC, "from: [r, input]")
    got = client.request("textDocument/definition", client.at(uri, line, 15))
    assert got["uri"] == uri and got["range"]["start"]["line"] == _line(SPEC, "name: r")
    # from: [conv1, ...] at top level → the default-named conv1
    line = _line(SPEC, "from: [conv1")
    got = client.request("textDocument/definition", client.at(uri, line, 12))
    assert got["range"]["start"]["line"] == _line(SPEC, "stride: 2")
    # a block use → the block
    got = client.request("textDocument/definition", client.at(uri, _line(SPEC, "- unit:"), 5))
    assert got["range"]["start"]["line"] == _line(SPEC, "unit:")
    # extends → the parent file
    (tmp_path / "base.yaml").write_text(SPEC)
    child = "extends: base.yaml\ninput: [8, 32, 32]\n"
    curi, diags = _open(client, tmp_path / "child.yaml", child)
    assert diags == []
    got = client.request("textDocument/definition", client.at(curi, 0, 12))
    assert got["uri"] == (tmp_path / "base.yaml").resolve().as_uri()
    # the child's layers live in the parent: its extends: line shows the whole network
    hints = client.request(
        "textDocument/inlayHint", {"textDocument": {"uri": curi}, "range": _whole(child)}
    )
    plan = archspec.loads(SPEC.replace("[8, 28, 28]", "[8, 32, 32]")).plan()
    assert [h["label"] for h in hints] == [f"→ {len(plan.nodes)} layers, output 10"]


def test_document_symbols_nest_layers_in_blocks(client: Client, tmp_path: Path) -> None:
    uri, _ = _open(client, tmp_path / "syms.yaml", SPEC)
    symbols = client.request("textDocument/documentSymbol", {"textDocument": {"uri": uri}})
    names = [s["name"] for s in symbols]
    assert names == ["unit", "stem", "u", "pool1", "conv1", "add1", "flatten1", "dense1"]
    unit = symbols[0]
    assert [c["name"] for c in unit["children"]] == ["c", "r", "add"]
    assert "→ 8×14×14" in symbols[3]["detail"]


def test_unsaved_parent_rechecks_open_children(client: Client, tmp_path: Path) -> None:
    base = tmp_path / "parent.yaml"
    base_uri, _ = _open(client, base, SPEC)
    child_uri, diags = _open(client, tmp_path / "kid.yaml", "extends: parent.yaml\n")
    assert diags == []
    # break the parent in the editor only (not saved): the child is checked again
    client.change(base_uri, SPEC.replace("kernel: 3, stride", "kernel: 30, stride"))
    _, diags = client.diagnostics(child_uri)
    assert len(diags) == 1
    assert diags[0]["range"]["start"]["line"] == 0  # shown at extends:
    assert "parent.yaml" in diags[0]["message"] and "kernel spans 30" in diags[0]["message"]
    assert base.read_text() == SPEC  # the disk was not touched
    client.change(base_uri, SPEC)
    assert client.diagnostics(child_uri)[1] == []
    # and the editor is asked to fetch the (changed) inlay hints again
    assert "workspace/inlayHint/refresh" in client.server_requests


def test_untitled_buffer(client: Client) -> None:
    uri = "untitled:Untitled-1"
    client.open(uri, "input: [4]\nlayers: [{dense: 3}, sofmax]\n")
    diags = client.diagnostics(uri, 1)[1]
    assert len(diags) == 1 and "did you mean 'softmax'" in diags[0]["message"]


def test_a_burst_of_changes_publishes_in_order_ending_with_the_newest(
    client: Client, tmp_path: Path
) -> None:
    uri, _ = _open(client, tmp_path / "burst.yaml", SPEC)
    last = 0
    for i in range(30):  # alternately broken and fixed, faster than it can check
        text = SPEC.replace("kernel: 3, s", f"kernel: {30 + i}, s") if i % 2 == 0 else SPEC
        last = client.change(uri, text)
    # the text after the burst is SPEC (i = 29): the final publish is of that version, clean
    versions = []
    while True:
        params = _next_publish(client, uri)
        versions.append(params["version"])
        if params["version"] == last:
            assert params["diagnostics"] == []
            break
    assert versions == sorted(versions), versions  # an older result never follows a newer one
    assert len(versions) < 30  # debounced: not one check per keystroke


def _next_publish(client: Client, uri: str) -> dict[str, Any]:
    while True:
        _, message = client.notifications.get(timeout=60)
        is_publish = message.get("method") == "textDocument/publishDiagnostics"
        if is_publish and message["params"]["uri"] == uri:
            params: dict[str, Any] = message["params"]
            return params


def test_the_server_never_imports_torch() -> None:
    code = (
        "import sys, archspec.outputs.lsp.server as s, archspec.outputs.lsp.analysis as a\n"
        "r = a.analyze(open('specs/resnet18.yaml').read(), None, 'x')\n"
        "assert r.complete, r.findings\n"
        "import json; print(json.dumps([m for m in sys.modules if m.split('.')[0] == 'torch']))"
    )
    run = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120
    )
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout.splitlines()[-1]) == []


def test_every_position_of_every_bundled_spec_answers_without_error() -> None:
    """In-process sweep (the protocol is covered above): hover, completion, definition,
    hints and symbols at every line of every spec in specs/, whole and cut short."""
    from lsprotocol import types

    from archspec.outputs.lsp import features
    from archspec.outputs.lsp.analysis import analyze

    for path in sorted((ROOT / "specs").glob("*.yaml")):
        text = path.read_text()
        lines = text.splitlines()
        for cut in [len(lines), *range(3, len(lines), 7)]:
            part = "\n".join(lines[:cut]) + "\n"
            a = analyze(part, path, str(path))
            assert cut < len(lines) or a.complete, (path, a.findings)
            features.diagnostics(a)
            features.inlay_hints(a, 0, cut)
            features.symbols(a)
            for i, line in enumerate(lines[:cut]):
                for col in {0, len(line) // 2, len(line)}:
                    at = types.Position(i, col)
                    features.hover(a, at)
                    features.completion(a, at)
                    features.definition(a, at)
