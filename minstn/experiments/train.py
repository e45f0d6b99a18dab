"""``minstn train`` and ``minstn evaluate``: one classifier of section 4.1 on (distorted) digits.

    from minstn.experiments import TrainConfig, train, evaluate
    metrics = train(TrainConfig(model="st-cnn", distortion="rts", epochs=3, out="runs/st"))
    evaluate("runs/st")["test_error"] == metrics["test_error"]

The recipe follows the paper's (section 4.1, appendix A): cross-entropy, mini-batch
gradient descent (:mod:`minstn.experiments.loop`), digits distorted on the fly (fresh
distortions every epoch; the test set distorted once), test error as a fraction. For
short runs Adam (lr 1e-3, batch 64) gets much further per minute than the paper's SGD,
so it is the default. ``train`` writes into ``config.out`` the checkpoint
(``model.npz`` + ``config.json``, rewritten after every epoch: always the last good
model), ``metrics.json`` (final ``test_error`` and the per-epoch history), ``curves.png``
and, for ST models, ``transformer.png`` (paper Figure 1). The seed fixes the data split,
the distortions, the shuffling and the initial weights: the same config gives the same
metrics on the same machine and thread count.
"""

from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..backend import set_backend
from ..checkpoint import load_config, load_state, save_checkpoint, write_json
from ..data import DATASETS, DISTORTIONS, distortion_seed, load_digits, prepare_images, resolve_dataset
from ..kernels.warm import wait_for_compiled
from ..models import MODELS as _MODEL_BUILDERS
from ..models import build_model, count_parameters
from ..random import manual_seed
from ..viz.training import plot_training_curves, plot_transformer
from .console import say
from .loop import OPTIMIZERS, TrainingDiverged, error_rate, make_optimizer, train_epoch

__all__ = ["TrainConfig", "train", "evaluate", "load_model", "prepare_data", "MODELS"]

MODELS = tuple(_MODEL_BUILDERS)  # fcn, cnn, st-fcn, st-cnn, st-cnn-multi, 2xst-fcn


