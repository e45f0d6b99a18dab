"""Figures of image batches (matplotlib, Agg only: works with no display).

``python -c "from minstn.viz import write_distortions_figure as w; w(data_dir='../shared/data/mnist')"``
writes docs/figures/distortions.png.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

__all__ = ["distortion_examples", "image_grid", "save_figure", "write_distortions_figure"]

_TITLES = {"r": "R: rotated", "rts": "RTS: rotated,\nscaled, translated", "p": "P: projective",
           "e": "E: elastic", "tc": "TC: translated,\ncluttered"}


def _figure(width: float, height: float):
    from matplotlib.figure import Figure  # no pyplot: no GUI backend, no global state

    return Figure(figsize=(width, height))


def image_grid(rows, row_titles=(), cell: float = 0.8):
    """A Figure showing ``rows`` (a list of ``(M, H, W)`` or ``(M, 1, H, W)`` arrays,
    one per row, H and W may differ between rows), each image in its own cell."""
    cols = max(len(r) for r in rows)
    fig = _figure(1.4 + cols * cell, len(rows) * cell)
    axes = fig.subplots(len(rows), cols, squeeze=False)
    for i, row in enumerate(rows):
        for j, ax in enumerate(axes[i]):
            ax.set_xticks([]), ax.set_yticks([])
            if j < len(row):
                ax.imshow(np.asarray(row[j]).squeeze(), cmap="gray", vmin=0, vmax=1, interpolation="nearest")
            else:
                ax.axis("off")
        if i < len(row_titles):
            axes[i, 0].set_ylabel(row_titles[i], rotation=0, ha="right", va="center", fontsize=8)
    fig.subplots_adjust(left=1.3 / (1.4 + cols * cell), right=0.99, top=0.99, bottom=0.01, wspace=0.05, hspace=0.05)
    return fig


def distortion_examples(images, seed: int = 0, kinds=("r", "rts", "p", "e", "tc"), n: int = 8):
    """Rows = distortion kinds of section 4.1, columns = the first ``n`` digits of
    ``images`` (uint8 ``(N, 28, 28)``) distorted with ``minstn.data.distort``.
    Row 0 shows the originals."""
    from minstn.data import distort, to_float_batch

    images = np.asarray(images)
    # TC cuts its clutter from the other digits of the batch: give it more than n
    pool = images[: max(n, 64)]
    rows = [to_float_batch(images[:n])] + [distort(pool, k, seed=seed)[:n] for k in kinds]
    return image_grid(rows, ["original"] + [_TITLES.get(k, k) for k in kinds])


def save_figure(fig, path, dpi: int = 100) -> Path:
    """Save ``fig`` as ``path`` (folders created), atomically; return the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp" + path.suffix)
    fig.savefig(tmp, dpi=dpi)
    os.replace(tmp, path)
    return path


def write_distortions_figure(path="docs/figures/distortions.png", data_dir=None, seed: int = 0) -> Path:
    """docs/figures/distortions.png from the MNIST test set (glyph digits if absent)."""
    from minstn.data import find_mnist, load_glyphs, load_mnist

    if find_mnist(data_dir, "test") is not None:
        images, _ = load_mnist("test", data_dir=data_dir, download=False)
    else:
        images, _ = load_glyphs("test", n=64, seed=seed)
    return save_figure(distortion_examples(images, seed=seed), path, dpi=80)

