"""Figures of a training run: learning curves, and what the spatial transformer does.

``plot_training_curves(history)``  train loss, train accuracy and test error per epoch,
                                   and the transformer's health
``plot_transformer(model, x)``     paper Figure 1 (and the columns of Figure 2): each
                                   input U with the predicted sampling grid
                                   T_theta(G) drawn over it, above the transformer's
                                   output V, which is what the classifier sees

Both return a :class:`matplotlib.figure.Figure` built with the object-oriented API
(no ``pyplot`` state, safe under Agg and in tests); save with ``fig.savefig(path)``.
"""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import Polygon

from .geometry import _outline, to_pixels

__all__ = ["plot_training_curves", "plot_transformer", "transformer_outputs"]


def plot_training_curves(history: list[dict]) -> Figure:
    """Training loss; train and test error (%); and, for a model with a spatial
    transformer, its health per epoch (mean |theta - identity| and the share of sampling
    points off the canvas, :mod:`minstn.experiments.health`).

    ``history`` is ``metrics["history"]`` of :func:`minstn.experiments.train`: dicts with
    ``epoch``, ``train_loss``, ``train_acc`` and ``test_error`` (fractions), and
    ``theta_shift`` / ``off_canvas`` (None without a transformer).
    """
    epochs = [h["epoch"] for h in history]
    health = [h for h in history if h.get("theta_shift") is not None]
    fig = Figure(figsize=(12 if health else 8, 3.2), layout="constrained")
    axes = fig.subplots(1, 3 if health else 2)
    ax_loss, ax_err = axes[:2]
    ax_loss.plot(epochs, [h["train_loss"] for h in history], "o-", label="train")
    ax_loss.set(xlabel="epoch", ylabel="cross-entropy", title="training loss")
    # errors in percent, the unit of the paper's Table 1
    ax_err.plot(epochs, [100 * (1 - h["train_acc"]) for h in history], "o-", label="train")
    ax_err.plot(epochs, [100 * h["test_error"] for h in history], "s-", label="test")
    ax_err.set(xlabel="epoch", ylabel="error (%)", title="classification error")
    if health:
        ax_st = axes[2]
        ax_st.plot([h["epoch"] for h in health], [h["theta_shift"] for h in health], "o-",
                   label=r"mean $|\theta - I|$")
        ax_st.plot([h["epoch"] for h in health], [h["off_canvas"] for h in health], "s-",
                   label="share off the canvas")
        ax_st.set(xlabel="epoch", title="transformer health (test digits)", ylim=(0, None))
    for ax in axes:
        ax.grid(alpha=0.3)
        ax.legend()
        if epochs:
            ax.set_xticks(epochs if len(epochs) <= 12 else epochs[:: max(1, len(epochs) // 10)])
    return fig


def transformer_outputs(model, x: np.ndarray):
    """Run ``model`` (an ST classifier with an ``st`` child) on ``x`` in eval mode.

    Returns ``(outputs V, grids, predicted classes)`` as arrays: the grid is the one
    the sampler used, ``model.st.last_grid`` (normalised ``(x, y)``, shape
    ``(N, Ho, Wo, 2)``).
    """
    from ..autograd import Tensor, no_grad

    was_training = model.training
    model.eval()
    try:
        with no_grad():
            v = model.st(Tensor(x))
            grid = np.array(model.st.last_grid)
            logits = model.classifier(v)
    finally:
        model.train(was_training)
    return np.asarray(v.data), grid, np.asarray(logits.data).argmax(axis=1)


def _lattice_lines(ax, ix, iy, lines: int, color):
    """A few rows and columns of the grid, so rotation and shear are visible."""
    ho, wo = ix.shape
    for r in np.linspace(0, ho - 1, lines).round().astype(int):
        ax.plot(ix[r, :], iy[r, :], color=color, linewidth=0.6, alpha=0.8)
    for c in np.linspace(0, wo - 1, lines).round().astype(int):
        ax.plot(ix[:, c], iy[:, c], color=color, linewidth=0.6, alpha=0.8)


def plot_transformer(model, x: np.ndarray, labels=None, align_corners: bool = False,
                     lines: int = 5, color: str = "tab:orange") -> Figure:
    """Top row: inputs U with T_theta(G); bottom row: outputs V (paper Figure 1).

    The orange quadrilateral is where the output's corners read from the input; the
    thin lines are a coarse version of the grid; the red square marks the output's
    top-left pixel, so a flip or a rotation of more than 90 degrees is visible.
    Titles give the predicted class (and the label, when ``labels`` is given).
    """
    x = np.asarray(x, dtype=np.float32)
    v, grid, pred = transformer_outputs(model, x)
    n, (H, W) = len(x), x.shape[-2:]
    fig = Figure(figsize=(1.45 * n + 0.6, 3.3), layout="constrained")
    axes = fig.subplots(2, n, squeeze=False)
    for i in range(n):
        top, bottom = axes[0, i], axes[1, i]
        top.imshow(x[i, 0], cmap="gray", vmin=0, vmax=1, interpolation="nearest")
        ix, iy = to_pixels(grid[i], H, W, align_corners)
        _lattice_lines(top, ix, iy, lines, color)
        top.add_patch(Polygon(_outline(ix, iy), closed=True, fill=False, edgecolor=color, linewidth=1.5))
        top.scatter([ix[0, 0]], [iy[0, 0]], s=18, marker="s", facecolor="none", edgecolor="tab:red", zorder=4)
        # keep the input in view even when the grid reaches outside it
        top.set_xlim(-0.5, W - 0.5)
        top.set_ylim(H - 0.5, -0.5)
        bottom.imshow(v[i, 0], cmap="gray", vmin=0, vmax=1, interpolation="nearest")
        title = f"pred {pred[i]}" + ("" if labels is None else f" (true {labels[i]})")
        bottom.set_title(title, fontsize=8)
        for ax in (top, bottom):
            ax.set_xticks([])
            ax.set_yticks([])
    axes[0, 0].set_ylabel(r"input $U$, $\mathcal{T}_\theta(G)$", fontsize=8)
    axes[1, 0].set_ylabel(r"output $V$", fontsize=8)
    return fig
