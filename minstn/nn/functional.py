"""The layers' functional ops and the losses, PyTorch's ``torch.nn.functional`` names.

Each op is the top of the three levels of minstn: ``linear``, ``conv2d``, ``max_pool2d``,
``avg_pool2d``, ``batch_norm``, ``dropout``, ``log_softmax``, ``nll_loss``,
``cross_entropy``, ``mse_loss`` take Tensors (or arrays, which become constants) with
PyTorch's argument order; below each is the :class:`~minstn.autograd.Function` it
applies, whose ``forward`` / ``backward`` only wire pure array kernels: the fast ones
(``kernels.linear_cpu``, ``conv_cpu``, ``conv_dft``, ``pool_cpu``) and the readable
references of :mod:`minstn.kernels.layers` they are tested against. ``import minstn.functional as F`` re-exports all of them,
with the sampler (``F.grid_sample``) and the elementwise ops (``F.relu``).
"""

from __future__ import annotations

import numpy as np

from .. import checks
from ..autograd import Function, Tensor, array_of, as_tensor
from ..kernels import conv_cpu, conv_dft, linear_cpu, pool_cpu
from ..kernels import layers as K
from ..ops import relu, sigmoid, tanh
from ..random import generator
from ..sampling import affine_grid, grid_sample  # here too, as in torch.nn.functional

__all__ = ["linear", "conv2d", "max_pool2d", "avg_pool2d", "batch_norm", "dropout", "dropout2d", "relu",
           "sigmoid", "tanh", "log_softmax", "softmax", "nll_loss", "cross_entropy", "mse_loss", "pair",
           "conv_output_size", "affine_grid", "grid_sample"]

conv_output_size = K.conv_output_size


def pair(value, name: str = "value") -> tuple:
    """``3 -> (3, 3)``; ``(3, 5)`` stays; used for kernel sizes, strides, paddings (ints only)."""
    return checks.int_pair(value, name, "pair")


def _optional(t):
    return None if t is None else as_tensor(t)


# ---------------------------------------------------------------------------
# linear and convolution
# ---------------------------------------------------------------------------


class Linear(Function):
    """The products of :mod:`minstn.kernels.linear_cpu` (split into tasks); any number of
    leading batch dimensions, flattened into rows."""

    @staticmethod
    def forward(ctx, x, weight, bias):
        if x.shape[-1] != weight.shape[1]:
            raise ValueError(
                f"linear: input has {x.shape[-1]} features (shape {x.shape}) but the weight "
                f"expects {weight.shape[1]} (weight shape {weight.shape})"
            )
        ctx.save_for_backward(x, weight)
        out = linear_cpu.linear_forward(x.reshape(-1, x.shape[-1]), weight, bias)
        return out.reshape(x.shape[:-1] + (weight.shape[0],))

    @staticmethod
    def backward(ctx, grad):
        x, weight = ctx.saved_tensors
        need_x, need_w, need_b = ctx.needs_input_grad
        g2, x2 = grad.reshape(-1, grad.shape[-1]), x.reshape(-1, x.shape[-1])
        gx, gw = linear_cpu.linear_backward(g2, x2, weight, need_x, need_w)
        gb = g2.sum(axis=0) if need_b else None
        return (None if gx is None else gx.reshape(x.shape)), gw, gb


def linear(x, weight, bias=None) -> Tensor:
    """``x @ weight.T + bias``; ``weight`` is (out_features, in_features)."""
    return Linear.apply(as_tensor(x), as_tensor(weight), _optional(bias))


