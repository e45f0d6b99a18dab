"""Pure array kernels of the layers: linear, convolution, pooling, batch normalisation.

No Tensor in sight: each ``*_forward`` / ``*_backward`` takes and returns NumPy arrays;
``minstn/nn/functional.py`` wires them into Functions. Read it in that order:

* linear: ``y = x W^T + b`` and its three gradients;
* convolution as *im2col* (every receptive field copied into a column of a matrix)
  followed by ONE matrix product, so the heavy lifting happens inside BLAS; its
  backward is a matrix product for the weights and *col2im* (the adjoint of im2col)
  for the input, ``kh * kw`` strided slice additions over the whole batch;
* max pooling as two small Numba loops (one pass over the input instead of a copy of
  every window), each with a NumPy twin that answers until it is compiled (``warm.py``);
  average pooling as slices;
* batch normalisation per channel over (N, H, W).

Shapes follow PyTorch: images (N, C, H, W), conv weights (O, C, kh, kw), linear
weights (out, in); floor mode, no dilation.
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from numba import njit, prange

from . import warm

# Plain loops over (image, channel) planes: each plane is written by one thread only.
# cache=True keeps the compiled kernels on disk (one signature per dtype).
_JIT = dict(parallel=True, cache=True, error_model="numpy")


def conv_output_size(size: int, kernel: int, stride: int = 1, padding: int = 0) -> int:
    """``floor((size + 2 padding - kernel) / stride) + 1``: PyTorch's floor mode."""
    return (size + 2 * padding - kernel) // stride + 1


def _windows(x: np.ndarray, kernel: tuple, stride: tuple) -> np.ndarray:
    """View ``(N, C, Ho, Wo, kh, kw)`` of every receptive field: no copy is made.

    ``sliding_window_view`` gives one window per pixel; taking every
    ``stride``-th of them along each axis is still a view.
    """
    kh, kw = kernel
    sh, sw = stride
    _, _, H, W = x.shape
    if H < kh or W < kw:
        raise ValueError(f"the kernel {kernel} is larger than the (padded) input {H}x{W}")
    return sliding_window_view(x, (kh, kw), axis=(2, 3))[:, :, ::sh, ::sw]


def _offset_slices(i: int, j: int, out_hw: tuple, stride: tuple) -> tuple:
    """The input pixels that kernel offset ``(i, j)`` touches, as slices over H and W."""
    (Ho, Wo), (sh, sw) = out_hw, stride
    return slice(i, i + sh * (Ho - 1) + 1, sh), slice(j, j + sw * (Wo - 1) + 1, sw)


# ---------------------------------------------------------------------------
# linear
# ---------------------------------------------------------------------------


def linear_forward(x: np.ndarray, weight: np.ndarray, bias) -> np.ndarray:
    """``y = x W^T + b`` with ``W`` of shape (out, in), as ``torch.nn.functional.linear``."""
    out = x @ weight.T
    if bias is not None:
        out += bias
    return out


def linear_backward(grad, x, weight, need_x: bool, need_w: bool, need_b: bool) -> tuple:
    """(dL/dx, dL/dW, dL/db), each None when not needed; leading batch dimensions (any
    number of them) all sum into the weight and bias gradients."""
    gx = grad @ weight if need_x else None
    g2, x2 = grad.reshape(-1, grad.shape[-1]), x.reshape(-1, x.shape[-1])
    # (x^T g)^T rather than g^T x: BLAS is much faster on C-ordered tall operands
    gw = np.ascontiguousarray((x2.T @ g2).T) if need_w else None
    gb = g2.sum(axis=0) if need_b else None
    return gx, gw, gb


# ---------------------------------------------------------------------------
# conv2d: im2col + one matmul, col2im for the backward
# ---------------------------------------------------------------------------


