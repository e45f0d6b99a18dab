"""``Module`` and ``Parameter``: the bookkeeping every layer shares, as in PyTorch.

A Module is a forward function plus state. The state is of three kinds, kept in
three ordered dictionaries that ``__setattr__`` fills for you:

* ``_parameters``: :class:`Parameter` objects, what the optimiser trains;
* ``_buffers``: Tensors that are state but not trained (BatchNorm's running
  statistics), saved in ``state_dict`` all the same;
* ``_modules``: sub-modules, so that ``model.parameters()`` walks the whole tree.

Writing ``self.fc = Linear(3, 4)`` inside ``__init__`` is therefore enough for
the optimiser, ``state_dict``, ``train()``/``eval()`` and ``repr`` to see it.
"""

from __future__ import annotations

from collections import OrderedDict, namedtuple

import numpy as np

from ..autograd import Tensor, array_of

__all__ = ["Module", "Parameter", "IncompatibleKeys"]


class Parameter(Tensor):
    """A Tensor that a Module owns and an optimiser updates.

    ``requires_grad`` is True by default. Lists and Python numbers become float32
    (the engine's default); a floating NumPy array or Tensor keeps its dtype,
    unless ``dtype`` says otherwise.
    """

    def __init__(self, data, requires_grad: bool = True, dtype=None):
        if isinstance(data, Tensor):
            data = data.data
        if dtype is None and not (isinstance(data, np.ndarray) and np.issubdtype(data.dtype, np.floating)):
            dtype = np.float32
        super().__init__(data, requires_grad=requires_grad, dtype=dtype)

    def __repr__(self) -> str:
        return "Parameter containing:\n" + super().__repr__()


IncompatibleKeys = namedtuple("IncompatibleKeys", ["missing_keys", "unexpected_keys"])


