"""Fully connected layers on the CPU: the reference's products, split into tasks.

    forward       y = x W^T + b        rows of x in blocks of ROWS_PER_TASK
    grad input    gx = g W             rows of g in blocks of ROWS_PER_TASK
    grad weight   gW = g^T x           rows of gW (output features) in blocks of FEATURES_PER_TASK

BLAS runs on one thread inside each task (``kernels.threads``), so these products use
the workers the other layers use. Every block is a whole dot product over the summed
dimension, and the blocks are fixed sizes, so the bytes do not depend on the thread
count. Small products (one block) run as a single call.
"""

from __future__ import annotations

import numpy as np

from .threads import run_tasks

__all__ = ["linear_forward", "linear_backward", "ROWS_PER_TASK", "FEATURES_PER_TASK"]

ROWS_PER_TASK = 64
FEATURES_PER_TASK = 32


def _in_blocks(n: int, size: int, fn) -> None:
    blocks = [(lo, min(n, lo + size)) for lo in range(0, n, size)]
    run_tasks(lambda t: fn(*blocks[t]), len(blocks))


def linear_forward(x: np.ndarray, weight: np.ndarray, bias) -> np.ndarray:
    """``x @ weight.T + bias`` for ``x`` (M, in), ``weight`` (out, in)."""
    out = np.empty((x.shape[0], weight.shape[0]), dtype=np.result_type(x, weight))
    _in_blocks(x.shape[0], ROWS_PER_TASK, lambda lo, hi: np.matmul(x[lo:hi], weight.T, out=out[lo:hi]))
    if bias is not None:
        out += bias
    return out


def linear_backward(grad: np.ndarray, x: np.ndarray, weight: np.ndarray, need_input=True, need_weight=True):
    """``(grad_x, grad_weight)`` of :func:`linear_forward` for ``grad`` (M, out); None where not needed."""
    gx = gw = None
    if need_input:
        gx = np.empty((grad.shape[0], weight.shape[1]), dtype=np.result_type(grad, weight))
        _in_blocks(grad.shape[0], ROWS_PER_TASK, lambda lo, hi: np.matmul(grad[lo:hi], weight, out=gx[lo:hi]))
    if need_weight:
        gw = np.empty(weight.shape, dtype=np.result_type(grad, x))
        # (x^T g)^T rather than g^T x: BLAS is much faster on C-ordered tall operands

        def block(lo, hi):
            gw[lo:hi] = (x.T @ grad[:, lo:hi]).T
        _in_blocks(weight.shape[0], FEATURES_PER_TASK, block)
    return gx, gw
