"""``archspec view``: a network as one self-contained, interactive HTML page.

The page embeds the Plan as JSON (every ``<``, ``>``, ``&`` written as ``\\u003c``…,
so no spec text can close the script element) and draws it with a small vanilla
script (``view.js``, inlined) that puts every untrusted string on the page through
``textContent``, never as markup. No network access: styles, script, data and the
sample image are all inside the file. Torch-free.

For a run directory the page also shows the training curves (``metrics.jsonl``) and
the confusion matrix (``test.json``).
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import html
import http.server
import io
import json
import math
import socketserver
from pathlib import Path
from typing import Any

from archspec import api
from archspec.errors import DataError, UsageError
from archspec.io import write_text
from archspec.loader import bundled
from archspec.shapes import kinds, memory
from archspec.shapes.plan import Plan, PlanNode, Shape, field_dict

ASSETS = Path(__file__).parent
MAX_RECORDS = 20_000  # metrics.jsonl lines read for the curves
MAX_SAMPLE_SIDE = 512  # a sample image is scaled to the input size, at most this


def safe_json(value: Any) -> str:
    """JSON that can sit inside ``<script>``: ``<``, ``>``, ``&`` and the JS line
    separators become ``\\u`` escapes (still the same JSON value).

    >>> safe_json({"name": "</script><img onerror=x>"})
    '{"name": "\\\\u003c/script\\\\u003e\\\\u003cimg onerror=x\\\\u003e"}'
    """
    text = json.dumps(value, ensure_ascii=False, allow_nan=False)
    for ch, code in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026")):
        text = text.replace(ch, code)
    return text.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")


def _number(value: Any) -> Any:
    return value if isinstance(value, int | float | str | bool) or value is None else str(value)


def _plain(value: Any) -> Any:
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    return _number(value)


def node_data(node: PlanNode) -> dict[str, Any]:
    params = node.params.model_dump() if hasattr(node.params, "model_dump") else {}
    return {
        "name": node.name,
        "kind": node.kind,
        "detail": kinds.get(node.kind).describe(node),
        "inputs": list(node.inputs),
        "in_shapes": [list(s) for s in node.in_shapes],
        "shape": list(node.shape),
        "shape_text": node.shape_text(),
        "outputs": [{"name": o.name, "shape": list(o.shape)} for o in node.outputs],
        "ports": [node.port(i) for i in range(len(node.inputs))],
        "params": node.num_params,
        "macs": node.macs,
        "field": field_dict(node.field),
        "group": list(node.group),
        "line": node.location.line if node.location else None,
        "resolved": _plain(params),
    }


def plan_data(plan: Plan, train: Any = None) -> dict[str, Any]:
    est = memory.training_estimate(plan, train)
    return {
        "name": plan.name,
        "input": list(plan.input_shape),
        "output": plan.output,
        "output_shape": list(plan.output_shape),
        "totals": {
            "layers": len(plan.nodes),
            "params": plan.total_params,
            "macs": plan.total_macs,
            "weights": memory.human(plan.total_params * memory.BYTES),
            "training_memory": memory.human(est.total),
            "batch": est.batch_size,
        },
        "nodes": [node_data(node) for node in plan.nodes],
    }


# ----------------------------------------------------------------------------- samples
def sample_image(path: Path, input_shape: Shape) -> dict[str, Any]:
    """The image scaled to the input's H×W, as a PNG data URL (for 2-D and 3-D specs)."""
    from PIL import Image, UnidentifiedImageError

    if len(input_shape) < 3:
        raise UsageError(f"--image needs a 2-D spec; this input is {list(input_shape)}")
    height, width = input_shape[-2], input_shape[-1]
    try:
        with Image.open(path) as img:
            mode = "L" if input_shape[0] == 1 else "RGB"
            scale = min(1.0, MAX_SAMPLE_SIDE / max(height, width))
            size = (max(1, round(width * scale)), max(1, round(height * scale)))
            shown = img.convert(mode).resize(size)
            out = io.BytesIO()
            shown.save(out, format="PNG")
    except FileNotFoundError:
        raise DataError(f"{path}: no such image", "check the path") from None
    except (UnidentifiedImageError, OSError) as exc:
        raise DataError(f"{path}: not an image ({exc})", "give a PNG or JPEG file") from None
    data = base64.b64encode(out.getvalue()).decode("ascii")
    return {"kind": "image", "src": f"data:image/png;base64,{data}"}