class Conv2d(Function):
    """Three routes to the same numbers (float32 and float64): ``conv_dft`` where the
    convolution theorem needs fewer multiply-adds (many channels, big kernels, stride 1),
    else ``conv_cpu`` (im2col / col2im on cache-sized chunks, the columns never stored);
    other dtypes take the readable reference of ``kernels.layers``."""

    @staticmethod
    def forward(ctx, x, weight, bias, stride, padding):
        ctx.x_shape, ctx.stride, ctx.padding = x.shape, stride, padding
        if not (x.dtype == weight.dtype and x.dtype in _FAST_DTYPES):
            ctx.route = "reference"
            out, cols = K.conv2d_forward(x, weight, bias, stride, padding)
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
        need = ctx.needs_input_grad[:3]
        if ctx.route == "dft":
            return (*conv_dft.conv2d_dft_backward(grad, ctx.spectra, *need), None, None)
        saved, weight = ctx.saved_tensors
        if ctx.route == "im2col":
            gx, gw, gb = conv_cpu.conv2d_backward(grad, saved, weight, ctx.stride, ctx.padding, *need)
        else:
            gx, gw, gb = K.conv2d_backward(grad, saved, weight, ctx.x_shape, ctx.stride, ctx.padding, *need)
        return gx, gw, gb, None, None


_FAST_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def _check_conv_shapes(x_shape, w_shape, stride, padding) -> None:
    """The reference's errors, raised before a fast kernel runs."""
    O, C, kh, kw = w_shape
    if len(x_shape) != 4 or x_shape[1] != C:
        raise ValueError(f"conv2d: expected input (N, {C}, H, W) for a weight of shape {w_shape}, got {x_shape}")
    H, W = x_shape[2] + 2 * padding[0], x_shape[3] + 2 * padding[1]
    if H < kh or W < kw:
        raise ValueError(f"the kernel {(kh, kw)} is larger than the (padded) input {H}x{W}")


def conv2d(x, weight, bias=None, stride=1, padding=0) -> Tensor:
    """2-D convolution of ``x`` (N, C, H, W) with ``weight`` (O, C, kh, kw), as in PyTorch."""
    return Conv2d.apply(as_tensor(x), as_tensor(weight), _optional(bias),
                        checks.stride(stride, "conv2d"), checks.padding(padding, "conv2d"))


# ---------------------------------------------------------------------------
# pooling
# ---------------------------------------------------------------------------


def _pool_geometry(x: np.ndarray, kernel_size, stride) -> tuple:
    kernel = checks.kernel_size(kernel_size, "pooling", pooling=True)
    stride = kernel if stride is None else checks.stride(stride, "pooling", pooling=True)
    if x.ndim != 4:
        raise ValueError(f"pooling expects an input of shape (N, C, H, W), got {x.shape}")
    return kernel, stride


def _pooling(name: str, forward, backward):
    """A pooling Function from its array kernels: ``forward(x, kernel, stride) -> (out,
    saved)`` and ``backward(grad, saved, x_shape, kernel, stride) -> dL/dx``."""
    def forward_(ctx, x, kernel, stride):
        out, saved = forward(x, kernel, stride)
        ctx.save_for_backward(saved)
        ctx.x_shape, ctx.kernel, ctx.stride = x.shape, kernel, stride
        return out

    def backward_(ctx, grad):
        (saved,) = ctx.saved_tensors
        return backward(grad, saved, ctx.x_shape, ctx.kernel, ctx.stride), None, None

    return type(name, (Function,), {"forward": staticmethod(forward_), "backward": staticmethod(backward_),
                                    "__module__": __name__})


# max: the winner of every window is kept (pool_cpu, the fast twin of the reference
# kernels.layers.max_pool2d_*), and the gradient goes to that element only
MaxPool2d = _pooling("MaxPool2d", pool_cpu.max_pool2d_forward, pool_cpu.max_pool2d_backward)
# average: each window spreads its gradient evenly over its pixels
AvgPool2d = _pooling("AvgPool2d", lambda x, kernel, stride: (K.avg_pool2d_forward(x, kernel, stride), None),
                     lambda grad, _, x_shape, kernel, stride: K.avg_pool2d_backward(grad, x_shape, kernel, stride))


