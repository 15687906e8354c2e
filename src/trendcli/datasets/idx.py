"""Reader for the idx format of (Fashion-)MNIST, gzip-compressed or not."""

from __future__ import annotations

import gzip
import math
import struct
import zlib
from pathlib import Path
from typing import BinaryIO

import numpy as np

from trendcli.errors import DataNotFoundError

#: idx type byte -> element type (idx data is big-endian).
IDX_DTYPES: dict[int, str] = {0x08: "u1", 0x09: "i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}

_GZIP_MAGIC = b"\x1f\x8b"


class _Malformed(Exception):
    pass


def _read_exact(f: BinaryIO, n: int, what: str) -> bytes:
    data = f.read(n)
    if len(data) != n:
        raise _Malformed(f"is truncated inside its {what}")
    return data


def _read_stream(f: BinaryIO) -> np.ndarray:
    magic = f.read(4)
    if len(magic) != 4 or magic[0] != 0 or magic[1] != 0 or magic[2] not in IDX_DTYPES:
        raise _Malformed(f"is not an idx file (magic number {magic.hex() or 'missing'})")
    ndim = magic[3]
    dims = struct.unpack(f">{ndim}I", _read_exact(f, 4 * ndim, "idx header"))
    dtype = np.dtype(IDX_DTYPES[magic[2]])
    # Read straight into the array: no second copy of a 47 MB image file.
    out = np.empty(math.prod(dims), dtype=dtype)
    got = f.readinto(memoryview(out).cast("B"))
    if got != out.nbytes or f.read(1):
        raise _Malformed(f"does not hold the {out.nbytes} data bytes its idx header {list(dims)} announces")
    out = out.reshape(dims)
    return out if dtype.isnative else out.astype(dtype.newbyteorder("="))


def read_idx(path: Path) -> np.ndarray:
    """The array stored in an idx file (plain or gzip-compressed), native byte order, writable.

    Layout: two zero bytes, a type byte, the number of dimensions d, d big-endian uint32 sizes,
    then the data. Raises DataNotFoundError naming the file if it cannot be read or is malformed.
    """
    path = Path(path)
    try:
        with open(path, "rb") as raw:
            compressed = raw.read(2) == _GZIP_MAGIC  # decide by content, not by name
            raw.seek(0)
            if compressed:
                with gzip.GzipFile(fileobj=raw) as f:
                    return _read_stream(f)
            return _read_stream(raw)
    except _Malformed as e:
        raise DataNotFoundError(f"{path} {e}; delete it and fetch it again") from None
    except (OSError, EOFError, zlib.error) as e:  # gzip.BadGzipFile is an OSError
        raise DataNotFoundError(f"cannot read {path}: {e}; delete it and fetch it again") from None
