"""A tiny reverse-mode automatic differentiation engine.

Three ideas, all of them in this file:

1. A :class:`Tensor` wraps a NumPy array and remembers the :class:`Function` that
   produced it (``grad_fn``).
2. A :class:`Function` is a pair of plain array computations: ``forward`` computes
   the value, ``backward`` turns the gradient of the output into one gradient per
   input (the chain rule, one op at a time). ``ctx`` carries what backward needs.
3. :meth:`Tensor.backward` visits the recorded graph in reverse topological order,
   so that every node has received the gradients from all of its consumers before
   it passes its own gradient on. The sort is iterative: a chain of 20,000 ops
   does not hit Python's recursion limit.

The ops themselves (add, matmul, sum, reshape, ...) live in :mod:`minstn.ops` and
:mod:`minstn.shape_ops`, which attach them to Tensor as methods and operators; this
module only knows how to record and replay a graph.
"""

from __future__ import annotations

import contextlib
import threading
import weakref

import numpy as np

from .versions import TensorData, VersionCounter, check_unchanged, share_counter_of_viewed_input, versions_seen

__all__ = [
    "Tensor",
    "Function",
    "Context",
    "tensor",
    "as_tensor",
    "from_numpy",
    "no_grad",
    "enable_grad",
    "is_grad_enabled",
]


class _GradState(threading.local):
    """Grad mode is per thread, as in PyTorch: a ``no_grad`` block in one thread does
    not stop another thread from recording, and every new thread starts enabled."""

    enabled = True


_grad_state = _GradState()


def is_grad_enabled() -> bool:
    """True unless this thread is inside a ``with mt.no_grad():`` block."""
    return _grad_state.enabled


class _GradMode(contextlib.ContextDecorator):
    """Context manager (and decorator) that switches graph recording on or off."""

    def __init__(self, enabled: bool):
        self.enabled = enabled

    def _recreate_cm(self):
        # as a decorator, each call gets its own manager: calls from two threads (or a
        # recursive call) must not share the saved previous mode
        return type(self)(self.enabled)

    def __enter__(self):
        self._previous = _grad_state.enabled
        _grad_state.enabled = self.enabled
        return self

    def __exit__(self, *exc):
        _grad_state.enabled = self._previous
        return False


def no_grad() -> _GradMode:
    """Do not record operations: ``with mt.no_grad(): y = model(x)``.

    Inside the block every result has ``requires_grad=False`` and no ``grad_fn``,
    which is what evaluation and optimiser updates want.
    """
    return _GradMode(False)


def enable_grad() -> _GradMode:
    """Record operations again, even inside a ``no_grad`` block."""
    return _GradMode(True)


# ---------------------------------------------------------------------------
# dtypes
# ---------------------------------------------------------------------------


def _is_float_dtype(dtype) -> bool:
    return np.issubdtype(np.dtype(dtype), np.floating)


def _to_array(data, dtype=None) -> np.ndarray:
    """Turn ``data`` into an ndarray with PyTorch's default dtype rules.

    NumPy arrays keep their dtype; Python floats (and lists of them) become
    float32, Python ints become int64, bools stay bool.
    """
    if isinstance(data, Tensor):
        data = data.data
    if dtype is not None:
        return np.array(data, dtype=dtype)
    if isinstance(data, np.ndarray):
        return data.copy()
    if isinstance(data, np.generic):
        return np.array(data)
    array = np.array(data)
    if array.dtype == np.float64:
        array = array.astype(np.float32)
    elif array.dtype.kind in "iu":
        array = array.astype(np.int64)
    elif array.dtype == object:
        raise TypeError(f"cannot make a tensor from {type(data).__name__} data")
    return array


# ---------------------------------------------------------------------------
# Function and its context
# ---------------------------------------------------------------------------


