"""The dataset layer: named datasets (IDX, found or downloaded), .npz, image folders.

``parse_split`` and ``DATASETS`` are pure Python; ``Split`` and ``load_split``
import torch and numpy only when first used, so the spec checker stays light.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from archspec.data.catalog import DATASETS, NamedDataset
from archspec.data.splits import parse_split

if TYPE_CHECKING:
    from archspec.data.load import Split, load_split
    from archspec.data.resolve import ensure_files

__all__ = ["DATASETS", "NamedDataset", "Split", "ensure_files", "load_split", "parse_split"]

_LAZY = {
    "Split": "archspec.data.load",
    "load_split": "archspec.data.load",
    "ensure_files": "archspec.data.resolve",
}


def __getattr__(name: str) -> Any:
    """Import the torch-using parts on first access (PEP 562)."""
    if name not in _LAZY:
        raise AttributeError(f"module 'archspec.data' has no attribute {name!r}")
    return getattr(importlib.import_module(_LAZY[name]), name)
