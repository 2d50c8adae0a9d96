"""The example specs shipped with archspec, found by a bare name: ``archspec check mnist_cnn``.

A wheel carries them as the package data ``archspec/specs/*.yaml`` (pyproject maps
the package ``archspec.specs`` to the repository's top-level ``specs/``); a source
checkout or an editable install reads ``specs/`` beside the package.
"""

from __future__ import annotations

from pathlib import Path

SUFFIXES = (".yaml", ".yml")


def specs_dir() -> Path | None:
    """Where the bundled specs are, or ``None`` when this installation has none."""
    package = Path(__file__).resolve().parent.parent  # archspec/, not archspec/loader/
    installed = package / "specs"
    if installed.is_dir():
        return installed
    checkout = package.parent / "specs"  # only trusted beside archspec's own pyproject.toml
    if checkout.is_dir() and (package.parent / "pyproject.toml").is_file():
        return checkout
    return None


def names() -> list[str]:
    """The bundled specs' names (file names without ``.yaml``), sorted."""
    folder = specs_dir()
    if folder is None:
        return []
    return sorted(p.stem for p in folder.iterdir() if p.suffix in SUFFIXES and p.is_file())


def resolve(arg: str | Path) -> Path:
    """``arg`` as a path when it exists, else the bundled spec of that bare name, else ``arg``.

    A bare name has no folder part: ``mnist_cnn`` or ``mnist_cnn.yaml``. Anything that
    is not found is returned unchanged, so the loader reports it as a missing file.

    >>> resolve("no/such/file.yaml").as_posix()
    'no/such/file.yaml'
    """
    path = Path(arg)
    if path.exists() or path.name != str(arg) or path.name in ("", ".", ".."):
        return path
    folder = specs_dir()
    if folder is None:
        return path
    stem = path.stem if path.suffix in SUFFIXES else path.name
    for suffix in SUFFIXES:
        candidate = folder / f"{stem}{suffix}"
        if candidate.is_file():
            return candidate
    return path


def missing_hint() -> str:
    """For a spec that was not found: which bare names would work."""
    available = names()
    if not available:
        return "check the path"
    return f"check the path, or name a bundled spec: {', '.join(available)}"
