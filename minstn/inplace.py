"""In-place ops, PyTorch's names: ``x.zero_()``, ``fill_``, ``copy_``, ``add_``, ``sub_``, ``mul_``,
``div_``, ``clamp_``, ``uniform_``, ``normal_``, and the operators ``x += y``, ``-=``, ``*=``, ``/=``.

Each writes into the tensor's array and bumps its version counter (:mod:`minstn.versions`),
so that a backward needing the old values raises instead of using the new ones. The rules
are autograd's, as in PyTorch:

* under ``mt.no_grad()``, or on a tensor outside any graph, they write: this is how weights
  are initialised (``with mt.no_grad(): w.fill_(0)``) and updated (``p -= lr * p.grad``);
* a leaf that requires grad refuses them outside ``no_grad`` (PyTorch's error);
* minstn records no in-place op in a graph: a method refuses to write into a tensor that
  needs a gradient (or to mix one in), while ``x += y`` there means ``x = x + y``, a new
  tensor with the same values and gradient (only the name ``x`` is rebound).

``x.data.zero_()`` and the other methods of ``x.data`` write without these checks, as in
PyTorch; the version counter still moves.
"""

from __future__ import annotations

from .autograd import Tensor, is_grad_enabled
from .ops import add, div, mul, sub, tensor_method

__all__ = ["INPLACE_METHODS"]

INPLACE_METHODS = ("zero_", "fill_", "copy_", "add_", "sub_", "mul_", "div_", "clamp_", "uniform_", "normal_")


def _in_graph(x: Tensor, others) -> bool:
    """Would autograd have to record this write? (grad mode on, and a tensor that needs a gradient)"""
    return is_grad_enabled() and (x.requires_grad or any(isinstance(o, Tensor) and o.requires_grad for o in others))


def _refuse(x: Tensor, what: str):
    if x.requires_grad and x.is_leaf:
        raise RuntimeError(
            f"{what}: a leaf Tensor that requires grad is being used in an in-place operation. "
            "Wrap it in `with mt.no_grad():` (as for initialisation and updates), or write into x.data")
    raise RuntimeError(
        f"{what}: minstn does not record in-place operations in the autograd graph, and this one would "
        "change a tensor that is part of one (or mix one in). Write x = x + y (or x.add(y)) instead")


def _inplace_method(name: str):
    def method(self, *args, **kwargs):
        if _in_graph(self, args + tuple(kwargs.values())):
            _refuse(self, f"{name}()")
        getattr(self.data, name)(*args, **kwargs)  # TensorData does the write and bumps the version
        return self

    method.__name__ = method.__qualname__ = name
    method.__doc__ = f"PyTorch's in-place ``x.{name}(...)``: writes into ``x`` and bumps its version; returns ``x``."
    return tensor_method(name)(method)


for _name in INPLACE_METHODS:
    _inplace_method(_name)


def _inplace_operator(symbol: str, method: str, out_of_place):
    def operator(self, other):
        if _in_graph(self, (other,)):
            if self.requires_grad and self.is_leaf:
                _refuse(self, f"x {symbol}= y")
            return out_of_place(self, other)  # rebinds the name: same values, and the gradient is recorded
        getattr(self.data, method)(other)
        return self

    operator.__name__ = operator.__qualname__ = f"__i{out_of_place.__name__.replace('div', 'truediv')}__"
    setattr(Tensor, operator.__name__, operator)


_inplace_operator("+", "add_", add)
_inplace_operator("-", "sub_", sub)
_inplace_operator("*", "mul_", mul)
_inplace_operator("/", "div_", div)
