"""Optimisers with PyTorch's names and update formulas (schedules: :mod:`minstn.lr_scheduler`).

An optimiser holds references to Parameters (grouped in ``param_groups``, each
with its own hyper-parameters such as ``lr``) and, on ``step()``, changes their
``.data`` in place using their ``.grad``. Parameters whose ``grad`` is None (not
used in this forward pass) are left alone.

The paper trains with plain SGD, lr 0.01 divided by 10 every 50k iterations
(Jaderberg et al. 2015, appendix): ``SGD(model.parameters(), lr=0.01)`` plus
``StepLR(opt, step_size=50_000, gamma=0.1)`` stepped once per iteration.
"""

from __future__ import annotations

import copy
import math

import numpy as np

from .autograd import Tensor, no_grad
from . import lr_scheduler  # optim.lr_scheduler.StepLR, as torch.optim.lr_scheduler
from .lr_scheduler import CosineAnnealingLR, OneCycleLR, StepLR  # the schedules, also reachable as optim.*

__all__ = ["Optimizer", "SGD", "Adam", "AdamW", "StepLR", "CosineAnnealingLR", "OneCycleLR", "lr_scheduler"]


class Optimizer:
    """Base class: parameter groups, ``zero_grad``, ``state_dict``.

    ``params`` is an iterable of Parameters, or of dicts ``{"params": [...], "lr": ...}``
    (one per group; missing settings come from ``defaults``).
    """

    def __init__(self, params, defaults: dict):
        self.defaults = dict(defaults)
        self.param_groups = []
        self.state = {}  # id(param) -> per-parameter state (momentum buffers, moments)
        self._buffers = {}  # (id(param), name) -> scratch array of the update, see _scratch
        params = list(params)
        if not params:
            raise ValueError("optimiser got an empty parameter list")
        groups = params if isinstance(params[0], dict) else [{"params": params}]
        for group in groups:
            self.add_param_group(group)

    def add_param_group(self, group: dict) -> None:
        group = dict(group)
        ps = group["params"]
        group["params"] = [ps] if isinstance(ps, Tensor) else list(ps)
        for p in group["params"]:
            if not isinstance(p, Tensor):
                raise TypeError(f"optimiser can only update Tensors, got {type(p).__name__}")
        for key, value in self.defaults.items():
            group.setdefault(key, value)
        self.param_groups.append(group)

    def zero_grad(self) -> None:
        """Forget the gradients (``grad = None``) before the next backward."""
        for group in self.param_groups:
            for p in group["params"]:
                p.grad = None

    def _params_with_grad(self):
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is not None:
                    yield group, p

    def step(self) -> None:
        """One update of every parameter that has a gradient."""
        with no_grad():
            for group, p in self._params_with_grad():
                self._update(group, p, self.state.setdefault(id(p), {}))

    def _update(self, group: dict, p: Tensor, state: dict) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def _scratch(self, p: Tensor, name: str) -> np.ndarray:
        """A work array of ``p``'s shape, kept between steps (not state: never saved), so
        that an update writes into it instead of allocating temporaries."""
        key = (id(p), name)
        buf = self._buffers.get(key)
        if buf is None or buf.shape != p.data.shape or buf.dtype != p.data.dtype:
            buf = self._buffers[key] = np.empty_like(p.data)
        return buf

    # --- saving: parameters are referred to by their position, as in PyTorch ---
    def _all_params(self):
        return [p for group in self.param_groups for p in group["params"]]

    def state_dict(self) -> dict:
        """``{"state": {index: {...}}, "param_groups": [{..., "params": [indices]}]}`` (copies)."""
        index = {id(p): i for i, p in enumerate(self._all_params())}
        state = {index[k]: copy.deepcopy(v) for k, v in self.state.items() if k in index}
        groups = []
        for group in self.param_groups:
            g = {k: v for k, v in group.items() if k != "params"}
            g["params"] = [index[id(p)] for p in group["params"]]
            groups.append(g)
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict: dict) -> None:
        """Restore what :meth:`state_dict` returned. Everything is checked before anything
        changes (ValueError, PyTorch's messages); per-parameter arrays must have their
        parameter's shape, and floating ones are cast to its dtype, as PyTorch does."""
        settings, state = _checked_optimizer_state(state_dict, self.param_groups)
        for own, values in zip(self.param_groups, settings):
            own.update(values)
        self.state = state

    def __repr__(self) -> str:
        lines = [f"{type(self).__name__} ("]
        for i, group in enumerate(self.param_groups):
            lines.append(f"Parameter Group {i}")
            for k in sorted(k for k in group if k != "params"):
                lines.append(f"    {k}: {group[k]}")
        return "\n".join(lines) + "\n)"


