"""Version counters: how backward notices values that were changed in place after use.

A gradient is computed from the values the forward pass saw. If a tensor is changed in
place between forward and backward (``w.data[...] = 0``, ``w.data -= step``,
``x.mul_(2)``, an optimiser step), backward would silently use the new values and
return a wrong gradient. So every tensor's array carries a :class:`VersionCounter`
that goes up by one at every in-place write; a recorded op notes the version of each of
its inputs and of its output (:func:`versions_seen`), and just before its backward runs
compares them with the current ones (:func:`check_unchanged`): if one has changed and the
op kept those values for its backward, it raises an error that names the op and the
input. PyTorch keeps the same kind of counter, and checks its saved tensors the same way.

How the writes are counted: ``tensor.data`` is a :class:`TensorData`, the tensor's
array seen through an ndarray subclass that bumps the counter on item assignment
(``x.data[...] = v``), on in-place operators and ufuncs with ``out=`` (``x.data -= v``),
on ``fill``/``sort``/``put``/``np.copyto``, and in PyTorch's in-place methods
(``zero_``, ``fill_``, ``copy_``, ``add_``, ...). Its views (``x.data[0]``,
``x.data.T``, ``np.reshape(x.data, ...)``) share the counter; anything computed from it is
a plain ndarray.

Not counted: writes through a plain ndarray that shares the memory (the array given to
``mt.from_numpy``, ``np.asarray(x.data)``) and writes by compiled (Numba) code.
"""

from __future__ import annotations

import numpy as np

from .random import generator

__all__ = ["VersionCounter", "TensorData", "versions_seen", "check_unchanged", "share_counter_of_viewed_input"]


class VersionCounter:
    """How many in-place writes an array has had; shared by every view of it."""

    __slots__ = ("value",)

    def __init__(self):
        self.value = 0

    def bump(self) -> None:
        self.value += 1


def _plain(x):
    """The plain ndarray behind a TensorData or a minstn Tensor; anything else unchanged."""
    if isinstance(x, TensorData):
        return x.view(np.ndarray)
    array = getattr(x, "_array", None)  # a Tensor keeps its plain array in ``_array``
    return x if array is None else array


def _number(value):
    """``fill_(t)`` with a one-element Tensor or array means its value."""
    value = _plain(value)
    return value.item() if isinstance(value, np.ndarray) else value


# NumPy functions that write into their first argument
_WRITES_FIRST_ARGUMENT = {np.copyto, np.put, np.place, np.putmask, np.fill_diagonal}


def _one_level(values) -> list:
    """The arguments of a NumPy function, with lists and tuples of arrays opened one level."""
    out = []
    for v in values:
        out.extend(v) if isinstance(v, (list, tuple)) else out.append(v)
    return out


def _unwrapped(values) -> list:
    """The same arguments with every TensorData (also inside a list or tuple) as a plain view."""
    def plain(v):
        return v.view(np.ndarray) if isinstance(v, TensorData) else v
    return [type(v)(map(plain, v)) if isinstance(v, (list, tuple)) else plain(v) for v in values]


def _watched_if_view(result, watched):
    """A NumPy function's result: a plain array, unless it is a view of a watched array
    (``np.reshape(x.data, ...)``), which then shares that array's counter."""
    if isinstance(result, np.ndarray) and result.base is not None:
        for a in watched:
            if np.may_share_memory(result, a):
                return TensorData(result, a._version)
    return result


