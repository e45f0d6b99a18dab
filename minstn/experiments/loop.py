"""The one training loop: an epoch of mini-batch gradient descent, and evaluation.

    optimizer = make_optimizer(model, "adam", lr=1e-3)
    for epoch in range(1, epochs + 1):
        stats = train_epoch(model, optimizer, x_train, y_train, batch_size=64, seed=0, epoch=epoch)
        error = error_rate(model, x_test, y_test)

``minstn train``, every cell of ``minstn reproduce`` and the tutorials that train run
this loop. One step is the paper's: cross-entropy of the logits, backward, an update of
every parameter (section 4.1). The batches of epoch ``e`` come from
:class:`minstn.data.Batches` (shuffled by the stream ``[seed, e, 0x5EED]``); a learning-rate
schedule from :mod:`minstn.optim` is stepped after every update. A non-finite loss
stops training BEFORE the update that it would cause (:class:`TrainingDiverged`).
"""

from __future__ import annotations

import itertools
import math
import sys

import numpy as np

from .. import functional as F
from .. import optim
from ..autograd import Tensor, no_grad
from ..data import Batches
from ..models import transformers_of
from ..nn.utils import clip_grad_norm_

__all__ = ["TrainingDiverged", "make_optimizer", "make_scheduler", "train_epoch", "predict", "error_rate",
           "EVAL_BATCH", "OPTIMIZERS", "SCHEDULES", "LOCALISATION"]

OPTIMIZERS = ("sgd", "adam", "adamw")
SCHEDULES = ("constant", "step", "cosine", "onecycle")
LOCALISATION = "localisation"   # the name of the parameter group of the transformers
EVAL_BATCH = 500  # evaluation batch: big enough to be fast, small enough for memory


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite; the message names the epoch and the step."""


def make_optimizer(model, name: str, lr: float, momentum: float = 0.0, loc_lr_scale: float = 1.0,
                   weight_decay: float = 0.0):
    """SGD, Adam or AdamW over ``model``'s parameters. The parameters of its spatial
    transformers (localisation nets and regression layers) form a second group, named
    :data:`LOCALISATION`, that learns at ``lr * loc_lr_scale`` (the paper trains them at
    1/10 of the base rate on SVHN). ``weight_decay``: L2 for SGD and Adam, decoupled for
    AdamW."""
    if name not in OPTIMIZERS:
        raise ValueError(f"optimizer must be one of {OPTIMIZERS}, got {name!r}")
    loc_ids = {id(p) for st in transformers_of(model) for p in st.parameters()}
    rest = [p for p in model.parameters() if id(p) not in loc_ids]
    loc = [p for p in model.parameters() if id(p) in loc_ids]
    groups = [{"params": rest, "lr": lr}]
    if loc:
        groups.append({"params": loc, "lr": lr * loc_lr_scale, "name": LOCALISATION})
    if name == "adam":
        return optim.Adam(groups, lr=lr, weight_decay=weight_decay)
    if name == "adamw":
        return optim.AdamW(groups, lr=lr, weight_decay=weight_decay)
    return optim.SGD(groups, lr=lr, momentum=momentum, weight_decay=weight_decay)


def make_scheduler(optimizer, schedule: str, total_steps: int, warmup: float = 0.3, lr_step: int | None = None):
    """The learning-rate schedule of a run of ``total_steps`` updates, stepped after each:
    ``constant`` (None), ``step`` (/10 every ``lr_step`` updates, default a third of the
    run: the paper's shape), ``cosine`` (down to 0), ``onecycle`` (warm-up over the
    first ``warmup`` of the run up to each group's lr, then down)."""
    if schedule not in SCHEDULES:
        raise ValueError(f"schedule must be one of {SCHEDULES}, got {schedule!r}")
    if schedule == "constant":
        return None
    if schedule == "step":
        return optim.StepLR(optimizer, lr_step or max(1, math.ceil(total_steps / 3)), 0.1)
    if schedule == "cosine":
        return optim.CosineAnnealingLR(optimizer, total_steps)
    return optim.OneCycleLR(optimizer, [g["lr"] for g in optimizer.param_groups], total_steps, pct_start=warmup)


def _progress(iterable, total: int, desc: str, enabled: bool):
    from tqdm.auto import tqdm

    return tqdm(iterable, total=total, desc=desc, disable=not enabled, leave=False, file=sys.stderr,
                dynamic_ncols=True)


def train_epoch(model, optimizer, x: np.ndarray, y: np.ndarray, *, batch_size: int, seed: int, epoch: int,
                scheduler=None, clip: float | None = None, monitor=None, max_steps: int | None = None,
                progress: bool = False, desc: str = "") -> dict:
    """One pass over ``(x, y)`` (at most ``max_steps`` updates); returns the epoch's
    ``train_loss`` (mean over its digits), ``train_acc`` and ``steps``.

    ``clip``: the gradients' global norm is clipped to it before each update
    (:func:`minstn.nn.utils.clip_grad_norm_`). ``monitor``: a
    :class:`~minstn.experiments.health.HealthMonitor`, which looks at the transformer
    after each forward, before the update (its numbers go to the progress bar).
    Raises :class:`TrainingDiverged` at the first non-finite loss, before the update,
    naming the epoch and the step (1-based) so the run can be repeated up to there.
    """
    batches = Batches(x, y, batch_size, seed=seed, epoch=epoch)
    steps = len(batches) if max_steps is None else min(len(batches), max_steps)
    bar = _progress(itertools.islice(batches, steps), steps, desc or f"epoch {epoch}", progress)
    total_loss, correct, seen, done = 0.0, 0, 0, 0
    model.train()
    for step, (xb, yb) in enumerate(bar, start=1):
        logits = model(Tensor(xb))
        loss = F.cross_entropy(logits, yb)
        value = loss.item()
        if not math.isfinite(value):
            raise TrainingDiverged(
                f"loss became {value} at epoch {epoch}, step {step} of {steps}; stopped training "
                f"(try a smaller learning rate than {optimizer.param_groups[0]['lr']:g})")
        if monitor is not None:
            monitor.after_step(epoch, step)
        optimizer.zero_grad()
        loss.backward()
        if clip:
            clip_grad_norm_(model.parameters(), clip)
        optimizer.step()
        if scheduler is not None:
            scheduler.step()
        done = step
        total_loss += value * len(yb)
        correct += int((logits.data.argmax(axis=1) == yb).sum())
        seen += len(yb)
        bar.set_postfix(loss=f"{total_loss / seen:.3f}", acc=f"{correct / seen:.3f}",
                        **(monitor.postfix() if monitor is not None else {}), refresh=False)
    bar.close()
    return {"train_loss": total_loss / max(seen, 1), "train_acc": correct / max(seen, 1), "steps": done}


def predict(model, x: np.ndarray, batch_size: int = EVAL_BATCH) -> np.ndarray:
    """Predicted classes, in eval mode and without building a graph."""
    was_training = model.training
    model.eval()
    out = []
    try:
        with no_grad():
            for start in range(0, len(x), batch_size):
                out.append(model(Tensor(x[start:start + batch_size])).data.argmax(axis=1))
    finally:
        model.train(was_training)
    return np.concatenate(out) if out else np.zeros(0, np.int64)


def error_rate(model, x: np.ndarray, y: np.ndarray) -> float:
    """Fraction of misclassified digits (Table 1 reports it in percent)."""
    return float(np.mean(predict(model, x) != y))
