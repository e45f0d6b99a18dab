"""``minstn train`` and ``minstn evaluate``: one classifier of section 4.1 on (distorted) digits.

    from minstn.experiments import TrainConfig, train, evaluate
    metrics = train(TrainConfig(model="st-cnn", distortion="rts", epochs=3, out="runs/st"))
    evaluate("runs/st")["test_error"] == metrics["test_error"]

The recipe follows the paper's (section 4.1, appendix A): cross-entropy, mini-batch
gradient descent (:mod:`minstn.experiments.loop`), digits distorted on the fly (fresh
distortions every epoch; the test set distorted once), test error as a fraction; with
a learning-rate schedule, a learning-rate scale for the localisation nets, gradient
clipping and weight decay to choose from (``TrainConfig``). After every epoch the
transformer's health (:mod:`minstn.experiments.health`) is measured on the test digits;
``guard`` restores the last healthy weights when it collapses. ``train`` writes into
``config.out`` the checkpoint (``model.npz`` + ``config.json``, rewritten after every
epoch: always the last good model), ``metrics.json`` (final ``test_error``, per-epoch
history), ``curves.png`` and, for ST models, ``transformer.png`` (paper Figure 1). The
seed fixes the split, the distortions, the shuffling and the initial weights: the same
config gives the same metrics on the same machine, whatever the thread count
(:mod:`minstn.kernels.threads`).
"""

from __future__ import annotations

import dataclasses
import json
import math
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..backend import set_backend
from ..checkpoint import load_config, load_weights, save_checkpoint, write_json
from ..kernels.threads import set_num_threads
from ..kernels.warm import wait_for_compiled
from ..data import (DATASETS, DISTORTIONS, distortion_seed, input_size, load_digits, prepare_images,
                    resolve_dataset)
from ..models import MODELS as _MODEL_BUILDERS
from ..models import build_model, count_parameters
from ..random import manual_seed
from ..viz.training import plot_training_curves, plot_transformer
from .console import UsageError, deferred_signals, say
from .guard import GUARD_FACTOR, GUARD_RETRIES, Guard, train_epoch_guarded
from .health import HealthMonitor, TransformerCollapsed, measure_health
from .runs import METRICS_FILE, load_resume_state, prepare_run_folder, save_resume_state
from .loop import (OPTIMIZERS, SCHEDULES, TrainingDiverged, error_rate, make_optimizer,
                   make_scheduler, train_epoch)

__all__ = ["TrainConfig", "train", "evaluate", "load_model", "prepare_data", "MODELS", "GUARD_FACTOR",
           "GUARD_RETRIES"]

MODELS = tuple(_MODEL_BUILDERS)  # fcn, cnn, st-fcn, st-cnn, st-cnn-multi, 2xst-fcn


