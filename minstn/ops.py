"""The elementary differentiable ops, each a forward next to its local derivative.

Every op is a :class:`~minstn.autograd.Function` on plain arrays. Binary ops
broadcast like NumPy; their backward sums the gradient back to each input's
shape (:func:`unbroadcast`). At the bottom the ops are attached to
:class:`~minstn.autograd.Tensor` as methods and Python operators.
"""

from __future__ import annotations

import numpy as np

from .autograd import Function, Tensor, as_tensor
from .kernels import activation_cpu

# ---------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------


def unbroadcast(grad: np.ndarray, shape: tuple) -> np.ndarray:
    """Sum ``grad`` down to ``shape``: the adjoint of NumPy broadcasting.

    Broadcasting copies a value along new leading axes and along axes of size 1,
    so the gradient of every copy flows back to the one original: a sum.
    """
    if grad.shape == tuple(shape):
        return grad
    extra = grad.ndim - len(shape)
    if extra:
        grad = grad.sum(axis=tuple(range(extra)))
    axes = tuple(i for i, n in enumerate(shape) if n == 1 and grad.shape[i] != 1)
    if axes:
        grad = grad.sum(axis=axes, keepdims=True)
    return grad.reshape(shape)


def _broadcast_shape(op: str, a: np.ndarray, b: np.ndarray) -> tuple:
    try:
        return np.broadcast_shapes(a.shape, b.shape)
    except ValueError:
        raise ValueError(f"{op}: shapes {a.shape} and {b.shape} cannot be broadcast together") from None


def _operand(x, like: Tensor):
    """Python numbers take the Tensor's dtype (as in PyTorch: 2.0 * float32 stays float32)."""
    if isinstance(x, Tensor):
        return x
    if isinstance(x, (int, float, bool, np.number)) and not isinstance(x, np.ndarray):
        dtype = like.dtype if np.issubdtype(like.dtype, np.floating) or isinstance(x, (int, bool)) else None
        return Tensor(np.asarray(x, dtype=dtype), _copy=False)
    return as_tensor(x)


def _normalise_dims(dim, ndim: int):
    """``dim`` as a tuple of non-negative axes (None means every axis)."""
    if dim is None:
        return tuple(range(ndim))
    dims = (dim,) if isinstance(dim, (int, np.integer)) else tuple(dim)
    out = []
    for d in dims:
        if not -ndim <= d < max(ndim, 1):
            raise ValueError(f"dim {d} is out of range for a tensor with {ndim} dimensions")
        out.append(int(d) % max(ndim, 1))
    return tuple(out)


# ---------------------------------------------------------------------------
# arithmetic
# ---------------------------------------------------------------------------


class Add(Function):
    @staticmethod
    def forward(ctx, a, b):
        _broadcast_shape("add", a, b)
        ctx.shapes = a.shape, b.shape
        return a + b

    @staticmethod
    def backward(ctx, grad):
        sa, sb = ctx.shapes
        return unbroadcast(grad, sa), unbroadcast(grad, sb)


class Sub(Function):
    @staticmethod
    def forward(ctx, a, b):
        _broadcast_shape("sub", a, b)
        ctx.shapes = a.shape, b.shape
        return a - b

    @staticmethod
    def backward(ctx, grad):
        sa, sb = ctx.shapes
        return unbroadcast(grad, sa), unbroadcast(-grad, sb)


class Mul(Function):
    @staticmethod
    def forward(ctx, a, b):
        _broadcast_shape("mul", a, b)
        ctx.save_for_backward(a, b)
        return a * b

    @staticmethod
    def backward(ctx, grad):
        a, b = ctx.saved_tensors
        ga = unbroadcast(grad * b, a.shape) if ctx.needs_input_grad[0] else None
        gb = unbroadcast(grad * a, b.shape) if ctx.needs_input_grad[1] else None
        return ga, gb


class Div(Function):
    @staticmethod
    def forward(ctx, a, b):
        _broadcast_shape("div", a, b)
        ctx.save_for_backward(a, b)
        return a / b

    @staticmethod
    def backward(ctx, grad):
        a, b = ctx.saved_tensors
        ga = unbroadcast(grad / b, a.shape) if ctx.needs_input_grad[0] else None
        gb = unbroadcast(-grad * a / (b * b), b.shape) if ctx.needs_input_grad[1] else None
        return ga, gb