class Module:
    """Base class of every layer and model. Subclasses define ``forward``.

    Call ``super().__init__()`` first in a subclass's ``__init__``: it creates
    the dictionaries that attribute assignment fills.
    """

    def __init__(self):
        # object.__setattr__: our own __setattr__ needs these dictionaries to exist
        object.__setattr__(self, "_parameters", OrderedDict())
        object.__setattr__(self, "_buffers", OrderedDict())
        object.__setattr__(self, "_non_persistent", set())
        object.__setattr__(self, "_modules", OrderedDict())
        object.__setattr__(self, "training", True)

    # ------------------------------------------------------------------
    # registration
    # ------------------------------------------------------------------
    def _check_init(self, name):
        if "_parameters" not in self.__dict__:
            raise AttributeError(
                f"cannot assign {name!r} before Module.__init__() was called: "
                f"put super().__init__() at the top of {type(self).__name__}.__init__"
            )

    def __setattr__(self, name, value):
        if isinstance(value, Parameter):
            self._check_init(name)
            self._remove_everywhere(name)
            self._parameters[name] = value
        elif isinstance(value, Module):
            self._check_init(name)
            self._remove_everywhere(name)
            self._modules[name] = value
        elif "_parameters" in self.__dict__ and name in self._parameters:
            if value is not None:
                raise TypeError(
                    f"cannot assign a {type(value).__name__} to parameter {name!r} of {type(self).__name__} "
                    "(a Parameter or None is expected); to change its values write "
                    f"module.{name}.data[...] = new_values"
                )
            self._parameters[name] = None
        elif "_buffers" in self.__dict__ and name in self._buffers:
            self._buffers[name] = None if value is None else _as_buffer(value)
        elif "_modules" in self.__dict__ and name in self._modules and value is None:
            self._modules[name] = None
        else:
            object.__setattr__(self, name, value)

    def _remove_everywhere(self, name):
        for store in (self._parameters, self._buffers, self._modules):
            store.pop(name, None)
        self.__dict__.pop(name, None)

    def __getattr__(self, name):
        # only called when normal lookup fails, i.e. for registered things
        d = self.__dict__
        for store in ("_parameters", "_buffers", "_modules"):
            if store in d and name in d[store]:
                return d[store][name]
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def __delattr__(self, name):
        for store in ("_parameters", "_buffers", "_modules"):
            if name in self.__dict__.get(store, {}):
                del self.__dict__[store][name]
                return
        object.__delattr__(self, name)

    def register_parameter(self, name: str, param) -> None:
        """Register ``param`` (a Parameter, or None for "no such parameter", e.g. bias=False)."""
        self._check_init(name)
        if param is not None and not isinstance(param, Parameter):
            raise TypeError(f"register_parameter({name!r}): expected a Parameter or None, got {type(param).__name__}")
        self._remove_everywhere(name)
        self._parameters[name] = param

    def register_buffer(self, name: str, tensor, persistent: bool = True) -> None:
        """Register state that is saved and cast with the module but not trained.

        ``tensor`` may be an array or a Tensor (stored as a Tensor without grad).
        Non-persistent buffers are left out of ``state_dict``.
        """
        self._check_init(name)
        self._remove_everywhere(name)
        self._buffers[name] = None if tensor is None else _as_buffer(tensor)
        if persistent:
            self._non_persistent.discard(name)
        else:
            self._non_persistent.add(name)

    def add_module(self, name: str, module) -> None:
        self._check_init(name)
        if module is not None and not isinstance(module, Module):
            raise TypeError(f"add_module({name!r}): expected a Module, got {type(module).__name__}")
        self._remove_everywhere(name)
        self._modules[name] = module

    # ------------------------------------------------------------------
    # walking the tree
    # ------------------------------------------------------------------
    def named_modules(self, prefix: str = "", _seen=None):
        """``(dotted name, module)`` for this module and every descendant, pre-order."""
        seen = set() if _seen is None else _seen
        if id(self) in seen:
            return
        seen.add(id(self))
        yield prefix, self
        for name, child in self._modules.items():
            if child is not None:
                yield from child.named_modules(f"{prefix}.{name}" if prefix else name, seen)

    def modules(self):
        for _, m in self.named_modules():
            yield m

    def named_children(self):
        for name, child in self._modules.items():
            if child is not None:
                yield name, child

    def children(self):
        for _, child in self.named_children():
            yield child

    def _named_members(self, store: str, recurse: bool):
        seen = set()  # a shared parameter is listed (and optimised) once
        modules = self.named_modules() if recurse else [("", self)]
        for prefix, module in modules:
            for name, value in getattr(module, store).items():
                if value is None or id(value) in seen:
                    continue
                seen.add(id(value))
                yield (f"{prefix}.{name}" if prefix else name), value

    def named_parameters(self, recurse: bool = True):
        """``(dotted name, Parameter)`` pairs: ``"0.weight"``, ``"loc.fc.bias"``..."""
        return self._named_members("_parameters", recurse)

    def parameters(self, recurse: bool = True):
        for _, p in self.named_parameters(recurse):
            yield p

    def named_buffers(self, recurse: bool = True):
        return self._named_members("_buffers", recurse)

    def buffers(self, recurse: bool = True):
        for _, b in self.named_buffers(recurse):
            yield b

    def apply(self, fn):
        """Call ``fn(module)`` on every sub-module (children first) and on self."""
        for child in self.children():
            child.apply(fn)
        fn(self)
        return self

    # ------------------------------------------------------------------
    # modes, gradients, dtype
    # ------------------------------------------------------------------
    def train(self, mode: bool = True):
        """Training mode (dropout active, BatchNorm uses batch statistics) for the whole tree."""
        for m in self.modules():
            object.__setattr__(m, "training", bool(mode))
        return self

    def eval(self):
        """Evaluation mode: ``train(False)``."""
        return self.train(False)

    def zero_grad(self) -> None:
        """Forget every parameter's gradient (``grad = None``, PyTorch 2's default)."""
        for p in self.parameters():
            p.grad = None

    def requires_grad_(self, flag: bool = True):
        for p in self.parameters():
            p.requires_grad = flag
        return self

    def to(self, dtype):
        """Cast parameters and floating buffers to ``dtype`` IN PLACE; returns self.

        The Parameter objects stay the same (only their ``.data`` changes), so an
        optimiser built earlier still points at them. Gradients are dropped.
        """
        dtype = np.dtype(dtype)
        if not np.issubdtype(dtype, np.floating):
            raise ValueError(f"Module.to: only floating dtypes make sense for parameters, got {dtype}")
        for p in self.parameters():
            p.data = p.data.astype(dtype)
            p.grad = None
        for b in self.buffers():
            if np.issubdtype(b.dtype, np.floating):
                b.data = b.data.astype(dtype)
        return self

    def double(self):
        """Float64 everything: what finite-difference gradient checks need."""
        return self.to(np.float64)

    def float(self):
        return self.to(np.float32)

    # ------------------------------------------------------------------
    # saving and loading
    # ------------------------------------------------------------------
    def _state_tensors(self) -> "OrderedDict[str, Tensor]":
        """Name -> the live Tensor, in PyTorch's order (own params, own buffers, children)."""
        out = OrderedDict()
        for prefix, module in self.named_modules():
            dot = prefix + "." if prefix else ""
            for name, p in module._parameters.items():
                if p is not None:
                    out[dot + name] = p
            for name, b in module._buffers.items():
                if b is not None and name not in module._non_persistent:
                    out[dot + name] = b
        return out

    def state_dict(self) -> "OrderedDict[str, np.ndarray]":
        """Name -> a COPY of every parameter and persistent buffer, as ndarrays.

        Names are PyTorch's (``features.0.weight``, ``bn.running_mean``...), so a
        state dict converts to and from ``torch`` with ``torch.from_numpy``.
        """
        return OrderedDict((k, t.data.copy()) for k, t in self._state_tensors().items())

    def load_state_dict(self, state_dict, strict: bool = True) -> IncompatibleKeys:
        """Copy values from ``state_dict`` into this module's parameters and buffers.

        Values may be ndarrays, Tensors or anything ``np.asarray`` accepts (e.g. a
        torch tensor after ``.detach()``). Everything is checked before anything is
        written: with ``strict=True`` missing or unexpected names raise RuntimeError (as in
        PyTorch), listing them; a shape mismatch always raises ValueError naming the entry and both shapes,
        and so does a value that would not survive the copy (complex, text, objects; for an integer
        buffer, a non-integral float; a finite value that overflows the parameter's dtype). NaN and
        inf are values like any other and are loaded. Returns ``(missing_keys, unexpected_keys)``.
        """
        own = self._state_tensors()
        missing = [k for k in own if k not in state_dict]
        unexpected = [k for k in state_dict if k not in own]
        if strict and (missing or unexpected):
            lines = [f"error(s) loading state_dict for {type(self).__name__}:"]
            if missing:
                lines.append("  missing keys: " + ", ".join(repr(k) for k in missing))
            if unexpected:
                lines.append("  unexpected keys: " + ", ".join(repr(k) for k in unexpected))
            raise RuntimeError("\n".join(lines))
        arrays = {}
        for name, target in own.items():
            if name not in state_dict:
                continue
            arrays[name] = _loadable(name, state_dict[name], target)
        for name, value in arrays.items():
            own[name].data[...] = value  # in place: optimisers keep their references
        return IncompatibleKeys(missing, unexpected)

    # ------------------------------------------------------------------
    # calling and printing
    # ------------------------------------------------------------------
    def forward(self, *args, **kwargs):  # pragma: no cover - abstract
        raise NotImplementedError(f"{type(self).__name__} has no forward() method")

    def __call__(self, *args, **kwargs):
        return self.forward(*args, **kwargs)

    def extra_repr(self) -> str:
        """One line of settings shown inside the parentheses, e.g. ``in_features=3``."""
        return ""

    def __repr__(self) -> str:
        extra = self.extra_repr()
        children = [(n, m) for n, m in self._modules.items() if m is not None]
        if not children:
            return f"{type(self).__name__}({extra})"
        lines = [extra] if extra else []
        for name, child in children:
            lines.append(f"({name}): " + repr(child).replace("\n", "\n  "))
        return f"{type(self).__name__}(\n  " + "\n  ".join(lines) + "\n)"


