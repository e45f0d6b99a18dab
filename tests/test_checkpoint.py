"""Checkpoints: what is written (atomically, with the umask's permissions), and that every
bad model.npz / config.json is refused with one exception type naming the file."""

import io
import json
import os
import pickle
import struct
import zipfile
from contextlib import contextmanager

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import minstn as mt
from minstn import nn
from minstn.checkpoint import (CONFIG_FILE, MODEL_FILE, CheckpointError, load_config, load_state, load_weights,
                               save_checkpoint, write_json)
from minstn.files import FileFormatError, atomic_write
from strategies import damaged_bytes

CONFIG = {"model": "tiny", "in_size": 4, "lr": 0.001, "backend": None, "progress": True}


def _tiny_model(seed=0):
    mt.manual_seed(seed)
    return nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2), nn.Flatten(), nn.Linear(8, 3))


@pytest.fixture
def checkpoint(tmp_path):
    model = _tiny_model()
    save_checkpoint(tmp_path / "run", model, CONFIG)
    return tmp_path / "run", model


@contextmanager
def _umask(mask):
    previous = os.umask(mask)
    try:
        yield
    finally:
        os.umask(previous)


# --- what is written --------------------------------------------------------------

@pytest.mark.parametrize("mask", [0o022, 0o027])
def test_written_files_get_the_permissions_a_plain_open_gives(tmp_path, mask):
    """Like the PNG figures (matplotlib opens them with open()): 0666 minus the umask,
    not the 0600 of tempfile.mkstemp."""
    with _umask(mask):
        save_checkpoint(tmp_path, _tiny_model(), CONFIG)
        write_json(tmp_path / "metrics.json", {"status": "done"})
        with open(tmp_path / "plain.bin", "wb"):
            pass
    plain = os.stat(tmp_path / "plain.bin").st_mode & 0o777
    assert plain == 0o666 & ~mask
    for name in (MODEL_FILE, CONFIG_FILE, "metrics.json"):
        assert os.stat(tmp_path / name).st_mode & 0o777 == plain, name


def test_a_failing_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
    target = tmp_path / "metrics.json"
    write_json(target, {"old": 1})

    def fail(f):
        f.write(b"half")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        atomic_write(target, fail)
    assert json.loads(target.read_text()) == {"old": 1}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["metrics.json"]


def test_round_trip(checkpoint):
    folder, model = checkpoint
    state = load_state(folder)
    assert list(state) == list(model.state_dict())
    for name, value in model.state_dict().items():
        np.testing.assert_array_equal(state[name], value)
        assert state[name].dtype == value.dtype
    other = _tiny_model(seed=1)
    load_weights(folder, other)
    for name, value in model.state_dict().items():
        np.testing.assert_array_equal(other.state_dict()[name], value)
    assert load_config(folder, {"model": str, "in_size": int, "lr": float, "backend": (str, type(None))}) == CONFIG


# --- bad model.npz ------------------------------------------------------------------

def _member_data_end(data: bytes, index: int = 0) -> int:
    """Offset of the last byte of member ``index``'s stored data."""
    info = zipfile.ZipFile(io.BytesIO(data)).infolist()[index]
    name_len, extra_len = int.from_bytes(data[info.header_offset + 26:info.header_offset + 28], "little"), \
        int.from_bytes(data[info.header_offset + 28:info.header_offset + 30], "little")
    return info.header_offset + 30 + name_len + extra_len + info.compress_size - 1


def _flip(data: bytes, at: int) -> bytes:
    return data[:at] + bytes([data[at] ^ 0xFF]) + data[at + 1:]


def _zip_with(name: str, payload: bytes) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr(name, payload)
    return buffer.getvalue()


def _npy(array, allow_pickle=False) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=allow_pickle)
    return buffer.getvalue()


def _hide_second_member(data: bytes) -> bytes:
    """Lengthen the first directory entry's comment over the second entry: zipfile then
    lists every member but the second, each of which still passes its CRC check."""
    start = zipfile.ZipFile(io.BytesIO(data)).start_dir
    name, extra, comment = struct.unpack_from("<HHH", data, start + 28)
    first = 46 + name + extra + comment
    second = 46 + sum(struct.unpack_from("<HHH", data, start + first + 28))
    damaged = bytearray(data)
    struct.pack_into("<H", damaged, start + 32, comment + second)
    return bytes(damaged)


def _empty_zip() -> bytes:
    buffer = io.BytesIO()
    zipfile.ZipFile(buffer, "w").close()
    return buffer.getvalue()