@dataclass
class TrainConfig:
    """Everything that defines a run; stored in ``config.json`` next to the weights.

    The defaults are the main job, ``minstn train`` with no arguments: an ST-FCN on 10,000
    RTS digits, 15 epochs of Adam with a one-cycle schedule peaking at 3e-3, batch 64;
    chosen by measuring (benchmarks/RESULTS.md, "The main job", with the alternatives
    tried): on glyph digits it reaches 1.5% test error in about a minute on 2 cores
    (54-68 s from a fresh install), and its transformer visibly zooms onto the digits."""

    data_dir: str | None = None
    dataset: str | None = None      # "mnist", "glyphs", or None: MNIST if found, else glyphs
    distortion: str = "rts"         # none | r | rts | p | e | tc  (section 4.1)
    model: str = "st-fcn"           # fcn | cnn | st-fcn | st-cnn | st-cnn-multi | 2xst-fcn
    transform: str = "affine"       # the ST models' transform: affine | attention | projective | tps
    epochs: int = 15
    batch_size: int = 64
    lr: float = 3e-3                # the peak lr with schedule="onecycle"
    optimizer: str = "adam"         # adam | adamw | sgd
    momentum: float = 0.9           # SGD only
    schedule: str = "onecycle"      # constant | step | cosine | onecycle
    warmup: float = 0.3             # onecycle: the share of the run spent warming up
    lr_step: int | None = None      # step: updates between two /10 (None: a third of the run)
    loc_lr_scale: float = 1.0       # the localisation nets learn at lr * this
    clip: float | None = None       # clip the gradients' global norm to this (None: no clipping)
    weight_decay: float = 0.0
    guard: bool = False             # on a collapse: restore the last healthy weights, loc lr * 0.1
    seed: int = 0
    train_size: int = 10_000
    test_size: int = 2_000
    out: str = "runs/latest"
    backend: str | None = None      # sampler backend; None keeps the current one ("numba")
    threads: int | None = None      # CPU threads (minstn.set_num_threads); None: the CPUs we may use
    progress: bool = True           # tqdm bar

    def __post_init__(self):
        self.model = self.model.lower().replace("_", "-")
        checks = [
            (self.distortion in DISTORTIONS, f"distortion must be one of {DISTORTIONS}, got {self.distortion!r}"),
            (self.model in MODELS, f"model must be one of {MODELS}, got {self.model!r}"),
            (self.optimizer in OPTIMIZERS, f"optimizer must be one of {OPTIMIZERS}, got {self.optimizer!r}"),
            (self.schedule in SCHEDULES, f"schedule must be one of {SCHEDULES}, got {self.schedule!r}"),
            (self.dataset in (None, *DATASETS), f"dataset must be one of {DATASETS} or None, got {self.dataset!r}"),
            (self.epochs >= 1, f"epochs must be >= 1, got {self.epochs}"),
            (self.batch_size >= 1, f"batch_size must be >= 1, got {self.batch_size}"),
            (self.train_size >= 1 and self.test_size >= 1, "train_size and test_size must be >= 1"),
            (self.lr > 0 and math.isfinite(self.lr), f"lr must be a positive number, got {self.lr}"),
            (0 <= self.warmup <= 1, f"warmup must be in [0, 1], got {self.warmup}"),
            (self.lr_step is None or self.lr_step >= 1, f"lr_step must be >= 1, got {self.lr_step}"),
            (self.loc_lr_scale > 0 and math.isfinite(self.loc_lr_scale),
             f"loc_lr_scale must be a positive number, got {self.loc_lr_scale}"),
            (self.clip is None or (self.clip > 0 and math.isfinite(self.clip)),
             f"clip must be a positive number or None, got {self.clip}"),
            (self.weight_decay >= 0 and math.isfinite(self.weight_decay),
             f"weight_decay must be >= 0, got {self.weight_decay}"),
            (self.threads is None or self.threads >= 1, f"threads must be >= 1 or None, got {self.threads}"),
        ]
        for ok, message in checks:
            if not ok:
                raise ValueError(message)


def prepare_data(config: TrainConfig, announce=say):
    """``(DataSplit, x_test, dataset)``: the digits of a config, its (fixed) distorted test
    images, and the data set used."""
    dataset = resolve_dataset(config.dataset, config.data_dir, announce)
    data = load_digits(dataset, config.data_dir, config.seed, config.train_size, config.test_size, announce)
    x_test = prepare_images(data.x_test, config.distortion, distortion_seed(config.seed, "test"))
    return data, x_test, dataset


def make_model(config: TrainConfig | dict, in_size: int):
    c = config if isinstance(config, dict) else dataclasses.asdict(config)
    return build_model(c["model"], in_size=in_size, num_classes=10, transform=c["transform"], in_channels=1)


def _json_config(config: TrainConfig, in_size: int, dataset: str) -> dict:
    saved = dataclasses.asdict(config)
    saved.update(in_size=in_size, dataset=dataset, num_classes=10, in_channels=1)
    return saved


def _write_figures(out: Path, history: list[dict], model, x_test: np.ndarray, y_test: np.ndarray) -> None:
    """Loss/accuracy (and transformer health) curves, and for ST models the Figure 1 picture."""
    plot_training_curves(history).savefig(out / "curves.png", dpi=100)
    if hasattr(model, "st"):
        plot_transformer(model, x_test[:8], labels=y_test[:8]).savefig(out / "transformer.png", dpi=100)


