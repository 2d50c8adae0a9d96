"""Reading and writing the IDX format of MNIST and Fashion-MNIST.

Layout (all integers big-endian)::

    byte 0-1   0x00 0x00                     magic: two zero bytes
    byte 2     type code                     0x08 ubyte, 0x09 byte, 0x0B short,
                                             0x0C int, 0x0D float, 0x0E double
    byte 3     number of dimensions n ≥ 1
    4 … 4n+3   n uint32 sizes                e.g. 10000, 28, 28
    then       prod(sizes) items             big-endian, row-major

A file may be gzip-compressed (detected by its magic bytes 1f 8b, not by its
name). Every problem is a DataError naming the file; struct, gzip and numpy
errors never escape.
"""

from __future__ import annotations

import gzip
import math
import zlib
from pathlib import Path
from typing import Protocol

import numpy as np

from archspec.data.arrays import check_memory
from archspec.errors import DataError

GZIP_MAGIC = b"\x1f\x8b"
MAX_IDX_BYTES = 1 << 32  # refuse headers that declare more than 4 GiB of data
MAX_IDX_NDIM = 8  # MNIST-style files have 1 to 4; numpy itself stops at 64
IDX_TYPES: dict[int, np.dtype[np.generic]] = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
_CODES = ", ".join(f"{code:02x}" for code in IDX_TYPES)


class _Binary(Protocol):
    """What both a raw file and a GzipFile offer."""

    def read(self, size: int = -1, /) -> bytes: ...
    def readinto(self, buffer: memoryview, /) -> int: ...


def _hex(data: bytes) -> str:
    return " ".join(f"{byte:02x}" for byte in data) or "nothing (empty file)"


CHUNK = 1 << 24  # 16 MiB


def _read_exact(stream: _Binary, size: int) -> bytearray:
    """Read up to ``size`` bytes; shorter only at end of file. The buffer grows a chunk at
    a time with what the stream really holds: a header that declares 4 GiB in front of a
    short (or gzip-truncated) file costs what the file holds, not what it declares."""
    buffer = bytearray()
    while len(buffer) < size:
        chunk = stream.read(min(CHUNK, size - len(buffer)))
        if not chunk:
            break
        buffer += chunk
    return buffer


def _header(path: Path, stream: _Binary) -> tuple[np.dtype[np.generic], tuple[int, ...]]:
    """Parse the magic number and the sizes; the stream is left at the first item."""
    magic = bytes(_read_exact(stream, 4))
    if len(magic) < 4 or magic[:2] != b"\0\0" or magic[2] not in IDX_TYPES or magic[3] == 0:
        raise DataError(
            f"{path}: not an IDX file: the magic number is {_hex(magic)}, "
            f"expected 00 00 <type> <ndim> with type one of {_CODES} and ndim ≥ 1",
            "give the MNIST-style IDX file itself (e.g. t10k-images-idx3-ubyte[.gz])",
        )
    ndim = magic[3]
    if ndim > MAX_IDX_NDIM:
        raise DataError(
            f"{path}: the IDX header declares {ndim} dimensions, more than the limit of "
            f"{MAX_IDX_NDIM}",
            "the file is corrupt or not IDX; download it again",
        )
    raw = bytes(_read_exact(stream, 4 * ndim))
    if len(raw) < 4 * ndim:
        raise DataError(
            f"{path}: truncated IDX header: expected {4 + 4 * ndim} bytes, found {4 + len(raw)}",
            "the file is incomplete; download it again",
        )
    sizes = tuple(int(size) for size in np.frombuffer(raw, dtype=">u4"))
    return IDX_TYPES[magic[2]], sizes


def _shape(sizes: tuple[int, ...]) -> str:
    return "×".join(map(str, sizes))


def _read_stream(path: Path, stream: _Binary) -> np.ndarray:
    dtype, sizes = _header(path, stream)
    header_bytes = 4 + 4 * len(sizes)
    expected = math.prod(sizes) * dtype.itemsize
    if expected > MAX_IDX_BYTES:
        raise DataError(
            f"{path}: the IDX header declares shape {sizes} ({expected} bytes), "
            f"more than the limit of {MAX_IDX_BYTES} bytes",
            "check that this is the right file; split very large datasets into .npz shards",
        )
    check_memory(expected, str(path), f"its {_shape(sizes)} values")  # before allocating
    data = _read_exact(stream, expected)
    if len(data) < expected:
        raise DataError(
            f"{path}: truncated IDX file: shape {sizes} needs {header_bytes + expected} bytes, "
            f"found {header_bytes + len(data)}",
            "the file is incomplete; download it again",
        )
    if stream.read(1):
        raise DataError(
            f"{path}: IDX file is longer than its header says: shape {sizes} needs "
            f"{header_bytes + expected} bytes, found more",
            "the file is corrupt or not IDX; download it again",
        )
    array = np.frombuffer(data, dtype=dtype).reshape(sizes)
    return array.astype(dtype.newbyteorder("="), copy=False)  # native order for torch


def read_idx(path: Path) -> np.ndarray:
    """Decode an IDX file (raw or gzip) into a native-endian array of its declared shape."""
    try:
        with path.open("rb") as raw:
            compressed = raw.read(2) == GZIP_MAGIC
            raw.seek(0)
            if not compressed:
                return _read_stream(path, raw)
            with gzip.GzipFile(fileobj=raw, mode="rb") as unzipped:
                return _read_stream(path, unzipped)
    except FileNotFoundError:
        raise DataError(
            f"IDX file not found: {path}", "check the path, or let archspec download the dataset"
        ) from None
    except (gzip.BadGzipFile, EOFError, zlib.error) as error:
        raise DataError(
            f"{path}: bad gzip stream: {error}", "the file is corrupt; download it again"
        ) from None
    except OSError as error:
        raise DataError(
            f"{path}: cannot read IDX file: {error.strerror or error}",
            "check that the path is a readable file",
        ) from None


def idx_type_code(dtype: np.dtype[np.generic]) -> int:
    """The IDX type code for ``dtype``; ValueError for types IDX cannot hold."""
    for code, idx_dtype in IDX_TYPES.items():
        if idx_dtype.kind == dtype.kind and idx_dtype.itemsize == dtype.itemsize:
            return code
    names = ", ".join(str(idx_dtype) for idx_dtype in IDX_TYPES.values())
    raise ValueError(f"IDX cannot store dtype {dtype}: use one of {names}")


def write_idx(path: Path, array: np.ndarray, *, compress: bool = False) -> None:
    """Write ``array`` as an IDX file (gzip-compressed when ``compress``); for tests and exports."""
    code = idx_type_code(array.dtype)
    header = bytes((0, 0, code, array.ndim)) + np.asarray(array.shape, dtype=">u4").tobytes()
    payload = header + np.ascontiguousarray(array, dtype=IDX_TYPES[code]).tobytes()
    path.write_bytes(gzip.compress(payload, mtime=0) if compress else payload)
