"""minstn: Spatial Transformer Networks from scratch on NumPy and Numba.

The public face::

    import minstn as mt
    import minstn.functional as F

    x = mt.tensor([[1.0, 2.0]], requires_grad=True)
    y = (x * x).sum()
    y.backward()
    x.grad          # array([[2., 4.]], dtype=float32)
"""

from . import ops as _ops  # noqa: F401  (attaches the operators to Tensor)
from .autograd import (
    Context,
    Function,
    Tensor,
    as_tensor,
    enable_grad,
    is_grad_enabled,
    no_grad,
    tensor,
)
from .gradcheck import GradcheckError, gradcheck
from .graph_view import graph
from .ops import cat, cos, exp, log, matmul, sin, sqrt, stack
from .random import manual_seed

__version__ = "0.1.0"

__all__ = [
    "Tensor",
    "Function",
    "Context",
    "tensor",
    "as_tensor",
    "no_grad",
    "enable_grad",
    "is_grad_enabled",
    "gradcheck",
    "GradcheckError",
    "graph",
    "cat",
    "stack",
    "exp",
    "log",
    "sqrt",
    "sin",
    "cos",
    "matmul",
    "manual_seed",
    "zeros",
    "ones",
]


def zeros(*shape, dtype="float32", requires_grad=False) -> Tensor:
    shape = shape[0] if len(shape) == 1 and isinstance(shape[0], (tuple, list)) else shape
    import numpy as _np

    return Tensor(_np.zeros(shape, dtype=dtype), requires_grad=requires_grad, _copy=False)


def ones(*shape, dtype="float32", requires_grad=False) -> Tensor:
    shape = shape[0] if len(shape) == 1 and isinstance(shape[0], (tuple, list)) else shape
    import numpy as _np

    return Tensor(_np.ones(shape, dtype=dtype), requires_grad=requires_grad, _copy=False)
