"""Where the P column's errors are: test error by the share of ink the P distortion keeps.

Not a timing. The P distortion (``minstn.data.distort``: scale U(0.75, 1), then each
corner moved by N(0, 5 px), the projective map taking the image corners there) sometimes
folds or shrinks the digit so far that little of it is left. This script distorts the
test digits of a finished ``minstn reproduce`` P cell exactly as the cell did, measures
for every digit the ink kept (sum of the distorted image / sum of the original), and
prints the cell's test error in bins of that share, so one can see whether a P cell's
error is spread evenly or sits on the digits the distortion destroyed. ``--figure PATH``
draws the 12 test digits that keep the least ink: the original above, the P version
below, with the label and the first cell's prediction.

    python benchmarks/p_ink.py --data-dir ../shared/data/mnist RUN/runs/cnn-p RUN/runs/st-cnn-aff-p \
        --figure docs/figures/p_least_ink.png

Each folder is a finished cell (``metrics.json`` with status ``done``); its settings
(budget sizes, seed) choose the digits.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from minstn.data import distortion_seed, load_digits, prepare_images, to_float_batch
from minstn.experiments.loop import predict
from minstn.experiments.reproduce import load_cell_model

BINS = (0.0, 0.25, 0.4, 0.5, 0.6, 0.8, 10.0)   # ink kept: the last bin is "0.8 or more"


def ink_kept(original: np.ndarray, distorted: np.ndarray) -> np.ndarray:
    """Per digit: the sum of the distorted image over the sum of the original (both in [0, 1])."""
    before = to_float_batch(original).sum(axis=(1, 2, 3))
    return distorted.sum(axis=(1, 2, 3)) / np.maximum(before, 1e-12)


def least_ink_figure(original, distorted, kept, labels, predicted, path: Path, count: int = 12) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    order = np.argsort(kept)[:count]
    fig, axes = plt.subplots(2, count, figsize=(1.1 * count, 2.6))
    for j, i in enumerate(order):
        axes[0, j].imshow(original[i], cmap="gray_r", vmin=0, vmax=255)
        axes[0, j].set_title(f"label {labels[i]}", fontsize=7)
        axes[1, j].imshow(distorted[i, 0], cmap="gray_r", vmin=0, vmax=1)
        axes[1, j].set_title(f"ink {100 * kept[i]:.0f}%, pred {predicted[i]}", fontsize=7)
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle("P test digits that keep the least ink: original (top), P-distorted (bottom)", fontsize=9)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    print(f"wrote {path}")


def report(folder: Path, data_dir, figure: Path | None = None) -> list[dict]:
    """Print a P cell's test errors by the share of ink kept; return the bins as printed
    (``bin``, ``digits``, ``errors``)."""
    settings = json.loads((folder / "metrics.json").read_text())["settings"]
    if settings["distortion"] != "p":
        raise SystemExit(f"{folder}: a {settings['distortion']!r} cell, not a P cell")
    seed = settings["seed"]
    digits = load_digits("mnist", data_dir, seed, settings["train_size"], settings["test_size"])
    x_test = prepare_images(digits.x_test, "p", distortion_seed(seed, "test"))
    kept = ink_kept(digits.x_test, x_test)
    model, _ = load_cell_model(folder)
    predicted = predict(model, x_test)
    wrong = predicted != digits.y_test
    print(f"{folder}: {settings['model']} {settings.get('transform') or ''}, {settings['epochs']} epochs, "
          f"seed {seed}: test error {100 * wrong.mean():.2f}% on {len(wrong)} digits")
    print("  ink kept      digits   share   errors   error in bin   share of all errors")
    bins = []
    for lo, hi in zip(BINS[:-1], BINS[1:]):
        inside = (kept >= lo) & (kept < hi)
        n, e = int(inside.sum()), int(wrong[inside].sum())
        label = f"{lo:.2f}-{hi:.2f}" if hi < 10 else f">= {lo:.2f}"
        rate = f"{100 * e / n:6.2f}%" if n else "     -"
        print(f"  {label:11s} {n:8d} {100 * n / len(kept):6.1f}% {e:8d}   {rate:>12s}   "
              f"{100 * e / max(wrong.sum(), 1):6.1f}%")
        bins.append({"bin": label, "digits": n, "errors": e})
    if figure is not None:
        least_ink_figure(digits.x_test, x_test, kept, digits.y_test, predicted, figure)
    return bins


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("cells", nargs="+", type=Path, help="finished P cells (OUT/runs/<model>-p)")
    p.add_argument("--data-dir", default=None, help="the MNIST IDX files the cells were trained on")
    p.add_argument("--figure", type=Path, default=None, help="draw the least-ink digits (with the first cell)")
    args = p.parse_args(argv)
    for k, folder in enumerate(args.cells):
        report(folder, args.data_dir, args.figure if k == 0 else None)


if __name__ == "__main__":
    main()
