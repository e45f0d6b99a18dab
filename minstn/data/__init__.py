"""Data: MNIST from IDX files, the embedded glyph digits, the paper's distortions.

    images, labels = load_dataset("mnist", "train")   # or "glyphs": works offline
    x = distort(images, "rts", seed=0, epoch=0)        # float32 (N, 1, 42, 42)
    for xb, yb in batches(x, labels, 256): ...

``prepare.py`` puts these together for training: which digits (``load_digits``), split
how, distorted with which seed (``prepare_images``, ``distortion_seed``).
"""
from __future__ import annotations

from .batches import Batches, batches
from .distort import KINDS, OUTPUT_SIZE, distort, mnist_addition, to_float_batch
from .glyphs import load_glyphs
from .idx import read_idx, write_idx
from .mnist import (DownloadError, MNISTNotFoundError, download_mnist, find_mnist,
                    load_mnist, search_dirs)
from .prepare import (DATASETS, DISTORTIONS, DataSplit, distortion_seed, input_size, load_digits,
                      prepare_images, resolve_dataset)

__all__ = [
    "load_dataset", "load_mnist", "load_glyphs", "find_mnist", "download_mnist", "search_dirs",
    "MNISTNotFoundError", "DownloadError", "read_idx", "write_idx",
    "distort", "mnist_addition", "to_float_batch", "KINDS", "OUTPUT_SIZE", "Batches", "batches",
    "DataSplit", "DATASETS", "DISTORTIONS", "resolve_dataset", "load_digits", "input_size", "prepare_images",
    "distortion_seed",
]


def load_dataset(name: str = "mnist", split: str = "train", data_dir=None, download: bool = False,
                 **kwargs):
    """``(images uint8 (N, 28, 28), labels int64 (N,))`` of data set ``name``.

    ``"mnist"`` (or any IDX data set in ``data_dir``, e.g. Fashion-MNIST) goes through
    :func:`load_mnist`; ``"glyphs"`` through :func:`load_glyphs` (``n=``, ``seed=``).
    """
    if name == "mnist":
        return load_mnist(split, data_dir=data_dir, download=download)
    if name == "glyphs":
        return load_glyphs(split, **kwargs)
    raise ValueError(f"unknown data set {name!r}: use 'mnist' or 'glyphs'")
