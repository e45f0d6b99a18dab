"""Save and load a trained model: ``model.npz`` (the state dict) + ``config.json``.

A checkpoint folder holds everything :func:`minstn.experiments.evaluate` needs to rebuild
the model and its test set: the state dict as plain NumPy arrays (``np.savez``, no
pickle), and the training configuration (model name, transform, input size,
distortion, seed, data sizes) as JSON a person can read.

Both files are written atomically (:func:`minstn.files.atomic_write`), so a run killed
while saving leaves the previous checkpoint intact. Reading trusts nothing: every array
is read whole, so zip's CRC-32 checks every byte, and its header must account for
exactly the bytes that follow. Whatever is wrong with the content (empty, truncated,
corrupt, not a zip, an array of Python objects, a missing or mistyped setting, names or
shapes that do not fit the model) raises :class:`CheckpointError`, whose message names
the file and the problem; a missing file raises FileNotFoundError.
"""

from __future__ import annotations

import io
import json
import math
import os
import struct
import zipfile
import zlib
from pathlib import Path

import numpy as np

from .files import FileFormatError, atomic_write

__all__ = ["save_checkpoint", "load_state", "load_weights", "load_config", "write_json", "save_arrays", "load_arrays",
           "CheckpointError", "MODEL_FILE", "CONFIG_FILE"]

MODEL_FILE = "model.npz"
CONFIG_FILE = "config.json"

# What zipfile and the .npy header parser raise on bytes that are not a valid archive
# (an unknown compression method: NotImplementedError; the "encrypted" flag: RuntimeError).
_ARCHIVE_ERRORS = (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, EOFError, OSError, zlib.error,
                   struct.error, NotImplementedError, RuntimeError, OverflowError)
_NPY_HEADERS = {(1, 0): np.lib.format.read_array_header_1_0, (2, 0): np.lib.format.read_array_header_2_0}


class CheckpointError(FileFormatError):
    """A checkpoint file whose content cannot be loaded; the message names the file."""


def write_json(path: str | os.PathLike, obj) -> None:
    """Pretty JSON, written atomically."""
    text = json.dumps(obj, indent=2, sort_keys=False) + "\n"
    atomic_write(path, lambda f: f.write(text.encode()))


def save_arrays(path: str | os.PathLike, arrays: dict) -> None:
    """Named arrays as an ``.npz`` (what ``np.savez`` writes: one ``.npy`` per array, no
    pickle), written atomically and with no time stamps, so that the file's bytes are a
    function of the arrays alone (same weights, same file)."""
    def write(f):
        with zipfile.ZipFile(f, "w", zipfile.ZIP_STORED, allowZip64=True) as archive:
            for name, value in arrays.items():
                info = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
                with archive.open(info, "w", force_zip64=True) as member:
                    np.lib.format.write_array(member, np.asarray(value), allow_pickle=False)
    atomic_write(path, write)