class Neg(Function):
    @staticmethod
    def forward(ctx, a):
        return -a

    @staticmethod
    def backward(ctx, grad):
        return (-grad,)


class Pow(Function):
    """``a ** b`` for a tensor base; d/da = b a^(b-1), d/db = a^b log a."""

    @staticmethod
    def forward(ctx, a, b):
        _broadcast_shape("pow", a, b)
        out = a**b
        ctx.save_for_backward(a, b, out)
        return out

    @staticmethod
    def backward(ctx, grad):
        a, b, out = ctx.saved_tensors
        ga = gb = None
        if ctx.needs_input_grad[0]:
            ga = unbroadcast(grad * b * a ** (b - 1), a.shape)
        if ctx.needs_input_grad[1]:
            with np.errstate(divide="ignore", invalid="ignore"):
                log_a = np.where(a > 0, np.log(np.where(a > 0, a, 1)), 0)
            gb = unbroadcast(grad * out * log_a, b.shape)
        return ga, gb


class Exp(Function):
    @staticmethod
    def forward(ctx, a):
        out = np.exp(a)
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx, grad):
        (out,) = ctx.saved_tensors
        return (grad * out,)


class Log(Function):
    @staticmethod
    def forward(ctx, a):
        ctx.save_for_backward(a)
        return np.log(a)

    @staticmethod
    def backward(ctx, grad):
        (a,) = ctx.saved_tensors
        return (grad / a,)


class Sqrt(Function):
    @staticmethod
    def forward(ctx, a):
        out = np.sqrt(a)
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx, grad):
        (out,) = ctx.saved_tensors
        return (grad / (2 * out),)


class Sin(Function):
    @staticmethod
    def forward(ctx, a):
        ctx.save_for_backward(a)
        return np.sin(a)

    @staticmethod
    def backward(ctx, grad):
        (a,) = ctx.saved_tensors
        return (grad * np.cos(a),)


class Cos(Function):
    @staticmethod
    def forward(ctx, a):
        ctx.save_for_backward(a)
        return np.cos(a)

    @staticmethod
    def backward(ctx, grad):
        (a,) = ctx.saved_tensors
        return (-grad * np.sin(a),)


class Abs(Function):
    @staticmethod
    def forward(ctx, a):
        ctx.save_for_backward(a)
        return np.abs(a)

    @staticmethod
    def backward(ctx, grad):
        (a,) = ctx.saved_tensors
        return (grad * np.sign(a),)


class ReLU(Function):
    """max(0, x); the derivative at exactly 0 is taken as 0 (as PyTorch does)."""

    @staticmethod
    def forward(ctx, a):
        if a.dtype in _FAST_RELU:  # one pass for the output and the mask
            out, mask = activation_cpu.relu_forward(a)
        else:
            mask = a > 0
            out = a * mask
        ctx.save_for_backward(mask)
        return out

    @staticmethod
    def backward(ctx, grad):
        (mask,) = ctx.saved_tensors
        if grad.dtype in _FAST_RELU:
            return (activation_cpu.relu_backward(grad, mask),)
        return (grad * mask,)


_FAST_RELU = (np.dtype(np.float32), np.dtype(np.float64))


class Tanh(Function):
    @staticmethod
    def forward(ctx, a):
        out = np.tanh(a)
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx, grad):
        (out,) = ctx.saved_tensors
        return (grad * (1 - out * out),)


class Sigmoid(Function):
    @staticmethod
    def forward(ctx, a):
        # Written with exp(-|a|) so that neither branch overflows.
        e = np.exp(-np.abs(a))
        out = np.where(a >= 0, 1 / (1 + e), e / (1 + e)).astype(a.dtype, copy=False)
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx, grad):
        (out,) = ctx.saved_tensors
        return (grad * out * (1 - out),)


class Clamp(Function):
    """Clip to [low, high]; the gradient passes only where no clipping happened."""

    @staticmethod
    def forward(ctx, a, low, high):
        out = np.clip(a, low, high)
        ctx.save_for_backward(out == a)
        return out

    @staticmethod
    def backward(ctx, grad):
        (passed,) = ctx.saved_tensors
        return grad * passed, None, None