class Context:
    """Scratch space a Function's forward fills for its backward.

    ``save_for_backward(*arrays)`` keeps arrays; ``saved_tensors`` gives them back.
    ``needs_input_grad[i]`` says whether input ``i`` wants a gradient, so backward
    can skip work nobody will read. Any other attribute may be set freely.
    """

    def __init__(self, needs_input_grad: tuple):
        self.needs_input_grad = needs_input_grad
        self.saved_tensors = ()

    def save_for_backward(self, *arrays) -> None:
        self.saved_tensors = arrays


class Node:
    """One recorded application of a Function: the graph's vertex.

    ``inputs`` holds, per forward argument, the Tensor that was passed (or None
    for non-Tensor arguments such as a shape or a mode string). ``versions`` holds
    the version of each input and of the output when the op ran (see
    :mod:`minstn.versions`), checked before its backward.
    """

    __slots__ = ("function", "ctx", "inputs", "_output", "versions", "__weakref__")

    def __init__(self, function, ctx, inputs):
        self.function = function
        self.ctx = ctx
        self.inputs = inputs
        self._output = None
        self.versions = ()

    @property
    def name(self) -> str:
        return f"{self.function.__name__}Backward"

    @property
    def output(self):
        """The Tensor this node produced, if it is still alive (weak reference)."""
        return self._output() if self._output is not None else None

    def __repr__(self) -> str:
        return f"<{self.name}>"


class Function:
    """Base class of every differentiable op, with PyTorch's interface.

    Subclasses define two static methods on plain NumPy arrays::

        class Mul(Function):
            @staticmethod
            def forward(ctx, a, b):
                ctx.save_for_backward(a, b)
                return a * b

            @staticmethod
            def backward(ctx, grad):
                a, b = ctx.saved_tensors
                return grad * b, grad * a      # one gradient per input

    and are called with ``Mul.apply(x, y)``. Tensor arguments reach ``forward``
    as their ``.data`` arrays; other arguments (ints, tuples, strings) arrive
    unchanged and get ``None`` as their gradient.
    """

    @staticmethod
    def forward(ctx, *args):  # pragma: no cover - abstract
        raise NotImplementedError

    @staticmethod
    def backward(ctx, grad):  # pragma: no cover - abstract
        raise NotImplementedError

    @classmethod
    def apply(cls, *args) -> "Tensor":
        inputs = tuple(a if isinstance(a, Tensor) else None for a in args)
        arrays = tuple(a._array if isinstance(a, Tensor) else a for a in args)
        needs = tuple(t is not None and t.requires_grad for t in inputs)
        record = _grad_state.enabled and any(needs)
        ctx = Context(needs if record else (False,) * len(args))
        value = cls.forward(ctx, *arrays)
        if not isinstance(value, np.ndarray):
            value = np.asarray(value)
        out = Tensor(value, requires_grad=record, _copy=False)
        if value.base is not None:  # a view: of an input?
            share_counter_of_viewed_input(out, inputs)
        if record:
            node = Node(cls, ctx, inputs)
            node._output = weakref.ref(out)
            node.versions = versions_seen(ctx, inputs, out)
            out.grad_fn = node
        return out


# ---------------------------------------------------------------------------
# Tensor
# ---------------------------------------------------------------------------


