"""Save and load a trained model: ``model.npz`` (the state dict) + ``config.json``.

A checkpoint folder holds everything :func:`minstn.experiments.evaluate` needs to rebuild
the model and its test set: the state dict as plain NumPy arrays (``np.savez``, no
pickle), and the training configuration (model name, transform, input size,
distortion, seed, data sizes) as JSON a person can read.

Both files are written through a temporary file and ``os.replace``, so a run killed
while saving leaves the previous checkpoint intact, never a half-written one.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import numpy as np

__all__ = ["save_checkpoint", "load_state", "load_config", "write_json", "save_arrays", "MODEL_FILE", "CONFIG_FILE"]

MODEL_FILE = "model.npz"
CONFIG_FILE = "config.json"


def _atomic_write(path: Path, write) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def write_json(path: str | os.PathLike, obj) -> None:
    """Pretty JSON, written atomically."""
    text = json.dumps(obj, indent=2, sort_keys=False) + "\n"
    _atomic_write(Path(path), lambda f: f.write(text.encode()))


def save_arrays(path: str | os.PathLike, arrays: dict) -> None:
    """``np.savez`` of named arrays (no pickle), written atomically."""
    arrays = {name: np.asarray(value) for name, value in arrays.items()}
    _atomic_write(Path(path), lambda f: np.savez(f, **arrays))


def save_checkpoint(folder: str | os.PathLike, model, config: dict) -> Path:
    """Write ``model.npz`` and ``config.json`` into ``folder`` (created if needed)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    save_arrays(folder / MODEL_FILE, model.state_dict())
    write_json(folder / CONFIG_FILE, config)
    return folder


def load_config(folder: str | os.PathLike) -> dict:
    path = Path(folder) / CONFIG_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: is {folder} a checkpoint folder written by `minstn train`?")
    return json.loads(path.read_text())


def load_state(folder: str | os.PathLike) -> dict[str, np.ndarray]:
    path = Path(folder) / MODEL_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: is {folder} a checkpoint folder written by `minstn train`?")
    with np.load(path, allow_pickle=False) as npz:
        return {name: npz[name] for name in npz.files}