class Cast(Function):
    @staticmethod
    def forward(ctx, a, dtype):
        ctx.dtype = a.dtype
        return a.astype(dtype)

    @staticmethod
    def backward(ctx, grad):
        return grad.astype(ctx.dtype), None


# ---------------------------------------------------------------------------
# matrix product
# ---------------------------------------------------------------------------


class MatMul(Function):
    """``a @ b`` with NumPy's rules: 1-D operands and batched (broadcast) stacks."""

    @staticmethod
    def forward(ctx, a, b):
        if a.ndim == 0 or b.ndim == 0:
            raise ValueError(f"matmul: both operands need at least 1 dimension, got shapes {a.shape} and {b.shape}")
        if a.shape[-1] != b.shape[-2 if b.ndim > 1 else 0]:
            raise ValueError(f"matmul: shapes {a.shape} and {b.shape} do not match (inner dimensions differ)")
        ctx.save_for_backward(a, b)
        return a @ b

    @staticmethod
    def backward(ctx, grad):
        a, b = ctx.saved_tensors
        # Promote 1-D operands to matrices so that one formula covers every case.
        a2 = a[None, :] if a.ndim == 1 else a
        b2 = b[:, None] if b.ndim == 1 else b
        g = grad
        if b.ndim == 1:  # the output lost b's column axis: put it back
            g = np.expand_dims(g, -1)
        if a.ndim == 1:  # ... and a's row axis
            g = np.expand_dims(g, -2)
        ga = gb = None
        if ctx.needs_input_grad[0]:
            ga = unbroadcast(g @ np.swapaxes(b2, -1, -2), a2.shape).reshape(a.shape)
        if ctx.needs_input_grad[1]:
            gb = unbroadcast(np.swapaxes(a2, -1, -2) @ g, b2.shape).reshape(b.shape)
        return ga, gb


# ---------------------------------------------------------------------------
# reductions
# ---------------------------------------------------------------------------


class Sum(Function):
    @staticmethod
    def forward(ctx, a, dim, keepdim):
        axes = _normalise_dims(dim, a.ndim)
        ctx.shape, ctx.axes, ctx.keepdim = a.shape, axes, keepdim
        return np.sum(a, axis=axes, keepdims=keepdim)

    @staticmethod
    def backward(ctx, grad):
        if not ctx.keepdim:
            grad = np.expand_dims(grad, ctx.axes)
        return np.broadcast_to(grad, ctx.shape).copy(), None, None


class Mean(Function):
    @staticmethod
    def forward(ctx, a, dim, keepdim):
        axes = _normalise_dims(dim, a.ndim)
        ctx.shape, ctx.axes, ctx.keepdim = a.shape, axes, keepdim
        ctx.count = int(np.prod([a.shape[i] for i in axes])) if axes else 1
        return np.mean(a, axis=axes, keepdims=keepdim)

    @staticmethod
    def backward(ctx, grad):
        if not ctx.keepdim:
            grad = np.expand_dims(grad, ctx.axes)
        return np.broadcast_to(grad / ctx.count, ctx.shape).copy(), None, None


class Max(Function):
    """Maximum over ``dim``; ties share the gradient equally (so it sums to 1)."""

    @staticmethod
    def forward(ctx, a, dim, keepdim):
        if a.size == 0:
            raise ValueError("max of an empty tensor")
        axes = _normalise_dims(dim, a.ndim)
        out = np.max(a, axis=axes, keepdims=True)
        winners = a == out
        ctx.save_for_backward(winners / winners.sum(axis=axes, keepdims=True))
        ctx.axes, ctx.keepdim = axes, keepdim
        return out if keepdim else np.squeeze(out, axis=axes)

    @staticmethod
    def backward(ctx, grad):
        (share,) = ctx.saved_tensors
        if not ctx.keepdim:
            grad = np.expand_dims(grad, ctx.axes)
        return grad * share, None, None


# ---------------------------------------------------------------------------
# shape ops
# ---------------------------------------------------------------------------


class Reshape(Function):
    @staticmethod
    def forward(ctx, a, shape):
        ctx.shape = a.shape
        try:
            return a.reshape(shape)
        except ValueError:
            raise ValueError(f"reshape: cannot reshape a tensor of shape {a.shape} into {tuple(shape)}") from None

    @staticmethod
    def backward(ctx, grad):
        return grad.reshape(ctx.shape), None