class Tensor:
    """A NumPy array that can remember how it was computed.

    Attributes:
        data: the ndarray holding the values (a :class:`~minstn.versions.TensorData`,
            which counts in-place writes so that backward can refuse stale values).
        grad: None, or an ndarray of ``data``'s shape filled by ``backward``.
        requires_grad: whether gradients should flow to (and be stored on) it.
        grad_fn: the graph node that produced it; None for leaves and constants.
        name: optional label shown by :func:`minstn.graph`.
    """

    __array_priority__ = 1000  # so ndarray + Tensor calls Tensor.__radd__

    def __init__(self, data, requires_grad: bool = False, dtype=None, name=None, _copy=True):
        if _copy or not isinstance(data, np.ndarray):
            data = _to_array(data, dtype)
        elif dtype is not None and data.dtype != np.dtype(dtype):
            data = data.astype(dtype)
        if requires_grad and not _is_float_dtype(data.dtype):
            raise ValueError(
                f"only floating-point tensors can require gradients; got dtype {data.dtype} "
                "(pass dtype=np.float32 or np.float64)"
            )
        if type(data) is np.ndarray:  # its own array, with a new counter (else see the data setter)
            self._array, self._version, self._view = data, VersionCounter(), None
        else:
            self.data = data
        self.grad = None
        self.requires_grad = bool(requires_grad)
        self.grad_fn = None
        self.name = name
        self._hooks = []
        self._retains_grad = False

    # --- the values and their version counter -------------------------------
    @property
    def data(self) -> TensorData:
        """The values, an ndarray that counts in-place writes (``x.data[...] = v``, ``x.data -= v``,
        ``x.data.fill_(0)``) in the tensor's version counter; see :mod:`minstn.versions`."""
        view = self._view
        if view is None:
            view = self._view = TensorData(self._array, self._version)
        return view

    @data.setter
    def data(self, value):
        """``x.data = values`` replaces the array; ``x.data = other_tensor`` shares other's, as in PyTorch."""
        if isinstance(value, Tensor):
            value = value.data
        if value is self.__dict__.get("_view"):  # ``x.data -= v`` wrote in place and assigns the same array
            return
        if isinstance(value, TensorData):
            self._array, self._version, self._view = value.view(np.ndarray), value._version, value
            return
        value = np.asarray(value)
        old = self.__dict__.get("_array")
        shares = old is not None and np.may_share_memory(value, old)
        self._array, self._view = value, None
        self._version = self._version if shares else VersionCounter()

    def __getstate__(self):
        state = dict(self.__dict__)
        state["_view"] = None  # rebuilt on demand around the (copied) array and counter
        return state

    # --- basic properties ------------------------------------------------
    @property
    def shape(self) -> tuple:
        return self._array.shape

    @property
    def dtype(self):
        return self._array.dtype

    @property
    def ndim(self) -> int:
        return self._array.ndim

    def size(self, dim=None):
        """The shape, ``x.size()`` (a tuple), or the length of one dimension, ``x.size(1)``, as PyTorch's."""
        return self._array.shape if dim is None else self._array.shape[dim]

    @property
    def is_leaf(self) -> bool:
        return self.grad_fn is None

    def __len__(self) -> int:
        return len(self.data)

    def numel(self) -> int:
        return self._array.size

    def dim(self) -> int:
        return self.data.ndim

    def numpy(self) -> np.ndarray:
        """The underlying array (shared, not copied), like ``tensor.numpy()``."""
        return self.data

    def item(self) -> float:
        return self.data.item()

    def detach(self) -> "Tensor":
        """A new constant Tensor sharing this one's data, cut out of the graph."""
        return Tensor(self.data, requires_grad=False, _copy=False)

    def requires_grad_(self, flag: bool = True) -> "Tensor":
        if flag and not _is_float_dtype(self.dtype):
            raise ValueError(f"only floating-point tensors can require gradients; got dtype {self.dtype}")
        self.requires_grad = flag
        return self

    # --- hooks ----------------------------------------------------------
    def register_hook(self, fn):
        """Call ``fn(grad)`` when this tensor's gradient has been computed.

        If ``fn`` returns an array, it replaces the gradient from then on (for a
        leaf: before it is accumulated into ``.grad``). Returns a handle whose
        ``remove()`` unregisters the hook.
        """
        if not self.requires_grad:
            raise RuntimeError("cannot register a hook on a tensor that does not require grad")
        self._hooks.append(fn)
        return _HookHandle(self._hooks, fn)

    def retain_grad(self) -> None:
        """Keep ``.grad`` on a non-leaf tensor too (leaves always keep it)."""
        if not self.requires_grad:
            raise RuntimeError("cannot retain_grad on a tensor that does not require grad")
        self._retains_grad = True

    def zero_grad(self) -> None:
        self.grad = None

    # --- backward ---------------------------------------------------------
    def backward(self, grad=None) -> None:
        """Accumulate d(self)/d(leaf) * grad into every leaf's ``.grad``.

        ``grad`` defaults to 1 for a one-element tensor; any other shape needs
        an explicit gradient of the same shape (the vector in the
        vector-Jacobian product).
        """
        if not self.requires_grad:
            raise RuntimeError(
                "backward() called on a tensor that does not require grad: none of the "
                "tensors it was computed from has requires_grad=True"
            )
        if grad is None:
            if self.data.size != 1:
                raise RuntimeError(
                    f"backward() without a gradient argument needs a one-element tensor, "
                    f"but this one has shape {self.shape}; pass a gradient of that shape, "
                    "e.g. y.backward(np.ones(y.shape)), or reduce first: y.sum().backward()"
                )
            grad = np.ones_like(self.data)
        else:
            grad = np.asarray(array_of(grad), dtype=self.dtype)
            if grad.shape != self.shape:
                raise ValueError(
                    f"backward(): gradient has shape {grad.shape} but the tensor has shape {self.shape}"
                )
        _run_backward(self, grad)

    # --- display ----------------------------------------------------------
    def __repr__(self) -> str:
        values = np.array2string(
            self.data, threshold=6, edgeitems=2, precision=4, separator=", ", max_line_width=70
        ).replace("\n", "\n       ")
        parts = [f"tensor({values}", f"shape={self.shape}", f"dtype={self.dtype}"]
        if self.grad_fn is not None:
            parts.append(f"grad_fn=<{self.grad_fn.name}>")
        elif self.requires_grad:
            parts.append("requires_grad=True")
        if self.name:
            parts.append(f"name={self.name!r}")
        if self.grad is not None:
            g = np.array2string(self.grad, threshold=6, edgeitems=2, precision=4, separator=", ")
            parts.append(f"grad={g}".replace("\n", " "))
        return ", ".join(parts) + ")"

    def __bool__(self):
        if self.data.size != 1:
            raise ValueError(f"the truth value of a tensor of shape {self.shape} is ambiguous")
        return bool(self.data)

    def __float__(self):
        return float(self.data)

    def __int__(self):
        return int(self.data)

    __hash__ = object.__hash__


