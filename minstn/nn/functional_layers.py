"""The layers' maths: pure array kernels, the Functions that wire them, functional ops.

Three levels, as everywhere in minstn:

1. ``*_forward`` / ``*_backward`` kernels take and return plain NumPy arrays.
2. A :class:`~minstn.autograd.Function` calls them and keeps what backward needs.
3. ``linear``, ``conv2d``, ``max_pool2d``, ``avg_pool2d``, ``batch_norm`` take
   Tensors (or arrays) with PyTorch's names and argument order; they are
   re-exported as ``minstn.functional.*``.

The array kernels here are the READABLE references: convolution as *im2col* (copy
every receptive field into a column of a matrix) followed by ONE matrix product, its
backward a product for the weights and *col2im* (the adjoint of im2col: ``kh * kw``
strided slice additions) for the input; max pooling as an ``argmax`` over a window
view. The Functions call the fast kernels of ``minstn.kernels`` (``conv_cpu``:
im2col / col2im on cache-sized chunks of the batch; ``conv_dft``: the convolution
theorem for many channels; ``pool_cpu``), which the tests check against these.
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from ..autograd import Function, Tensor, array_of, as_tensor
from ..kernels import conv_cpu, conv_dft, linear_cpu, pool_cpu
from ..kernels.conv_cpu import conv_output_size

__all__ = ["linear", "conv2d", "max_pool2d", "avg_pool2d", "batch_norm", "pair", "conv_output_size"]


def pair(value, name: str = "value") -> tuple:
    """``3 -> (3, 3)``; ``(3, 5)`` stays; used for kernel sizes, strides, paddings."""
    if isinstance(value, (int, np.integer)):
        return int(value), int(value)
    value = tuple(int(v) for v in value)
    if len(value) != 2:
        raise ValueError(f"{name} must be an int or a pair of ints, got {value}")
    return value


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


class Linear(Function):
    """Wires :mod:`minstn.kernels.linear_cpu` (the products split into tasks)."""

    @staticmethod
    def forward(ctx, x, weight, bias):
        if x.shape[-1] != weight.shape[1]:
            raise ValueError(
                f"linear: input has {x.shape[-1]} features (shape {x.shape}) but the weight "
                f"expects {weight.shape[1]} (weight shape {weight.shape})"
            )
        ctx.save_for_backward(x, weight)
        ctx.has_bias = bias is not None
        out = linear_cpu.linear_forward(x.reshape(-1, x.shape[-1]), weight, bias)
        return out.reshape(x.shape[:-1] + (weight.shape[0],))

    @staticmethod
    def backward(ctx, grad):
        x, weight = ctx.saved_tensors
        need_x, need_w, need_b = ctx.needs_input_grad
        # leading batch dimensions (any number of them) all sum into the weight grad
        g2, x2 = grad.reshape(-1, grad.shape[-1]), x.reshape(-1, x.shape[-1])
        gx, gw = linear_cpu.linear_backward(g2, x2, weight, need_x, need_w)
        gb = g2.sum(axis=0) if (need_b and ctx.has_bias) else None
        return (None if gx is None else gx.reshape(x.shape)), gw, gb


def linear(x, weight, bias=None) -> Tensor:
    """``x @ weight.T + bias``; ``weight`` is (out_features, in_features)."""
    return Linear.apply(as_tensor(x), as_tensor(weight), None if bias is None else as_tensor(bias))


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


class Conv2d(Function):
    """Wires the fast kernels (float32 and float64): ``conv_dft`` where the DFT route
    needs fewer multiply-adds (many channels, big kernels, stride 1), else ``conv_cpu``;
    other dtypes take the readable reference above. Never saves the columns."""

    @staticmethod
    def forward(ctx, x, weight, bias, stride, padding):
        ctx.x_shape, ctx.stride, ctx.padding = x.shape, stride, padding
        ctx.has_bias = bias is not None
        if not (x.dtype == weight.dtype and x.dtype in _FAST_DTYPES):
            ctx.route = "reference"
            out, cols = conv2d_forward(x, weight, bias, stride, padding)
            ctx.save_for_backward(cols, weight)
            return out
        _check_conv_shapes(x.shape, weight.shape, stride, padding)
        if conv_dft.dft_is_cheaper(x.shape, weight.shape, stride, padding):
            ctx.route = "dft"
            out, ctx.spectra = conv_dft.conv2d_dft_forward(x, weight, bias)
            return out
        ctx.route = "im2col"
        ctx.save_for_backward(x, weight)
        return conv_cpu.conv2d_forward(x, weight, bias, stride, padding)

    @staticmethod
    def backward(ctx, grad):
        need_x, need_w, need_b = ctx.needs_input_grad[:3]
        need_b = need_b and ctx.has_bias
        if ctx.route == "dft":
            return (*conv_dft.conv2d_dft_backward(grad, ctx.spectra, need_x, need_w, need_b), None, None)
        saved, weight = ctx.saved_tensors
        if ctx.route == "im2col":
            gx, gw, gb = conv_cpu.conv2d_backward(grad, saved, weight, ctx.stride, ctx.padding,
                                                  need_x, need_w, need_b)
            return gx, gw, gb, None, None
        cols, O = saved, weight.shape[0]
        # (O, N*Ho*Wo): columns in the same (n, ho, wo) order as the columns of cols
        g = np.ascontiguousarray(grad.transpose(1, 0, 2, 3)).reshape(O, -1)
        gx = gw = gb = None
        if need_w:
            gw = np.ascontiguousarray((cols @ g.T).T).reshape(weight.shape)  # = g @ cols.T, faster
        if need_b:
            gb = g.sum(axis=1)
        if need_x:
            dcols = weight.reshape(O, -1).T @ g
            gx = col2im(dcols, ctx.x_shape, weight.shape[2:], ctx.stride, ctx.padding)
        return gx, gw, gb, None, None


_FAST_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def _check_conv_shapes(x_shape, w_shape, stride, padding) -> None:
    """The reference's errors, raised before the fast kernel runs."""
    O, C, kh, kw = w_shape
    if len(x_shape) != 4 or x_shape[1] != C:
        raise ValueError(f"conv2d: expected input (N, {C}, H, W) for a weight of shape {w_shape}, got {x_shape}")
    H, W = x_shape[2] + 2 * padding[0], x_shape[3] + 2 * padding[1]
    if H < kh or W < kw:
        raise ValueError(f"the kernel {(kh, kw)} is larger than the (padded) input {H}x{W}")


