"""The idx reader: round trips, byte order, and malformed files."""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np
import pytest

from trendcli.datasets.idx import read_idx
from trendcli.errors import DataNotFoundError

TYPE_CODES = {np.dtype("u1"): 0x08, np.dtype("i1"): 0x09, np.dtype(">i2"): 0x0B, np.dtype(">i4"): 0x0C}


def write_idx(path: Path, array: np.ndarray, gz: bool) -> Path:
    """idx: 0, 0, type byte, ndim, big-endian uint32 dims, big-endian data."""
    dtype = array.dtype.newbyteorder(">") if array.dtype.itemsize > 1 else array.dtype
    header = bytes([0, 0, TYPE_CODES[dtype], array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    body = header + array.astype(dtype).tobytes()
    path.write_bytes(gzip.compress(body) if gz else body)
    return path


@pytest.mark.parametrize("gz", [True, False])
def test_round_trip_uint8_images(tmp_path, gz):
    images = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    out = read_idx(write_idx(tmp_path / "images", images, gz))
    assert out.dtype == np.uint8 and out.shape == (2, 3, 4)
    np.testing.assert_array_equal(out, images)
    assert out.flags.writeable


def test_hand_written_header(tmp_path):
    # magic 00 00 08 01 (uint8, 1 dim), dim 3, then the bytes 7 8 9
    path = tmp_path / "labels"
    path.write_bytes(bytes([0, 0, 8, 1, 0, 0, 0, 3, 7, 8, 9]))
    np.testing.assert_array_equal(read_idx(path), [7, 8, 9])


def test_big_endian_int32_becomes_native(tmp_path):
    # 70000 = 0x00011170 is stored as 00 01 11 70; -2 as ff ff ff fe
    values = np.array([1, -2, 70000], dtype=np.int32)
    out = read_idx(write_idx(tmp_path / "ints.gz", values, gz=True))
    assert out.dtype.isnative
    assert out.tolist() == [1, -2, 70000]


def test_gzip_detected_by_content_not_name(tmp_path):
    images = np.ones((1, 2, 2), dtype=np.uint8)
    out = read_idx(write_idx(tmp_path / "no-suffix", images, gz=True))
    np.testing.assert_array_equal(out, images)


@pytest.mark.parametrize(
    "content, message",
    [
        (bytes([1, 2, 3, 4, 5]), "not an idx file"),  # wrong magic number
        (bytes([0, 0, 8, 2, 0, 0]), "truncated"),  # header cut short
        (bytes([0, 0, 8, 2, 0, 0, 0, 3, 0, 0, 0, 2, 1, 2, 3, 4, 5]), "data bytes"),  # 3x2 needs 6, has 5
        (bytes([0, 0, 8, 1, 0, 0, 0, 2, 1, 2, 3]), "data bytes"),  # 2 announced, 3 present
        (b"", "not an idx file"),
    ],
)
def test_malformed_file_names_the_file(tmp_path, content, message):
    path = tmp_path / "bad-idx3-ubyte"
    path.write_bytes(content)
    with pytest.raises(DataNotFoundError, match=message) as err:
        read_idx(path)
    assert str(path) in str(err.value)


def test_corrupt_gzip_names_the_file(tmp_path):
    path = tmp_path / "bad.gz"
    good = gzip.compress(bytes([0, 0, 8, 1, 0, 0, 0, 4, 1, 2, 3, 4]))
    path.write_bytes(good[:12])  # gzip magic, then a cut-off stream
    with pytest.raises(DataNotFoundError) as err:
        read_idx(path)
    assert str(path) in str(err.value)


def test_missing_file(tmp_path):
    with pytest.raises(DataNotFoundError, match="cannot read"):
        read_idx(tmp_path / "absent.gz")
