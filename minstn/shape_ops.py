"""Shape ops and indexing: reshape/view, flatten, permute/transpose, ``x[index]``, cat, stack.

Like :mod:`minstn.ops`, each :class:`~minstn.autograd.Function` is followed by the
Tensor methods (``@tensor_method``) and functional forms that apply it. None of them
changes a value, so each backward only moves the gradient back into the input's shape:
the inverse reshape or permutation, a scatter-add for indexing, a split for ``cat``.
"""

from __future__ import annotations

import numpy as np

from .autograd import Function, Tensor, as_tensor
from .ops import tensor_method

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


def _shape_args(shape):
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        return tuple(shape[0])
    return tuple(shape)


@tensor_method("reshape", "view")
def reshape(x, *shape) -> Tensor:
    return Reshape.apply(x, _shape_args(shape))


@tensor_method("view_as", "reshape_as")
def view_as(x, other) -> Tensor:
    """``x`` in ``other``'s shape."""
    return Reshape.apply(x, tuple(other.shape))


@tensor_method("flatten")
def flatten(x, start_dim=0, end_dim=-1) -> Tensor:
    if x.ndim == 0:
        return Reshape.apply(x, (1,))
    start, end = start_dim % x.ndim, end_dim % x.ndim
    shape = x.shape[:start] + (-1,) + x.shape[end + 1:]
    if 0 in x.shape:
        shape = x.shape[:start] + (int(np.prod(x.shape[start:end + 1])),) + x.shape[end + 1:]
    return Reshape.apply(x, shape)


@tensor_method("unsqueeze")
def unsqueeze(x, dim) -> Tensor:
    dim = dim % (x.ndim + 1)
    return Reshape.apply(x, x.shape[:dim] + (1,) + x.shape[dim:])


@tensor_method("squeeze")
def squeeze(x, dim=None) -> Tensor:
    if dim is None:
        return Reshape.apply(x, tuple(n for n in x.shape if n != 1))
    dim = dim % x.ndim
    if x.shape[dim] != 1:
        return x
    return Reshape.apply(x, x.shape[:dim] + x.shape[dim + 1:])


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


@tensor_method("permute")
def permute(x, *dims) -> Tensor:
    return Permute.apply(x, _shape_args(dims))


@tensor_method("transpose")
def transpose(x, dim0=-2, dim1=-1) -> Tensor:
    dims = list(range(x.ndim))
    dims[dim0], dims[dim1] = dims[dim1], dims[dim0]
    return Permute.apply(x, tuple(dims))


Tensor.T = property(lambda x: Permute.apply(x, tuple(reversed(range(x.ndim)))))


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


@tensor_method("__getitem__")
def _getitem(x, index) -> Tensor:
    if isinstance(index, Tensor):
        index = index.data
    elif isinstance(index, tuple):
        index = tuple(i.data if isinstance(i, Tensor) else i for i in index)
    return GetItem.apply(x, index)


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
