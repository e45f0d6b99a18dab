"""The elementary differentiable ops, each a forward next to its local derivative.

Every op is a :class:`~minstn.autograd.Function` on plain arrays, followed at once by
its functional form and its Tensor method: ``add = _binary(Add, "add", "add")`` gives
``mt.ops.add(a, b)``, ``a.add(b)`` and ``a + b``; the one-input ops are one line each,
forward next to derivative (``Exp, exp = _elementwise("Exp", np.exp, ...)``);
``@tensor_method("clamp")`` attaches a method written out by hand. Binary ops broadcast
like NumPy; their backward sums the gradient back to each input's shape (:func:`unbroadcast`).
"""

from __future__ import annotations

from collections import namedtuple

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


def tensor_method(*names):
    """Decorator: attach the function to :class:`Tensor` under each of ``names``."""
    def attach(fn):
        for name in names:
            setattr(Tensor, name, fn)
        return fn
    return attach


def _unary(function, name: str):
    """``name(x)`` applying a one-input Function, also the Tensor method ``x.name()``."""
    def op(x):
        return function.apply(as_tensor(x))
    op.__name__ = op.__qualname__ = name
    op.__doc__ = f"``{name}(x)``, also ``x.{name}()``: see :class:`{function.__name__}`."
    return tensor_method(name)(op)


def _binary(function, name: str, operator: str | None = None):
    """``name(a, b)`` applying a two-input Function, also the method ``a.name(b)`` and,
    with ``operator``, the Python operators ``a <op> b`` and ``b <op> a``. A Python
    number takes the dtype of the Tensor beside it (as in PyTorch: 2.0 * float32 stays
    float32)."""
    def op(a, b):
        if isinstance(a, Tensor):
            b = _operand(b, a)
        else:
            b = as_tensor(b)
            a = _operand(a, b)
        return function.apply(a, b)
    op.__name__ = op.__qualname__ = name
    op.__doc__ = f"``{name}(a, b)``, also ``a.{name}(b)``: see :class:`{function.__name__}`."
    tensor_method(name)(op)
    if operator is not None:
        setattr(Tensor, f"__{operator}__", op)
        setattr(Tensor, f"__r{operator}__", lambda self, other: op(other, self))
    return op


def _reduction(function, name: str):
    """The Tensor method ``x.name(dim=None, keepdim=False)`` of a reduction Function."""
    def method(self, dim=None, keepdim=False):
        return function.apply(self, dim, keepdim)
    method.__name__ = method.__qualname__ = name
    return tensor_method(name)(method)


# ---------------------------------------------------------------------------
# arithmetic
# ---------------------------------------------------------------------------


def _broadcasting(name: str, forward, vjp_a, vjp_b, doc: str, operator: str | None = None):
    """A two-input Function that broadcasts like NumPy, from ``forward(a, b) -> y`` and the
    vector-Jacobian products ``vjp_a(g, a, b, y)`` and ``vjp_b(g, a, b, y)`` (each summed
    back to its input's shape by :func:`unbroadcast`), and its functional form / method
    ``name.lower()`` (and, with ``operator``, ``a <op> b``; see :func:`_binary`)."""
    def forward_(ctx, a, b):
        _broadcast_shape(name.lower(), a, b)
        y = forward(a, b)
        ctx.save_for_backward(a, b, y)
        return y

    def backward_(ctx, grad):
        a, b, y = ctx.saved_tensors
        need_a, need_b = ctx.needs_input_grad
        ga = unbroadcast(vjp_a(grad, a, b, y), a.shape) if need_a else None
        gb = unbroadcast(vjp_b(grad, a, b, y), b.shape) if need_b else None
        return ga, gb

    function = type(name, (Function,), {"forward": staticmethod(forward_), "backward": staticmethod(backward_),
                                        "__doc__": doc, "__module__": __name__})
    return function, _binary(function, name.lower(), operator)