def _loadable(name: str, value, target: Tensor) -> np.ndarray:
    """``value`` converted to ``target``'s dtype, or ValueError naming ``name``: the checks
    that let ``load_state_dict`` write nothing unless it can write everything."""
    try:
        value = np.asarray(array_of(value))
    except (TypeError, ValueError, RuntimeError) as err:  # ragged lists, torch tensors that need grad...
        raise ValueError(f"value for {name!r} is not an array: {err}") from None
    if value.shape != target.shape:
        raise ValueError(
            f"size mismatch for {name!r}: the state dict has shape {value.shape}, "
            f"the model has shape {target.shape}"
        )
    if value.dtype.kind not in "biuf":  # complex would lose its imaginary part; text, objects: not numbers
        raise ValueError(f"value for {name!r} has dtype {value.dtype}; {target.dtype} needs real numbers")
    if not target.data.flags.writeable:
        raise ValueError(f"{name!r} is read-only in the model")
    with np.errstate(over="ignore", invalid="ignore"):
        converted = value.astype(target.dtype)
    if target.dtype.kind in "iu" and value.dtype.kind == "f" and not np.array_equal(converted, value):
        raise ValueError(f"value for {name!r} holds non-integral or non-finite numbers; "
                         f"{target.dtype} needs integers")
    if target.dtype.kind in "iu" and value.dtype.kind in "iu" and not np.array_equal(converted, value):
        raise ValueError(f"value for {name!r} does not fit in {target.dtype}")
    if target.dtype.kind == "f" and np.any(np.isfinite(value) & ~np.isfinite(converted)):
        raise ValueError(f"value for {name!r} overflows {target.dtype}")
    return converted


def _as_buffer(value) -> Tensor:
    if isinstance(value, Tensor):
        return value
    return Tensor(np.asarray(value), requires_grad=False)
