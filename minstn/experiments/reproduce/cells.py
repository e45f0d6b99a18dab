"""One cell: train it (or read it back when it is finished), store it, rebuild its model.

A cell trains in ``<out>/runs/<model>-<column>/``: a checkpoint (``model.npz`` +
``config.json``) and ``metrics.json`` with its settings and ``status``; a later run with
exactly the same settings reads ``metrics.json`` back instead of training again, so an
interrupted reproduction resumes where it stopped. Training is the one loop of
:mod:`minstn.experiments.loop`; the data of a column comes from :func:`column_data`.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

import numpy as np

from ...checkpoint import load_config, load_weights, save_checkpoint, write_json
from ...data import distortion_seed, load_digits, mnist_addition, prepare_images, resolve_dataset
from ...models import build_model, count_parameters
from ...random import manual_seed
from ..console import say
from ..guard import Guard, train_epoch_guarded
from ..health import HealthMonitor, TransformerCollapsed, measure_health
from ..loop import TrainingDiverged, make_optimizer, make_scheduler, predict, train_epoch
from .budgets import Budget
from .paper import DISTORTION_LABEL, Cell, parse_cell

__all__ = ["train_cell", "stored_cell", "run_cell", "load_cell_model", "build_cell_model", "load_budget_digits",
           "column_data", "theta_shift_text", "off_canvas_text", "UNFINISHED_RESULTS"]

# A cell that stopped early, with a result all the same: a NaN loss, or a collapse the guard gave up on
UNFINISHED_RESULTS = ("diverged", "collapsed")


def build_cell_model(cell: Cell, in_size: int, num_classes: int, in_channels: int):
    """The model of a cell (its transform for the ST models), from :mod:`minstn.models`."""
    return build_model(cell.base, in_size=in_size, num_classes=num_classes, transform=cell.transform_name,
                       in_channels=in_channels)


def train_cell(cell: Cell, budget: Budget, data: dict, settings: dict, folder: Path, announce=say,
               progress: bool = False) -> dict:
    """Train one cell from scratch; write checkpoint + ``metrics.json``; return the metrics.

    ``data``: ``x_test``, ``y_test``, ``make_train(epoch) -> (x, y)``, ``num_classes``.
    The test set is evaluated after the last epoch only (it costs a third of an epoch),
    or after every epoch with ``budget.eval_every_epoch``. With ``budget.guard``, a
    collapsed transformer goes back to the end of the last healthy epoch, its localiser's
    lr lowered, and the epoch is trained again (:mod:`minstn.experiments.guard`); the
    cell ends ``"collapsed"`` when that did not help.
    """
    folder.mkdir(parents=True, exist_ok=True)
    x_test, y_test = data["x_test"], data["y_test"]
    in_channels, in_size = x_test.shape[1], x_test.shape[-1]
    manual_seed(settings["seed"])
    model = build_cell_model(cell, in_size, data["num_classes"], in_channels)
    optimizer = make_optimizer(model, budget.optimizer, budget.lr, budget.momentum, budget.loc_lr_scale,
                               budget.weight_decay)
    epochs = budget.epochs_for(cell)
    total = budget.iterations or epochs * math.ceil(data["train_size"] / budget.batch_size)
    scheduler = make_scheduler(optimizer, budget.schedule, total, budget.warmup, budget.lr_step)
    monitor = HealthMonitor(model, stop=budget.guard, announce=announce)
    guard = Guard(model, optimizer, scheduler, announce) if budget.guard and monitor.sts else None
    config = dict(settings, cell=cell.key, in_size=in_size, in_channels=in_channels,
                  num_classes=data["num_classes"])
    metrics = {"status": "running", "cell": cell.key, "label": cell.label, "distortion": settings["distortion"],
               "parameters": count_parameters(model), "settings": settings, "history": [],
               "collapses": monitor.events}
    write_json(folder / "metrics.json", metrics)
    start, iteration, epoch = time.perf_counter(), 0, 0
    max_iter = budget.iterations
    try:
        while epoch < epochs and (max_iter is None or iteration < max_iter):
            epoch += 1
            t0 = time.perf_counter()
            x, y = data["make_train"](epoch)
            stats = train_epoch_guarded(guard, lambda: train_epoch(
                model, optimizer, x, y, batch_size=budget.batch_size, seed=settings["seed"], epoch=epoch,
                scheduler=scheduler, clip=budget.clip, monitor=monitor,
                max_steps=None if max_iter is None else max_iter - iteration))
            iteration += stats["steps"]
            last = epoch >= epochs or (max_iter is not None and iteration >= max_iter)
            wrong = np.flatnonzero(predict(model, x_test) != y_test) if last or budget.eval_every_epoch else None
            err = None if wrong is None else len(wrong) / len(y_test)
            metrics["history"].append({"epoch": epoch, "iterations": iteration, "train_loss": stats["train_loss"],
                                       "train_acc": stats["train_acc"], "test_error": err,
                                       "seconds": round(time.perf_counter() - t0, 2)})
            if progress:
                announce(f"  {cell.key} {settings['distortion']} epoch {epoch}: loss {stats['train_loss']:.3f}"
                         + ("" if err is None else f", test error {100 * err:.2f}%"))
    except (TrainingDiverged, TransformerCollapsed) as exc:
        status = "diverged" if isinstance(exc, TrainingDiverged) else "collapsed"
        metrics.update(status=status, message=str(exc))
        write_json(folder / "metrics.json", metrics)
        return metrics
    save_checkpoint(folder, model, config)
    health = measure_health(model, x_test[:256])
    metrics.update(status="done", test_error=metrics["history"][-1]["test_error"], iterations=iteration,
                   test_wrong=wrong.tolist(),  # the test examples it got wrong: paired leads (.significance)
                   epochs=epoch, seconds=round(time.perf_counter() - start, 2),
                   **({} if guard is None else {"guard_restores": guard.retries}),
                   theta_shift=None if health is None else health["theta_shift"],
                   off_canvas=None if health is None else health["off_canvas"])
    if health is not None and len(health["each"]) > 1:   # 2xST-FCN, ST-CNN Multi: every transformer
        metrics.update(theta_shifts=[h["theta_shift"] for h in health["each"]],
                       off_canvas_each=[h["off_canvas"] for h in health["each"]])
    write_json(folder / "metrics.json", metrics)
    return metrics


def stored_cell(folder: Path, settings: dict, statuses=("done",)) -> dict | None:
    """The metrics stored in ``folder`` when their status is in ``statuses`` (a finished
    cell) and they were trained with exactly ``settings``; else None (the cell must train)."""
    path = folder / "metrics.json"
    if not path.is_file():
        return None
    try:
        stored = json.loads(path.read_text())
    except json.JSONDecodeError:
        return None
    if stored.get("status") in statuses and stored.get("settings") == settings:
        return stored
    return None


def run_cell(cell: Cell, budget: Budget, distortion: str, data: dict, settings: dict, runs: Path,
             announce=say, progress: bool = False) -> dict:
    """The cell's stored result when it is done with the same settings, else train it."""
    folder = runs / f"{cell.key}-{distortion}"
    stored = stored_cell(folder, settings)
    if stored is not None:
        stored["resumed"] = True
        announce(f"{cell.label:16s} {DISTORTION_LABEL.get(distortion, distortion):4s} "
                 f"{100 * stored['test_error']:6.2f}%  (stored in {folder})")
        return stored
    metrics = train_cell(cell, budget, data, settings, folder, announce, progress)
    metrics["resumed"] = False
    if metrics["status"] == "done":
        announce(f"{cell.label:16s} {DISTORTION_LABEL.get(distortion, distortion):4s} "
                 f"{100 * metrics['test_error']:6.2f}%  ({metrics['seconds']:.0f} s, theta shift "
                 f"{theta_shift_text(metrics)})")
    else:
        announce(f"{cell.label:16s} {distortion}: {metrics['status']} ({metrics.get('message', '')})")
    return metrics