def max_pool2d(x, kernel_size, stride=None) -> Tensor:
    """Max pooling (no padding, floor mode); ``stride`` defaults to ``kernel_size``."""
    x = as_tensor(x)
    kernel, stride = _pool_geometry(x.data, kernel_size, stride)
    return MaxPool2d.apply(x, kernel, stride)


def avg_pool2d(x, kernel_size, stride=None) -> Tensor:
    """Average pooling (no padding, floor mode); ``stride`` defaults to ``kernel_size``."""
    x = as_tensor(x)
    kernel, stride = _pool_geometry(x.data, kernel_size, stride)
    return AvgPool2d.apply(x, kernel, stride)


# ---------------------------------------------------------------------------
# batch normalisation and dropout
# ---------------------------------------------------------------------------


class BatchNorm(Function):
    """Per-channel normalisation; the running statistics are state, not inputs."""

    @staticmethod
    def forward(ctx, x, running_mean, running_var, weight, bias, training, momentum, eps):
        out, xhat, inv_std = K.batch_norm_forward(x, running_mean, running_var, weight, bias, training,
                                                  momentum, eps)
        ctx.save_for_backward(xhat, inv_std, weight)
        ctx.training = training
        return out

    @staticmethod
    def backward(ctx, grad):
        xhat, inv_std, weight = ctx.saved_tensors
        need_x, _, _, need_w, need_b = ctx.needs_input_grad[:5]
        gx, gw, gb = K.batch_norm_backward(grad, xhat, inv_std, weight, ctx.training, need_x, need_w, need_b)
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
    return BatchNorm.apply(x, rm, rv, _optional(weight), _optional(bias), bool(training), float(momentum),
                           float(eps))


def dropout(x, p: float = 0.5, training: bool = True) -> Tensor:
    """Zero each element with probability ``p`` and scale the rest by 1/(1-p).

    The mask comes from the shared generator (``mt.manual_seed``). In eval mode
    (``training=False``) or with ``p=0`` it is the identity.
    """
    checks.probability(p, "dropout")
    x = as_tensor(x)
    if not training or p == 0:
        return x
    if p == 1:
        return x * np.zeros(x.shape, dtype=x.dtype)
    keep = generator().random(x.shape) >= p
    return x * (keep / (1 - p)).astype(x.dtype)


def dropout2d(x, p: float = 0.5, training: bool = True) -> Tensor:
    """Zero whole channels: each (sample, channel) map of ``x`` (N, C, H, W) is dropped with
    probability ``p`` and the others scaled by 1/(1-p), as ``torch.nn.functional.dropout2d``
    (neighbouring pixels of a feature map are correlated, so dropping single pixels would
    regularise little). Identity when ``training=False``."""
    checks.probability(p, "dropout2d")
    x = as_tensor(x)
    if x.ndim not in (3, 4):
        raise ValueError(f"dropout2d expects (N, C, H, W) or (C, H, W) input, got shape {x.shape}")
    if not training or p == 0:
        return x
    keep = generator().random(x.shape[:-2] + (1, 1)) >= p
    return x * (keep / (1 - p) if p < 1 else keep).astype(x.dtype)


# ---------------------------------------------------------------------------
# losses
# ---------------------------------------------------------------------------


class LogSoftmax(Function):
    """log softmax(x)_i = x_i - log sum_j exp(x_j), computed after subtracting the max.

    Backward: d/dx_i = g_i - softmax_i * sum_j g_j.
    """

    @staticmethod
    def forward(ctx, x, dim):
        shifted = x - np.max(x, axis=dim, keepdims=True)
        out = shifted - np.log(np.sum(np.exp(shifted), axis=dim, keepdims=True))
        ctx.save_for_backward(out)
        ctx.dim = dim
        return out

    @staticmethod
    def backward(ctx, grad):
        (out,) = ctx.saved_tensors
        return grad - np.exp(out) * np.sum(grad, axis=ctx.dim, keepdims=True), None


