"""`archspec view`: the page's data and escaping, the command, and the page itself in a
real browser (Playwright driving the system Chromium; skipped, saying why, without one)."""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest

import archspec
from archspec.cli import main
from archspec.outputs import view
from archspec.shapes.plan import format_shape

ROOT = Path(__file__).resolve().parents[1]
HOSTILE = '</script><img src=x onerror="window.__pwned=1">&amp;<b>x</b>'
CHROMIUM = os.environ.get("ARCHSPEC_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"


# ------------------------------------------------------------------------ without a browser
def test_safe_json_cannot_close_the_script_and_reads_back_the_same() -> None:
    value = {"name": HOSTILE, "sep": "a\u2028b"}
    text = view.safe_json(value)
    assert "<" not in text and ">" not in text and "&" not in text and "\u2028" not in text
    assert json.loads(text) == value


def test_a_hostile_spec_name_is_only_in_the_escaped_data(tmp_path: Path) -> None:
    spec = tmp_path / "bad.yaml"
    spec.write_text(f"name: {json.dumps(HOSTILE)}\ninput: [4]\nlayers: [{{dense: 2}}]\n")
    page = view.page(str(spec))
    assert "<img" not in page and "window.__pwned" in page  # present, but only as \u003c data
    assert page.count("</script>") == 2  # the data's and the script's own, nothing more
    assert "&lt;/script&gt;&lt;img" in page  # the <title> is HTML-escaped


def test_page_data_is_the_plans(tmp_path: Path) -> None:
    page = view.page("mnist_cnn")
    data = _data(page)
    plan = archspec.load(ROOT / "specs" / "mnist_cnn.yaml").plan()
    assert [n["name"] for n in data["nodes"]] == [n.name for n in plan.nodes]
    assert data["totals"]["params"] == plan.total_params
    assert data["totals"]["macs"] == plan.total_macs
    assert "http" not in page.split("<script>")[1].replace("http://www.w3.org/2000/svg", "")


def _data(page: str) -> dict[str, Any]:
    match = re.search(r"<script type='application/json' id='plan-data'>(.*?)</script>", page)
    assert match
    data: dict[str, Any] = json.loads(match[1])
    return data


def test_view_command_writes_the_page(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "v.html"
    assert main(["view", "lenet5", "-o", str(out)]) == 0
    assert out.read_text().startswith("<!DOCTYPE html>")
    assert main(["view", "lenet5"]) == 2
    assert "either -o view.html, or --serve" in capsys.readouterr().err
    assert main(["view", str(tmp_path)]) == 2  # a folder without spec.yaml
    assert main(["view", "timeseries_cnn", "-o", str(out), "--image", str(out)]) == 2  # 1-D
    assert main(["view", "mnist_cnn", "-o", str(out), "--image", str(tmp_path / "none.png")]) == 1


def test_view_serve_on_loopback(tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "archspec", "view", "lenet5", "--serve", "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline().decode()
        assert f"http://127.0.0.1:{port}/" in line
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=30) as answer:
            body = answer.read().decode()
        assert "plan-data" in body and "lenet" in body.lower()
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()


# ------------------------------------------------------------------------------ in a browser
@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    sync_api = pytest.importorskip(
        "playwright.sync_api", reason="browser tests need playwright (pip install playwright)"
    )
    if not Path(CHROMIUM).exists():
        pytest.skip(f"no Chromium at {CHROMIUM} (apt-get install -y chromium)")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield b
        b.close()


def _open(browser: Any, html: str, tmp_path: Path, name: str = "view.html") -> Any:
    path = tmp_path / name
    path.write_text(html, encoding="utf-8")
    page = browser.new_page(viewport={"width": 1300, "height": 900})
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    page.on(
        "request",
        lambda req: (
            errors.append(f"request {req.url}")
            if not req.url.startswith(("file:", "data:"))
            else None
        ),
    )
    page.goto(path.as_uri())
    page.wait_for_selector("body[data-ready='1']", timeout=20_000)
    page.errors = errors
    return page


def test_every_layer_is_drawn_with_its_shape_and_skips_are_visible(
    browser: Any, tmp_path: Path
) -> None:
    plan = archspec.load(ROOT / "specs" / "resnet18.yaml").plan()
    page = _open(browser, view.page("resnet18"), tmp_path)
    names = page.eval_on_selector_all(".node", "els => els.map(e => e.dataset.name)")
    assert names == [n.name for n in plan.nodes]
    shapes = page.eval_on_selector_all(".node .shape", "els => els.map(e => e.textContent)")
    assert shapes == [format_shape(n.shape) for n in plan.nodes]
    totals = page.text_content("#totals")
    assert f"{plan.total_params:,}" in totals and f"{plan.total_macs:,}" in totals
    assert "training memory" in totals
    # the shortcut of the first residual block: pool1 feeds layer1.0.add1 past four layers
    skips = page.eval_on_selector_all(
        "#edges path.skip", "els => els.map(e => [e.dataset.from, e.dataset.to])"
    )
    assert ["pool1", "layer1.0.add1"] in skips
    assert page.errors == []


def test_click_a_node_for_its_details(browser: Any, tmp_path: Path) -> None:
    plan = archspec.load(ROOT / "specs" / "resnet18.yaml").plan()
    page = _open(browser, view.page("resnet18"), tmp_path)
    node = plan.node("layer2.0.downsample_conv")
    page.click(f".node[data-name='{node.name}']")
    assert page.text_content("#details h2") == node.name
    assert page.text_content("#details td[data-key='output shape']") == format_shape(node.shape)
    assert page.text_content("#details td[data-key='params']") == f"{node.num_params:,}"
    assert page.text_content("#details td[data-key='stride']") == "[2]"


def test_blocks_collapse_and_expand(browser: Any, tmp_path: Path) -> None:
    plan = archspec.load(ROOT / "specs" / "resnet18.yaml").plan()
    page = _open(browser, view.page("resnet18"), tmp_path)
    inside = [n for n in plan.nodes if "layer2" in n.group]
    page.click(".group-head[data-group='layer2']")
    assert page.locator(".node:visible").count() == len(plan.nodes) - len(inside)
    # edges into and out of the collapsed block still drawn (to its head)
    assert page.locator("#edges path").count() > 0
    page.click(".group-head[data-group='layer2']")
    assert page.locator(".node:visible").count() == len(plan.nodes)


def _expected_region(start: Any, jump: Any, size: Any, p: int) -> str:
    centre = Fraction(start) + p * Fraction(jump)
    half = Fraction(size - 1, 2)
    lo, hi = centre - half, centre + half
    return f"{_js(lo)}:{_js(hi)}"


def _js(x: Fraction) -> str:
    """A number as JavaScript's String() writes it."""
    return str(int(x)) if x.denominator == 1 else repr(float(x))


def test_receptive_field_rectangle_matches_the_plan_2d_on_a_sample_image(
    browser: Any, tmp_path: Path
) -> None:
    from PIL import Image

    image = tmp_path / "digit.png"
    Image.new("L", (28, 28), 128).save(image)
    plan = archspec.load(ROOT / "specs" / "mnist_cnn.yaml").plan()
    page = _open(browser, view.page("mnist_cnn", image=image), tmp_path)
    assert page.locator("#in-view image").count() == 0  # nothing until a layer is picked
    for node in plan.nodes:
        if node.field is None or len(node.shape) != 3:
            continue
        index = plan.nodes.index(node)
        page.select_option("#rf-layer", str(index))
        row, col = node.shape[1] - 1, 1  # an edge position: its field reaches into padding
        page.fill("#rf-controls input[data-axis='0']", str(row))
        page.fill("#rf-controls input[data-axis='1']", str(col))
        rect = page.locator("#rf-rect")
        fy, fx = node.field
        assert rect.get_attribute("data-rows") == _expected_region(fy.start, fy.jump, fy.size, row)
        assert rect.get_attribute("data-cols") == _expected_region(fx.start, fx.jump, fx.size, col)
        # the drawn rectangle: the part of the region inside the 28×28 input, in pixels
        scale = float(page.get_attribute("#in-view", "width")) / 28
        lo = Fraction(fx.start) + col * Fraction(fx.jump) - Fraction(fx.size - 1, 2)
        x0 = max(float(lo) - 0.5, 0)
        assert float(rect.get_attribute("x")) == pytest.approx(x0 * scale)
    assert page.get_attribute("#in-view image", "href").startswith("data:image/png;base64,")
    # clicking the output grid picks that position
    page.select_option("#rf-layer", "0")
    grid = page.locator("#out-grid")
    box = grid.bounding_box()
    cell = box["width"] / plan.nodes[0].shape[2]
    grid.click(position={"x": cell * 3.5, "y": cell * 7.5})
    assert page.input_value("#rf-controls input[data-axis='0']") == "7"
    assert page.input_value("#rf-controls input[data-axis='1']") == "3"
    assert page.errors == []


def test_receptive_field_1d_on_a_sample_series(browser: Any, tmp_path: Path) -> None:
    plan = archspec.load(ROOT / "specs" / "timeseries_cnn.yaml").plan()
    page = _open(browser, view.page("timeseries_cnn"), tmp_path)
    node = next(n for n in plan.nodes if n.kind == "conv" and n.field and n.field[0].size > 20)
    page.select_option("#rf-layer", str(plan.nodes.index(node)))
    page.fill("#rf-controls input[data-axis='0']", "10")
    (fx,) = node.field
    assert page.get_attribute("#rf-rect", "data-cols") == _expected_region(
        fx.start, fx.jump, fx.size, 10
    )
    assert page.locator("#in-view polyline").count() == 1
    assert f"({fx.size})" in page.text_content("#rf-readout")


def _run_dir(tmp_path: Path, name: str, classes: list[str]) -> Path:
    run = tmp_path / "runs" / "r1"
    run.mkdir(parents=True)
    spec = (ROOT / "specs" / "lenet5.yaml").read_text()
    run.joinpath("spec.yaml").write_text(
        re.sub(r"(?m)^name: .*$", f"name: {json.dumps(name)}", spec)
    )
    epochs = [
        {
            "type": "epoch",
            "epoch": e,
            "train_loss": 1 / e,
            "val_loss": 1.2 / e,
            "train_acc": 0.5 + e / 10,
            "val_acc": 0.45 + e / 10,
        }
        for e in (1, 2, 3)
    ]
    lines = [json.dumps(r) for r in [{"type": "step", "step": 5, "loss": 2.0}, *epochs]]
    run.joinpath("metrics.jsonl").write_text("\n".join(lines) + '\n{"type": "epo')  # cut short
    confusion = [[5, 1], [2, 7]]
    test = {
        "split": "test",
        "examples": 15,
        "loss": 0.4,
        "accuracy": 0.8,
        "classes": classes,
        "confusion": confusion,
    }
    run.joinpath("test.json").write_text(json.dumps(test))
    return run


def test_run_directory_adds_curves_and_confusion(browser: Any, tmp_path: Path) -> None:
    run = _run_dir(tmp_path, "lenet-run", ["zero", "one"])
    page = _open(browser, view.page(str(run)), tmp_path)
    for chart in ("loss", "accuracy"):
        assert page.locator(f"svg[data-chart='{chart}'] polyline").count() == 2
    cells = page.eval_on_selector_all("#confusion td", "els => els.map(e => e.textContent)")
    assert cells == ["5", "1", "2", "7"]
    assert "80.00%" in page.text_content("#test-accuracy")


def test_hostile_names_render_as_text_and_run_nothing(browser: Any, tmp_path: Path) -> None:
    run = _run_dir(tmp_path, HOSTILE, [HOSTILE, "<i>b</i>"])
    page = _open(browser, view.page(str(run)), tmp_path)
    assert page.text_content("header h1") == HOSTILE
    assert page.title() == f"{HOSTILE} — archspec view"
    headers = page.eval_on_selector_all("#confusion th", "els => els.map(e => e.textContent)")
    assert HOSTILE in headers and "<i>b</i>" in headers
    assert page.evaluate("window.__pwned") is None
    assert page.locator("img").count() == 0 and page.locator("i").count() == 0
    assert page.locator("b").count() == len(page.eval_on_selector_all("#totals b", "e => e"))
    assert page.errors == []


def test_view_does_not_import_torch(tmp_path: Path) -> None:
    out = tmp_path / "v.html"
    code = (
        "import sys\nfrom archspec.cli import main\n"
        f"assert main(['view', 'resnet18', '-o', {str(out)!r}]) == 0\n"
        "print([m for m in sys.modules if m.split('.')[0] == 'torch'])"
    )
    run = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120
    )
    assert run.returncode == 0, run.stderr
    assert run.stdout.splitlines()[-1] == "[]"
