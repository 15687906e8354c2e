"""Reader for the idx format of (Fashion-)MNIST, gzip-compressed or not."""

from __future__ import annotations

import gzip
import math
import struct
import zlib
from pathlib import Path

import numpy as np

from ..errors import DataNotFoundError

#: idx type byte -> element type (idx data is big-endian).
IDX_DTYPES: dict[int, str] = {0x08: "u1", 0x09: "i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}

_GZIP_MAGIC = b"\x1f\x8b"


def read_idx(path: Path) -> np.ndarray:
    """The array stored in an idx file (plain or ``.gz``), in native byte order and writable.

    Layout: two zero bytes, a type byte, the number of dimensions d, d big-endian uint32 sizes,
    then the data. Raises DataNotFoundError naming the file if it cannot be read or is malformed.
    """
    path = Path(path)
    try:
        raw = path.read_bytes()
        if raw[:2] == _GZIP_MAGIC:  # decide by content, not by name
            raw = gzip.decompress(raw)
    except (OSError, EOFError, zlib.error) as e:  # BadGzipFile is an OSError
        raise DataNotFoundError(f"cannot read {path}: {e}; delete it and fetch it again") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in IDX_DTYPES:
        raise DataNotFoundError(
            f"{path} is not an idx file (magic number {raw[:4].hex() or 'missing'}); delete it and fetch it again"
        )
    ndim = raw[3]
    start = 4 + 4 * ndim
    if len(raw) < start:
        raise DataNotFoundError(f"{path} is truncated inside its idx header; delete it and fetch it again")
    dims = struct.unpack(f">{ndim}I", raw[4:start])
    dtype = np.dtype(IDX_DTYPES[raw[2]])
    expected = math.prod(dims) * dtype.itemsize
    if len(raw) - start != expected:
        raise DataNotFoundError(
            f"{path} holds {len(raw) - start} data bytes but its idx header {list(dims)} needs {expected}; "
            "delete it and fetch it again"
        )
    return np.frombuffer(raw, dtype=dtype, offset=start).reshape(dims).astype(dtype.newbyteorder("="))