def im2col(x: np.ndarray, kernel: tuple, stride: tuple, padding: tuple) -> tuple:
    """Receptive fields as COLUMNS: ``(C*kh*kw, N*Ho*Wo)``, plus ``(Ho, Wo)``.

    Row order is ``(c, i, j)``, the order of ``weight.reshape(out, -1)``'s
    columns, so a convolution is ``weight.reshape(out, -1) @ cols``.
    Why columns and not rows: the copy then reads and writes runs of ``Wo``
    neighbouring pixels (fast), instead of runs of ``kw`` (a few) elements, and
    every later product is between C-ordered matrices, which BLAS does best
    (we measured ``A.T @ B`` with two tall C-ordered matrices 10-30x slower).
    """
    ph, pw = padding
    if ph or pw:
        x = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    win = _windows(x, kernel, stride)  # (N, C, Ho, Wo, kh, kw) view
    N, C, Ho, Wo, kh, kw = win.shape
    # the one copy of the forward pass: gather every field into a column
    cols = np.ascontiguousarray(win.transpose(1, 4, 5, 0, 2, 3)).reshape(C * kh * kw, N * Ho * Wo)
    return cols, (Ho, Wo)


def col2im(dcols: np.ndarray, x_shape: tuple, kernel: tuple, stride: tuple, padding: tuple) -> np.ndarray:
    """Adjoint of :func:`im2col`: add each column back onto the pixels it was copied from.

    A pixel that sits in several receptive fields receives the sum of their
    gradients. We loop over the ``kh*kw`` kernel offsets (not over pixels):
    offset ``(i, j)`` of every field lands on one strided slice of the input, and
    one slice addition covers the whole batch and all channels.
    """
    N, C, H, W = x_shape
    (kh, kw), (ph, pw) = kernel, padding
    Ho = conv_output_size(H, kh, stride[0], ph)
    Wo = conv_output_size(W, kw, stride[1], pw)
    d = dcols.reshape(C, kh, kw, N, Ho, Wo)
    dx = np.zeros((C, N, H + 2 * ph, W + 2 * pw), dtype=dcols.dtype)  # channel-major, like d
    for i in range(kh):
        for j in range(kw):
            rows, cols = _offset_slices(i, j, (Ho, Wo), stride)
            dx[:, :, rows, cols] += d[:, i, j]
    dx = dx[:, :, ph : ph + H, pw : pw + W]
    return np.ascontiguousarray(dx.transpose(1, 0, 2, 3))


def conv2d_forward(x, weight, bias, stride, padding) -> tuple:
    """Cross-correlation (what deep learning calls convolution). Returns ``(out, cols)``."""
    O, C, kh, kw = weight.shape
    if x.ndim != 4 or x.shape[1] != C:
        raise ValueError(
            f"conv2d: expected input (N, {C}, H, W) for a weight of shape {weight.shape}, got {x.shape}"
        )
    cols, (Ho, Wo) = im2col(x, (kh, kw), stride, padding)
    out = weight.reshape(O, -1) @ cols  # (O, N*Ho*Wo): the single BLAS call
    if bias is not None:
        out += bias[:, None]
    out = out.reshape(O, x.shape[0], Ho, Wo).transpose(1, 0, 2, 3)
    return np.ascontiguousarray(out), cols


def conv2d_backward(grad, cols, weight, x_shape, stride, padding, need_x: bool, need_w: bool,
                    need_b: bool) -> tuple:
    """(dL/dx, dL/dweight, dL/dbias) from the output gradient and the forward's ``cols``."""
    O = weight.shape[0]
    # (O, N*Ho*Wo): columns in the same (n, ho, wo) order as the columns of cols
    g = np.ascontiguousarray(grad.transpose(1, 0, 2, 3)).reshape(O, -1)
    gx = gw = gb = None
    if need_w:
        gw = np.ascontiguousarray((cols @ g.T).T).reshape(weight.shape)  # = g @ cols.T, faster
    if need_b:
        gb = g.sum(axis=1)
    if need_x:
        dcols = weight.reshape(O, -1).T @ g
        gx = col2im(dcols, x_shape, weight.shape[2:], stride, padding)
    return gx, gw, gb


# ---------------------------------------------------------------------------
# pooling
# ---------------------------------------------------------------------------


