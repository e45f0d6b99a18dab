"""PyTorch and minstn, both ways: weights (``.pt`` state dicts) and programs (their imports).

    state = state_dict_from_torch("net.pt", model)   # a .pt file -> checked, loaded into a minstn model
    state_dict_to_torch(model, "net.pt")             # a minstn model, state dict or checkpoint -> a .pt file
    program = load_module("stn.py")                  # a PyTorch program, run on minstn's imports

State dicts map one to one: minstn's layers keep PyTorch's names, shapes and weight
layouts, so a conversion only copies arrays, bit for bit, in the same order and dtypes;
the round trip torch -> minstn -> torch is exact. A state dict that does not fit a model
is refused before anything is written, naming every key and both shapes. torch is imported
only by the functions that read or write torch tensors; minstn's own checkpoints
(:mod:`minstn.checkpoint`, ``model.npz``) never need it.

Programs: :func:`minstn_imports` rewrites the torch import lines of a source
(``import torch`` -> ``import minstn as torch``, ``torch.nn.functional`` ->
``minstn.nn.functional``, ...) and nothing else, keeping every line where it was (so
tracebacks point at the original lines). What carries over is listed in the README
("From PyTorch to minstn").
"""

from __future__ import annotations

import ast
import importlib.util
import os
import sys
import types
from collections import OrderedDict
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from .autograd import Tensor
from .checkpoint import load_state
from .nn.module import Module

__all__ = ["state_dict_from_torch", "state_dict_to_torch", "check_state_dict", "minstn_imports", "load_module",
           "TORCH_COUNTERPARTS"]

# torch module -> the minstn module with the same names (what `minstn_imports` rewrites)
TORCH_COUNTERPARTS = {
    "torch": "minstn",
    "torch.nn": "minstn.nn",
    "torch.nn.functional": "minstn.nn.functional",
    "torch.nn.init": "minstn.nn.init",
    "torch.optim": "minstn.optim",
    "torch.optim.lr_scheduler": "minstn.optim",
    "torch.utils": "minstn.utils",
    "torch.utils.data": "minstn.utils.data",
}


def _torch():
    try:
        import torch
    except ImportError as error:
        raise ImportError("reading or writing PyTorch tensors and .pt files needs PyTorch (pip install torch); "
                          "minstn's own checkpoints (model.npz) do not") from error
    return torch


# ---------------------------------------------------------------------------
# weights
# ---------------------------------------------------------------------------


def _as_numpy(name, value) -> np.ndarray:
    """A copy of one state-dict entry as a plain ndarray, with its dtype."""
    if isinstance(value, Tensor):
        return value.data.copy()
    if isinstance(value, np.ndarray):
        return np.array(value, copy=True, order="C")
    if hasattr(value, "detach") and hasattr(value, "numpy"):  # a torch.Tensor
        value = value.detach().cpu()
        try:
            return value.numpy().copy()
        except TypeError:
            raise TypeError(f"state dict entry {name!r}: torch dtype {value.dtype} has no NumPy equivalent; "
                            "convert the model first (e.g. model.float())") from None
    raise TypeError(f"state dict entry {name!r}: expected a tensor or an array, got {type(value).__name__}")


def check_state_dict(model: Module, state: Mapping) -> None:
    """Raise ValueError listing every key of ``state`` that does not fit ``model``: missing,
    unexpected, or of another shape (with both shapes). Nothing is written."""
    own = model.state_dict()
    problems = [f"  {k!r}: the state dict has shape {tuple(np.shape(state[k]))}, the model {own[k].shape}"
                for k in own if k in state and tuple(np.shape(state[k])) != own[k].shape]
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    if missing:
        problems.append("  missing keys: " + ", ".join(map(repr, missing)))
    if unexpected:
        problems.append("  unexpected keys: " + ", ".join(map(repr, unexpected)))
    if problems:
        raise ValueError(f"the state dict does not fit {type(model).__name__}:\n" + "\n".join(problems))


def state_dict_from_torch(source, model: Module | None = None) -> "OrderedDict[str, np.ndarray]":
    """A PyTorch state dict as minstn's: name -> ndarray (copies, same order and dtypes).

    ``source`` is a mapping name -> torch.Tensor (``torch_model.state_dict()``) or the path
    of a ``.pt`` file holding one (read on the CPU with ``torch.load(weights_only=True)``).
    With ``model``, the state dict is first checked against it (:func:`check_state_dict`),
    then loaded into it.
    """
    if isinstance(source, (str, os.PathLike)):
        source = _torch().load(os.fspath(source), map_location="cpu", weights_only=True)
    if not isinstance(source, Mapping):
        raise TypeError(f"expected a state dict (a mapping of names to tensors), got {type(source).__name__}")
    state = OrderedDict((str(name), _as_numpy(name, value)) for name, value in source.items())
    if model is not None:
        check_state_dict(model, state)
        model.load_state_dict(state)
    return state


