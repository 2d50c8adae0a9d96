"""torchvision's model definitions as test references, without its compiled ops.

The torchvision wheel the registry serves for torch 2.13 is a CUDA build: beside the CPU build
of torch its ``_C`` extension fails at import ("operator torchvision::nms does not exist").
Its model code is pure Python, so ``python tests/tvref.py --fetch`` (run by ``.ci/run``)
downloads the wheel (``pip download --no-deps``) and extracts only its ``.py`` files into
``.cache/torchvision-py/`` (git-ignored). :func:`models` then imports them from there, after
declaring the two operator schemas that torchvision's meta registrations expect to exist
(``nms``, ``qnms``; without ``_C`` they are never called). Tests that need the references use
``needs_torchvision`` and skip, naming the command, when the folder is absent.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path
from types import ModuleType

import pytest

VERSION = "0.28.0"  # the torchvision release paired with torch 2.13
ROOT = Path(__file__).resolve().parent.parent
FOLDER = ROOT / ".cache" / "torchvision-py"
HOW = f"run `python tests/tvref.py --fetch` to get torchvision {VERSION}'s model code"

needs_torchvision = pytest.mark.skipif(
    not (FOLDER / "torchvision" / "__init__.py").is_file(), reason=HOW
)


def fetch() -> Path:
    """Download the wheel and keep its pure-Python files (about 3 MB)."""
    with tempfile.TemporaryDirectory() as tmp:
        pip = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "-d", tmp]
        subprocess.run([*pip, f"torchvision=={VERSION}"], check=True)
        (wheel,) = Path(tmp).glob("torchvision-*.whl")
        with zipfile.ZipFile(wheel) as archive:
            for name in archive.namelist():
                if name.startswith("torchvision/") and name.endswith(".py"):
                    archive.extract(name, FOLDER)
    return FOLDER


def models() -> ModuleType:
    """``torchvision.models``, imported from the extracted pure-Python files."""
    import torch

    if str(FOLDER) not in sys.path:
        sys.path.insert(0, str(FOLDER))
    if not hasattr(torch.ops.torchvision, "nms"):
        lib = torch.library.Library("torchvision", "DEF")  # kept alive in _KEEP
        lib.define("nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
        lib.define("qnms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
        _KEEP.append(lib)
    import torchvision.models

    return torchvision.models


_KEEP: list[object] = []

if __name__ == "__main__":
    if sys.argv[1:] != ["--fetch"]:
        sys.exit(f"usage: python {sys.argv[0]} --fetch")
    print(f"torchvision {VERSION} model code in {fetch()}")