@dataclass
class TrainConfig:
    """Everything that defines a run; stored in ``config.json`` next to the weights."""

    data_dir: str | None = None
    dataset: str | None = None      # "mnist", "glyphs", or None: MNIST if found, else glyphs
    distortion: str = "rts"         # none | r | rts | p | e | tc  (section 4.1)
    model: str = "st-cnn"           # fcn | cnn | st-fcn | st-cnn | st-cnn-multi | 2xst-fcn
    transform: str = "affine"       # the ST models' transform: affine | attention | projective | tps
    epochs: int = 3
    batch_size: int = 64
    lr: float = 1e-3
    optimizer: str = "adam"         # adam | sgd
    momentum: float = 0.9           # SGD only
    seed: int = 0
    train_size: int = 10_000
    test_size: int = 2_000
    out: str = "runs/latest"
    backend: str | None = None      # sampler backend; None keeps the current one ("numba")
    progress: bool = True           # tqdm bar

    def __post_init__(self):
        self.model = self.model.lower().replace("_", "-")
        checks = [
            (self.distortion in DISTORTIONS, f"distortion must be one of {DISTORTIONS}, got {self.distortion!r}"),
            (self.model in MODELS, f"model must be one of {MODELS}, got {self.model!r}"),
            (self.optimizer in OPTIMIZERS, f"optimizer must be one of {OPTIMIZERS}, got {self.optimizer!r}"),
            (self.dataset in (None, *DATASETS), f"dataset must be one of {DATASETS} or None, got {self.dataset!r}"),
            (self.epochs >= 1, f"epochs must be >= 1, got {self.epochs}"),
            (self.batch_size >= 1, f"batch_size must be >= 1, got {self.batch_size}"),
            (self.train_size >= 1 and self.test_size >= 1, "train_size and test_size must be >= 1"),
            (self.lr > 0 and math.isfinite(self.lr), f"lr must be a positive number, got {self.lr}"),
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


# --- model and optimiser ------------------------------------------------------------

def make_model(config: TrainConfig | dict, in_size: int):
    c = config if isinstance(config, dict) else dataclasses.asdict(config)
    return build_model(c["model"], in_size=in_size, num_classes=10, transform=c["transform"], in_channels=1)


def _json_config(config: TrainConfig, in_size: int, dataset: str) -> dict:
    saved = dataclasses.asdict(config)
    saved.update(in_size=in_size, dataset=dataset, num_classes=10, in_channels=1)
    return saved


def _write_figures(out: Path, history: list[dict], model, x_test: np.ndarray, y_test: np.ndarray) -> None:
    """Loss/accuracy curves, and for ST models the Figure 1 style grid picture."""
    plot_training_curves(history).savefig(out / "curves.png", dpi=100)
    if hasattr(model, "st"):
        plot_transformer(model, x_test[:8], labels=y_test[:8]).savefig(out / "transformer.png", dpi=100)


def _use_configured_backend(config: TrainConfig) -> None:
    """Switch the sampler backend to ``config.backend`` (None: leave it as it is)."""
    if config.backend is not None:
        set_backend(config.backend)


@wait_for_compiled()  # the same bytes from an empty and a warm Numba cache (see kernels/warm.py)
def train(config: TrainConfig | None = None, announce=say, **overrides) -> dict:
    """Train ``config.model`` and return the metrics dict (also in ``metrics.json``).

    ``train(epochs=1, model="fcn")`` works too: keyword overrides on the defaults.

    On a NaN / inf loss: prints the message (epoch and step), keeps the last good
    checkpoint (the previous epoch's, or the initial weights), writes metrics with
    ``status: "diverged"`` and returns them. On Ctrl-C: saves the current weights
    and metrics with ``status: "interrupted"``, then re-raises KeyboardInterrupt.
    """
    config = dataclasses.replace(config or TrainConfig(), **overrides)
    _use_configured_backend(config)
    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)

    data, x_test, dataset = prepare_data(config, announce)
    in_size = x_test.shape[-1]
    manual_seed(config.seed)  # initial weights (and dropout, if any) from the seed
    model = make_model(config, in_size)
    optimizer = make_optimizer(model, config.optimizer, config.lr, config.momentum)
    saved_config = _json_config(config, in_size, dataset)
    metrics = {
        "status": "running", "test_error": None, "model": config.model, "distortion": config.distortion,
        "parameters": count_parameters(model), "train_size": len(data.x_train), "test_size": len(data.x_test),
        "data": data.source, "history": [],
    }
    save_checkpoint(out, model, saved_config)  # a "last good" checkpoint exists from the start
    announce(f"training {config.model} ({metrics['parameters']:,} parameters) on {len(data.x_train)} "
             f"{config.distortion} digits ({data.source}), testing on {len(data.x_test)}; writing to {out}")

    epoch = 0
    try:
        for epoch in range(1, config.epochs + 1):
            start = time.perf_counter()
            x_train = prepare_images(data.x_train, config.distortion, distortion_seed(config.seed, "train"), epoch)
            stats = train_epoch(model, optimizer, x_train, data.y_train, batch_size=config.batch_size,
                                seed=config.seed, epoch=epoch, progress=config.progress,
                                desc=f"epoch {epoch}/{config.epochs}")
            loss, accuracy = stats["train_loss"], stats["train_acc"]
            error = error_rate(model, x_test, data.y_test)
            seconds = time.perf_counter() - start
            metrics["history"].append({"epoch": epoch, "train_loss": loss, "train_acc": accuracy,
                                       "test_error": error, "seconds": round(seconds, 3)})
            metrics["test_error"] = error
            save_checkpoint(out, model, saved_config)
            write_json(out / "metrics.json", metrics)
            announce(f"epoch {epoch}/{config.epochs}: train loss {loss:.4f}, train acc {accuracy:.4f}, "
                     f"test error {error:.4f} ({seconds:.1f} s)")
    except TrainingDiverged as err:
        metrics.update(status="diverged", message=str(err))
        write_json(out / "metrics.json", metrics)  # the checkpoint on disk is the last good one
        good = f"after epoch {epoch - 1}" if epoch > 1 else "the initial weights"
        announce(f"{err}\nkept the last good checkpoint ({good}) in {out}")
        return metrics
    except KeyboardInterrupt:
        save_checkpoint(out, model, saved_config)
        metrics.update(status="interrupted", message=f"interrupted during epoch {epoch}")
        write_json(out / "metrics.json", metrics)
        announce(f"\ninterrupted during epoch {epoch}; saved the current weights to {out}")
        raise

    metrics["status"] = "done"
    write_json(out / "metrics.json", metrics)
    _write_figures(out, metrics["history"], model, x_test, data.y_test)
    return metrics


def load_model(checkpoint_dir: str | Path):
    """Rebuild the model described by ``config.json`` and load ``model.npz`` into it."""
    config = load_config(checkpoint_dir)
    model = make_model(config, config["in_size"])
    model.load_state_dict(load_state(checkpoint_dir))
    return model, config


@wait_for_compiled()
def evaluate(checkpoint_dir: str | Path, data_dir: str | None = None, announce=say) -> dict:
    """Reload a checkpoint, rebuild its test set from the stored seed and sizes, and
    return ``{"test_error": ..., "test_size": ...}``: the same number ``train`` reported."""
    model, saved = load_model(checkpoint_dir)
    fields = {f.name for f in dataclasses.fields(TrainConfig)}
    config = TrainConfig(**{k: v for k, v in saved.items() if k in fields})
    config.dataset = saved["dataset"]  # the data it was trained on, not "whatever is found now"
    if data_dir is not None:
        config.data_dir = data_dir
    _use_configured_backend(config)
    data, x_test, _ = prepare_data(config, announce)
    return {"test_error": error_rate(model, x_test, data.y_test), "test_size": len(x_test),
            "model": config.model, "distortion": config.distortion}
