"""Fast 2-D convolution on the CPU: im2col / col2im on small chunks of the batch, BLAS between.

The maths is the readable reference's (``im2col`` + one matrix product, ``col2im`` for
the input gradient, in ``minstn.kernels.layers``); what changes is the order of
the work. The reference builds the columns of the WHOLE batch at once (388 MB for the
CNN's second convolution at batch 256) and transposes between layouts. Here the batch
is cut into tasks of ``TASK_IMAGES`` images and each task into chunks whose columns
fit in the cache (about ``CHUNK_FLOATS`` numbers). Per chunk:

    forward   cols = im2col(x[chunk]);  res = W @ cols;  out[chunk] = res + bias  (NCHW)
    backward  g = grad[chunk] as columns;  grad_W += g @ cols^T  (cols recomputed from x)
              dcols = W^T @ g;  grad_x[chunk] = col2im(dcols)

so the columns are never stored for the backward (x is), and no layout transpose of a
whole tensor is made. Tasks run on ``kernels.threads`` workers; the weight gradient is
summed over tasks in task order, so the bytes do not depend on the thread count.

How to read the file: ``_valid_range`` and the four ``@njit`` loops first (one job
each; zero padding is handled inside them by clipping the output range that a kernel
offset can reach), then the
two drivers :func:`conv2d_forward` and :func:`conv2d_backward` that the ``Conv2d``
Function calls.
"""

from __future__ import annotations

import threading

import numpy as np
from numba import njit

from . import layers, warm
from .layers import conv_output_size
from .threads import run_tasks

__all__ = ["conv2d_forward", "conv2d_backward", "conv_output_size", "TASK_IMAGES", "CHUNK_FLOATS"]

TASK_IMAGES = 16          # images per task: the unit of work a thread takes, and of gradient sums
CHUNK_FLOATS = 1 << 20    # about 4 MB of float32 columns per chunk: stays in the L2/L3 cache

# Single-threaded, GIL-free loops: the parallelism is one task per worker thread.
_JIT = dict(nogil=True, cache=True, error_model="numpy")