class _HookHandle:
    def __init__(self, hooks, fn):
        self._hooks, self._fn = hooks, fn

    def remove(self) -> None:
        if self._fn in self._hooks:
            self._hooks.remove(self._fn)


def _apply_hooks(t: Tensor, grad: np.ndarray) -> np.ndarray:
    for hook in list(t._hooks):
        replaced = hook(grad)
        if replaced is not None:
            replaced = np.asarray(array_of(replaced))
            if replaced.shape != grad.shape:
                raise ValueError(
                    f"hook {getattr(hook, '__name__', hook)!r} returned a gradient of shape "
                    f"{replaced.shape}, expected {grad.shape}"
                )
            grad = replaced.astype(t.dtype, copy=False)
    return grad


def _accumulate(store: dict, key, grad: np.ndarray) -> None:
    if key in store:
        store[key] = store[key] + grad
    else:
        store[key] = grad


def topological_order(root: Tensor) -> list:
    """Graph nodes reachable from ``root``, each before the nodes that feed it.

    Iterative depth-first search with an explicit stack (post-order, then
    reversed): deep graphs do not touch Python's recursion limit.
    """
    if root.grad_fn is None:
        return []
    order, visited = [], set()
    stack = [(root.grad_fn, False)]
    while stack:
        node, expanded = stack.pop()
        if expanded:  # all of its inputs are finished: it can go in
            order.append(node)
            continue
        # A node is marked when it is expanded, not when it is pushed: marking at
        # push time would let a node be finished before an input that a second
        # path reaches later, which breaks post-order on diamond-shaped graphs.
        if id(node) in visited:
            continue
        visited.add(id(node))
        stack.append((node, True))
        for t in node.inputs:
            if t is not None and t.grad_fn is not None and id(t.grad_fn) not in visited:
                stack.append((t.grad_fn, False))
    order.reverse()
    return order