@njit(**_JIT)
def _max_pool_forward_kernel(x, out, arg, kh, kw, sh, sw):
    N, C, Ho, Wo = out.shape
    for k in prange(N * C):
        n, c = k // C, k % C
        for ho in range(Ho):
            best = out[n, c, ho]         # a whole output row at once: rows of x are read
            which = arg[n, c, ho]        # left to right, offset by offset
            first = x[n, c, ho * sh]
            for wo in range(Wo):
                best[wo] = first[wo * sw]
                which[wo] = 0
            for i in range(kh):
                src = x[n, c, ho * sh + i]
                for j in range(kw):
                    a = i * kw + j
                    for wo in range(Wo):
                        v = src[wo * sw + j]
                        b = best[wo]
                        # strictly greater: the FIRST maximum wins, as np.argmax;
                        # a NaN wins over numbers, and the first NaN stays (np.argmax too)
                        if v > b or (v != v and b == b):
                            best[wo] = v
                            which[wo] = a


@njit(**_JIT)
def _max_pool_backward_kernel(grad, arg, dx, kw, sh, sw):
    N, C, Ho, Wo = grad.shape
    for k in prange(N * C):              # one thread owns the plane dx[n, c]
        n, c = k // C, k % C
        dx[n, c] = 0.0
        for ho in range(Ho):
            for wo in range(Wo):
                a = arg[n, c, ho, wo]
                dx[n, c, ho * sh + a // kw, wo * sw + a % kw] += grad[n, c, ho, wo]


def _max_pool2d_forward_numpy(x: np.ndarray, kernel: tuple, stride: tuple) -> tuple:
    """The NumPy twin of ``max_pool2d_forward`` (see ``warm.py``): ``np.argmax`` over
    each window, so the same first maximum (a NaN first) and the same bits."""
    win = _windows(x, kernel, stride)
    flat = win.reshape(win.shape[:4] + (-1,))          # (N, C, Ho, Wo, kh * kw): a copy
    arg = flat.argmax(axis=-1)
    return np.take_along_axis(flat, arg[..., None], axis=-1)[..., 0], arg


def _max_pool2d_backward_numpy(grad, arg, x_shape, kernel, stride) -> np.ndarray:
    """The NumPy twin of ``max_pool2d_backward``: ``np.add.at`` adds in the kernel's
    order (image, channel, row, column), so overlapping windows sum to the same bits."""
    N, C, Ho, Wo = grad.shape
    n, c, ho, wo = np.ix_(range(N), range(C), range(Ho), range(Wo))
    dx = np.zeros(x_shape, dtype=grad.dtype)
    np.add.at(dx, (n, c, ho * stride[0] + arg // kernel[1], wo * stride[1] + arg % kernel[1]), grad)
    return dx


def _pool_examples(backward: bool) -> list:
    """The calls ``minstn warmup`` makes: each dtype (one compiled kernel per dtype)."""
    calls = []
    for dtype in (np.float32, np.float64):
        x = np.ones((2, 2, 4, 4), dtype)
        out, arg = max_pool2d_forward(x, (2, 2), (2, 2))
        calls.append((out, arg, x.shape, (2, 2), (2, 2)) if backward else (x, (2, 2), (2, 2)))
    return calls


@warm.with_twin(_max_pool2d_forward_numpy, examples=lambda: _pool_examples(False))
def max_pool2d_forward(x: np.ndarray, kernel: tuple, stride: tuple) -> tuple:
    """Max over each window (floor mode). Returns ``(out, argmax)``.

    ``argmax`` is the flat position ``i * kw + j`` of the winner inside its
    window. Like ``np.argmax`` it is the FIRST maximum, as PyTorch does, so on ties
    (common after a ReLU: windows of zeros) the gradient goes to one element only.
    (In NumPy: ``np.argmax`` over the last axis of the windows
    ``_windows(x, kernel, stride).reshape(N, C, Ho, Wo, kh * kw)``.)
    """
    kh, kw = kernel
    sh, sw = stride
    N, C, H, W = x.shape
    if H < kh or W < kw:
        raise ValueError(f"the kernel {kernel} is larger than the (padded) input {H}x{W}")
    Ho, Wo = conv_output_size(H, kh, sh), conv_output_size(W, kw, sw)
    out = np.empty((N, C, Ho, Wo), dtype=x.dtype)
    arg = np.empty((N, C, Ho, Wo), dtype=np.intp)
    if out.size:
        warm.run(_max_pool_forward_kernel, np.ascontiguousarray(x), out, arg, kh, kw, sh, sw)
    return out, arg


@warm.with_twin(_max_pool2d_backward_numpy, examples=lambda: _pool_examples(True))
def max_pool2d_backward(grad, arg, x_shape, kernel, stride) -> np.ndarray:
    """Route each output gradient to the input element that won its window
    (added, not written: with overlapping windows a pixel may win several)."""
    dx = np.empty(x_shape, dtype=grad.dtype)
    if dx.size:
        warm.run(_max_pool_backward_kernel, np.ascontiguousarray(grad), np.ascontiguousarray(arg), dx,
                 kernel[1], stride[0], stride[1])
    return dx


def avg_pool2d_forward(x: np.ndarray, kernel: tuple, stride: tuple) -> np.ndarray:
    """Mean over each window (floor mode)."""
    return _windows(x, kernel, stride).mean(axis=(-2, -1), dtype=x.dtype)


def avg_pool2d_backward(grad, x_shape, kernel, stride) -> np.ndarray:
    """Each window spreads its gradient evenly over its ``kh*kw`` pixels."""
    kh, kw = kernel
    Ho, Wo = grad.shape[2:]
    share = grad / (kh * kw)
    dx = np.zeros(x_shape, dtype=grad.dtype)
    for i in range(kh):
        for j in range(kw):
            rows, cols = _offset_slices(i, j, (Ho, Wo), stride)
            dx[:, :, rows, cols] += share
    return dx


# ---------------------------------------------------------------------------
# batch normalisation (Ioffe & Szegedy 2015), per channel over (N, H, W)
# ---------------------------------------------------------------------------


def _channel_view(v: np.ndarray, ndim: int) -> np.ndarray:
    """(C,) -> (1, C, 1, 1) (or (1, C) for 2-D input) so it broadcasts over x."""
    return v.reshape((1, -1) + (1,) * (ndim - 2))


def batch_norm_forward(x, running_mean, running_var, weight, bias, training, momentum, eps) -> tuple:
    """``y = (x - mean) / sqrt(var + eps) * weight + bias``; returns ``(y, xhat, inv_std)``.

    Training: mean and (biased) variance of this batch normalise it, and the running
    statistics (if given) move IN PLACE towards the batch's mean and UNBIASED variance
    (PyTorch's convention). Evaluation: the running statistics are used.
    """
    axes = (0,) + tuple(range(2, x.ndim))
    if training:
        mean = x.mean(axis=axes)
        var = x.var(axis=axes)  # biased: divides by m, used to normalise
        m = x.size // x.shape[1]
        if m < 2:
            raise ValueError(f"batch_norm in training mode needs more than one value per channel, got input {x.shape}")
        if running_mean is not None:  # update in place: these are the module's buffers
            running_mean *= 1 - momentum
            running_mean += momentum * mean.astype(running_mean.dtype)
            running_var *= 1 - momentum
            running_var += momentum * (var * m / (m - 1)).astype(running_var.dtype)
    else:
        mean, var = running_mean.astype(x.dtype), running_var.astype(x.dtype)
    inv_std = (1.0 / np.sqrt(var + eps)).astype(x.dtype)
    xhat = (x - _channel_view(mean, x.ndim)) * _channel_view(inv_std, x.ndim)
    out = xhat if weight is None else xhat * _channel_view(weight, x.ndim)
    if bias is not None:
        out = out + _channel_view(bias, x.ndim)
    return out, xhat, inv_std


def batch_norm_backward(grad, xhat, inv_std, weight, training, need_x: bool, need_w: bool,
                        need_b: bool) -> tuple:
    """(dL/dx, dL/dweight, dL/dbias), each None when not needed."""
    axes, nd = (0,) + tuple(range(2, grad.ndim)), grad.ndim
    gw = (grad * xhat).sum(axis=axes) if need_w and weight is not None else None
    gb = grad.sum(axis=axes) if need_b else None
    gx = None
    if need_x:
        g = grad if weight is None else grad * _channel_view(weight, nd)  # dL/dxhat
        scale = _channel_view(inv_std, nd)
        if training:
            # mean and var depend on x too; the classic closed form:
            # dx = inv_std * (g - mean(g) - xhat * mean(g * xhat))
            gx = scale * (g - g.mean(axis=axes, keepdims=True) - xhat * (g * xhat).mean(axis=axes, keepdims=True))
        else:
            gx = g * scale
    return gx, gw, gb
