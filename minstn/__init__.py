"""minstn: Spatial Transformer Networks from scratch on NumPy and Numba.

The public face::

    import minstn as mt
    import minstn.functional as F

    x = mt.tensor([[1.0, 2.0]], requires_grad=True)
    y = (x * x).sum()
    y.backward()
    x.grad          # array([[2., 4.]], dtype=float32)
"""

from . import ops as _ops  # noqa: F401  (attach the operators and methods to Tensor)
from . import shape_ops as _shape_ops  # noqa: F401
from . import inplace as _inplace  # noqa: F401
from .autograd import (
    Context,
    Function,
    Tensor,
    as_tensor,
    enable_grad,
    from_numpy,
    is_grad_enabled,
    no_grad,
    tensor,
)
from .backend import BACKENDS, get_backend, set_backend, use_backend
from .gradcheck import GradcheckError, gradcheck
from .graph_view import graph
from .kernels.threads import get_num_threads, set_num_threads
from .ops import cos, exp, log, matmul, sin, sqrt
from .shape_ops import cat, stack
from .random import manual_seed

__version__ = "0.1.0"

__all__ = [
    "Tensor", "Function", "Context", "tensor", "as_tensor", "no_grad", "enable_grad", "is_grad_enabled",
    "gradcheck", "GradcheckError", "graph", "cat", "stack", "exp", "log", "sqrt", "sin", "cos", "matmul",
    "manual_seed", "set_num_threads", "get_num_threads", "set_backend", "get_backend", "use_backend", "BACKENDS",
    "zeros", "ones", "from_numpy",
    "float16", "half", "float32", "float", "float64", "double", "uint8", "int32", "int", "int64", "long", "bool",
]


def _filled(fill, shape, dtype, requires_grad) -> Tensor:
    import numpy as _np

    shape = shape[0] if len(shape) == 1 and isinstance(shape[0], (tuple, list)) else shape
    return Tensor(_np.full(shape, fill, dtype=dtype), requires_grad=requires_grad, _copy=False)


def zeros(*shape, dtype="float32", requires_grad=False) -> Tensor:
    """A Tensor of zeros: ``mt.zeros(2, 3)`` or ``mt.zeros((2, 3))``."""
    return _filled(0, shape, dtype, requires_grad)


def ones(*shape, dtype="float32", requires_grad=False) -> Tensor:
    """A Tensor of ones: ``mt.ones(2, 3)`` or ``mt.ones((2, 3))``."""
    return _filled(1, shape, dtype, requires_grad)


def __getattr__(name):
    """``mt.nn``, ``mt.optim``, ``mt.utils``, ... without importing them first, as after ``import torch``."""
    if name in ("nn", "optim", "utils", "functional", "interop", "data", "models"):
        import importlib

        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


# PyTorch's dtype names (last: `float`, `int` and `bool` shadow the builtins in this namespace)
from .dtypes import (bool, double, float, float16, float32, float64, half, int, int32, int64,  # noqa: E402,F401,A004
                     long, uint8)
