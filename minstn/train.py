"""Train and evaluate the section 4.1 classifiers on (distorted) digits.

    from minstn.train import TrainConfig, train, evaluate
    metrics = train(TrainConfig(model="st-cnn", distortion="rts", epochs=3, out="runs/st"))
    evaluate("runs/st")["test_error"] == metrics["test_error"]

The recipe follows the paper's (section 4.1 / appendix A): cross-entropy loss,
mini-batch gradient descent, digits distorted "on the fly" (a fresh random
distortion of every training digit each epoch; the test set is distorted once), test
error reported as a fraction. The paper trains with SGD, lr 0.01 and batch 256 for
many more iterations than a laptop allows; for short runs Adam (lr 1e-3, batch 64) gets
much further per minute, so that is the default here.

What ``train`` writes into ``config.out``:

* ``model.npz`` + ``config.json``: the checkpoint (see :mod:`minstn.checkpoint`),
  rewritten after every epoch, so it is always the last *good* model;
* ``metrics.json``: final ``test_error`` and the per-epoch history;
* ``curves.png`` (loss / accuracy) and, for ST models, ``transformer.png``
  (paper Figure 1: inputs with the sampling grid, beside the transformer's output).

Reproducibility: the seed fixes the data split, the distortions, the shuffling and
the initial weights (``mt.manual_seed``), so the same config gives the same metrics
on the CPU.
"""

from __future__ import annotations

import dataclasses
import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import functional as F
from .autograd import Tensor, no_grad
from .checkpoint import load_config, load_state, save_checkpoint, write_json
from .models import MODELS as _MODEL_BUILDERS
from .models import build_model, count_parameters
from .kernels.threads import set_num_threads
from .random import manual_seed

__all__ = ["TrainConfig", "train", "evaluate", "load_digits", "prepare_data", "DataSplit",
           "TrainingDiverged", "DISTORTIONS", "MODELS", "OPTIMIZERS"]

DISTORTIONS = ("none", "r", "rts", "p", "e", "tc")
MODELS = tuple(_MODEL_BUILDERS)  # "fcn", "cnn", "st-fcn", "st-cnn"
OPTIMIZERS = ("sgd", "adam")
DATASETS = ("mnist", "glyphs")
EVAL_BATCH = 500  # evaluation batch: big enough to be fast, small enough for memory


@dataclass
class TrainConfig:
    """Everything that defines a run; stored in ``config.json`` next to the weights."""

    data_dir: str | None = None
    dataset: str | None = None      # "mnist", "glyphs", or None: MNIST if found, else glyphs
    distortion: str = "rts"         # none | r | rts | p | e | tc  (section 4.1)
    model: str = "st-cnn"           # fcn | cnn | st-fcn | st-cnn
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
    threads: int | None = None      # CPU threads (minstn.set_num_threads); None: the CPUs we may use

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
            (self.threads is None or self.threads >= 1, f"threads must be >= 1 or None, got {self.threads}"),
            (self.lr > 0 and math.isfinite(self.lr), f"lr must be a positive number, got {self.lr}"),
        ]
        for ok, message in checks:
            if not ok:
                raise ValueError(message)


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite; the message names the epoch and the step."""


# --- data ----------------------------------------------------------------------------

@dataclass
class DataSplit:
    """Undistorted uint8 digits ``(N, 28, 28)`` and int64 labels, train and test."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    source: str  # a one-line description, stored in metrics.json


def _say(message: str) -> None:
    print(message, file=sys.stderr)


def resolve_dataset(dataset: str | None, data_dir: str | None, announce=_say) -> str:
    """``dataset``, or when None: "mnist" if any MNIST split is found, else "glyphs"."""
    from .data.mnist import find_mnist, search_dirs

    if dataset is not None:
        return dataset
    if find_mnist(data_dir, "train") or find_mnist(data_dir, "test"):
        return "mnist"
    where = ", ".join(str(d) for d in search_dirs(data_dir))
    announce(f"MNIST not found in {where}; training on the embedded glyph digits")
    return "glyphs"


def _take(x, y, index):
    return x[index], y[index]


