"""A run folder: what ``minstn train`` keeps in it, and the rules for writing into one.

A run folder holds the checkpoint (``model.npz`` + ``config.json``), ``metrics.json``,
the figures, and ``resume.npz``: the state at the end of the last finished epoch
(weights, optimiser moments, schedule, the shared random generator), from which
``minstn train --resume`` continues a run that was interrupted, giving the same bytes
as a run that was not. Nothing is ever written into a folder that already holds
something unless the user said so: ``--resume`` (continue it) or ``--overwrite``
(replace the run's files; other files are left alone).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from ..checkpoint import CONFIG_FILE, MODEL_FILE, CheckpointError, load_arrays, save_arrays
from ..random import generator
from .console import UsageError

__all__ = ["RUN_FILES", "RESUME_FILE", "METRICS_FILE", "prepare_run_folder", "save_resume_state",
           "load_resume_state"]

METRICS_FILE = "metrics.json"
RESUME_FILE = "resume.npz"
RUN_FILES = (MODEL_FILE, CONFIG_FILE, METRICS_FILE, RESUME_FILE, "curves.png", "transformer.png")


def _check_writable_folder(out: Path) -> None:
    for parent in [out, *out.parents]:
        if parent.exists() and not parent.is_dir():
            what = "is a file" if parent == out else f"is inside {parent}, which is a file"
            raise UsageError(f"--out {out} {what}: give a folder")
    out.mkdir(parents=True, exist_ok=True)
    if not os.access(out, os.W_OK | os.X_OK):
        raise UsageError(f"--out {out} is not writable")


def prepare_run_folder(out: str | os.PathLike, resume: bool = False, overwrite: bool = False) -> Path:
    """Make ``out`` ready for a run, or refuse with a message when that could lose data."""
    out = Path(out)
    if resume and overwrite:
        raise UsageError("--resume and --overwrite contradict each other: continue the run, or replace it")
    _check_writable_folder(out)
    held = sorted(p.name for p in out.iterdir())
    if resume:
        if not (out / RESUME_FILE).is_file():
            raise UsageError(f"--resume: {out} holds no {RESUME_FILE} (no epoch of a run finished there)")
    elif held and not overwrite:
        status = ""
        if (out / METRICS_FILE).is_file():
            try:
                status = f" (a run, status {json.loads((out / METRICS_FILE).read_text()).get('status')!r})"
            except (ValueError, OSError):
                status = " (a run)"
        raise UsageError(f"--out {out} is not empty{status}: pass --resume to continue that run, --overwrite to "
                         f"replace it, or another --out")
    elif overwrite:
        for name in RUN_FILES:
            (out / name).unlink(missing_ok=True)
    return out


def _jsonable(obj):
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.generic):
        return obj.item()
    return obj


def save_resume_state(out: Path, epoch: int, model, optimizer, scheduler, extra: dict) -> None:
    """The state after ``epoch`` epochs: arrays in ``resume.npz``, the rest as JSON inside it."""
    arrays = {f"model/{k}": v for k, v in model.state_dict().items()}
    opt = optimizer.state_dict()
    state_meta = {}
    for index, entries in opt["state"].items():
        state_meta[str(index)] = {}
        for key, value in entries.items():
            if isinstance(value, np.ndarray):
                arrays[f"optimizer/{index}/{key}"] = value
            else:
                state_meta[str(index)][key] = value
    meta = {"epoch": epoch, "param_groups": opt["param_groups"], "optimizer_state": state_meta,
            "scheduler": None if scheduler is None else scheduler.state_dict(),
            "generator": generator().bit_generator.state, **extra}
    arrays["meta"] = np.array(json.dumps(_jsonable(meta)))
    save_arrays(out / RESUME_FILE, arrays)


def load_resume_state(out: Path, model, optimizer, scheduler) -> dict:
    """Load ``resume.npz`` into ``model``, ``optimizer`` and ``scheduler`` (and the shared
    generator); returns its JSON part (``epoch`` and what ``save_resume_state`` got as ``extra``)."""
    arrays = load_arrays(out / RESUME_FILE)
    try:
        meta = json.loads(str(arrays.pop("meta")))
        model.load_state_dict({k[len("model/"):]: v for k, v in arrays.items() if k.startswith("model/")})
        state = {int(i): dict(entries) for i, entries in meta["optimizer_state"].items()}
    except (KeyError, ValueError, RuntimeError, TypeError) as err:
        raise CheckpointError(out / RESUME_FILE, f"does not describe this run ({type(err).__name__}: {err})") from None
    for k, v in arrays.items():
        if k.startswith("optimizer/"):
            _, index, key = k.split("/", 2)
            state.setdefault(int(index), {})[key] = v
    groups = [dict(g, betas=tuple(g["betas"])) if "betas" in g else g for g in meta["param_groups"]]
    optimizer.load_state_dict({"state": state, "param_groups": groups})
    if scheduler is not None:
        scheduler.load_state_dict(meta["scheduler"])
    generator().bit_generator.state = meta["generator"]
    return meta