def _log_of_positive(a):
    """log a where a > 0, else 0: d(a^b)/db = a^b log a, taken as 0 where a <= 0."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(a > 0, np.log(np.where(a > 0, a, 1)), 0)


#                                      forward     dL/da from g = dL/dy          dL/db
Add, add = _broadcasting("Add", np.add, lambda g, a, b, y: g, lambda g, a, b, y: g, "a + b", "add")
Sub, sub = _broadcasting("Sub", np.subtract, lambda g, a, b, y: g, lambda g, a, b, y: -g, "a - b", "sub")
Mul, mul = _broadcasting("Mul", np.multiply, lambda g, a, b, y: g * b, lambda g, a, b, y: g * a, "a * b", "mul")
Div, div = _broadcasting("Div", np.divide, lambda g, a, b, y: g / b, lambda g, a, b, y: -g * a / (b * b),
                         "a / b", "truediv")
Pow, pow = _broadcasting("Pow", np.power, lambda g, a, b, y: g * b * a ** (b - 1),  # noqa: A001 - torch's name
                         lambda g, a, b, y: g * y * _log_of_positive(a), "a ** b for a tensor base", "pow")


class Neg(Function):
    @staticmethod
    def forward(ctx, a):
        return -a

    @staticmethod
    def backward(ctx, grad):
        return (-grad,)


@tensor_method("__neg__", "neg")
def neg(x):
    return Neg.apply(x)


def _elementwise(name: str, forward, vjp, doc: str):
    """A one-input Function from its ``forward(x) -> y`` and its vector-Jacobian product
    ``vjp(g, x, y) -> dL/dx`` (g = dL/dy; the local derivative, written in x or in y,
    times g), and its functional form / Tensor method ``name.lower()``."""
    def forward_(ctx, x):
        y = forward(x)
        ctx.save_for_backward(x, y)
        return y

    def backward_(ctx, grad):
        x, y = ctx.saved_tensors
        return (vjp(grad, x, y),)

    function = type(name, (Function,), {"forward": staticmethod(forward_), "backward": staticmethod(backward_),
                                        "__doc__": doc, "__module__": __name__})
    return function, _unary(function, name.lower())


def _stable_sigmoid(x):
    # written with exp(-|x|) so that neither branch overflows
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1 / (1 + e), e / (1 + e)).astype(x.dtype, copy=False)


#                               forward            dL/dx from g = dL/dy, input x, output y
Exp, exp = _elementwise("Exp", np.exp, lambda g, x, y: g * y, "e^x; (e^x)' = e^x")
Log, log = _elementwise("Log", np.log, lambda g, x, y: g / x, "log x; (log x)' = 1 / x")
Sqrt, sqrt = _elementwise("Sqrt", np.sqrt, lambda g, x, y: g / (2 * y), "sqrt x; (sqrt x)' = 1 / (2 sqrt x)")
Sin, sin = _elementwise("Sin", np.sin, lambda g, x, y: g * np.cos(x), "sin x; (sin x)' = cos x")
Cos, cos = _elementwise("Cos", np.cos, lambda g, x, y: -g * np.sin(x), "cos x; (cos x)' = -sin x")
Abs, abs = _elementwise("Abs", np.abs, lambda g, x, y: g * np.sign(x), "|x|; |x|' = sign x (0 at 0)")  # noqa: A001
Tanh, tanh = _elementwise("Tanh", np.tanh, lambda g, x, y: g * (1 - y * y), "tanh x; (tanh x)' = 1 - tanh^2 x")
Sigmoid, sigmoid = _elementwise("Sigmoid", _stable_sigmoid, lambda g, x, y: g * y * (1 - y),
                                "1 / (1 + e^-x); its derivative is y (1 - y)")


class ReLU(Function):
    """max(0, x); the derivative at exactly 0 is taken as 0 (as PyTorch does). Keeps the
    mask x > 0 only (one byte per element); float32 and float64 take the one-pass kernels
    of :mod:`minstn.kernels.activation_cpu`, which give the same numbers."""

    @staticmethod
    def forward(ctx, a):
        if a.dtype in _FAST_RELU:
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
relu = _unary(ReLU, "relu")


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


@tensor_method("clamp")
def clamp(x, min=None, max=None):  # noqa: A002 - PyTorch's argument names
    return Clamp.apply(x, min, max)


class Cast(Function):
    @staticmethod
    def forward(ctx, a, dtype):
        ctx.dtype = a.dtype
        return a.astype(dtype)

    @staticmethod
    def backward(ctx, grad):
        return grad.astype(ctx.dtype), None


@tensor_method("astype")
def astype(x, dtype) -> Tensor:
    """A copy of ``x`` in ``dtype``, differentiable (the gradient is cast back)."""
    return Cast.apply(x, np.dtype(dtype))


class Clone(Function):
    """A copy in new memory (``x.clone()``); the gradient passes through unchanged."""

    @staticmethod
    def forward(ctx, a):
        return a.copy()

    @staticmethod
    def backward(ctx, grad):
        return (grad,)


clone = _unary(Clone, "clone")


@tensor_method("float")
def _float(x) -> Tensor:
    return astype(x, np.float32)


@tensor_method("double")
def _double(x) -> Tensor:
    return astype(x, np.float64)


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


matmul = _binary(MatMul, "matmul", "matmul")


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


_reduction(Sum, "sum")


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


_reduction(Mean, "mean")


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


_reduction(Max, "amax").__doc__ = "Maximum over ``dim`` (all by default, or a tuple of dims): the values only."

MaxResult = namedtuple("MaxResult", ["values", "indices"])  # torch.return_types.max


@tensor_method("max")
def max_along(x, dim=None, keepdim=False):
    """``x.max()``: the largest value; ``x.max(dim)``: ``(values, indices)`` along ``dim``, as in
    PyTorch (``values`` carries the gradient, ties share it); a tuple of dims gives the values."""
    values = Max.apply(x, dim, keepdim)
    if not isinstance(dim, (int, np.integer)):
        return values
    return MaxResult(values, argmax(x, dim, keepdim))


@tensor_method("argmax")
def argmax(x, dim=None, keepdim=False) -> Tensor:
    """Index of the maximum (int64, no gradient), as ``torch.argmax``."""
    out = np.argmax(x.data, axis=dim)
    if keepdim and dim is not None:
        out = np.expand_dims(out, dim)
    return Tensor(out.astype(np.int64), _copy=False)


def _comparison(name: str, ufunc, operator: str | None = None):
    """``x.name(other)``: elementwise comparison, a bool Tensor outside the graph (no gradient)."""
    def compare(x, other) -> Tensor:
        return Tensor(ufunc(x.data, _operand(other, x).data), _copy=False)
    compare.__name__ = compare.__qualname__ = name
    tensor_method(name, *([f"__{operator}__"] if operator else []))(compare)
    return compare


# == and != stay Python's identity tests (tensors are kept in lists and dicts): write a.eq(b)
eq = _comparison("eq", np.equal)
ne = _comparison("ne", np.not_equal)
lt = _comparison("lt", np.less, "lt")
le = _comparison("le", np.less_equal, "le")
gt = _comparison("gt", np.greater, "gt")
ge = _comparison("ge", np.greater_equal, "ge")