def conv2d(x, weight, bias=None, stride=1, padding=0) -> Tensor:
    """2-D convolution of ``x`` (N, C, H, W) with ``weight`` (O, C, kh, kw), as in PyTorch."""
    return Conv2d.apply(
        as_tensor(x), as_tensor(weight), None if bias is None else as_tensor(bias),
        pair(stride, "stride"), pair(padding, "padding"),
    )


# ---------------------------------------------------------------------------
# pooling
# ---------------------------------------------------------------------------


def _pool_geometry(x: np.ndarray, kernel_size, stride) -> tuple:
    kernel = pair(kernel_size, "kernel_size")
    stride = kernel if stride is None else pair(stride, "stride")
    if x.ndim != 4:
        raise ValueError(f"pooling expects an input of shape (N, C, H, W), got {x.shape}")
    return kernel, stride


def max_pool2d_forward(x: np.ndarray, kernel: tuple, stride: tuple) -> tuple:
    """Max over each window (floor mode). Returns ``(out, argmax)``: the readable
    reference of :mod:`minstn.kernels.pool_cpu`.

    ``argmax`` is the flat position ``i * kw + j`` of the winner inside its
    window. Like ``np.argmax`` it is the FIRST maximum, as PyTorch does, so on ties
    (common after a ReLU: windows of zeros) the gradient goes to one element only;
    a NaN wins (``np.argmax`` treats it as the largest value).
    """
    win = _windows(x, kernel, stride)                       # (N, C, Ho, Wo, kh, kw), a view
    flat = win.reshape(win.shape[:4] + (-1,))
    arg = np.argmax(flat, axis=-1)
    return np.take_along_axis(flat, arg[..., None], axis=-1)[..., 0], arg


def max_pool2d_backward(grad, arg, x_shape, kernel, stride) -> np.ndarray:
    """Route each output gradient to the input element that won its window
    (added, not written: with overlapping windows a pixel may win several).
    One strided slice per kernel offset, as in :func:`col2im`."""
    kh, kw = kernel
    dx = np.zeros(x_shape, dtype=grad.dtype)
    for i in range(kh):
        for j in range(kw):
            rows, cols = _offset_slices(i, j, grad.shape[2:], stride)
            dx[:, :, rows, cols] += np.where(arg == i * kw + j, grad, 0)
    return dx