def _use_configured_backend(config: TrainConfig) -> None:
    """Switch the sampler backend to ``config.backend`` (None: leave it as it is)."""
    if config.backend is not None:
        set_backend(config.backend)


def _health_entry(health: dict | None) -> dict:
    """The health numbers of a history entry (None for a model without a transformer)."""
    if health is None:
        return {"theta_shift": None, "off_canvas": None}
    return {k: health[k] for k in ("theta_shift", "off_canvas", "spread", "scale", "rotation") if k in health}


def _data_identity(config: TrainConfig, data) -> dict:
    """What identifies the digits of a run (stored in config.json, checked by ``evaluate``)."""
    return {**data.identity, "distortion": config.distortion,
            "distortion_seeds": {"train": distortion_seed(config.seed, "train"),
                                 "test": distortion_seed(config.seed, "test")}}


def _stored_config_matches(out: Path, saved_config: dict) -> None:
    """``--resume`` continues the run as it was configured: refuse other settings."""
    stored = load_config(out)
    ignore = {"progress", "out", "data_dir"}
    diff = [k for k in saved_config if k not in ignore and stored.get(k) != saved_config[k]]
    if diff:
        raise UsageError(f"--resume: the run in {out} was trained with other settings ("
                         + ", ".join(f"{k}: {stored.get(k)!r} there, {saved_config[k]!r} now" for k in diff[:4])
                         + "); resume it with the same settings, or pass --overwrite to start again")