def _checked_optimizer_state(state_dict, own_groups) -> tuple:
    """``(settings per group, state by id(param))`` from a saved optimiser state, or ValueError."""
    if not isinstance(state_dict, dict) or not {"state", "param_groups"} <= set(state_dict):
        raise ValueError("an optimiser state_dict is a dict with 'state' and 'param_groups'")
    groups, saved_state = state_dict["param_groups"], state_dict["state"]
    if not isinstance(groups, (list, tuple)) or len(groups) != len(own_groups):
        raise ValueError("loaded state dict has a different number of parameter groups")
    by_saved_index = {}  # the saved groups' indices -> our parameters, in order (PyTorch's id_map)
    for group, own in zip(groups, own_groups):
        if not isinstance(group, dict) or len(group.get("params", ())) != len(own["params"]):
            raise ValueError("loaded state dict contains a parameter group that doesn't match the size of "
                             "optimizer's group")
        by_saved_index.update(zip(group["params"], own["params"]))
    if not isinstance(saved_state, dict):
        raise ValueError(f"the optimiser state must be a dict, got {type(saved_state).__name__}")
    state = {}
    for index, entries in saved_state.items():
        if index not in by_saved_index or not isinstance(entries, dict):
            raise ValueError(f"the optimiser state of parameter {index!r} matches no parameter of the groups")
        p = by_saved_index[index]
        state[id(p)] = {key: _state_value(value, p, f"state[{index!r}][{key!r}]") for key, value in entries.items()}
    settings = [{k: copy.deepcopy(v) for k, v in group.items() if k != "params"} for group in groups]
    return settings, state


def _state_value(value, p: Tensor, where: str):
    if not isinstance(value, np.ndarray) or value.ndim == 0:
        return copy.deepcopy(value)  # a step count, a scalar
    if value.shape != p.shape:
        raise ValueError(f"{where} has shape {value.shape}, its parameter has shape {p.shape}")
    if value.dtype.kind != "f":
        raise ValueError(f"{where} has dtype {value.dtype}; per-parameter buffers are floating point")
    return value.astype(p.dtype)  # a copy either way


class SGD(Optimizer):
    """Stochastic gradient descent with optional momentum and weight decay.

    PyTorch's formula (note: lr multiplies the buffer, not the gradient)::

        g = grad + weight_decay * p
        buf = g                         (first step)
        buf = momentum * buf + g        (later steps)
        p  -= lr * buf                  (p -= lr * g without momentum)
    """

    def __init__(self, params, lr: float, momentum: float = 0.0, weight_decay: float = 0.0):
        if lr < 0 or momentum < 0 or weight_decay < 0:
            raise ValueError(f"SGD: lr, momentum and weight_decay must be >= 0, got {lr}, {momentum}, {weight_decay}")
        super().__init__(params, dict(lr=lr, momentum=momentum, weight_decay=weight_decay))

    def _update(self, group, p, state):
        g = p.grad
        if group["weight_decay"]:
            g = np.multiply(p.data, group["weight_decay"], out=self._scratch(p, "decay"))
            g += p.grad
        if group["momentum"]:
            buf = state.get("momentum_buffer")
            if buf is None:
                buf = state["momentum_buffer"] = np.array(g, dtype=p.dtype)
            else:
                buf *= group["momentum"]
                buf += g
            g = buf
        p.data -= np.multiply(g, group["lr"], out=self._scratch(p, "step"))


class Adam(Optimizer):
    """Adam (Kingma & Ba 2015), PyTorch's formula::

        g  = grad + weight_decay * p
        m  = beta1 m + (1 - beta1) g          v = beta2 v + (1 - beta2) g^2
        p -= lr / (1 - beta1^t) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)
    """

    def __init__(self, params, lr: float = 1e-3, betas=(0.9, 0.999), eps: float = 1e-8, weight_decay: float = 0.0):
        if lr < 0 or not (0 <= betas[0] < 1 and 0 <= betas[1] < 1):
            raise ValueError(f"Adam: need lr >= 0 and betas in [0, 1), got lr={lr}, betas={betas}")
        super().__init__(params, dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay))

    def _update(self, group, p, state):
        g = p.grad
        if group["weight_decay"]:
            g = np.multiply(p.data, group["weight_decay"], out=self._scratch(p, "decay"))
            g += p.grad
        b1, b2 = group["betas"]
        if not state:
            state["step"] = 0
            state["exp_avg"] = np.zeros_like(p.data)
            state["exp_avg_sq"] = np.zeros_like(p.data)
        state["step"] += 1
        t, m, v = state["step"], state["exp_avg"], state["exp_avg_sq"]
        tmp = self._scratch(p, "step")
        m *= b1
        m += np.multiply(g, 1 - b1, out=tmp)
        v *= b2
        np.multiply(g, 1 - b2, out=tmp)
        v += np.multiply(tmp, g, out=tmp)
        step_size = group["lr"] / (1 - b1**t)
        denom = np.sqrt(v, out=tmp)              # sqrt(v) / sqrt(1 - beta2^t) + eps
        denom /= math.sqrt(1 - b2**t)
        denom += group["eps"]
        np.divide(m, denom, out=tmp)
        p.data -= np.multiply(tmp, step_size, out=tmp)


class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov & Hutter 2019), PyTorch's formula:
    first ``p *= 1 - lr * weight_decay``, then the Adam step without L2 term."""

    def __init__(self, params, lr: float = 1e-3, betas=(0.9, 0.999), eps: float = 1e-8, weight_decay: float = 1e-2):
        super().__init__(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay)

    def _update(self, group, p, state):
        if group["weight_decay"]:
            p.data *= p.dtype.type(1 - group["lr"] * group["weight_decay"])
        super()._update(dict(group, weight_decay=0.0), p, state)