def log_softmax(x, dim: int = -1) -> Tensor:
    return LogSoftmax.apply(as_tensor(x), dim)


def softmax(x, dim: int = -1) -> Tensor:
    return log_softmax(x, dim).exp()


def _require_batch_of_logits(logits, op: str) -> None:
    shape = np.shape(array_of(logits))
    if len(shape) != 2:
        hint = " (one sample? pass logits[None] and a target of shape (1,))" if len(shape) == 1 else ""
        raise ValueError(f"{op}: logits must have shape (N, classes), got {shape}{hint}")


def _check_targets(logits: Tensor, target: np.ndarray) -> np.ndarray:
    if logits.ndim != 2:
        raise ValueError(f"logits must have shape (N, classes), got {logits.shape}")
    if not np.issubdtype(target.dtype, np.integer):
        raise ValueError(f"target must hold integer class indices, got dtype {target.dtype}")
    if target.shape != (logits.shape[0],):
        raise ValueError(f"target has shape {target.shape} but logits have shape {logits.shape}; expected ({logits.shape[0]},)")
    if target.size and (target.min() < 0 or target.max() >= logits.shape[1]):
        raise ValueError(f"target values must lie in [0, {logits.shape[1] - 1}], got {target.min()}..{target.max()}")
    return target


def _reduce(losses: Tensor, reduction: str) -> Tensor:
    """PyTorch's ``reduction``: "mean" (the default), "sum", or "none" (one loss per element)."""
    if reduction == "mean":
        return losses.mean()
    if reduction == "sum":
        return losses.sum()
    if reduction == "none":
        return losses
    raise ValueError(f'reduction must be "mean", "sum" or "none", got {reduction!r}')


def nll_loss(log_probs, target, reduction: str = "mean") -> Tensor:
    """Negative log-likelihood of integer ``target`` under ``log_probs`` (N, classes):
    the mean over the batch, its sum (``reduction="sum"``) or one per sample (``"none"``)."""
    log_probs = as_tensor(log_probs)
    target = _check_targets(log_probs, np.asarray(array_of(target)))
    picked = log_probs[np.arange(len(target)), target]
    if reduction == "mean":
        return -picked.mean()
    return _reduce(-picked, reduction)


class CrossEntropy(Function):
    """``-mean_n log softmax(x_n)[t_n]`` in one node (what ``nll_loss(log_softmax(x))`` computes).

    Backward: ``(softmax(x) - onehot(t)) / N`` times the incoming gradient.
    """

    @staticmethod
    def forward(ctx, logits, target):
        shifted = logits - np.max(logits, axis=1, keepdims=True)
        log_probs = shifted - np.log(np.sum(np.exp(shifted), axis=1, keepdims=True))
        ctx.save_for_backward(log_probs, target)
        return np.asarray(-log_probs[np.arange(len(target)), target].mean(), dtype=logits.dtype)

    @staticmethod
    def backward(ctx, grad):
        log_probs, target = ctx.saved_tensors
        d = np.exp(log_probs)
        d[np.arange(len(target)), target] -= 1
        d *= (grad / len(target)).astype(d.dtype)
        return d, None


def cross_entropy(logits, target, reduction: str = "mean") -> Tensor:
    """Cross-entropy of ``logits`` (N, classes) against integer ``target`` (N,); ``reduction``
    as :func:`nll_loss`. The mean (what training uses) is one node, :class:`CrossEntropy`."""
    _require_batch_of_logits(logits, "cross_entropy")
    if reduction != "mean":
        return nll_loss(log_softmax(logits, dim=1), target, reduction)
    logits = as_tensor(logits)
    return CrossEntropy.apply(logits, _check_targets(logits, np.asarray(array_of(target))))


def mse_loss(input, target, reduction: str = "mean") -> Tensor:
    diff = as_tensor(input) - as_tensor(target)
    return _reduce(diff * diff, reduction)
