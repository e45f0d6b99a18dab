"""Data preparation for training: which digits, split how, distorted how.

    dataset = resolve_dataset(None, data_dir)          # "mnist" if found, else "glyphs"
    split = load_digits(dataset, data_dir, seed=0, train_size=8000, test_size=2000)
    x_test = prepare_images(split.x_test, "rts", distortion_seed(0, "test"))
    x_train = prepare_images(split.x_train, "rts", distortion_seed(0, "train"), epoch=1)

The seed fixes everything: which digits (a seeded permutation), and the distortions
(the training digits get a fresh distortion each epoch, the paper's "on the fly"; the
test digits are distorted once, from a stream of their own). ``announce`` arguments
take a function called with one-line messages (by default nothing is said).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .distort import OUTPUT_SIZE, distort, to_float_batch
from .glyphs import load_glyphs
from .memory import check_memory
from .mnist import MNIST_FILES, find_mnist, load_mnist, search_dirs, split_files

__all__ = ["DataSplit", "DATASETS", "DISTORTIONS", "resolve_dataset", "load_digits", "input_size", "digits_digest",
           "prepare_images", "distortion_seed"]

DATASETS = ("mnist", "glyphs")
DISTORTIONS = ("none", "r", "rts", "p", "e", "tc")   # "none", or a distortion of section 4.1


def _silent(message: str) -> None:
    pass


def digits_digest(images: np.ndarray, labels: np.ndarray) -> str:
    """A short fingerprint of a set of digits (their pixels, labels and order)."""
    h = hashlib.sha256()
    for a in (np.ascontiguousarray(images, np.uint8), np.ascontiguousarray(labels, np.int64)):
        h.update(str(a.shape).encode())
        h.update(a.tobytes())
    return h.hexdigest()[:16]


@dataclass
class DataSplit:
    """Undistorted uint8 digits ``(N, 28, 28)`` and int64 labels, train and test.

    ``identity`` says what they are, for a checkpoint to store and ``minstn evaluate``
    to check: the data set, the files read (path -> MD5) and the split seed.
    """

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    source: str  # a one-line description, stored in metrics.json
    identity: dict = field(default_factory=dict)

    def __post_init__(self):
        self.identity = {**self.identity, "train_digest": digits_digest(self.x_train, self.y_train),
                         "test_digest": digits_digest(self.x_test, self.y_test)}


def _describe(files: dict[str, str]) -> str:
    """The one-line description of the train and test files: "MNIST train / test splits",
    unless they are not the official MNIST ``.gz`` files (another IDX data set with the
    same names, such as Fashion-MNIST, or files unpacked by hand): then their folder, so
    that no table calls them MNIST."""
    official = {md5 for split in MNIST_FILES.values() for _, md5 in split}
    if files and all(md5 in official for md5 in files.values()):
        return "MNIST train / test splits"
    folders = sorted({str(Path(path).parent) for path in files})
    return f"train / test IDX splits in {', '.join(folders)} (not the official MNIST .gz files)"


def resolve_dataset(dataset: str | None, data_dir: str | None, announce=_silent) -> str:
    """``dataset``, or when None: "mnist" if any MNIST split is found, else "glyphs"."""
    if dataset is not None:
        return dataset
    if find_mnist(data_dir, "train") or find_mnist(data_dir, "test"):
        return "mnist"
    where = ", ".join(str(d) for d in search_dirs(data_dir))
    announce(f"MNIST not found in {where}; training on the embedded glyph digits")
    return "glyphs"


def load_digits(dataset: str, data_dir: str | None, seed: int, train_size: int, test_size: int,
                announce=_silent, download: bool = True) -> DataSplit:
    """Disjoint train / test digits, chosen by ``seed``, capped at the requested sizes.

    MNIST with both splits: a seeded subset of each. MNIST with only the test split
    (like ``../shared/data/mnist``): one seeded permutation of it, the first
    ``test_size`` digits for testing, the next ``train_size`` for training (disjoint
    by construction). Glyphs: the generator's own train and test streams. ``download``:
    whether a missing MNIST may be downloaded (``minstn evaluate`` never does).
    """
    rng = np.random.default_rng([int(seed), 0xDA7A])
    identity = {"dataset": dataset, "split_seed": int(seed)}
    if dataset == "glyphs":
        x_tr, y_tr = load_glyphs("train", n=train_size, seed=seed)
        x_te, y_te = load_glyphs("test", n=test_size, seed=seed)
        return DataSplit(x_tr, y_tr, x_te, y_te, "embedded glyph digits", identity)

    if find_mnist(data_dir, "train") is not None or find_mnist(data_dir, "test") is None:
        # the usual case; with nothing on disk load_mnist downloads or explains what is missing
        x_tr, y_tr = load_mnist("train", data_dir, download=download)
        x_te, y_te = load_mnist("test", data_dir, download=download)
        train = rng.permutation(len(x_tr))[:train_size]
        test = rng.permutation(len(x_te))[:test_size]
        identity["files"] = {**split_files(data_dir, "train"), **split_files(data_dir, "test")}
        return DataSplit(x_tr[train], y_tr[train], x_te[test], y_te[test], _describe(identity["files"]), identity)

    x, y = load_mnist("test", data_dir, download=False)
    if len(x) < 2:
        raise ValueError(f"the MNIST test split has {len(x)} digit(s): too few to split into train and test")
    order = rng.permutation(len(x))
    n_test = min(test_size, len(x) // 2)  # always leave digits to train on
    test, train = order[:n_test], order[n_test:n_test + train_size]
    announce(f"MNIST train split not found; splitting the {len(x)} test digits into "
             f"{len(train)} train / {len(test)} test (seed {seed})")
    identity["files"] = split_files(data_dir, "test")
    return DataSplit(x[train], y[train], x[test], y[test], f"MNIST test split, {len(train)}/{len(test)} by seed",
                     identity)


def input_size(distortion: str) -> int:
    """Side of the network input: 28 undistorted, else the distortion's canvas (42 RTS, 60 TC)."""
    return 28 if distortion == "none" else OUTPUT_SIZE[distortion]


def prepare_images(images: np.ndarray, distortion: str, seed: int, epoch: int = 0) -> np.ndarray:
    """float32 ``(N, 1, S, S)`` in [0, 1]: the digits, distorted when asked.

    ``distort`` is deterministic in ``(seed, epoch)``: training calls it with the epoch
    number (a fresh distortion each epoch), the test set once, from another seed.
    """
    side = input_size(distortion)
    check_memory(3 * 4 * side * side * len(images), f"{len(images):,} {distortion} images of {side}x{side} floats")
    if distortion == "none":
        return to_float_batch(images)
    return distort(images, distortion, seed=seed, epoch=epoch)


def distortion_seed(seed: int, split: str) -> int:
    """The distortion stream of a run with ``seed``: ``2 seed`` for the training digits
    (epoch after epoch), ``2 seed + 1`` for the test digits, so that a test distortion
    never repeats a training one."""
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    return 2 * int(seed) + (split == "test")
