"""A health monitor for spatial transformers: is the transformer learning, or collapsing?

After every forward a :class:`~minstn.nn.SpatialTransformer` keeps the parameters it
predicted (``last_theta``) and the sampling grid T_theta(G) it used (``last_grid``).
:func:`transformer_health` reads them:

* ``theta_shift``: mean |theta - identity| (0: the transformer never moved);
* ``off_canvas``: the share of sampling points outside the input (|x| > 1 or |y| > 1 in
  normalised coordinates, or not finite): those read padding, not the image;
* ``spread``: how wide the grid is, relative to the identity grid (< 1: zoomed in);
* for affine transforms, ``scale`` = sqrt |det A| and ``rotation``, the angle (degrees)
  of the rotation nearest to A (of the sampling map: the output shows the input turned
  the other way).

:class:`HealthMonitor` watches them step by step during training and declares a
*collapse* -- the failure users of every STN implementation report: the grid drifts off
the canvas (most points outside) or shrinks to a point, and the classifier sees blank
outputs -- when a limit is crossed for ``patience`` steps in a row (at once for a
non-finite theta). Training then says so, with the epoch and the step.
"""

from __future__ import annotations

import math

import numpy as np

from ..autograd import Tensor, no_grad
from ..kernels.pixel import base_coordinates
from ..models import transformers_of
from .console import say
from .loop import TrainingDiverged

__all__ = ["transformer_health", "measure_health", "HealthMonitor", "TransformerCollapsed", "HEALTH_KEYS"]

HEALTH_KEYS = ("theta_shift", "off_canvas", "spread", "scale", "rotation")


class TransformerCollapsed(RuntimeError):
    """The transformer collapsed; the message names the epoch, the step and the reason."""


def _identity_spread(h: int, w: int, align_corners: bool) -> float:
    xs, ys = base_coordinates(w, align_corners), base_coordinates(h, align_corners)
    return math.sqrt(float(np.var(xs)) + float(np.var(ys)))


def transformer_health(st) -> dict:
    """The health numbers of ``st``'s last forward (batch means), see the module docstring."""
    params = np.asarray(st.last_theta, dtype=np.float64).reshape(len(st.last_theta), -1)
    grid = np.asarray(st.last_grid, dtype=np.float64)
    n, h, w = grid.shape[:3]
    identity = st.spec.identity_params(dtype=np.float64)
    finite = bool(np.all(np.isfinite(params)))
    with np.errstate(invalid="ignore"):
        outside = ~(np.abs(grid) <= 1.0).all(axis=-1)          # NaN counts as outside
        spread = np.sqrt(grid[..., 0].reshape(n, -1).var(axis=1) + grid[..., 1].reshape(n, -1).var(axis=1))
    stats = {"theta_shift": float(np.mean(np.abs(params - identity))) if n else 0.0,
             "off_canvas": float(outside.mean()) if outside.size else 0.0,
             "spread": float(np.mean(spread)) / _identity_spread(h, w, st.align_corners) if n else 1.0,
             "finite": finite, "samples": n}
    if st.transform == "affine" and n:
        a = params.reshape(n, 2, 3)[:, :, :2]
        with np.errstate(invalid="ignore"):
            stats["scale"] = float(np.mean(np.sqrt(np.abs(np.linalg.det(a)))))
        stats["rotation"] = float(np.mean(np.degrees(np.arctan2(a[:, 1, 0] - a[:, 0, 1], a[:, 0, 0] + a[:, 1, 1]))))
    return stats


def _weighted_mean(parts: list[dict]) -> dict:
    total = sum(p["samples"] for p in parts)
    if not total:
        return {}
    keys = [k for k in HEALTH_KEYS if k in parts[0]]
    out = {k: sum(p[k] * p["samples"] for p in parts) / total for k in keys}
    out["finite"] = all(p["finite"] for p in parts)
    return out


