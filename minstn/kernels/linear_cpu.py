"""Fully connected layers on the CPU: the reference's products, cut into tasks.

    forward       y = x W^T + b        (M, out): rows in blocks of ROWS_PER_TASK
    grad input    gx = g W             (M, in):  rows in blocks of ROWS_PER_TASK
    grad weight   gW = g^T x           (out, in): output features in pieces

BLAS runs on one thread inside each task (``kernels.threads``), so these products use
the workers the other layers use. How to read the cuts: a product of ``macs``
multiply-adds is worth :func:`pieces_for` tasks (one per ``TASK_MACS``, at most
``MAX_TASKS``). The forward and the input gradient first take rows in blocks of 64;
when there are fewer row blocks than pieces (a batch of 64 is one block), each block is
cut again along its other side. The weight gradient is cut along its output features.

Why tasks this big: a second core pays for a piece of a product only when the piece is
long enough to cover waking a thread and moving the operands into that core's cache. On
the 2-core VMs measured in ``benchmarks/RESULTS.md`` the ST-FCN's largest layer at batch
64 (64 x 1764 x 175, 20 million multiply-adds) runs faster as one call than as two
tasks on two threads.

Every task is a whole dot product over the summed dimension, and the cuts depend on the
shapes only, so the bytes do not depend on the thread count. Small products (one piece)
run as a single call per row block.
"""

from __future__ import annotations

import numpy as np

from .threads import run_tasks

__all__ = ["linear_forward", "linear_backward", "pieces_for", "ROWS_PER_TASK", "TASK_MACS", "MAX_TASKS"]

ROWS_PER_TASK = 64
TASK_MACS = 2**25   # 33.5 million multiply-adds (about 0.4 ms on one core), see below
MAX_TASKS = 4       # more calls than this cost more than the cores they could keep busy
ALIGN = 16          # cut points fall on multiples of 16 columns (one AVX-512 register)


def pieces_for(macs: int) -> int:
    """The number of tasks a product of ``macs`` multiply-adds is cut into."""
    return max(1, min(MAX_TASKS, macs // TASK_MACS))


def _cuts(n: int, pieces: int, align: int | None = None) -> list[tuple[int, int]]:
    """``[0, n)`` in at most ``pieces`` contiguous ranges, inner edges on multiples of
    ``align`` (default ``ALIGN``)."""
    align = ALIGN if align is None else align
    pieces = max(1, min(pieces, -(-n // align)))
    edges = [0, *(round(k * n / pieces / align) * align for k in range(1, pieces)), n]
    return [(lo, hi) for lo, hi in zip(edges[:-1], edges[1:]) if hi > lo]


def _row_tasks(rows: int, cols: int, macs: int) -> list[tuple[int, int, int, int]]:
    """Tiles ``(r0, r1, c0, c1)`` of an output of ``rows`` x ``cols``: row blocks of
    ROWS_PER_TASK, each cut along its columns when there are fewer blocks than pieces."""
    row_blocks = [(lo, min(rows, lo + ROWS_PER_TASK)) for lo in range(0, rows, ROWS_PER_TASK)]
    per_block = -(-pieces_for(macs) // len(row_blocks)) if row_blocks else 1
    return [(r0, r1, c0, c1) for r0, r1 in row_blocks for c0, c1 in _cuts(cols, per_block)]


def _run(tiles, fn) -> None:
    run_tasks(lambda t: fn(*tiles[t]), len(tiles))


def linear_forward(x: np.ndarray, weight: np.ndarray, bias) -> np.ndarray:
    """``x @ weight.T + bias`` for ``x`` (M, in), ``weight`` (out, in)."""
    (m, k), n = x.shape, weight.shape[0]
    out = np.empty((m, n), dtype=np.result_type(x, weight))

    def tile(r0, r1, c0, c1):
        np.matmul(x[r0:r1], weight[c0:c1].T, out=out[r0:r1, c0:c1])
    _run(_row_tasks(m, n, m * k * n), tile)
    if bias is not None:
        out += bias
    return out


def linear_backward(grad: np.ndarray, x: np.ndarray, weight: np.ndarray, need_input=True, need_weight=True):
    """``(grad_x, grad_weight)`` of :func:`linear_forward` for ``grad`` (M, out); None where not needed."""
    (m, n), k = grad.shape, weight.shape[1]
    gx = gw = None
    if need_input:
        gx = np.empty((m, k), dtype=np.result_type(grad, weight))

        def input_tile(r0, r1, c0, c1):
            np.matmul(grad[r0:r1], weight[:, c0:c1], out=gx[r0:r1, c0:c1])
        _run(_row_tasks(m, k, m * k * n), input_tile)
    if need_weight:
        gw = np.empty(weight.shape, dtype=np.result_type(grad, x))

        def weight_piece(lo, hi):
            np.matmul(grad[:, lo:hi].T, x, out=gw[lo:hi])
        _run(_cuts(n, pieces_for(m * k * n)), weight_piece)
    return gx, gw