class MaxPool2d(Function):
    """Wires the fast kernels of :mod:`minstn.kernels.pool_cpu`."""

    @staticmethod
    def forward(ctx, x, kernel, stride):
        out, arg = pool_cpu.max_pool2d_forward(x, kernel, stride)
        ctx.save_for_backward(arg)
        ctx.x_shape, ctx.kernel, ctx.stride = x.shape, kernel, stride
        return out

    @staticmethod
    def backward(ctx, grad):
        (arg,) = ctx.saved_tensors
        return pool_cpu.max_pool2d_backward(grad, arg, ctx.x_shape, ctx.kernel, ctx.stride), None, None


def max_pool2d(x, kernel_size, stride=None) -> Tensor:
    """Max pooling (no padding, floor mode); ``stride`` defaults to ``kernel_size``."""
    x = as_tensor(x)
    kernel, stride = _pool_geometry(x.data, kernel_size, stride)
    return MaxPool2d.apply(x, kernel, stride)


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


class AvgPool2d(Function):
    @staticmethod
    def forward(ctx, x, kernel, stride):
        ctx.x_shape, ctx.kernel, ctx.stride = x.shape, kernel, stride
        return avg_pool2d_forward(x, kernel, stride)

    @staticmethod
    def backward(ctx, grad):
        return avg_pool2d_backward(grad, ctx.x_shape, ctx.kernel, ctx.stride), None, None


def avg_pool2d(x, kernel_size, stride=None) -> Tensor:
    """Average pooling (no padding, floor mode); ``stride`` defaults to ``kernel_size``."""
    x = as_tensor(x)
    kernel, stride = _pool_geometry(x.data, kernel_size, stride)
    return AvgPool2d.apply(x, kernel, stride)


# ---------------------------------------------------------------------------
# batch normalisation (Ioffe & Szegedy 2015), per channel over (N, H, W)
# ---------------------------------------------------------------------------


def _channel_view(v: np.ndarray, ndim: int) -> np.ndarray:
    """(C,) -> (1, C, 1, 1) (or (1, C) for 2-D input) so it broadcasts over x."""
    return v.reshape((1, -1) + (1,) * (ndim - 2))


class BatchNorm(Function):
    """``y = (x - mean) / sqrt(var + eps) * weight + bias``, statistics per channel.

    Training: mean and (biased) variance of this batch normalise it, and the
    running statistics move towards the batch's mean and UNBIASED variance
    (PyTorch's convention). Evaluation: the running statistics are used, so
    the op is an affine map per channel.
    """

    @staticmethod
    def forward(ctx, x, running_mean, running_var, weight, bias, training, momentum, eps):
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
        ctx.save_for_backward(xhat, inv_std, weight)
        ctx.training, ctx.axes = training, axes
        return out

    @staticmethod
    def backward(ctx, grad):
        xhat, inv_std, weight = ctx.saved_tensors
        need_x, _, _, need_w, need_b = ctx.needs_input_grad[:5]
        axes, nd = ctx.axes, grad.ndim
        gw = (grad * xhat).sum(axis=axes) if need_w and weight is not None else None
        gb = grad.sum(axis=axes) if need_b else None
        gx = None
        if need_x:
            g = grad if weight is None else grad * _channel_view(weight, nd)  # dL/dxhat
            scale = _channel_view(inv_std, nd)
            if ctx.training:
                # mean and var depend on x too; the classic closed form:
                # dx = inv_std * (g - mean(g) - xhat * mean(g * xhat))
                gx = scale * (g - g.mean(axis=axes, keepdims=True) - xhat * (g * xhat).mean(axis=axes, keepdims=True))
            else:
                gx = g * scale
        return gx, None, None, gw, gb, None, None, None


def batch_norm(x, running_mean, running_var, weight=None, bias=None, training=False, momentum=0.1, eps=1e-5) -> Tensor:
    """Batch normalisation over the channel axis 1, PyTorch's argument order.

    ``running_mean`` / ``running_var`` are updated IN PLACE when ``training``
    (pass None to skip that). They are state, not inputs: no gradient flows to them.
    """
    x = as_tensor(x)
    rm, rv = array_of(running_mean), array_of(running_var)
    if not training and (rm is None or rv is None):
        raise ValueError("batch_norm in eval mode needs running_mean and running_var")
    return BatchNorm.apply(
        x, rm, rv,
        None if weight is None else as_tensor(weight),
        None if bias is None else as_tensor(bias),
        bool(training), float(momentum), float(eps),
    )
