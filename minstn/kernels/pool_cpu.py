"""Fast max pooling on the CPU: one pass over the input, the winner's position kept as a byte.

Computes what the readable reference ``max_pool2d_forward`` / ``max_pool2d_backward``
of ``minstn.kernels.layers`` computes (floor mode, no padding):

    out[n, c, ho, wo] = max over i < kh, j < kw of x[n, c, ho*sh + i, wo*sw + j]
    arg[n, c, ho, wo] = i * kw + j of the FIRST maximum (np.argmax's rule; a NaN wins)
    grad_x[n, c, ho*sh + a // kw, wo*sw + a % kw] += grad[n, c, ho, wo],  a = arg[n, c, ho, wo]

The paper's 2x2 windows with stride 2 have their own unrolled loop. What makes it fast:
``arg`` is uint8 when a window has at most 256 elements (8x less
memory than intp), the loops index flat views with unsigned numbers (so LLVM sees plain
address arithmetic), and the batch is split into tasks of ``TASK_IMAGES`` images run by
the ``kernels.threads`` workers (each task writes its own images only, so the result does
not depend on the thread count).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from . import layers, warm
from .layers import conv_output_size
from .threads import run_tasks

__all__ = ["max_pool2d_forward", "max_pool2d_backward", "TASK_IMAGES"]

TASK_IMAGES = 16
_JIT = dict(nogil=True, cache=True, error_model="numpy")


@njit(**_JIT)
def _nan_aware_window(xf, s, W, kh, kw):
    """``(max, position)`` of the window whose first element is ``xf[s]``, where a NaN
    wins over numbers and the first NaN stays (np.argmax's rule)."""
    best = xf[s]
    which = 0
    for i in range(kh):
        for j in range(kw):
            v = xf[s + np.uintp(i * W + j)]
            if v > best or (v != v and best == best):
                best = v
                which = i * kw + j
    return best, which


@njit(**_JIT)
def _window_rows(xf, of, af, src0, dst0, Ho, Wo, W, kh, kw, sh, sw):
    """One image plane, any window: ``src0`` / ``dst0`` are its first element in x / out.

    The plain ``>`` comparisons (the FIRST maximum wins) run fast; they miss a NaN that
    is not the window's first element, so a window whose sum is NaN (it holds a NaN, or
    +inf and -inf) is redone by :func:`_nan_aware_window`. Testing NaN on every
    comparison instead made the loop 10-20x slower."""
    for ho in range(Ho):
        row0 = src0 + ho * sh * W
        for wo in range(Wo):
            s = np.uintp(row0 + wo * sw)
            best = xf[s]
            which = 0
            total = best - best
            for i in range(kh):
                for j in range(kw):
                    v = xf[s + np.uintp(i * W + j)]
                    total += v
                    if v > best:
                        best = v
                        which = i * kw + j
            if total != total:
                best, which = _nan_aware_window(xf, s, W, kh, kw)
            d = np.uintp(dst0 + ho * Wo + wo)
            of[d] = best
            af[d] = which


@njit(**_JIT)
def _window_rows_2x2(xf, of, af, src0, dst0, Ho, Wo, W):
    """:func:`_window_rows` for the paper's 2x2 windows with stride 2, unrolled: the four
    candidates are compared in window order, so the first maximum still wins."""
    for ho in range(Ho):
        top = np.uintp(src0 + 2 * ho * W)
        bottom = top + np.uintp(W)
        d = np.uintp(dst0 + ho * Wo)
        for wo in range(Wo):
            s = np.uintp(2 * wo)
            a, b, c, e = xf[top + s], xf[top + s + np.uintp(1)], xf[bottom + s], xf[bottom + s + np.uintp(1)]
            best, which = a, 0
            if b > best:
                best, which = b, 1
            if c > best:
                best, which = c, 2
            if e > best:
                best, which = e, 3
            total = a + b + c + e
            if total != total:
                best, which = _nan_aware_window(xf, top + s, W, 2, 2)
            of[d + np.uintp(wo)] = best
            af[d + np.uintp(wo)] = which


@njit(**_JIT)
def _max_pool_forward_images(x, n0, n1, kh, kw, sh, sw, out, arg):
    """``out`` and ``arg`` of the images ``n0 <= n < n1`` (all four arrays C-contiguous)."""
    C, H, W = x.shape[1], x.shape[2], x.shape[3]
    Ho, Wo = out.shape[2], out.shape[3]
    xf, of, af = x.reshape(-1), out.reshape(-1), arg.reshape(-1)
    paper = kh == 2 and kw == 2 and sh == 2 and sw == 2
    for plane in range(n0 * C, n1 * C):
        if paper:
            _window_rows_2x2(xf, of, af, plane * H * W, plane * Ho * Wo, Ho, Wo, W)
        else:
            _window_rows(xf, of, af, plane * H * W, plane * Ho * Wo, Ho, Wo, W, kh, kw, sh, sw)


@njit(**_JIT)
def _max_pool_backward_images(grad, arg, n0, n1, offsets, sh, sw, dx):
    """``dx`` of the images ``n0 <= n < n1``: zeros, plus each output's gradient added at
    its window's winner (added: overlapping windows may share a winner). ``offsets[a]``
    is ``(a // kw) * W + a % kw``, the winner's place in the plane from the window's
    first pixel (a table: an integer division per output costs a third of the time)."""
    C, H, W = dx.shape[1], dx.shape[2], dx.shape[3]
    Ho, Wo = grad.shape[2], grad.shape[3]
    gf, af, df = grad.reshape(-1), arg.reshape(-1), dx.reshape(-1)
    for plane in range(n0 * C, n1 * C):
        dst0 = plane * H * W
        for q in range(H * W):
            df[np.uintp(dst0 + q)] = 0.0
        src0 = plane * Ho * Wo
        for ho in range(Ho):
            for wo in range(Wo):
                s = np.uintp(src0 + ho * Wo + wo)
                d = dst0 + ho * sh * W + wo * sw + offsets[af[s]]
                df[np.uintp(d)] += gf[s]


def _tasks(N: int) -> list:
    return [(n0, min(N, n0 + TASK_IMAGES)) for n0 in range(0, N, TASK_IMAGES)]


def _arg_dtype(kernel) -> np.dtype:
    """The winners' positions in their windows: one byte each when a window has <= 256 pixels."""
    return np.dtype(np.uint8 if kernel[0] * kernel[1] <= 256 else np.int32)


def _forward_twin(x, kernel, stride):
    """What answers while the loops above are not compiled yet: the reference (``warm.py``)."""
    out, arg = layers.max_pool2d_forward(x, kernel, stride)
    return out, arg.astype(_arg_dtype(kernel))


def _backward_twin(grad, arg, x_shape, kernel, stride):
    """``np.add.at`` adds in the loops' order (image, channel, row, column), so overlapping
    windows sum to the same bits as the compiled kernel."""
    N, C, Ho, Wo = grad.shape
    n, c, ho, wo = np.ix_(range(N), range(C), range(Ho), range(Wo))
    arg = arg.astype(np.intp)
    dx = np.zeros(x_shape, dtype=grad.dtype)
    np.add.at(dx, (n, c, ho * stride[0] + arg // kernel[1], wo * stride[1] + arg % kernel[1]), grad)
    return dx


def _examples(backward: bool) -> list:
    """The calls ``minstn warmup`` makes: each dtype, the 2x2 loop and the generic one."""
    calls = []
    for dtype in (np.float32, np.float64):
        for kernel in ((2, 2), (3, 3)):
            x = np.ones((2, 2, 6, 6), dtype)
            if backward:
                out, arg = max_pool2d_forward(x, kernel, kernel)
                calls.append((out, arg, x.shape, kernel, kernel))
            else:
                calls.append((x, kernel, kernel))
    return calls


@warm.with_twin(_forward_twin, examples=lambda: _examples(False))
def max_pool2d_forward(x: np.ndarray, kernel: tuple, stride: tuple) -> tuple:
    """``(out, arg)`` of max pooling ``x`` (N, C, H, W) with ``kernel`` windows every ``stride``."""
    kh, kw = kernel
    sh, sw = stride
    N, C, H, W = x.shape
    if H < kh or W < kw:
        raise ValueError(f"the kernel {kernel} is larger than the (padded) input {H}x{W}")
    Ho, Wo = conv_output_size(H, kh, sh), conv_output_size(W, kw, sw)
    x = np.ascontiguousarray(x)
    out = np.empty((N, C, Ho, Wo), dtype=x.dtype)
    arg = np.empty((N, C, Ho, Wo), dtype=_arg_dtype(kernel))
    if out.size:
        chunks = _tasks(N)
        run_tasks(lambda t: warm.run(_max_pool_forward_images, x, *chunks[t], kh, kw, sh, sw, out, arg), len(chunks))
    return out, arg


@warm.with_twin(_backward_twin, examples=lambda: _examples(True))
def max_pool2d_backward(grad: np.ndarray, arg: np.ndarray, x_shape: tuple, kernel: tuple, stride: tuple) -> np.ndarray:
    """The input gradient of :func:`max_pool2d_forward` given the output gradient ``grad``."""
    grad = np.ascontiguousarray(grad)
    dx = np.empty(x_shape, dtype=grad.dtype)
    if dx.size:
        chunks = _tasks(x_shape[0])
        kh, kw = kernel
        offsets = np.array([(a // kw) * x_shape[3] + a % kw for a in range(kh * kw)], dtype=np.intp)
        run_tasks(lambda t: warm.run(_max_pool_backward_images, grad, arg, *chunks[t], offsets, stride[0], stride[1],
                                     dx), len(chunks))
    return dx