def measure_health(model, x: np.ndarray, batch_size: int = 500) -> dict | None:
    """The health of ``model``'s transformers over the inputs ``x`` (eval mode, no graph),
    or None for a model without a transformer.

    The numbers at the top level are the first transformer's; ``each`` holds one dict per
    transformer, in the order of :func:`~minstn.models.transformers_of` (2xST-FCN and ST-CNN
    Multi have two, and one may collapse while the other works). The whole model runs, so
    a transformer on feature maps (ST-CNN Multi's second) sees what it sees in training.
    """
    sts = transformers_of(model)
    if not sts:
        return None
    was_training = model.training
    model.eval()
    parts = [[] for _ in sts]
    try:
        with no_grad():
            for start in range(0, len(x), batch_size):
                model(Tensor(x[start:start + batch_size]))
                for k, st in enumerate(sts):
                    parts[k].append(transformer_health(st))
    finally:
        model.train(was_training)
    each = [_weighted_mean(p) for p in parts]
    return {**each[0], "each": each}


class HealthMonitor:
    """Watches every transformer of ``model`` after every training step (2xST-FCN and
    ST-CNN Multi have two: either one may collapse while the other works).

    A collapse is declared when ``off_canvas >= off_canvas_limit`` or ``spread <=
    spread_limit`` for ``patience`` steps in a row, or at once when theta is not finite.
    It is recorded in ``events`` (epoch, step, reason; which transformer when there are
    several) and announced once per transformer and epoch, at the step where it is first
    declared, however long it lasts; with ``stop=True`` it raises
    :class:`TransformerCollapsed` instead (what ``minstn train --guard`` catches). A
    non-finite theta stops training in any case (:class:`TrainingDiverged` without
    ``stop``): its outputs read only the padding, while the loss can stay finite.
    """

    def __init__(self, model, off_canvas_limit: float = 0.9, spread_limit: float = 0.05, patience: int = 3,
                 stop: bool = False, announce=say):
        self.sts = transformers_of(model)
        self.off_canvas_limit, self.spread_limit, self.patience = off_canvas_limit, spread_limit, patience
        self.stop, self.announce = stop, announce
        self.events, self.last = [], None    # last: the first transformer's health at the last step
        self._strikes, self._recorded = [0] * len(self.sts), set()   # (epoch, transformer) in events

    def _reason(self, stats: dict) -> str | None:
        if not stats["finite"]:
            return "theta is not finite"
        if stats["off_canvas"] >= self.off_canvas_limit:
            return f"{100 * stats['off_canvas']:.0f}% of the sampling points are off the canvas"
        if stats["spread"] <= self.spread_limit:
            return f"the grid shrank to {stats['spread']:.3f} of the canvas"
        return None

    def after_step(self, epoch: int, step: int) -> dict | None:
        """The first transformer's health on this step's batch (None without a transformer);
        checks every transformer for a collapse."""
        if not self.sts or self.sts[0].last_grid is None:
            return None
        healths = [None if st.last_grid is None else transformer_health(st) for st in self.sts]
        for k, stats in enumerate(healths):
            if stats is not None:
                self._check(k, stats, epoch, step)
        self.last = healths[0]
        return self.last

    def _check(self, k: int, stats: dict, epoch: int, step: int) -> None:
        """Count transformer ``k``'s unhealthy steps; declare its collapse after ``patience``."""
        reason = self._reason(stats)
        self._strikes[k] = 0 if reason is None else self._strikes[k] + (self.patience if not stats["finite"] else 1)
        if self._strikes[k] < self.patience:
            return
        if (epoch, k) in self._recorded and not self.stop and stats["finite"]:
            return     # still collapsed: already recorded and said in this epoch
        self._recorded.add((epoch, k))
        which = "the transformer" if len(self.sts) == 1 else f"transformer {k + 1} of {len(self.sts)}"
        message = f"{which} collapsed at epoch {epoch}, step {step}: {reason}"
        event = {"epoch": epoch, "step": step, "reason": reason}
        if len(self.sts) > 1:
            event["transformer"] = k + 1
        self.events.append(event)
        if self.stop:
            raise TransformerCollapsed(message)
        if not stats["finite"]:   # nothing can be learnt from here on: stop, as for a NaN loss
            raise TrainingDiverged(message + "; stopped training (`--guard` would restore the "
                                             "last healthy weights)")
        self.announce(message + " (training goes on; `--guard` would restore the last healthy "
                                 "weights)")

    def postfix(self) -> dict:
        """Short numbers for the progress bar."""
        if self.last is None:
            return {}
        return {"theta": f"{self.last['theta_shift']:.2f}", "off": f"{100 * self.last['off_canvas']:.0f}%"}
