"""One seeded random generator shared by dropout, initialisers and data shuffling.

``mt.manual_seed(0)`` makes every random draw that goes through
:func:`generator` repeatable, as ``torch.manual_seed`` does.
"""

from __future__ import annotations

import numpy as np

_generator = np.random.default_rng(0)


def manual_seed(seed: int) -> np.random.Generator:
    """Reset the shared generator to ``seed`` and return it."""
    global _generator
    _generator = np.random.default_rng(seed)
    return _generator


def generator() -> np.random.Generator:
    """The shared generator (seeded with 0 until ``manual_seed`` is called)."""
    return _generator
