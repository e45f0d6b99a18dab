"""Read and write IDX files, the container format of MNIST.

An IDX file (http://yann.lecun.com/exdb/mnist/, "file formats") is a tiny header
followed by a dense, big-endian array:

    bytes 0-1   zero
    byte  2     element type (0x08 = uint8, 0x09 = int8, 0x0B = int16, 0x0C = int32,
                0x0D = float32, 0x0E = float64)
    byte  3     number of dimensions d
    4*d bytes   each dimension as a big-endian uint32
    the rest    prod(dims) elements, row-major

The reader checks every one of those facts and raises
:class:`~minstn.files.FileFormatError` (a ValueError) naming the file and what is wrong:
a truncated download must fail loudly, never come back as a silently reshaped or
partial array. A gzip file's CRC-32 also catches a changed byte; a raw file has no
checksum, so a changed byte inside its body cannot be seen (the MD5 of a download can).
"""
from __future__ import annotations

import gzip
import math
import os
import struct
import zlib
from pathlib import Path

import numpy as np

from ..files import FileFormatError

__all__ = ["read_idx", "write_idx", "IDX_TYPES"]

# IDX type code -> big-endian NumPy dtype.
IDX_TYPES = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
_CODES = {dt.newbyteorder("="): code for code, dt in IDX_TYPES.items()}


def _read_bytes(path: Path) -> bytes:
    """The decompressed content: gzip when the name ends in .gz, raw otherwise.

    The file is read first, so that an error of the file system (missing, no permission)
    stays an OSError and only a bad gzip stream becomes a FileFormatError.
    """
    data = path.read_bytes()
    if path.suffix != ".gz":
        return data
    try:
        return gzip.decompress(data)
    except (OSError, EOFError, zlib.error) as err:  # BadGzipFile is an OSError
        raise FileFormatError(path, f"not a valid gzip file ({err})") from None


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Return the array stored in the IDX file ``path`` (gzip-compressed if ``*.gz``).

    The result has the file's dimensions and a native-endian dtype, and owns its
    memory. Raises ``FileFormatError`` (message starts with the file name) on a bad magic
    number, an unknown element type, zero dimensions, a dimension of size 0, or a body
    whose length is not exactly prod(dims) * itemsize (truncated or trailing bytes).
    """
    path = Path(path)
    data = _read_bytes(path)
    if len(data) < 4:
        raise FileFormatError(path, f"{len(data)} bytes, too short for an IDX header (4 bytes at least)")
    zero, code, ndim = struct.unpack(">HBB", data[:4])
    if zero != 0:
        raise FileFormatError(path, f"bad magic number {data[:4].hex()} (an IDX file starts with two zero bytes)")
    if code not in IDX_TYPES:
        raise FileFormatError(path, f"unknown IDX element type 0x{code:02x}")
    if ndim == 0:
        raise FileFormatError(path, "the header declares zero dimensions")
    header_len = 4 + 4 * ndim
    if len(data) < header_len:
        raise FileFormatError(path, f"truncated header ({len(data)} bytes, {ndim} dimensions need {header_len})")
    dims = struct.unpack(f">{ndim}I", data[4:header_len])
    if 0 in dims:
        raise FileFormatError(path, f"a dimension has size 0 (dims {dims})")
    dtype = IDX_TYPES[code]
    expected = math.prod(dims) * dtype.itemsize  # Python ints: 255 dimensions cannot overflow
    got = len(data) - header_len
    if got != expected:
        what = "truncated" if got < expected else "has trailing bytes"
        raise FileFormatError(path, f"{what}: dims {dims} of {dtype.name} need {expected} body bytes, found {got}")
    body = np.frombuffer(data, dtype=dtype, offset=header_len).reshape(dims)
    return body.astype(dtype.newbyteorder("="))  # native byte order, and a writeable copy


def write_idx(path: str | os.PathLike, array: np.ndarray) -> Path:
    """Write ``array`` as an IDX file (gzip when ``path`` ends in .gz); return the path.

    The inverse of :func:`read_idx`; tests use it to make tiny files.
    """
    path = Path(path)
    array = np.asarray(array)
    code = _CODES.get(array.dtype.newbyteorder("="))
    if code is None:
        raise ValueError(f"{path}: dtype {array.dtype} has no IDX type code")
    if not 1 <= array.ndim <= 255:
        raise ValueError(f"{path}: IDX needs 1 to 255 dimensions, got {array.ndim}")
    header = struct.pack(f">HBB{array.ndim}I", 0, code, array.ndim, *array.shape)
    payload = header + np.ascontiguousarray(array, dtype=IDX_TYPES[code]).tobytes()
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "wb") as f:
        f.write(payload)
    return path