@wait_for_compiled()  # the same bytes from an empty and a warm Numba cache (see kernels/warm.py)
def train(config: TrainConfig | None = None, announce=say, resume: bool = False, overwrite: bool = False,
          **overrides) -> dict:
    """Train ``config.model`` and return the metrics dict (also in ``metrics.json``).

    ``train(epochs=1, model="fcn")`` works too: keyword overrides on the defaults. A
    folder that already holds something is refused, unless ``resume`` (continue the run
    there from its last finished epoch, with the same settings) or ``overwrite``.

    On a NaN / inf loss: prints the message (epoch and step), keeps the last good
    checkpoint (the previous epoch's, or the initial weights), writes metrics with
    ``status: "diverged"`` and returns them; likewise ``status: "collapsed"`` when the
    guard gave up. On Ctrl-C or SIGTERM: saves the current weights and metrics with
    ``status: "interrupted"``, then re-raises.
    """
    config = dataclasses.replace(config or TrainConfig(), **overrides)
    _use_configured_backend(config)
    set_num_threads(config.threads)
    out = prepare_run_folder(config.out, resume=resume, overwrite=overwrite)

    data, x_test, dataset = prepare_data(config, announce)
    in_size = x_test.shape[-1]
    manual_seed(config.seed)  # initial weights (and dropout, if any) from the seed
    model = make_model(config, in_size)
    optimizer = make_optimizer(model, config.optimizer, config.lr, config.momentum, config.loc_lr_scale,
                               config.weight_decay)
    steps_per_epoch = math.ceil(len(data.x_train) / config.batch_size)
    scheduler = make_scheduler(optimizer, config.schedule, config.epochs * steps_per_epoch, config.warmup,
                               config.lr_step)
    monitor = HealthMonitor(model, stop=config.guard, announce=announce)
    saved_config = dict(_json_config(config, in_size, dataset), data_identity=_data_identity(config, data))
    metrics = {
        "status": "running", "test_error": None, "model": config.model, "distortion": config.distortion,
        "parameters": count_parameters(model), "train_size": len(data.x_train), "test_size": len(data.x_test),
        "data": data.source, "history": [], "collapses": monitor.events,
    }
    first, retries = 1, 0
    if resume:
        _stored_config_matches(out, saved_config)
        meta = load_resume_state(out, model, optimizer, scheduler)
        first, retries = meta["epoch"] + 1, meta.get("guard_retries", 0)
        metrics["history"] = json.loads((out / METRICS_FILE).read_text())["history"][:meta["epoch"]]
        monitor.events.extend(meta.get("collapses", []))
        announce(f"resuming the run in {out} after epoch {meta['epoch']} of {config.epochs}")
    else:
        save_checkpoint(out, model, saved_config)  # a "last good" checkpoint exists from the start
    guard = Guard(model, optimizer, scheduler, announce) if config.guard else None
    if guard is not None:
        guard.retries = retries
    announce(f"training {config.model} ({metrics['parameters']:,} parameters) on {len(data.x_train)} "
             f"{config.distortion} digits ({data.source}), testing on {len(data.x_test)}; writing to {out}")

    epoch = saved = first - 1     # saved: the last epoch whose resume state is on disk
    try:
        for epoch in range(first, config.epochs + 1):
            start = time.perf_counter()
            x_train = prepare_images(data.x_train, config.distortion, distortion_seed(config.seed, "train"), epoch)
            stats = train_epoch_guarded(guard, lambda: train_epoch(
                model, optimizer, x_train, data.y_train, batch_size=config.batch_size, seed=config.seed,
                epoch=epoch, scheduler=scheduler, clip=config.clip, monitor=monitor, progress=config.progress,
                desc=f"epoch {epoch}/{config.epochs}"))
            error = error_rate(model, x_test, data.y_test)
            health = measure_health(model, x_test)
            seconds = time.perf_counter() - start
            metrics["history"].append({"epoch": epoch, "train_loss": stats["train_loss"],
                                       "train_acc": stats["train_acc"], "test_error": error,
                                       **_health_entry(health), "seconds": round(seconds, 3)})
            metrics["test_error"] = error
            with deferred_signals():   # Ctrl-C now would leave the three files out of step
                save_checkpoint(out, model, saved_config)
                save_resume_state(out, epoch, model, optimizer, scheduler,
                                  {"guard_retries": 0 if guard is None else guard.retries,
                                   "collapses": monitor.events})
                write_json(out / METRICS_FILE, metrics)
            saved = epoch
            shown = "" if health is None else (f", theta shift {health['theta_shift']:.3f}, "
                                               f"{100 * health['off_canvas']:.1f}% off canvas")
            announce(f"epoch {epoch}/{config.epochs}: train loss {stats['train_loss']:.4f}, train acc "
                     f"{stats['train_acc']:.4f}, test error {error:.4f}{shown} ({seconds:.1f} s)")
    except (TrainingDiverged, TransformerCollapsed) as err:
        status = "diverged" if isinstance(err, TrainingDiverged) else "collapsed"
        metrics.update(status=status, message=str(err))
        write_json(out / METRICS_FILE, metrics)  # the checkpoint on disk is the last good one
        good = f"after epoch {epoch - 1}" if epoch > 1 else "the initial weights"
        announce(f"{err}\nkept the last good checkpoint ({good}) in {out}")
        return metrics
    except KeyboardInterrupt:
        with deferred_signals(discard=True):   # a second Ctrl-C must not cut this save short
            save_checkpoint(out, model, saved_config)
            when = f"after epoch {saved}" if saved == epoch else f"during epoch {epoch}"
            metrics.update(status="interrupted", message=f"interrupted {when}")
            write_json(out / METRICS_FILE, metrics)
        announce(f"\ninterrupted {when}; saved the current weights to {out} "
                 f"(minstn train --out {out} --resume continues after epoch {saved})")
        raise

    metrics["status"] = "done"
    write_json(out / METRICS_FILE, metrics)
    _write_figures(out, metrics["history"], model, x_test, data.y_test)
    return metrics


# The settings a `minstn train` checkpoint must hold, with their types (checked on loading).
REQUIRED_SETTINGS = {"model": str, "transform": str, "in_size": int, "dataset": str, "distortion": str,
                     "seed": int, "train_size": int, "test_size": int, "data_dir": (str, type(None)),
                     "backend": (str, type(None))}