def _run_backward(root: Tensor, grad: np.ndarray) -> None:
    node_grads = {}  # id(node) -> gradient w.r.t. that node's output
    leaf_grads = {}  # id(leaf) -> gradient summed over every path
    leaves = {}
    if root.grad_fn is None:  # backward on a leaf: d(x)/d(x) = 1
        leaf_grads[id(root)], leaves[id(root)] = grad, root
    else:
        node_grads[id(root.grad_fn)] = grad
    for node in topological_order(root):
        g = node_grads.pop(id(node), None)
        if g is None:  # no path carried a gradient here
            continue
        out = node.output
        if out is not None:
            g = _apply_hooks(out, g)
            if out._retains_grad:
                out.grad = g.copy() if out.grad is None else out.grad + g
        check_unchanged(node)
        input_grads = node.function.backward(node.ctx, g)
        if not isinstance(input_grads, tuple):
            input_grads = (input_grads,)
        if len(input_grads) != len(node.inputs):
            raise RuntimeError(
                f"{node.function.__name__}.backward returned {len(input_grads)} gradients "
                f"for {len(node.inputs)} inputs"
            )
        for index, (t, ig) in enumerate(zip(node.inputs, input_grads)):
            if t is None or not t.requires_grad or ig is None:
                continue
            ig = np.asarray(ig)
            if ig.shape != t.shape:
                raise RuntimeError(
                    f"{node.function.__name__}.backward returned a gradient of shape {ig.shape} "
                    f"for input {index}, whose shape is {t.shape}"
                )
            ig = ig.astype(t.dtype, copy=False)
            if t.grad_fn is not None:
                _accumulate(node_grads, id(t.grad_fn), ig)
            else:
                _accumulate(leaf_grads, id(t), ig)
                leaves[id(t)] = t
    for key, g in leaf_grads.items():
        leaf = leaves[key]
        g = _apply_hooks(leaf, g)
        leaf.grad = g.copy() if leaf.grad is None else leaf.grad + g


# ---------------------------------------------------------------------------
# constructors
# ---------------------------------------------------------------------------


def array_of(x):
    """The NumPy array behind a Tensor (``x.data``), or ``x`` itself if it is not one."""
    return x.data if isinstance(x, Tensor) else x


def tensor(data, requires_grad: bool = False, dtype=None, name=None) -> Tensor:
    """Create a Tensor (a copy of ``data``), as ``torch.tensor`` does.

    Python floats become float32 and NumPy arrays keep their dtype, unless
    ``dtype`` says otherwise. ``requires_grad=True`` needs a floating dtype.
    """
    return Tensor(data, requires_grad=requires_grad, dtype=dtype, name=name)


def as_tensor(x, dtype=None) -> Tensor:
    """``x`` itself if it is a Tensor, else a constant Tensor sharing its data."""
    if isinstance(x, Tensor):
        return x
    if isinstance(x, np.ndarray):
        return Tensor(x if dtype is None else x.astype(dtype, copy=False), _copy=False)
    return Tensor(x, dtype=dtype)


def from_numpy(array: np.ndarray) -> Tensor:
    """A Tensor sharing ``array``'s memory, as ``torch.from_numpy``. Writes made through
    ``array`` itself are not seen by the version counter (as in PyTorch)."""
    if not isinstance(array, np.ndarray):
        raise TypeError(f"from_numpy expects a NumPy array, got {type(array).__name__}")
    return Tensor(array, _copy=False)
