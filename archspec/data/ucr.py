"""UCR/UEA time-series classification sets in the ``.ts`` format, as ``[T, D]`` sequences.

The ``aeon`` wheel bundles a few of them (ItalyPowerDemand, GunPoint…) as files inside
the package, so no download is needed: this module finds them without importing aeon
(which would pull in numba) and converts one set into the ``.npz`` layout archspec's
training reads (``x_train, y_train, x_test, y_test, classes``)::

    python -m archspec.data.ucr ItalyPowerDemand data/ItalyPowerDemand.npz

Each sample becomes a ``[T, D]`` array (time first, one feature per dimension of the
series), the layout of archspec's sequence kinds (``lstm``, ``gru``, ``attention``).
"""

from __future__ import annotations

import importlib.util
import io
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from archspec.errors import DataError
from archspec.io import write_bytes


@dataclass(frozen=True)
class Series:
    """One split: samples ``(N, T, D)`` float32 and the class label of each, as written."""

    x: np.ndarray
    labels: list[str]


def bundled_folder(name: str) -> Path:
    """Where the installed ``aeon`` package keeps the set ``name`` (without importing aeon)."""
    spec = importlib.util.find_spec("aeon")
    if spec is None or not spec.submodule_search_locations:
        raise DataError(
            "the UCR sets come from the aeon package, which is not installed",
            "pip install 'archspec[series]' (or pip install aeon)",
        )
    folder = Path(next(iter(spec.submodule_search_locations))) / "datasets" / "data" / name
    if not (folder / f"{name}_TRAIN.ts").is_file():
        base = folder.parent
        have = sorted(p.name for p in base.iterdir() if (p / f"{p.name}_TRAIN.ts").is_file())
        raise DataError(
            f"aeon bundles no .ts files for '{name}'", f"bundled sets: {', '.join(have)}"
        )
    return folder


def read_ts(path: Path) -> Series:
    """Parse an equal-length ``.ts`` file: ``@`` header lines, then ``dim1:dim2:…:label``."""
    rows: list[np.ndarray] = []
    labels: list[str] = []
    in_data = False
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if not in_data:
            in_data = line.lower().startswith("@data")
            continue
        *dims, label = line.split(":")
        try:
            values = [np.array(d.split(","), dtype=np.float32) for d in dims]
        except ValueError as exc:
            raise DataError(f"{path}:{number}: not a list of numbers: {exc}") from None
        if not values or len({len(v) for v in values}) != 1:
            raise DataError(f"{path}:{number}: dimensions of unequal length are not supported")
        rows.append(np.stack(values, axis=1))  # [T, D]
        labels.append(label.strip())
    if not rows:
        raise DataError(f"{path}: no samples after @data")
    if len({r.shape for r in rows}) != 1:
        raise DataError(f"{path}: series of unequal length are not supported")
    x = np.stack(rows)
    if np.isnan(x).any():
        raise DataError(f"{path}: missing values are not supported")
    return Series(x, labels)


def to_npz(name: str) -> bytes:
    """The set ``name`` as an ``.npz`` archive (train and test splits, class names)."""
    folder = bundled_folder(name)
    train, test = (read_ts(folder / f"{name}_{s}.ts") for s in ("TRAIN", "TEST"))
    classes = sorted(set(train.labels) | set(test.labels), key=_label_key)
    index = {c: i for i, c in enumerate(classes)}
    buffer = io.BytesIO()
    np.savez_compressed(
        buffer,
        x_train=train.x,
        y_train=np.array([index[c] for c in train.labels], dtype=np.int64),
        x_test=test.x,
        y_test=np.array([index[c] for c in test.labels], dtype=np.int64),
        classes=np.array(classes),
    )
    return buffer.getvalue()


def _label_key(label: str) -> tuple[int, float, str]:
    try:
        return (0, float(label), label)
    except ValueError:
        return (1, 0.0, label)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2:
        print("usage: python -m archspec.data.ucr NAME OUT.npz", file=sys.stderr)
        return 2
    try:
        write_bytes(Path(args[1]), to_npz(args[0]))
    except DataError as exc:
        print(f"archspec: {exc}", file=sys.stderr)
        return 1
    print(f"wrote {args[1]}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