def load_digits(dataset: str, data_dir: str | None, seed: int, train_size: int, test_size: int,
                announce=_say) -> DataSplit:
    """Disjoint train / test digits, chosen by ``seed``, capped at the requested sizes.

    MNIST with both splits: a seeded subset of each. MNIST with only the test split
    (like ``../shared/data/mnist``): one seeded permutation of it, the first
    ``test_size`` digits for testing, the next ``train_size`` for training (disjoint
    by construction). Glyphs: the generator's own train and test streams.
    """
    rng = np.random.default_rng([int(seed), 0xDA7A])
    if dataset == "glyphs":
        from .data.glyphs import load_glyphs

        x_tr, y_tr = load_glyphs("train", n=train_size, seed=seed)
        x_te, y_te = load_glyphs("test", n=test_size, seed=seed)
        return DataSplit(x_tr, y_tr, x_te, y_te, "embedded glyph digits")

    from .data.mnist import find_mnist, load_mnist

    if find_mnist(data_dir, "train") is not None or find_mnist(data_dir, "test") is None:
        # the usual case; with nothing on disk load_mnist downloads or explains what is missing
        x_tr, y_tr = load_mnist("train", data_dir)
        x_te, y_te = load_mnist("test", data_dir)
        x_tr, y_tr = _take(x_tr, y_tr, rng.permutation(len(x_tr))[:train_size])
        x_te, y_te = _take(x_te, y_te, rng.permutation(len(x_te))[:test_size])
        return DataSplit(x_tr, y_tr, x_te, y_te, "MNIST train / test splits")

    x, y = load_mnist("test", data_dir, download=False)
    if len(x) < 2:
        raise ValueError(f"the MNIST test split has {len(x)} digit(s): too few to split into train and test")
    order = rng.permutation(len(x))
    n_test = min(test_size, len(x) // 2)  # always leave digits to train on
    test, train = order[:n_test], order[n_test:n_test + train_size]
    announce(f"MNIST train split not found; splitting the {len(x)} test digits into "
             f"{len(train)} train / {len(test)} test (seed {seed})")
    return DataSplit(x[train], y[train], x[test], y[test], f"MNIST test split, {len(train)}/{len(test)} by seed")


def input_size(distortion: str) -> int:
    """Side of the network input: 28 undistorted, else the distortion's canvas (42 RTS, 60 TC)."""
    from .data.distort import OUTPUT_SIZE

    return 28 if distortion == "none" else OUTPUT_SIZE[distortion]


def prepare_images(images: np.ndarray, distortion: str, seed: int, epoch: int = 0) -> np.ndarray:
    """float32 ``(N, 1, S, S)`` in [0, 1]: the digits, distorted when asked.

    ``distort`` is deterministic in ``(seed, epoch)``. Training calls it with the epoch
    number (a fresh distortion each epoch, as the paper's "on the fly"); the test set
    uses another seed (``2 * seed + 1`` vs ``2 * seed``) so it never repeats a
    training distortion.
    """
    from .data.distort import distort, to_float_batch

    if distortion == "none":
        return to_float_batch(images)
    return distort(images, distortion, seed=seed, epoch=epoch)


def _train_seed(seed: int) -> int:
    return 2 * int(seed)


def _test_seed(seed: int) -> int:
    return 2 * int(seed) + 1


def prepare_data(config: TrainConfig, announce=_say) -> tuple[DataSplit, np.ndarray, str]:
    """The digits of a config, its (fixed) distorted test images and the data set used."""
    dataset = resolve_dataset(config.dataset, config.data_dir, announce)
    data = load_digits(dataset, config.data_dir, config.seed, config.train_size, config.test_size, announce)
    x_test = prepare_images(data.x_test, config.distortion, _test_seed(config.seed))
    return data, x_test, dataset


def _batches(n: int, batch_size: int, rng: np.random.Generator | None):
    """Index arrays of the mini-batches: shuffled by ``rng``, in order when it is None."""
    order = rng.permutation(n) if rng is not None else np.arange(n)
    for start in range(0, n, batch_size):
        yield order[start:start + batch_size]


# --- model and optimiser ------------------------------------------------------------

def make_model(config: TrainConfig | dict, in_size: int):
    c = config if isinstance(config, dict) else dataclasses.asdict(config)
    return build_model(c["model"], in_size=in_size, num_classes=10, transform=c["transform"], in_channels=1)


def make_optimizer(config: TrainConfig, params):
    from . import optim

    if config.optimizer == "adam":
        return optim.Adam(params, lr=config.lr)
    return optim.SGD(params, lr=config.lr, momentum=config.momentum)


def predict(model, x: np.ndarray, batch_size: int = EVAL_BATCH) -> np.ndarray:
    """Predicted classes, in eval mode and without building a graph."""
    was_training = model.training
    model.eval()
    out = []
    try:
        with no_grad():
            for index in _batches(len(x), batch_size, None):
                out.append(model(Tensor(x[index])).data.argmax(axis=1))
    finally:
        model.train(was_training)
    return np.concatenate(out) if out else np.zeros(0, np.int64)


def error_rate(model, x: np.ndarray, y: np.ndarray) -> float:
    """Fraction of misclassified digits (Table 1 reports it in percent)."""
    return float(np.mean(predict(model, x) != y))


# --- the loop ------------------------------------------------------------------------

def _progress(iterable, total: int, desc: str, enabled: bool):
    from tqdm.auto import tqdm

    return tqdm(iterable, total=total, desc=desc, disable=not enabled, leave=False, file=sys.stderr,
                dynamic_ncols=True)


def _train_epoch(model, optimizer, x, y, config, epoch: int):
    """One pass over the training set. Returns (mean loss, accuracy).

    Raises :class:`TrainingDiverged` at the first non-finite loss, *before* the update,
    naming the epoch and the step (1-based) so the run can be repeated up to there.
    """
    rng = np.random.default_rng([int(config.seed), int(epoch), 0x5EED])
    steps = math.ceil(len(x) / config.batch_size)
    bar = _progress(_batches(len(x), config.batch_size, rng), steps, f"epoch {epoch}/{config.epochs}",
                    config.progress)
    total_loss, correct, seen = 0.0, 0, 0
    model.train()
    for step, index in enumerate(bar, start=1):
        logits = model(Tensor(x[index]))
        loss = F.cross_entropy(logits, y[index])
        value = loss.item()
        if not math.isfinite(value):
            raise TrainingDiverged(
                f"loss became {value} at epoch {epoch}, step {step} of {steps}; stopped training "
                f"(try a smaller learning rate than {config.lr:g})")
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        total_loss += value * len(index)
        correct += int((logits.data.argmax(axis=1) == y[index]).sum())
        seen += len(index)
        bar.set_postfix(loss=f"{total_loss / seen:.3f}", acc=f"{correct / seen:.3f}", refresh=False)
    bar.close()
    return total_loss / seen, correct / seen


def _json_config(config: TrainConfig, in_size: int, dataset: str) -> dict:
    saved = dataclasses.asdict(config)
    saved.update(in_size=in_size, dataset=dataset, num_classes=10, in_channels=1)
    return saved


def _write_figures(out: Path, history: list[dict], model, x_test: np.ndarray, y_test: np.ndarray) -> None:
    """Loss/accuracy curves, and for ST models the Figure 1 style grid picture."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    from .viz.training import plot_training_curves, plot_transformer

    fig = plot_training_curves(history)
    fig.savefig(out / "curves.png", dpi=100)
    plt.close(fig)
    if hasattr(model, "st"):
        fig = plot_transformer(model, x_test[:8], labels=y_test[:8])
        fig.savefig(out / "transformer.png", dpi=100)
        plt.close(fig)


def _use_configured_backend(config: TrainConfig) -> None:
    """Switch the sampler backend to ``config.backend`` (None: leave it as it is)."""
    if config.backend is not None:
        from .backend import set_backend

        set_backend(config.backend)


def train(config: TrainConfig | None = None, announce=_say, **overrides) -> dict:
    """Train ``config.model`` and return the metrics dict (also in ``metrics.json``).

    ``train(epochs=1, model="fcn")`` works too: keyword overrides on the defaults.

    On a NaN / inf loss: prints the message (epoch and step), keeps the last good
    checkpoint (the previous epoch's, or the initial weights), writes metrics with
    ``status: "diverged"`` and returns them. On Ctrl-C: saves the current weights
    and metrics with ``status: "interrupted"``, then re-raises KeyboardInterrupt.
    """
    config = dataclasses.replace(config or TrainConfig(), **overrides)
    _use_configured_backend(config)
    set_num_threads(config.threads)
    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)

    data, x_test, dataset = prepare_data(config, announce)
    in_size = x_test.shape[-1]
    manual_seed(config.seed)  # initial weights (and dropout, if any) from the seed
    model = make_model(config, in_size)
    optimizer = make_optimizer(config, model.parameters())
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
            x_train = prepare_images(data.x_train, config.distortion, _train_seed(config.seed), epoch)
            loss, accuracy = _train_epoch(model, optimizer, x_train, data.y_train, config, epoch)
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


def evaluate(checkpoint_dir: str | Path, data_dir: str | None = None, announce=_say) -> dict:
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