def load_model(checkpoint_dir: str | Path):
    """Rebuild the model described by ``config.json`` and load ``model.npz`` into it; a
    file that is missing a setting, broken or does not fit raises CheckpointError."""
    config = load_config(checkpoint_dir, required=REQUIRED_SETTINGS)
    model = make_model(config, config["in_size"])
    load_weights(checkpoint_dir, model)
    return model, config


DATA_OPTIONS = ("test_size", "distortion", "dataset", "seed")


def _run_status(folder: Path) -> str:
    try:
        return json.loads((folder / METRICS_FILE).read_text()).get("status", "unknown")
    except FileNotFoundError:
        return "unknown (no metrics.json)"
    except (ValueError, OSError) as err:
        return f"unknown ({METRICS_FILE} unreadable: {err})"


@wait_for_compiled()
def evaluate(checkpoint_dir: str | Path, data_dir: str | None = None, announce=say, allow_unfinished: bool = False,
             **data_options) -> dict:
    """Reload a checkpoint and return its test error (and its transformer's health).

    Without ``data_options`` the test set is rebuilt from the stored seed, sizes, data
    set and distortion, and checked against the stored fingerprint of the test digits:
    the same number ``train`` reported, or an error if the data found now is not the
    data the run used. ``test_size``, ``distortion``, ``dataset`` and ``seed`` evaluate
    on another test set instead, and say so. A run that did not finish (diverged,
    collapsed, interrupted, killed) is refused unless ``allow_unfinished``. Never
    downloads anything.
    """
    unknown = set(data_options) - set(DATA_OPTIONS)
    if unknown:
        raise ValueError(f"evaluate: unknown data options {sorted(unknown)}; choose from {DATA_OPTIONS}")
    folder = Path(checkpoint_dir)
    saved = load_config(folder)
    if "cell" in saved and "dataset" not in saved:
        raise UsageError(f"{folder} is a cell of `minstn reproduce` ({saved['cell']} on {saved.get('distortion')}), "
                         f"not a `minstn train` run: its result is in {folder / METRICS_FILE}")
    status = _run_status(folder)
    if status != "done" and not allow_unfinished:
        raise UsageError(f"the run in {folder} did not finish (status {status}): its weights are not those of a "
                         f"finished run; pass --allow-unfinished to evaluate them anyway")
    if status != "done":
        announce(f"evaluating an unfinished run (status {status})")
    model, saved = load_model(folder)
    fields = {f.name for f in dataclasses.fields(TrainConfig)}
    config = TrainConfig(**{k: v for k, v in saved.items() if k in fields})
    config.dataset = saved["dataset"]  # the data it was trained on, not "whatever is found now"
    if data_dir is not None:
        config.data_dir = data_dir
    changed = {k: v for k, v in data_options.items() if v is not None and v != getattr(config, k)}
    if changed:
        config = dataclasses.replace(config, **changed)
        announce("evaluating on another test set than the stored one: "
                 + ", ".join(f"{k} {v} (trained with {saved.get(k)})" for k, v in changed.items()))
    if input_size(config.distortion) != saved["in_size"]:
        raise ValueError(f"the model was trained on {saved['in_size']}x{saved['in_size']} inputs; distortion "
                         f"{config.distortion!r} makes {input_size(config.distortion)}-pixel inputs")
    _use_configured_backend(config)
    data = load_digits(config.dataset, config.data_dir, config.seed, config.train_size, config.test_size, announce,
                       download=False)
    stored = saved.get("data_identity", {})
    if not changed and stored.get("test_digest") not in (None, data.identity["test_digest"]):
        raise UsageError(f"the test digits found now are not the ones this run was tested on (fingerprint "
                         f"{data.identity['test_digest']} now, {stored['test_digest']} stored; the data found "
                         f"now: {data.source}). Pass --data-dir with the run's data, or a data option "
                         f"(--test-size, --seed, --dataset, --distortion) to evaluate on other digits on purpose")
    x_test = prepare_images(data.x_test, config.distortion, distortion_seed(config.seed, "test"))
    return {"test_error": error_rate(model, x_test, data.y_test), "test_size": len(x_test), "status": status,
            "model": config.model, "distortion": config.distortion, "health": measure_health(model, x_test),
            "changed": changed}