def save_checkpoint(folder: str | os.PathLike, model, config: dict) -> Path:
    """Write ``model.npz`` and ``config.json`` into ``folder`` (created if needed)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    save_arrays(folder / MODEL_FILE, model.state_dict())
    write_json(folder / CONFIG_FILE, config)
    return folder


def _existing(folder, name: str) -> Path:
    path = Path(folder) / name
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: is {folder} a checkpoint folder written by `minstn train`?")
    return path


def _type_names(types: tuple) -> str:
    return " or ".join("null" if t is type(None) else t.__name__ for t in types)


def _has_type(value, types: tuple) -> bool:
    if isinstance(value, bool):  # JSON's true is not a number, even though Python's True is an int
        return bool in types
    if isinstance(value, int) and float in types:
        return True
    return isinstance(value, types)


def load_config(folder: str | os.PathLike, required: dict | None = None) -> dict:
    """The settings in ``folder/config.json``, a dict.

    ``required`` maps the keys a caller needs to the type, or tuple of types, of their
    value (``{"model": str, "in_size": int, "backend": (str, type(None))}``; an int
    counts as a float, a bool never as an int). A key missing or of another type raises
    :class:`CheckpointError` naming the file and the key, as does text that is not a
    JSON object.
    """
    path = _existing(folder, CONFIG_FILE)
    try:
        config = json.loads(path.read_bytes())
    except (ValueError, RecursionError) as err:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise CheckpointError(path, f"not valid JSON ({err})") from None
    if not isinstance(config, dict):
        raise CheckpointError(path, f"holds a JSON {type(config).__name__}, not an object of settings")
    for key, types in (required or {}).items():
        types = types if isinstance(types, tuple) else (types,)
        if key not in config:
            raise CheckpointError(path, f"has no {key!r} setting")
        if not _has_type(config[key], types):
            raise CheckpointError(path, f"{key!r} is {config[key]!r}, expected {_type_names(types)}")
    return config


def _read_npy(raw: bytes, name: str) -> np.ndarray:
    """One ``.npy`` member, parsed by hand so that the header is checked against the body."""
    stream = io.BytesIO(raw)
    version = np.lib.format.read_magic(stream)
    if version not in _NPY_HEADERS:
        raise ValueError(f"array {name!r}: unsupported .npy version {version}")
    shape, fortran_order, dtype = _NPY_HEADERS[version](stream)
    if dtype.hasobject:
        raise ValueError(f"array {name!r} holds Python objects (dtype {dtype}); a checkpoint holds numbers")
    count = math.prod(shape)
    body = raw[stream.tell():]
    if len(body) != count * dtype.itemsize:
        raise ValueError(f"array {name!r}: shape {shape} of {dtype} needs {count * dtype.itemsize} bytes, "
                         f"the archive holds {len(body)}")
    array = np.frombuffer(body, dtype=dtype, count=count)
    return array.reshape(shape, order="F" if fortran_order else "C").copy()


def _declared_count(data: bytes) -> int:
    """How many members the zip's end record says it holds. zipfile does not compare this
    with the directory it parsed, and one changed length in the directory can hide the
    entries after it."""
    end = len(data) - 22 if data[-22:-18] == b"PK\x05\x06" else data.rfind(b"PK\x05\x06", max(0, len(data) - 65557))
    count = struct.unpack_from("<H", data, end + 10)[0]
    if count == 0xFFFF and data[end - 20:end - 16] == b"PK\x06\x07":  # ZIP64: the count is in its own record
        count = struct.unpack_from("<Q", data, struct.unpack_from("<Q", data, end - 12)[0] + 32)[0]
    return count


def _read_npz(data: bytes) -> dict[str, np.ndarray]:
    state = {}
    with zipfile.ZipFile(io.BytesIO(data)) as archive:  # fails first when there is no end record
        members, declared = archive.infolist(), _declared_count(data)
        if len(members) != declared:
            raise ValueError(f"the zip directory lists {len(members)} members, its end record {declared}")
        for info in members:
            name = info.filename.removesuffix(".npy")
            if name == info.filename:
                raise ValueError(f"member {info.filename!r} is not a .npy array")
            if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
                raise ValueError(f"member {info.filename!r} uses compression method {info.compress_type}")
            if name in state:
                raise ValueError(f"two arrays are named {name!r}")
            state[name] = _read_npy(archive.read(info), name)  # read() checks the CRC-32
    if not state:
        raise ValueError("the archive holds no arrays")
    return state


def load_arrays(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """The named arrays of an ``.npz`` file written by :func:`save_arrays`, each checked whole."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found")
    try:
        return _read_npz(path.read_bytes())
    except _ARCHIVE_ERRORS as err:
        raise CheckpointError(path, f"not a readable array file ({type(err).__name__}: {err})") from None


def load_state(folder: str | os.PathLike) -> dict[str, np.ndarray]:
    """The state dict in ``folder/model.npz``: name -> array, each checked whole (see above)."""
    path = _existing(folder, MODEL_FILE)
    try:
        return _read_npz(path.read_bytes())
    except _ARCHIVE_ERRORS as err:
        raise CheckpointError(path, f"not a readable state dict ({type(err).__name__}: {err})") from None


def load_weights(folder: str | os.PathLike, model) -> None:
    """Load ``folder/model.npz`` into ``model`` (in place); names, shapes and dtypes that do
    not fit the model raise :class:`CheckpointError` naming the file, and leave it unchanged."""
    state = load_state(folder)
    try:
        model.load_state_dict(state)
    except (RuntimeError, ValueError) as err:
        raise CheckpointError(Path(folder) / MODEL_FILE, f"does not fit {type(model).__name__}: {err}") from None