class Permute(Function):
    @staticmethod
    def forward(ctx, a, dims):
        if sorted(d % max(a.ndim, 1) for d in dims) != list(range(a.ndim)):
            raise ValueError(f"permute: {tuple(dims)} is not a permutation of the {a.ndim} dimensions")
        ctx.inverse = np.argsort([d % a.ndim for d in dims])
        return np.transpose(a, dims)

    @staticmethod
    def backward(ctx, grad):
        return np.transpose(grad, ctx.inverse), None


class GetItem(Function):
    """Indexing with slices, integers, integer arrays or masks; backward scatters."""

    @staticmethod
    def forward(ctx, a, index):
        ctx.shape, ctx.index, ctx.dtype = a.shape, index, a.dtype
        return np.array(a[index])

    @staticmethod
    def backward(ctx, grad):
        full = np.zeros(ctx.shape, dtype=ctx.dtype)
        np.add.at(full, ctx.index, grad)  # add.at: repeated indices accumulate
        return full, None


class Cat(Function):
    @staticmethod
    def forward(ctx, dim, *arrays):
        try:
            out = np.concatenate(arrays, axis=dim)
        except ValueError:
            shapes = ", ".join(str(a.shape) for a in arrays)
            raise ValueError(f"cat along dim {dim}: shapes {shapes} do not match") from None
        ctx.dim = dim
        ctx.splits = np.cumsum([a.shape[dim] for a in arrays])[:-1]
        return out

    @staticmethod
    def backward(ctx, grad):
        return (None, *np.split(grad, ctx.splits, axis=ctx.dim))


class Stack(Function):
    @staticmethod
    def forward(ctx, dim, *arrays):
        if len({a.shape for a in arrays}) > 1:
            shapes = ", ".join(str(a.shape) for a in arrays)
            raise ValueError(f"stack: all tensors need the same shape, got {shapes}")
        ctx.dim = dim
        return np.stack(arrays, axis=dim)

    @staticmethod
    def backward(ctx, grad):
        n = grad.shape[ctx.dim]
        return (None, *(np.take(grad, i, axis=ctx.dim) for i in range(n)))


# ---------------------------------------------------------------------------
# functional forms
# ---------------------------------------------------------------------------


def _binary(fn, a, b):
    if not isinstance(a, Tensor):
        b = as_tensor(b)
        a = _operand(a, b)
    else:
        b = _operand(b, a)
    return fn.apply(a, b)


def add(a, b):
    return _binary(Add, a, b)


def sub(a, b):
    return _binary(Sub, a, b)


def mul(a, b):
    return _binary(Mul, a, b)


def div(a, b):
    return _binary(Div, a, b)


def pow(a, b):  # noqa: A001 - PyTorch's name
    return _binary(Pow, a, b)


def matmul(a, b):
    return MatMul.apply(as_tensor(a), as_tensor(b))


def exp(x):
    return Exp.apply(as_tensor(x))


def log(x):
    return Log.apply(as_tensor(x))


def sqrt(x):
    return Sqrt.apply(as_tensor(x))


def sin(x):
    return Sin.apply(as_tensor(x))


def cos(x):
    return Cos.apply(as_tensor(x))


def tanh(x):
    return Tanh.apply(as_tensor(x))


def sigmoid(x):
    return Sigmoid.apply(as_tensor(x))


def relu(x):
    return ReLU.apply(as_tensor(x))


def cat(tensors, dim: int = 0) -> Tensor:
    """Concatenate along an existing dimension (``torch.cat``)."""
    tensors = [as_tensor(t) for t in tensors]
    if not tensors:
        raise ValueError("cat needs at least one tensor")
    return Cat.apply(dim, *tensors)


def stack(tensors, dim: int = 0) -> Tensor:
    """Stack along a new dimension (``torch.stack``)."""
    tensors = [as_tensor(t) for t in tensors]
    if not tensors:
        raise ValueError("stack needs at least one tensor")
    return Stack.apply(dim, *tensors)


# ---------------------------------------------------------------------------
# Tensor methods and operators
# ---------------------------------------------------------------------------


