"""ReLU on the CPU in one pass: the output and the mask its backward needs, together.

    relu_forward(x) -> (out, mask):  out = max(0, x) (NaN stays NaN), mask = x > 0
    relu_backward(grad, mask) -> grad where mask, else 0

as ``torch.relu`` and its gradient (the derivative at 0 is taken as 0).
The NumPy spelling (``mask = x > 0; out = x * mask``) reads ``x`` twice and writes two
temporaries; here each element is read once. The flat arrays are cut into fixed blocks
of ``BLOCK`` elements, run as tasks by the ``kernels.threads`` workers.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from . import warm
from .threads import run_tasks

__all__ = ["relu_forward", "relu_backward", "BLOCK"]

BLOCK = 1 << 18
_JIT = dict(nogil=True, cache=True, error_model="numpy")


@njit(**_JIT)
def _relu_block(x, lo, hi, out, mask):
    for q in range(lo, hi):
        k = np.uintp(q)
        v = x[k]
        positive = v > 0
        mask[k] = positive
        out[k] = v if positive or v != v else 0.0   # torch.relu: NaN stays NaN


@njit(**_JIT)
def _masked_block(grad, mask, lo, hi, out):
    for q in range(lo, hi):
        k = np.uintp(q)
        out[k] = grad[k] if mask[k] else 0.0


def _blocks(size: int) -> list:
    return [(lo, min(size, lo + BLOCK)) for lo in range(0, size, BLOCK)]


def _relu_twin(x):
    """What answers while the loops above are not compiled yet (``warm.py``)."""
    mask = x > 0
    return x * mask, mask


def _examples(backward: bool) -> list:
    """The calls ``minstn warmup`` makes: each dtype."""
    calls = [np.ones(3, dtype) for dtype in (np.float32, np.float64)]
    return [(x, x > 0) for x in calls] if backward else [(x,) for x in calls]


@warm.with_twin(_relu_twin, examples=lambda: _examples(False))
def relu_forward(x: np.ndarray) -> tuple:
    """``(max(0, x), x > 0)``; NaN inputs give NaN outputs and a False mask."""
    out = np.empty(x.shape, dtype=x.dtype)
    mask = np.empty(x.shape, dtype=np.bool_)
    xf, of, mf = np.ascontiguousarray(x).reshape(-1), out.reshape(-1), mask.reshape(-1)
    blocks = _blocks(x.size)
    run_tasks(lambda t: warm.run(_relu_block, xf, *blocks[t], of, mf), len(blocks))
    return out, mask


@warm.with_twin(lambda grad, mask: grad * mask, examples=lambda: _examples(True))
def relu_backward(grad: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """``grad`` where ``mask`` is True, 0 elsewhere (grad * mask)."""
    out = np.empty(grad.shape, dtype=grad.dtype)
    gf, mf, of = np.ascontiguousarray(grad).reshape(-1), np.ascontiguousarray(mask).reshape(-1), out.reshape(-1)
    blocks = _blocks(grad.size)
    run_tasks(lambda t: warm.run(_masked_block, gf, mf, *blocks[t], of), len(blocks))
    return out
