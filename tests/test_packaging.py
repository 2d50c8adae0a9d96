"""Packaging and the command line's edges: ``--version``, ``python -m archspec``, ``summary``,
bundled example specs by bare name, the wheel's contents, and a torch-free start."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tomllib
import venv
import zipfile
from pathlib import Path

import pytest

import archspec
from archspec.cli import COMMANDS, main
from archspec.loader import bundled

ROOT = Path(__file__).resolve().parent.parent
SPEC_NAMES = sorted(p.stem for p in (ROOT / "specs").glob("*.yaml"))


def run(
    *args: str, cwd: Path | None = None, python: str = sys.executable, checkout: bool = True
) -> subprocess.CompletedProcess[str]:
    """``python args`` with this checkout's archspec (``checkout``) or the installed one."""
    env = {**os.environ, "PYTHONPATH": str(ROOT) if checkout else ""}
    return subprocess.run(
        [python, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300, check=False
    )


def test_version_flag(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out == f"archspec {archspec.__version__}\n"


def test_python_dash_m_runs_the_cli(tmp_path: Path) -> None:
    done = run("-m", "archspec", "--version", cwd=tmp_path)
    assert (done.returncode, done.stdout) == (0, f"archspec {archspec.__version__}\n")
    helped = run("-m", "archspec", "--help", cwd=tmp_path)
    for verb in ("check", "train", "eval", "predict", "export", "graph", "schema", "summary"):
        assert verb in helped.stdout
    assert set(COMMANDS) >= {"predict", "export", "graph", "schema", "summary"}


def test_summary_is_check_markdown(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", "--markdown", "--depth", "1", str(ROOT / "specs" / "resnet18.yaml")]) == 0
    expected = capsys.readouterr().out
    assert main(["summary", "resnet18", "--depth", "1"]) == 0  # a bundled spec, by name
    assert capsys.readouterr().out == expected
    assert main(["summary", "lenet5", "--depth", "0"]) == 2
    assert capsys.readouterr().err.startswith("archspec: --depth must be at least 1")


# ------------------------------------------------------------------------------ bundled specs
def test_bundled_specs_are_the_repository_specs() -> None:
    assert bundled.names() == SPEC_NAMES
    assert bundled.specs_dir() == ROOT / "specs"


@pytest.mark.parametrize("arg", ["mnist_cnn", "mnist_cnn.yaml"])
def test_a_bare_name_finds_the_bundled_spec(
    arg: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert bundled.resolve(arg) == ROOT / "specs" / "mnist_cnn.yaml"


def test_a_file_in_the_working_directory_wins(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "mnist_cnn.yaml").write_text("input: [4]\nlayers: [relu]\n")
    assert bundled.resolve("mnist_cnn.yaml") == Path("mnist_cnn.yaml")
    assert bundled.resolve("mnist_cnn") == ROOT / "specs" / "mnist_cnn.yaml"  # no such file here


@pytest.mark.parametrize("arg", ["specs2/mnist_cnn.yaml", "./mnist_cnn", "no_such_spec", ".."])
def test_paths_and_unknown_names_are_left_alone(
    arg: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert bundled.resolve(arg) == Path(arg)


def test_a_missing_spec_hint_names_the_bundled_ones() -> None:
    assert (
        bundled.missing_hint() == f"check the path, or name a bundled spec: {', '.join(SPEC_NAMES)}"
    )


def test_check_and_train_find_bundled_specs_by_name(tmp_path: Path) -> None:
    """Needs `bundled.resolve` in commands/check.py and commands/train.py (one line each)."""
    done = run("-m", "archspec", "check", "lenet5", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("lenet5\n")
    trained = run("-m", "archspec", "train", "lenet5", "--epochs", "1", cwd=tmp_path)
    assert "lenet5: no such file" not in trained.stderr  # it found the spec (it has no train:)
    assert "has no `train:` section" in trained.stderr


# ---------------------------------------------------------------------------------- the wheel
def _packages() -> list[str]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    packages: list[str] = config["tool"]["setuptools"]["packages"]
    return packages


def test_pyproject_lists_every_folder_of_modules() -> None:
    folders = {p.parent for p in (ROOT / "archspec").rglob("*.py") if "__pycache__" not in p.parts}
    expected = {".".join(f.relative_to(ROOT).parts) for f in folders} | {"archspec.specs"}
    assert sorted(_packages()) == sorted(expected), "update [tool.setuptools] packages"


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    pytest.importorskip("setuptools")
    tree = tmp_path_factory.mktemp("source")
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info")
    for name in ("archspec", "specs"):
        shutil.copytree(ROOT / name, tree / name, ignore=ignore)
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, tree / name)
    dist = tmp_path_factory.mktemp("dist")
    done = run(
        "-m",
        "pip",
        "wheel",
        ".",
        "--no-deps",
        "--no-build-isolation",
        "-q",
        "-w",
        str(dist),
        cwd=tree,
    )
    assert done.returncode == 0, done.stderr
    (found,) = dist.glob("archspec-*.whl")
    return found


def test_the_wheel_carries_modules_specs_and_schema(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    for spec in SPEC_NAMES:
        assert f"archspec/specs/{spec}.yaml" in names
    assert "archspec/outputs/archspec.schema.json" in names
    modules = {
        str(p.relative_to(ROOT))
        for p in (ROOT / "archspec").rglob("*.py")
        if "__pycache__" not in p.parts
    }
    assert modules <= names
    assert not any(name.startswith(("specs/", "tests/")) for name in names)


def test_the_installed_wheel_finds_bundled_specs_anywhere(wheel: Path, tmp_path: Path) -> None:
    env_dir = tmp_path / "venv"
    venv.create(env_dir, system_site_packages=True, with_pip=False)
    python = str(env_dir / "bin" / "python")
    done = run(
        "-m",
        "pip",
        "install",
        "--no-deps",
        "--no-index",
        "-q",
        str(wheel),
        python=python,
        checkout=False,
    )
    assert done.returncode == 0, done.stderr
    where = run(
        "-c",
        "import archspec.loader.bundled as b; print(b.__file__); print(b.specs_dir())",
        cwd=tmp_path,
        python=python,
        checkout=False,
    )
    module, specs = where.stdout.split()
    assert module.startswith(str(env_dir)) and specs.startswith(str(env_dir))
    summary = run(
        "-m", "archspec", "summary", "mnist_cnn", cwd=tmp_path, python=python, checkout=False
    )
    assert summary.returncode == 0, summary.stderr
    assert summary.stdout.startswith("**mnist-cnn**")
    schema = run("-m", "archspec", "schema", cwd=tmp_path, python=python, checkout=False)
    assert schema.stdout == (ROOT / "archspec" / "outputs" / "archspec.schema.json").read_text()


# ------------------------------------------------------------------------------- torch-free
def test_the_new_verbs_start_without_torch(tmp_path: Path) -> None:
    code = (
        "import sys\n"
        "from archspec.cli import main\n"
        f"main(['graph', 'resnet18', '-o', {str(tmp_path / 'r.mmd')!r}])\n"
        f"main(['schema', '-o', {str(tmp_path / 's.json')!r}])\n"
        "main(['summary', 'lenet5'])\n"
        "assert 'torch' not in sys.modules, 'torch was imported'\n"
    )
    done = run("-c", code, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