class TensorData(np.ndarray):
    """A tensor's values as an ndarray that counts the in-place writes made through it.

    Reading and computing work as on any ndarray (results are plain ndarrays); every
    write bumps ``_version``, the counter that backward checks. The methods with a
    trailing underscore are PyTorch's in-place methods; they return the array itself.
    """

    def __new__(cls, array: np.ndarray, counter: VersionCounter):
        view = array.view(cls)
        view._version = counter
        return view

    def __array_finalize__(self, obj):
        # a view of a TensorData shares its counter; a copy gets its own
        parent = getattr(obj, "_version", None)
        self._version = parent if parent is not None and np.may_share_memory(self, obj) else VersionCounter()

    # --- computing: plain ndarrays in, plain ndarrays out; count the writes to ``out`` ---
    def __array_ufunc__(self, ufunc, method, *inputs, out=None, **kwargs):
        plain = tuple(_plain(x) for x in inputs)
        if out is not None:
            kwargs["out"] = tuple(_plain(o) for o in out)
        result = getattr(ufunc, method)(*plain, **kwargs)
        written = list(out or ()) + ([inputs[0]] if method == "at" else [])  # np.add.at(x, i, v) writes x
        for target in written:
            if isinstance(target, TensorData):
                target._version.bump()
        if out is None:
            return result
        if len(out) == 1:
            return out[0] if out[0] is not None else result
        return tuple(o if o is not None else r for o, r in zip(out, result))

    def __array_function__(self, func, types, args, kwargs):
        watched = [a for a in _one_level(args) + _one_level(kwargs.values()) if isinstance(a, TensorData)]
        result = func(*_unwrapped(args), **dict(zip(kwargs, _unwrapped(kwargs.values()))))
        if func in _WRITES_FIRST_ARGUMENT:
            target = args[0] if args else next(iter(kwargs.values()), None)
            if isinstance(target, TensorData):
                target._version.bump()
        if isinstance(result, (list, tuple)):  # np.split and friends: each piece may be a view
            return type(result)(_watched_if_view(r, watched) for r in result)
        return _watched_if_view(result, watched)

    # --- the ndarray methods that write in place ---
    def __setitem__(self, index, value):
        index = tuple(map(_plain, index)) if isinstance(index, tuple) else _plain(index)  # Tensor indices too
        super().__setitem__(index, _plain(value))
        self._version.bump()

    def fill(self, value):
        super().fill(_number(value))
        self._version.bump()

    def sort(self, *args, **kwargs):
        super().sort(*args, **kwargs)
        self._version.bump()

    def put(self, *args, **kwargs):
        super().put(*args, **kwargs)
        self._version.bump()

    # --- copies are plain arrays, and so is what pickle and repr see ---
    def copy(self, order="C"):
        return self.view(np.ndarray).copy(order)

    def astype(self, dtype, *args, **kwargs):
        return self.view(np.ndarray).astype(dtype, *args, **kwargs)

    def __reduce__(self):
        return self.view(np.ndarray).__reduce__()

    def __repr__(self):
        return repr(self.view(np.ndarray))

    def __str__(self):
        return str(self.view(np.ndarray))

    # --- PyTorch's in-place methods (``w.data.zero_()``, ``b.data.copy_(t)``) ---
    def zero_(self):
        return self.fill_(0)

    def fill_(self, value):
        self.fill(value)
        return self

    def copy_(self, src):
        """Copy ``src`` in (broadcast to this shape, cast to this dtype)."""
        self[...] = _plain(src)
        return self

    def add_(self, other, alpha=1):
        other = _plain(other)
        np.add(self, other if alpha == 1 else alpha * other, out=self)  # NumPy's casting rules, as x += y
        return self

    def sub_(self, other, alpha=1):
        other = _plain(other)
        np.subtract(self, other if alpha == 1 else alpha * other, out=self)
        return self

    def mul_(self, other):
        np.multiply(self, _plain(other), out=self)
        return self

    def div_(self, other):
        np.divide(self, _plain(other), out=self)
        return self

    def clamp_(self, min=None, max=None):  # noqa: A002 - PyTorch's argument names
        np.clip(self, _number(min), _number(max), out=self)
        return self

    def uniform_(self, a=0.0, b=1.0):
        """Draws from U(a, b), from the shared generator (``mt.manual_seed``)."""
        self[...] = generator().uniform(a, b, size=self.shape)
        return self

    def normal_(self, mean=0.0, std=1.0):
        """Draws from N(mean, std^2), from the shared generator (``mt.manual_seed``)."""
        self[...] = generator().normal(mean, std, size=self.shape)
        return self


# ---------------------------------------------------------------------------
# what the graph records, and the check before each backward
# ---------------------------------------------------------------------------


def share_counter_of_viewed_input(out, inputs) -> None:
    """An op whose output is a view of an input (reshape, permute) must count the writes
    to either: give the output the input's counter. (Called when the output has a base.)"""
    value = out._array
    for t in inputs:
        if t is not None and np.may_share_memory(value, t._array):
            out._version = t._version
            return


def _kept(ctx) -> list:
    """What an op kept for its backward: the arrays given to ``save_for_backward`` and any
    array stored on ``ctx`` itself."""
    kept = [a for a in ctx.saved_tensors if isinstance(a, np.ndarray)]
    return kept + [v for k, v in vars(ctx).items() if k != "saved_tensors" and isinstance(v, np.ndarray)]


def versions_seen(ctx, inputs, out) -> list:
    """``(position, counter, version, array)`` of each Tensor input, and of the output
    (position -1) if the op kept it, when the op runs. Cheap (plain loops: this runs for
    every recorded op): whether an input's values were kept is only asked if its version
    has changed (:func:`check_unchanged`)."""
    seen = []
    for i, t in enumerate(inputs):
        if t is not None:
            counter = t._version
            seen.append((i, counter, counter.value, t._array))
    array = out._array
    for kept in ctx.saved_tensors:
        if kept is array:  # (an output that was not kept is not held here)
            seen.append((-1, out._version, out._version.value, array))
            break
    return seen


def check_unchanged(node) -> None:
    """Raise if an array that ``node`` kept for its backward was written in place since the forward."""
    for position, counter, version, array in node.versions:
        if counter.value == version or not any(k is array or np.may_share_memory(k, array)
                                                 for k in _kept(node.ctx)):
            continue  # unchanged, or not among the values its backward reads (as PyTorch checks)
        t = node.inputs[position] if position >= 0 else node.output
        what = f"input {position}" if position >= 0 else "the output"
        if t is not None:
            what += f" (a {t.dtype} tensor of shape {t.shape}{f', named {t.name!r}' if t.name else ''})"
        raise RuntimeError(
            f"{node.name} cannot compute its gradient: {what} was modified in place after the forward "
            f"pass used it (version {counter.value}, expected {version}). An in-place method (zero_, "
            f"fill_, copy_, add_, ...), a write into .data (x.data[...] = v, x.data -= v) or an "
            f"optimiser step changed it between forward and backward. Make the change after backward(), "
            f"or change a copy (x.clone(), x.data.copy()).")
