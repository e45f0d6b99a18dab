"""Mini-batches for the training loop (the paper trains with batches of 256)."""
from __future__ import annotations

import math

import numpy as np

__all__ = ["Batches", "batches", "SHUFFLE_STREAM"]

# The last word of every shuffling stream, so that it never coincides with another use
# of the same seed (the data split, the distortions).
SHUFFLE_STREAM = 0x5EED


class Batches:
    """Iterate ``(x[idx], y[idx])`` mini-batches; every ``for`` loop is a new epoch.

    Epoch ``e`` (``epoch`` for the first pass, then ``epoch + 1``, ...) is shuffled by
    the random stream ``(seed, e, SHUFFLE_STREAM)``, so runs are reproducible and each
    epoch sees a new order. ``len()`` is the number of batches per epoch (for progress
    bars); the last batch is smaller unless ``drop_last``.
    """

    def __init__(self, x, y, batch_size: int, shuffle: bool = True, seed: int = 0, drop_last: bool = False,
                 epoch: int = 0):
        if len(x) != len(y):
            raise ValueError(f"x has {len(x)} samples but y has {len(y)}")
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.x, self.y = x, y
        self.batch_size, self.shuffle, self.seed, self.drop_last = batch_size, shuffle, seed, drop_last
        self.epoch = epoch

    def __len__(self) -> int:
        n = len(self.x) / self.batch_size
        return math.floor(n) if self.drop_last else math.ceil(n)

    def __iter__(self):
        n = len(self.x)
        if self.shuffle:
            order = np.random.default_rng([int(self.seed), int(self.epoch), SHUFFLE_STREAM]).permutation(n)
        else:
            order = np.arange(n)
        self.epoch += 1
        for start in range(0, len(self) * self.batch_size, self.batch_size):
            idx = order[start:start + self.batch_size]
            yield self.x[idx], self.y[idx]


def batches(x, y, batch_size: int, shuffle: bool = True, seed: int = 0, drop_last: bool = False,
            epoch: int = 0) -> Batches:
    """Shorthand for :class:`Batches`: ``for xb, yb in batches(x, y, 256): ...``."""
    return Batches(x, y, batch_size, shuffle, seed, drop_last, epoch)
