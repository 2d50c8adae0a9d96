"""Principle 2 of DESIGN.md: checking never imports torch (nor numpy).

Each test runs a fresh interpreter, since this test session may well have imported
torch already.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SPECS = sorted(str(path.relative_to(ROOT)) for path in (ROOT / "specs").glob("*.yaml"))
HEAVY = ("torch", "numpy")


def python(code: str, *flags: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *flags, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120
    )


def heavy_modules_after(code: str) -> list[str]:
    probe = (
        f"import sys\n{code}\n"
        f"print(__import__('json').dumps(sorted(m for m in sys.modules "
        f"if m.split('.')[0] in {HEAVY!r})))\n"
    )
    run = python(probe)
    assert run.returncode == 0, run.stderr
    modules: list[str] = json.loads(run.stdout.splitlines()[-1])
    return modules


def test_load_and_plan_do_not_import_torch() -> None:
    code = (
        "import archspec\n"
        "plan = archspec.load('specs/mnist_cnn.yaml').plan()\n"
        "assert plan.total_params == 3_274_634\n"
        "archspec.loads('input: [3, 32]\\nlayers: [{conv: {depth: 4, kernel: 3}}]').plan((3, 64))\n"
    )
    assert heavy_modules_after(code) == []


def test_check_command_does_not_import_torch() -> None:
    code = (
        "from archspec.cli import main\n"
        f"assert main(['check', *{SPECS!r}]) == 0\n"
        f"assert main(['check', '--json', '--depth', '1', *{SPECS!r}]) == 0\n"
        "assert main(['check', '--markdown', '--input', '1x32x32', 'specs/mnist_cnn.yaml']) == 0\n"
        "assert main(['check', '--input', '1x2x2', 'specs/mnist_cnn.yaml']) == 1\n"
    )
    assert heavy_modules_after(code) == []


def test_invalid_specs_do_not_import_torch(tmp_path: Path) -> None:
    spec = tmp_path / "bad.yaml"
    spec.write_text("input: [1, 8]\nlayers:\n  - cnov: 3\n  - dense: 0\n")
    code = f"from archspec.cli import main\nassert main(['check', {str(spec)!r}]) == 1\n"
    assert heavy_modules_after(code) == []


def test_importtime_of_archspec_check_lists_no_torch() -> None:
    run = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "archspec", "check", "specs/mnist_cnn.yaml"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr
    modules = [
        line.rsplit("|", 1)[-1].strip()
        for line in run.stderr.splitlines()
        if line.startswith("import time:")
    ]
    assert "archspec.cli" in modules  # the probe sees archspec's own imports
    assert not [m for m in modules if re.match(r"(torch|numpy)(\.|$)", m)]
