"""Learning curves of a reproduction: each cell's test error after every epoch.

A budget with ``eval_every_epoch`` (``medium``) records the test error in each epoch of a
cell's ``history``; :func:`learning_curves_figure` draws them, one panel per column of
the table (R, RTS, P, E, ...), one line per model, on a log scale so that 0.5% and 5%
are both readable. A curve still falling at its last epoch says that cell wanted more
updates; a flat tail says more of the same schedule would not help.
"""

from __future__ import annotations

from pathlib import Path

from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, LogLocator, MaxNLocator, NullFormatter

from .paper import DISTORTION_LABEL, Cell

__all__ = ["curve", "learning_curves_figure"]


def curve(metrics: dict | None) -> tuple[list[int], list[float]]:
    """``(epochs, test errors in percent)`` of the epochs of a cell that were evaluated."""
    if not metrics or metrics.get("status") != "done":
        return [], []
    points = [(h["epoch"], 100 * h["test_error"]) for h in metrics["history"] if h.get("test_error") is not None]
    return [e for e, _ in points], [v for _, v in points]


def learning_curves_figure(results: dict, cells: list[Cell], columns: list[str], path: Path, title: str,
                           column_label=DISTORTION_LABEL) -> Path | None:
    """One panel per column, one line per model (baselines dashed); None when no cell has
    more than one evaluated epoch (a budget that tests after the last epoch only)."""
    if not any(len(curve(results.get((c.key, d)))[0]) > 1 for c in cells for d in columns):
        return None
    fig = Figure(figsize=(3.2 * len(columns) + 1.8, 3.2), layout="constrained")
    axes = fig.subplots(1, len(columns), squeeze=False)[0]
    for ax, column in zip(axes, columns):
        for cell in cells:
            epochs, errors = curve(results.get((cell.key, column)))
            if epochs:
                ax.plot(epochs, errors, linestyle="--" if cell.family is None else "-", linewidth=1.2,
                        label=cell.label)
        ax.set_yscale("log")
        ax.yaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
        ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        ax.yaxis.set_minor_formatter(NullFormatter())
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_title(column_label.get(column, column), fontsize=9)
        ax.set_xlabel("epoch", fontsize=8)
        ax.grid(True, which="both", linewidth=0.3)
        ax.tick_params(labelsize=7)
    axes[0].set_ylabel("test error (%)", fontsize=8)
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside right center", fontsize=7)
    fig.suptitle(title, fontsize=9)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=80)
    return path