BAD_MODELS = {
    "empty": (lambda good: b"", "BadZipFile"),
    "truncated": (lambda good: good[: len(good) // 2], "BadZipFile"),
    "one byte short": (lambda good: good[:-1], "BadZipFile"),
    "CRC-corrupt": (lambda good: _flip(good, _member_data_end(good)), "CRC"),
    "not a zip": (lambda good: b"model weights\n", "BadZipFile"),
    "a bare .npy": (lambda good: _npy(np.zeros(3)), "BadZipFile"),
    "an empty zip": (lambda good: _empty_zip(), "no arrays"),
    "a member that is not .npy": (lambda good: _zip_with("weights.txt", b"1 2 3"), "not a .npy array"),
    "a pickled object array": (lambda good: _zip_with("w.npy", _npy(np.array([None, 1]), allow_pickle=True)),
                               "Python objects"),
    "an .npy header claiming more data": (
        lambda good: _zip_with("w.npy", _npy(np.zeros(4)).replace(b"(4,)", b"(9,)")), "needs 72 bytes"),
    "a directory entry hiding the next one": (_hide_second_member, "lists 8 members, its end record 9"),
    "garbage in the .npy": (lambda good: _zip_with("w.npy", b"\x93NUMPY\x01\x00garbage"), "ValueError"),
}


@pytest.mark.parametrize("case", sorted(BAD_MODELS))
def test_a_bad_model_file_is_one_clear_error(checkpoint, case):
    folder, model = checkpoint
    make, reason = BAD_MODELS[case]
    path = folder / MODEL_FILE
    path.write_bytes(make(path.read_bytes()))
    with pytest.raises(CheckpointError, match=reason) as info:
        load_state(folder)
    assert str(info.value).startswith(f"{path}: ") and info.value.path == path
    assert isinstance(info.value, FileFormatError) and isinstance(info.value, ValueError)
    again = pickle.loads(pickle.dumps(info.value))  # e.g. from a child process of `minstn reproduce`
    assert type(again) is CheckpointError and str(again) == str(info.value) and again.path == path


def test_a_missing_model_file_is_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError, match=MODEL_FILE):
        load_state(tmp_path)


@pytest.mark.parametrize("change, reason", [
    (lambda s: s.pop("3.bias"), r"missing keys: '3\.bias'"),
    (lambda s: s.update(extra=np.zeros(1)), "unexpected keys: 'extra'"),
    (lambda s: s.update({"3.bias": np.zeros(4, np.float32)}), r"size mismatch for '3\.bias'"),
    (lambda s: s.update({"3.bias": np.zeros(3, np.complex64)}), r"'3\.bias' has dtype complex64"),
])
def test_a_state_that_does_not_fit_the_model_is_refused_and_changes_nothing(checkpoint, change, reason):
    folder, model = checkpoint
    state = model.state_dict()
    change(state)
    np.savez(folder / MODEL_FILE, **state)
    target = _tiny_model(seed=1)
    before = target.state_dict()
    with pytest.raises(CheckpointError, match=reason) as info:
        load_weights(folder, target)
    assert str(info.value).startswith(str(folder / MODEL_FILE))
    for name, value in before.items():
        np.testing.assert_array_equal(target.state_dict()[name], value)


# --- bad config.json ----------------------------------------------------------------

REQUIRED = {"model": str, "in_size": int, "lr": float, "backend": (str, type(None))}


@pytest.mark.parametrize("text, reason", [
    ("", "not valid JSON"),
    ('{"model": "tiny", ', "not valid JSON"),
    ("\xff\xfe garbage", "not valid JSON"),
    ("[1, 2]", "holds a JSON list"),
    (json.dumps({k: v for k, v in CONFIG.items() if k != "in_size"}), "has no 'in_size' setting"),
    (json.dumps({**CONFIG, "in_size": "28"}), r"'in_size' is '28', expected int"),
    (json.dumps({**CONFIG, "in_size": 28.5}), "'in_size' is 28.5, expected int"),
    (json.dumps({**CONFIG, "in_size": True}), "'in_size' is True, expected int"),
    (json.dumps({**CONFIG, "lr": None}), "'lr' is None, expected float"),
    (json.dumps({**CONFIG, "backend": 3}), "'backend' is 3, expected str or null"),
])
def test_a_bad_config_is_one_clear_error(checkpoint, text, reason):
    folder, _ = checkpoint
    path = folder / CONFIG_FILE
    path.write_bytes(text.encode("latin-1"))
    with pytest.raises(CheckpointError, match=reason) as info:
        load_config(folder, REQUIRED)
    assert str(info.value).startswith(f"{path}: ")


def test_config_types_accept_what_json_writes(checkpoint):
    folder, _ = checkpoint
    write_json(folder / CONFIG_FILE, {**CONFIG, "lr": 1, "backend": "numba"})  # an int is a float
    assert load_config(folder, REQUIRED)["lr"] == 1


# --- fuzzing: truncations and changed bytes -----------------------------------------

@pytest.fixture(scope="module")
def good_checkpoint(tmp_path_factory):
    folder = tmp_path_factory.mktemp("good")
    model = _tiny_model()
    save_checkpoint(folder, model, CONFIG)
    return (folder / MODEL_FILE).read_bytes(), model.state_dict(), (folder / CONFIG_FILE).read_bytes()


@settings(deadline=None, max_examples=400, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_fuzz_model_file_is_loaded_exactly_or_refused_by_name(tmp_path, good_checkpoint, data):
    good, state, _ = good_checkpoint
    bad, _, _ = data.draw(damaged_bytes(good, tail=len(good) - zipfile.ZipFile(io.BytesIO(good)).start_dir))
    path = tmp_path / MODEL_FILE
    path.write_bytes(bad)
    try:
        loaded = load_state(tmp_path)
    except CheckpointError as err:
        assert str(err).startswith(f"{path}: ")
        return
    # a changed byte that zip does not check (a time stamp, a "version made by" field)
    assert list(loaded) == list(state)
    for name, value in state.items():
        assert loaded[name].dtype == value.dtype
        np.testing.assert_array_equal(loaded[name], value)


@settings(deadline=None, max_examples=200, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_fuzz_config_file_is_a_dict_or_refused_by_name(tmp_path, good_checkpoint, data):
    """JSON has no checksum: a changed digit is a different valid config. What must
    never happen is an exception other than CheckpointError."""
    _, _, good = good_checkpoint
    path = tmp_path / CONFIG_FILE
    path.write_bytes(data.draw(damaged_bytes(good))[0])
    try:
        config = load_config(tmp_path, REQUIRED)
    except CheckpointError as err:
        assert str(err).startswith(f"{path}: ")
        return
    assert isinstance(config, dict) and set(REQUIRED) <= set(config)
