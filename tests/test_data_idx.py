"""IDX reader: valid files round-trip, every malformed file raises FileFormatError (a
ValueError) naming it."""
import gzip
import struct

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from minstn.data.idx import read_idx, write_idx
from minstn.files import FileFormatError
from strategies import damaged_bytes


@pytest.mark.parametrize("name", ["a-idx3-ubyte", "a-idx3-ubyte.gz"])
@pytest.mark.parametrize("dtype", [np.uint8, np.int8, np.int16, np.int32, np.float32, np.float64])
def test_round_trip(tmp_path, name, dtype):
    x = (np.arange(2 * 3 * 4) - 7).astype(dtype).reshape(2, 3, 4)
    y = read_idx(write_idx(tmp_path / name, x))
    assert y.dtype == np.dtype(dtype) and y.shape == (2, 3, 4)
    np.testing.assert_array_equal(x, y)
    y[0, 0, 0] = 1  # writeable, native byte order
    assert y.dtype.isnative


def test_labels_one_dimensional(tmp_path):
    y = read_idx(write_idx(tmp_path / "l-idx1-ubyte", np.array([3, 1, 4, 1, 5], np.uint8)))
    assert y.tolist() == [3, 1, 4, 1, 5]


def test_big_endian_on_disk(tmp_path):
    path = write_idx(tmp_path / "x", np.array([1, 256], np.int32))
    assert path.read_bytes() == bytes([0, 0, 0x0C, 1, 0, 0, 0, 2, 0, 0, 0, 1, 0, 0, 1, 0])


def _raw(tmp_path, payload, name="bad-idx3-ubyte"):
    path = tmp_path / name
    path.write_bytes(payload)
    return path


GOOD_HEADER = struct.pack(">HBBIII", 0, 0x08, 3, 2, 2, 2)

BAD_FILES = {
    "empty": (b"", "too short"),
    "bad magic": (b"\x12\x34" + GOOD_HEADER[2:] + bytes(8), "magic"),
    "unknown type": (struct.pack(">HBBI", 0, 0x07, 1, 1) + b"\0", "element type"),
    "zero dimensions": (struct.pack(">HBB", 0, 0x08, 0), "zero dimensions"),
    "size-0 dimension": (struct.pack(">HBBII", 0, 0x08, 2, 0, 5), "size 0"),
    "truncated header": (struct.pack(">HBBI", 0, 0x08, 3, 2), "truncated header"),
    "truncated body": (GOOD_HEADER + bytes(7), "truncated"),
    "count larger than data": (struct.pack(">HBBIII", 0, 0x08, 3, 60000, 28, 28) + bytes(784), "truncated"),
    "trailing bytes": (GOOD_HEADER + bytes(9), "trailing"),
}


@pytest.mark.parametrize("case", sorted(BAD_FILES))
def test_malformed_raw_file(tmp_path, case):
    payload, reason = BAD_FILES[case]
    path = _raw(tmp_path, payload)
    with pytest.raises(ValueError, match=reason) as info:
        read_idx(path)
    assert str(path) in str(info.value)


@pytest.mark.parametrize("case", ["truncated body", "bad magic"])
def test_malformed_inside_gzip(tmp_path, case):
    payload, reason = BAD_FILES[case]
    path = tmp_path / "bad-idx3-ubyte.gz"
    path.write_bytes(gzip.compress(payload))
    with pytest.raises(ValueError, match=reason):
        read_idx(path)


def test_non_gzip_named_gz(tmp_path):
    path = _raw(tmp_path, GOOD_HEADER + bytes(8), "x-idx3-ubyte.gz")
    with pytest.raises(ValueError, match="gzip") as info:
        read_idx(path)
    assert str(path) in str(info.value)


def test_truncated_gzip_stream(tmp_path):
    data = gzip.compress(GOOD_HEADER + bytes(8))
    path = _raw(tmp_path, data[: len(data) // 2], "x-idx3-ubyte.gz")
    with pytest.raises(ValueError, match="gzip"):
        read_idx(path)


def test_missing_file_is_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError):
        read_idx(tmp_path / "nope-idx1-ubyte")


def test_dimensions_whose_product_overflows_int64_are_refused(tmp_path):
    """2**31 * 2**31 * 4 = 2**64 wraps to 0 in int64, which would match an empty body."""
    path = _raw(tmp_path, struct.pack(">HBBIII", 0, 0x08, 3, 2**31, 2**31, 4))
    with pytest.raises(FileFormatError, match="truncated") as info:
        read_idx(path)
    assert str(info.value).startswith(f"{path}: ")


def test_a_missing_gz_file_is_file_not_found_not_a_gzip_error(tmp_path):
    with pytest.raises(FileNotFoundError):
        read_idx(tmp_path / "nope-idx1-ubyte.gz")


@settings(deadline=None, max_examples=300)
@given(data=st.data(), dtype=st.sampled_from([np.uint8, np.int16, np.float32]))
def test_fuzz_gzip_file_is_read_exactly_or_refused_by_name(tmp_path_factory, data, dtype):
    """gzip's CRC-32 and length cover the whole IDX content: a cut or a changed byte is
    either refused, or falls in a field gzip does not check (time stamp, OS) and changes
    nothing."""
    x = (np.arange(2 * 3 * 4) - 5).astype(dtype).reshape(2, 3, 4)
    path = write_idx(tmp_path_factory.mktemp("fuzz") / "x-idx3-ubyte.gz", x)
    path.write_bytes(data.draw(damaged_bytes(path.read_bytes()))[0])
    try:
        y = read_idx(path)
    except FileFormatError as err:
        assert str(err).startswith(f"{path}: ")
        return
    assert y.dtype == x.dtype
    np.testing.assert_array_equal(y, x)