def _shape_args(shape):
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        return tuple(shape[0])
    return tuple(shape)


def _transpose(self, dim0=-2, dim1=-1):
    dims = list(range(self.ndim))
    dims[dim0], dims[dim1] = dims[dim1], dims[dim0]
    return Permute.apply(self, tuple(dims))


def _flatten(self, start_dim=0, end_dim=-1):
    if self.ndim == 0:
        return Reshape.apply(self, (1,))
    start, end = start_dim % self.ndim, end_dim % self.ndim
    shape = self.shape[:start] + (-1,) + self.shape[end + 1 :]
    if 0 in self.shape:
        shape = self.shape[:start] + (int(np.prod(self.shape[start : end + 1])),) + self.shape[end + 1 :]
    return Reshape.apply(self, shape)


def _unsqueeze(self, dim):
    dim = dim % (self.ndim + 1)
    return Reshape.apply(self, self.shape[:dim] + (1,) + self.shape[dim:])


def _squeeze(self, dim=None):
    if dim is None:
        return Reshape.apply(self, tuple(n for n in self.shape if n != 1))
    dim = dim % self.ndim
    if self.shape[dim] != 1:
        return self
    return Reshape.apply(self, self.shape[:dim] + self.shape[dim + 1 :])


def _getitem(self, index):
    if isinstance(index, Tensor):
        index = index.data
    elif isinstance(index, tuple):
        index = tuple(i.data if isinstance(i, Tensor) else i for i in index)
    return GetItem.apply(self, index)


def _argmax(self, dim=None, keepdim=False):
    out = np.argmax(self.data, axis=dim)
    if keepdim and dim is not None:
        out = np.expand_dims(out, dim)
    return Tensor(out.astype(np.int64), _copy=False)


_METHODS = {
    "__add__": lambda s, o: add(s, o),
    "__radd__": lambda s, o: add(o, s),
    "__sub__": lambda s, o: sub(s, o),
    "__rsub__": lambda s, o: sub(o, s),
    "__mul__": lambda s, o: mul(s, o),
    "__rmul__": lambda s, o: mul(o, s),
    "__truediv__": lambda s, o: div(s, o),
    "__rtruediv__": lambda s, o: div(o, s),
    "__pow__": lambda s, o: pow(s, o),
    "__rpow__": lambda s, o: pow(o, s),
    "__matmul__": lambda s, o: matmul(s, o),
    "__rmatmul__": lambda s, o: matmul(o, s),
    "__neg__": lambda s: Neg.apply(s),
    "__getitem__": _getitem,
    "exp": lambda s: Exp.apply(s),
    "log": lambda s: Log.apply(s),
    "sqrt": lambda s: Sqrt.apply(s),
    "sin": lambda s: Sin.apply(s),
    "cos": lambda s: Cos.apply(s),
    "abs": lambda s: Abs.apply(s),
    "relu": lambda s: ReLU.apply(s),
    "tanh": lambda s: Tanh.apply(s),
    "sigmoid": lambda s: Sigmoid.apply(s),
    "clamp": lambda s, min=None, max=None: Clamp.apply(s, min, max),
    "sum": lambda s, dim=None, keepdim=False: Sum.apply(s, dim, keepdim),
    "mean": lambda s, dim=None, keepdim=False: Mean.apply(s, dim, keepdim),
    "max": lambda s, dim=None, keepdim=False: Max.apply(s, dim, keepdim),
    "reshape": lambda s, *shape: Reshape.apply(s, _shape_args(shape)),
    "view": lambda s, *shape: Reshape.apply(s, _shape_args(shape)),
    "permute": lambda s, *dims: Permute.apply(s, _shape_args(dims)),
    "transpose": _transpose,
    "flatten": _flatten,
    "unsqueeze": _unsqueeze,
    "squeeze": _squeeze,
    "matmul": lambda s, o: matmul(s, o),
    "argmax": _argmax,
}

for _name, _fn in _METHODS.items():
    _fn.__name__ = _name
    setattr(Tensor, _name, _fn)

Tensor.T = property(lambda s: Permute.apply(s, tuple(reversed(range(s.ndim)))))
Tensor.max.__doc__ = "Maximum over ``dim`` (all by default); returns the values only (like ``torch.amax``)."