@njit(**_JIT)
def _valid_range(offset, pad, stride, size, out_size):
    """Output positions ``o`` whose input position ``o * stride + offset - pad`` lies in
    ``[0, size)``: the half-open range ``[lo, hi)`` (empty if ``lo >= hi``)."""
    first = pad - offset                       # o * stride >= first
    lo = 0 if first <= 0 else (first + stride - 1) // stride
    last = size - 1 + pad - offset             # o * stride <= last
    hi = 0 if last < 0 else min(out_size, last // stride + 1)
    return lo, hi


@njit(**_JIT)
def _im2col_chunk(x, n0, n1, kh, kw, sh, sw, ph, pw, Ho, Wo, cols):
    """``cols[(c, i, j), (n - n0) * Ho * Wo + ho * Wo + wo] = x[n, c, ho*sh + i - ph, wo*sw + j - pw]``
    (0 outside the image) for the images ``n0 <= n < n1``: the reference's im2col of a chunk.

    ``x`` is (N, C, H, W) and ``cols`` (C*kh*kw, (n1-n0)*Ho*Wo), both C-contiguous; the
    loops index their flat views with unsigned numbers, which lets LLVM vectorise the
    copies (signed indices make Numba test each one for Python's negative indexing)."""
    C, H, W = x.shape[1], x.shape[2], x.shape[3]
    P = Ho * Wo
    L = (n1 - n0) * P
    xf, cf = x.reshape(-1), cols.reshape(-1)
    for c in range(C):
        for i in range(kh):
            ho_lo, ho_hi = _valid_range(i, ph, sh, H, Ho)
            for j in range(kw):
                wo_lo, wo_hi = _valid_range(j, pw, sw, W, Wo)
                run = max(0, wo_hi - wo_lo)
                row = ((c * kh + i) * kw + j) * L
                for n in range(n0, n1):
                    base = row + (n - n0) * P
                    for ho in range(Ho):
                        d = np.uintp(base + ho * Wo)
                        if ho < ho_lo or ho >= ho_hi:
                            for wo in range(Wo):
                                cf[d + np.uintp(wo)] = 0.0
                            continue
                        for wo in range(wo_lo):
                            cf[d + np.uintp(wo)] = 0.0
                        for wo in range(wo_lo + run, Wo):
                            cf[d + np.uintp(wo)] = 0.0
                        s = np.uintp(((n * C + c) * H + ho * sh + i - ph) * W + wo_lo * sw + j - pw)
                        d += np.uintp(wo_lo)
                        if sw == 1:
                            for q in range(run):
                                cf[d + np.uintp(q)] = xf[s + np.uintp(q)]
                        else:
                            for q in range(run):
                                cf[d + np.uintp(q)] = xf[s + np.uintp(q * sw)]


@njit(**_JIT)
def _col2im_chunk(dcols, n0, n1, kh, kw, sh, sw, ph, pw, Ho, Wo, dx):
    """Adjoint of :func:`_im2col_chunk`: ``dx[n0:n1]`` = the sum of every column entry
    over the input pixel it was copied from (entries that were padding are dropped).
    One image plane at a time, so the plane being summed into stays in L1."""
    C, H, W = dx.shape[1], dx.shape[2], dx.shape[3]
    P = Ho * Wo
    L = (n1 - n0) * P
    df, xf = dcols.reshape(-1), dx.reshape(-1)
    for n in range(n0, n1):
        for c in range(C):
            plane = (n * C + c) * H * W
            for q in range(H * W):
                xf[np.uintp(plane + q)] = 0.0
            for i in range(kh):
                ho_lo, ho_hi = _valid_range(i, ph, sh, H, Ho)
                for j in range(kw):
                    wo_lo, wo_hi = _valid_range(j, pw, sw, W, Wo)
                    run = wo_hi - wo_lo
                    row = ((c * kh + i) * kw + j) * L + (n - n0) * P + wo_lo
                    for ho in range(ho_lo, ho_hi):
                        s = np.uintp(row + ho * Wo)
                        d = np.uintp(plane + (ho * sh + i - ph) * W + wo_lo * sw + j - pw)
                        if sw == 1:
                            for q in range(run):
                                xf[d + np.uintp(q)] += df[s + np.uintp(q)]
                        else:
                            for q in range(run):
                                xf[d + np.uintp(q * sw)] += df[s + np.uintp(q)]


@njit(**_JIT)
def _columns_to_images(res, bias, has_bias, n0, out):
    """``out[n, o, p] = res[o, (n - n0) * P + p] + bias[o]``: one chunk back to NCHW."""
    O, P = out.shape[1], out.shape[2]
    L = res.shape[1]
    rf, of = res.reshape(-1), out.reshape(-1)
    for n in range(n0, n0 + L // P):
        for o in range(O):
            b = bias[o] if has_bias else 0.0
            s = np.uintp(o * L + (n - n0) * P)
            d = np.uintp((n * O + o) * P)
            for p in range(P):
                of[d + np.uintp(p)] = rf[s + np.uintp(p)] + b


@njit(**_JIT)
def _images_to_columns(grad, n0, n1, g):
    """``g[o, (n - n0) * P + p] = grad[n, o, p]``: the output gradient of a chunk as columns."""
    O, P = grad.shape[1], grad.shape[2]
    L = g.shape[1]
    gf, cf = grad.reshape(-1), g.reshape(-1)
    for n in range(n0, n1):
        for o in range(O):
            s = np.uintp((n * O + o) * P)
            d = np.uintp(o * L + (n - n0) * P)
            for p in range(P):
                cf[d + np.uintp(p)] = gf[s + np.uintp(p)]


# --------------------------------------------------------------------------- drivers ----

_scratch = threading.local()


def _buffer(name: str, shape: tuple, dtype) -> np.ndarray:
    """A per-thread scratch array, reused between calls (its contents are overwritten)."""
    size = int(np.prod(shape))
    key = (name, np.dtype(dtype).str)
    flat = getattr(_scratch, "arrays", None)
    if flat is None:
        flat = _scratch.arrays = {}
    buf = flat.get(key)
    if buf is None or buf.size < size:
        buf = flat[key] = np.empty(max(size, 1), dtype=dtype)
    return buf[:size].reshape(shape)


def _geometry(x_shape, w_shape, stride, padding):
    N, C, H, W = x_shape
    O, _, kh, kw = w_shape
    Ho = conv_output_size(H, kh, stride[0], padding[0])
    Wo = conv_output_size(W, kw, stride[1], padding[1])
    K, P = C * kh * kw, Ho * Wo
    chunk = int(max(1, min(TASK_IMAGES, CHUNK_FLOATS // max(1, K * P))))
    return (kh, kw, stride[0], stride[1], padding[0], padding[1], Ho, Wo), K, P, chunk


def _task_chunks(t: int, N: int, chunk: int):
    """The chunks ``(n0, n1)`` of task ``t``: images ``[t * TASK_IMAGES, ...)`` in steps of ``chunk``."""
    start, stop = t * TASK_IMAGES, min(N, (t + 1) * TASK_IMAGES)
    return [(n0, min(stop, n0 + chunk)) for n0 in range(start, stop, chunk)]


def _forward_twin(x, weight, bias, stride, padding):
    """What answers while the loops below are not compiled yet: the reference (``warm.py``)."""
    return layers.conv2d_forward(x, weight, bias, stride, padding)[0]


def _backward_twin(grad, x, weight, stride, padding, need_input=True, need_weight=True, need_bias=True):
    cols, _ = layers.im2col(x, weight.shape[2:], stride, padding)
    return layers.conv2d_backward(grad, cols, weight, x.shape, stride, padding, need_input, need_weight, need_bias)


def _examples(backward: bool) -> list:
    """The calls ``minstn warmup`` makes: each dtype, with and without bias."""
    calls = []
    for dtype in (np.float32, np.float64):
        x, w = np.ones((2, 2, 5, 5), dtype), np.ones((3, 2, 3, 3), dtype)
        for b in (None, np.ones(3, dtype)):
            calls.append((np.ones((2, 3, 5, 5), dtype), x, w, (1, 1), (1, 1)) if backward else (x, w, b, (1, 1), (1, 1)))
    return calls


@warm.with_twin(_forward_twin, examples=lambda: _examples(False))
def conv2d_forward(x: np.ndarray, weight: np.ndarray, bias, stride: tuple, padding: tuple) -> np.ndarray:
    """Cross-correlation of ``x`` (N, C, H, W) with ``weight`` (O, C, kh, kw), plus ``bias``:
    the reference ``conv2d_forward``'s output, in NCHW, with zero ``padding``."""
    x = np.ascontiguousarray(x)
    N, O = x.shape[0], weight.shape[0]
    geo, K, P, chunk = _geometry(x.shape, weight.shape, stride, padding)
    w2 = np.ascontiguousarray(weight).reshape(O, K)
    has_bias = bias is not None
    b = np.ascontiguousarray(bias) if has_bias else np.zeros(O, dtype=x.dtype)
    out = np.empty((N, O, P), dtype=x.dtype)

    def task(t):
        for n0, n1 in _task_chunks(t, N, chunk):
            cols = _buffer("cols", (K, (n1 - n0) * P), x.dtype)
            res = _buffer("res", (O, (n1 - n0) * P), x.dtype)
            warm.run(_im2col_chunk, x, n0, n1, *geo, cols)
            np.matmul(w2, cols, out=res)
            warm.run(_columns_to_images, res, b, has_bias, n0, out)

    if N and P:
        run_tasks(task, -(-N // TASK_IMAGES))
    return out.reshape(N, O, geo[6], geo[7])


@warm.with_twin(_backward_twin, examples=lambda: _examples(True))
def conv2d_backward(grad, x, weight, stride, padding, need_input=True, need_weight=True, need_bias=True):
    """``(grad_x, grad_weight, grad_bias)`` of :func:`conv2d_forward` given ``grad`` (N, O, Ho, Wo);
    an entry is None where its ``need_*`` flag is False."""
    x = np.ascontiguousarray(x)
    N, O = x.shape[0], weight.shape[0]
    geo, K, P, chunk = _geometry(x.shape, weight.shape, stride, padding)
    g_all = np.ascontiguousarray(grad, dtype=x.dtype).reshape(N, O, P)
    w2 = np.ascontiguousarray(weight).reshape(O, K)
    gx = np.empty(x.shape, dtype=x.dtype) if need_input else None
    gb = g_all.sum(axis=(0, 2)) if need_bias else None
    if not (need_input or need_weight):
        return gx, None, gb

    def task(t):
        gw = np.zeros((O, K), dtype=x.dtype) if need_weight else None
        for n0, n1 in _task_chunks(t, N, chunk):
            g = _buffer("g", (O, (n1 - n0) * P), x.dtype)
            warm.run(_images_to_columns, g_all, n0, n1, g)
            if need_weight:
                cols = _buffer("cols", (K, (n1 - n0) * P), x.dtype)
                part = _buffer("gw", (O, K), x.dtype)
                warm.run(_im2col_chunk, x, n0, n1, *geo, cols)
                np.matmul(g, cols.T, out=part)
                gw += part
            if need_input:
                dcols = _buffer("dcols", (K, (n1 - n0) * P), x.dtype)
                np.matmul(w2.T, g, out=dcols)
                warm.run(_col2im_chunk, dcols, n0, n1, *geo, gx)
        return gw

    parts = run_tasks(task, -(-N // TASK_IMAGES)) if N and P else []
    gw = None
    if need_weight:
        gw = np.zeros((O, K), dtype=x.dtype)
        for part in parts:           # task order: the same sum whatever the thread count
            gw += part
        gw = gw.reshape(weight.shape)
    if need_input and not P:
        gx[...] = 0
    return gx, gw, gb