def theta_shift_text(metrics: dict) -> str:
    """A cell's mean |theta - identity|: "0.123", "0.123 / 0.045" for a model with two
    transformers (cells stored before ``theta_shifts`` existed show the first only), "–"
    without a transformer."""
    return _per_transformer(metrics.get("theta_shifts") or [metrics.get("theta_shift")], "{:.3f}")


def off_canvas_text(metrics: dict) -> str:
    """A cell's share of sampling points off the canvas, in percent: "8%", "8% / 44%" for a
    model with two transformers (as :func:`theta_shift_text`), "–" without a transformer."""
    shares = metrics.get("off_canvas_each") or [metrics.get("off_canvas")]
    return _per_transformer([None if v is None else 100 * v for v in shares], "{:.0f}%")


def _per_transformer(values: list, form: str) -> str:
    """``values`` (one per transformer) written with ``form``, joined by " / "; "–" when
    the first is None (a model without a transformer)."""
    return "–" if values[0] is None else " / ".join(form.format(v) for v in values)


def load_cell_model(folder: Path):
    """Rebuild a finished cell's model from its checkpoint."""
    config = load_config(folder, required={"cell": str, "in_size": int, "num_classes": int, "in_channels": int})
    cell = parse_cell(config["cell"])
    model = build_cell_model(cell, config["in_size"], config["num_classes"], config["in_channels"])
    load_weights(folder, model)
    return model, config


# --- data ----------------------------------------------------------------------------

def load_budget_digits(budget: Budget, data_dir, seed: int, dataset: str | None, announce=say):
    """The undistorted train / test digits of a budget (a warning when fewer than it asks for)."""
    name = resolve_dataset(dataset, data_dir, announce)
    digits = load_digits(name, data_dir, seed, budget.train_size, budget.test_size, announce)
    if len(digits.x_train) < budget.train_size:
        announce(f"warning: the {budget.name} budget asks for {budget.train_size:,} training digits but only "
                 f"{len(digits.x_train):,} are available ({digits.source}); results will not be comparable "
                 f"to the paper's (for 'full', give --data-dir a folder with the MNIST training split)")
    return digits


def column_data(digits, column: str, budget: Budget, seed: int) -> dict:
    """The data of a table's column for :func:`train_cell`: a distortion of section 4.1
    (10 classes), or ``"addition"`` (two RTS digits on two channels, 19 classes: their sum)."""
    test_seed, train_seed = distortion_seed(seed, "test"), distortion_seed(seed, "train")
    if column == "addition":
        x_test, y_test, _ = mnist_addition(digits.x_test, digits.y_test, budget.test_size, seed=test_seed)
        return {"x_test": x_test, "y_test": y_test, "train_size": budget.train_size,
                "make_train": lambda epoch: mnist_addition(digits.x_train, digits.y_train, budget.train_size,
                                                           seed=train_seed, epoch=epoch)[:2],
                "num_classes": 19}
    return {"x_test": prepare_images(digits.x_test, column, test_seed), "y_test": digits.y_test,
            "train_size": len(digits.x_train),
            "make_train": lambda epoch: (prepare_images(digits.x_train, column, train_seed, epoch), digits.y_train),
            "num_classes": 10}