def sample_series(length: int) -> dict[str, Any]:
    """A made-up signal to draw 1-D receptive fields on: two sines and a step."""
    values = [
        round(math.sin(i / 6) + 0.5 * math.sin(i / 1.7) + (0.8 if i > length // 2 else 0), 4)
        for i in range(length)
    ]
    return {"kind": "series", "values": values}


# --------------------------------------------------------------------------------- runs
def run_data(folder: Path) -> dict[str, Any]:
    """Curves from ``metrics.jsonl`` and the test results from ``test.json``."""
    records: list[dict[str, Any]] = []
    log = folder / "metrics.jsonl"
    if log.is_file():
        with log.open(encoding="utf-8", errors="replace") as handle:
            for i, line in enumerate(handle):
                if i >= MAX_RECORDS:
                    break
                try:
                    record = json.loads(line)
                except json.JSONDecodeError:
                    continue  # a line cut short by a crash
                if isinstance(record, dict) and record.get("type") == "epoch":
                    records.append(_epoch(record))
    test: Any = None
    test_file = folder / "test.json"
    if test_file.is_file():
        try:
            test = _test(json.loads(test_file.read_text(encoding="utf-8", errors="replace")))
        except (json.JSONDecodeError, TypeError, ValueError):
            raise DataError(f"{test_file}: not valid JSON", "rerun the training's test") from None
    return {"folder": folder.name, "epochs": records, "test": test}


def _finite(value: Any) -> float | None:
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    return None


def _epoch(record: dict[str, Any]) -> dict[str, Any]:
    keys = ("epoch", "train_loss", "val_loss", "train_acc", "val_acc")
    return {key: _finite(record.get(key)) for key in keys}


def _test(raw: Any) -> dict[str, Any] | None:
    if not isinstance(raw, dict):
        return None
    matrix = raw.get("confusion")
    rows = (
        [[int(v) if _finite(v) is not None else 0 for v in row] for row in matrix]
        if isinstance(matrix, list) and all(isinstance(row, list) for row in matrix)
        else None
    )
    classes = raw.get("classes")
    return {
        "accuracy": _finite(raw.get("accuracy")),
        "loss": _finite(raw.get("loss")),
        "examples": _finite(raw.get("examples")),
        "split": str(raw.get("split", "")),
        "classes": [str(c) for c in classes] if isinstance(classes, list) else None,
        "confusion": rows,
    }


# --------------------------------------------------------------------------------- page
def page(target: str, image: Path | None = None, input_shape: Shape | None = None) -> str:
    """The HTML page of a spec (file or bundled name) or a run directory."""
    folder = Path(target)
    run = None
    if folder.is_dir():
        spec_file = folder / "spec.yaml"
        if not spec_file.is_file():
            raise UsageError(
                f"{folder} is a directory without spec.yaml: give a spec file or a run directory"
            )
        run = run_data(folder)
        path = spec_file
    else:
        path = bundled.resolve(target)
    spec = api.load(path, input_shape=input_shape)
    plan = spec.plan(input_shape)
    data = plan_data(plan, spec.train)
    data["run"] = run
    if image is not None:
        data["sample"] = sample_image(image, plan.input_shape)
    elif len(plan.input_shape) == 2:
        data["sample"] = sample_series(plan.input_shape[1])
    else:
        data["sample"] = None
    return render(data)


def render(data: dict[str, Any]) -> str:
    css = (ASSETS / "view.css").read_text(encoding="utf-8")
    script = (ASSETS / "view.js").read_text(encoding="utf-8")
    title = html.escape(f"{data['name']} — archspec view")
    # Only this script may run: no inline handler, no injected script, nothing fetched.
    digest = base64.b64encode(hashlib.sha256(script.encode("utf-8")).digest()).decode("ascii")
    return (
        "<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>\n"
        "<meta http-equiv='Content-Security-Policy' content=\"default-src 'none'; "
        f"img-src data:; style-src 'unsafe-inline'; script-src 'sha256-{digest}'\">\n"
        f"<title>{title}</title>\n<style>{css}</style></head>\n<body>\n"
        f"<script type='application/json' id='plan-data'>{safe_json(data)}</script>\n"
        f"<script>{script}</script>\n</body></html>\n"
    )


def write(text: str, dest: Path) -> None:
    write_text(dest, text)


def serve(text: str, port: int = 0) -> None:
    """Serve the page on 127.0.0.1 until interrupted."""
    body = text.encode("utf-8")

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # the name http.server calls
            if self.path not in ("/", "/index.html"):
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    with socketserver.TCPServer(("127.0.0.1", port), Handler) as httpd:
        host, bound = httpd.server_address[:2]
        print(f"serving on http://{host!s}:{bound}/ (Ctrl-C stops)", flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            httpd.serve_forever()
