"""PyTorch-named functional ops: ``import minstn.functional as F``.

Everything here accepts Tensors or arrays (arrays become constants) and is built
from :class:`~minstn.autograd.Function` subclasses with explicit backward passes.
"""

from __future__ import annotations

import numpy as np

from .autograd import Function, Tensor, array_of, as_tensor
from .ops import relu, sigmoid, tanh
from .random import generator
from .sampling import affine_grid, grid_sample
from .transforms import attention_grid, projective_grid, tps_grid

__all__ = ["affine_grid", "grid_sample", "attention_grid", "projective_grid", "tps_grid", "relu", "sigmoid", "tanh", "log_softmax", "softmax", "cross_entropy", "nll_loss", "dropout", "mse_loss"]


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


def nll_loss(log_probs, target) -> Tensor:
    """Mean negative log-likelihood of integer ``target`` under ``log_probs`` (N, classes)."""
    log_probs = as_tensor(log_probs)
    target = _check_targets(log_probs, np.asarray(array_of(target)))
    picked = log_probs[np.arange(len(target)), target]
    return -picked.mean()


class CrossEntropy(Function):
    """``-mean_n log softmax(x_n)[t_n]`` in one node (what ``nll_loss(log_softmax(x))`` computes).

    Backward: ``(softmax(x) - onehot(t)) / N`` times the incoming gradient.
    """

    @staticmethod
    def forward(ctx, logits, target):
        shifted = logits - np.max(logits, axis=1, keepdims=True)
        log_probs = shifted - np.log(np.sum(np.exp(shifted), axis=1, keepdims=True))
        rows = np.arange(len(target))
        ctx.save_for_backward(log_probs, target)
        return np.asarray(-log_probs[rows, target].mean(), dtype=logits.dtype)

    @staticmethod
    def backward(ctx, grad):
        log_probs, target = ctx.saved_tensors
        d = np.exp(log_probs)
        d[np.arange(len(target)), target] -= 1
        d *= (grad / len(target)).astype(d.dtype)
        return d, None


def cross_entropy(logits, target) -> Tensor:
    """Mean cross-entropy of ``logits`` (N, classes) against integer ``target`` (N,)."""
    logits = as_tensor(logits)
    return CrossEntropy.apply(logits, _check_targets(logits, np.asarray(array_of(target))))


def mse_loss(input, target) -> Tensor:
    diff = as_tensor(input) - as_tensor(target)
    return (diff * diff).mean()


def dropout(x, p: float = 0.5, training: bool = True) -> Tensor:
    """Zero each element with probability ``p`` and scale the rest by 1/(1-p).

    The mask comes from the shared generator (``mt.manual_seed``). In eval mode
    (``training=False``) or with ``p=0`` it is the identity.
    """
    if not 0 <= p <= 1:
        raise ValueError(f"dropout probability must be in [0, 1], got {p}")
    x = as_tensor(x)
    if not training or p == 0:
        return x
    if p == 1:
        return x * np.zeros(x.shape, dtype=x.dtype)
    keep = generator().random(x.shape) >= p
    return x * (keep / (1 - p)).astype(x.dtype)

from .nn.functional_layers import avg_pool2d, batch_norm, conv2d, linear, max_pool2d  # noqa: E402,F401  (layers, minstn.nn)