def state_dict_to_torch(source, path: str | os.PathLike | None = None) -> OrderedDict:
    """minstn's weights as a PyTorch state dict: name -> torch.Tensor (copies, same order and dtypes).

    ``source`` is a minstn Module, a state dict (name -> array or Tensor), or a checkpoint
    folder written by ``minstn train`` (its ``model.npz``). With ``path``, the result is
    also written there with ``torch.save``, for ``torch_model.load_state_dict(torch.load(path))``.
    """
    torch = _torch()
    if isinstance(source, Module):
        state = source.state_dict()
    elif isinstance(source, (str, os.PathLike)):
        state = load_state(source)
    elif isinstance(source, Mapping):
        state = source
    else:
        raise TypeError(f"expected a Module, a state dict or a checkpoint folder, got {type(source).__name__}")
    out = OrderedDict((str(k), torch.from_numpy(_as_numpy(k, v))) for k, v in state.items())
    if path is not None:
        torch.save(out, os.fspath(path))
    return out


# ---------------------------------------------------------------------------
# programs
# ---------------------------------------------------------------------------


def _counterpart(module: str, line: int) -> str:
    if module not in TORCH_COUNTERPARTS:
        raise ImportError(f"line {line}: minstn has no counterpart of {module!r} (it has: "
                          f"{', '.join(TORCH_COUNTERPARTS)}); see the README, 'From PyTorch to minstn'")
    return TORCH_COUNTERPARTS[module]


def _is_torch(module) -> bool:
    return module == "torch" or (module or "").startswith("torch.")


def _rewritten(node) -> str:
    """The minstn form of one import statement that names torch."""
    if isinstance(node, ast.ImportFrom):
        return ast.unparse(ast.ImportFrom(_counterpart(node.module, node.lineno), node.names, 0))
    names = []
    for alias in node.names:
        if not _is_torch(alias.name):
            names.append(alias)
        elif alias.asname or alias.name == "torch":  # `import torch.nn as nn` -> `import minstn.nn as nn`
            names.append(ast.alias(_counterpart(alias.name, node.lineno), alias.asname or "torch"))
        else:  # `import torch.nn` binds the name torch: import minstn.nn, and bind torch to minstn
            names += [ast.alias(_counterpart(alias.name, node.lineno)), ast.alias("minstn", "torch")]
    return ast.unparse(ast.Import(names))


def minstn_imports(source: str, filename: str = "<source>") -> str:
    """``source`` with every torch import rewritten to minstn's, and nothing else changed:
    each statement stays on its line (a multi-line one leaves blank lines), so line numbers
    hold. An import with no minstn counterpart (``torch.cuda``, ...) raises ImportError."""
    tree = ast.parse(source, filename)
    lines = [line.encode() for line in source.splitlines(keepends=True)]
    edits = [n for n in ast.walk(tree) if (isinstance(n, ast.Import) and any(_is_torch(a.name) for a in n.names))
             or (isinstance(n, ast.ImportFrom) and n.level == 0 and _is_torch(n.module))]
    for node in sorted(edits, key=lambda n: (n.lineno, n.col_offset), reverse=True):
        first, last = node.lineno - 1, node.end_lineno - 1
        head, tail = lines[first][:node.col_offset], lines[last][node.end_col_offset:]  # offsets are in bytes
        lines[first:last + 1] = [head + _rewritten(node).encode() + tail] + [b"\n"] * (last - first)
    return b"".join(lines).decode()


def load_module(path: str | os.PathLike, framework: str = "minstn", name: str | None = None) -> types.ModuleType:
    """Run the Python file ``path`` as a new module and return it: on minstn (its torch
    imports rewritten by :func:`minstn_imports`) or, with ``framework="torch"``, as written.
    The module is registered in ``sys.modules`` as ``name`` (default ``<stem>_<framework>``)."""
    if framework not in ("minstn", "torch"):
        raise ValueError(f'framework must be "minstn" or "torch", got {framework!r}')
    path = Path(path)
    source = path.read_text()
    if framework == "minstn":
        source = minstn_imports(source, str(path))
    elif importlib.util.find_spec("torch") is None:
        raise ImportError(f"running {path.name} on torch needs PyTorch (pip install torch)")
    module = types.ModuleType(name or f"{path.stem}_{framework}")
    module.__file__ = str(path)
    sys.modules[module.__name__] = module
    exec(compile(source, str(path), "exec"), module.__dict__)
    return module
