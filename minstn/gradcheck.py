"""Check analytic gradients against central finite differences.

For a function ``f`` of Tensors, every ``backward`` we wrote claims to compute
``v^T J`` (the vector-Jacobian product) where ``J = df/dx``. Central differences
estimate each column of ``J`` independently of that code::

    J[:, i] ~ (f(x + eps e_i) - f(x - eps e_i)) / (2 eps)

When the output is small we build the whole analytic Jacobian, one backward per
output element, and compare it entry by entry. When it is large we compare
``v^T J`` for a few random vectors ``v`` instead (a random projection: a wrong
gradient is caught with probability 1).
"""

from __future__ import annotations

import numpy as np

from .autograd import Tensor, no_grad

__all__ = ["gradcheck", "GradcheckError"]


class GradcheckError(AssertionError):
    """Raised when analytic and numeric gradients disagree."""


def _forward(fn, inputs):
    out = fn(*inputs)
    if not isinstance(out, Tensor):
        raise TypeError(f"gradcheck: fn must return a Tensor, got {type(out).__name__}")
    return out


def _numeric_jacobian(fn, inputs, index, eps):
    """Columns of d out / d inputs[index], by central differences, as (n_out, n_in)."""
    x = inputs[index]
    # Perturb the plain array, not x.data: every value is restored exactly, so these writes
    # must not count as in-place changes (they would void graphs built before the check).
    flat = x._array.reshape(-1)
    columns = []
    with no_grad():
        for i in range(flat.size):
            original = flat[i]
            flat[i] = original + eps
            plus = _forward(fn, inputs).data.astype(np.float64).reshape(-1)
            flat[i] = original - eps
            minus = _forward(fn, inputs).data.astype(np.float64).reshape(-1)
            flat[i] = original
            columns.append((plus - minus) / (2 * eps))
    if not columns:
        return np.zeros((0, 0))
    return np.stack(columns, axis=1)


def _analytic_vjp(fn, inputs, checked, v):
    """Gradients of ``sum(v * f(inputs))`` w.r.t. each checked input, flattened."""
    saved = [t.grad for t in inputs]
    for t in inputs:
        t.grad = None
    try:
        out = _forward(fn, inputs)
        if out.requires_grad:
            out.backward(v.reshape(out.shape).astype(out.dtype))
        grads = []
        for i in checked:
            g = inputs[i].grad
            grads.append(np.zeros(inputs[i].numel()) if g is None else np.asarray(g, np.float64).reshape(-1))
        return grads
    finally:
        for t, g in zip(inputs, saved):
            t.grad = g


def gradcheck(fn, inputs, eps=1e-6, atol=1e-5, rtol=1e-3, full_jacobian_max=256, n_projections=6, seed=0):
    """Compare ``fn``'s analytic gradients with central finite differences.

    Args:
        fn: callable taking ``*inputs`` and returning one Tensor.
        inputs: sequence of Tensors (or arrays, which become constants). Every
            Tensor with ``requires_grad=True`` is checked; they must be float64.
        eps: finite-difference step.
        atol, rtol: an entry passes when ``|analytic - numeric| <= atol + rtol * |numeric|``.
        full_jacobian_max: outputs up to this many elements get the full Jacobian;
            larger ones are compared through ``n_projections`` random projections.

    Returns:
        True when every checked input passes.

    Raises:
        GradcheckError: naming the input index, the worst element, and the analytic
            and numeric values.
    """
    inputs = [x if isinstance(x, Tensor) else Tensor(np.asarray(x), _copy=False) for x in inputs]
    checked = [i for i, t in enumerate(inputs) if t.requires_grad]
    if not checked:
        raise ValueError("gradcheck: no input has requires_grad=True, so there is nothing to check")
    for i in checked:
        if inputs[i].dtype != np.float64:
            raise ValueError(
                f"gradcheck: input {i} is {inputs[i].dtype}; finite differences need float64 "
                "(create it with dtype=np.float64)"
            )
        if not inputs[i].data.flags.writeable or not inputs[i].data.flags.c_contiguous:
            inputs[i].data = np.ascontiguousarray(inputs[i].data).copy()

    with no_grad():
        n_out = _forward(fn, inputs).numel()
    if n_out == 0:
        return True  # an empty output has an empty Jacobian: nothing can disagree
    rng = np.random.default_rng(seed)
    if n_out <= full_jacobian_max:
        vectors = np.eye(n_out)  # row k of J is the VJP with the k-th unit vector
        label = "output element"
    else:
        vectors = rng.standard_normal((n_projections, n_out))
        label = "random projection"

    for position, i in enumerate(checked):
        numeric = _numeric_jacobian(fn, inputs, i, eps)  # (n_out, n_in)
        analytic_rows, numeric_rows = [], []
        for v in vectors:
            analytic_rows.append(_analytic_vjp(fn, inputs, checked, v)[position])
            numeric_rows.append(v @ numeric if numeric.size else np.zeros(inputs[i].size))
        analytic = np.array(analytic_rows).reshape(len(vectors), -1)
        numeric_p = np.array(numeric_rows).reshape(len(vectors), -1)
        error = np.abs(analytic - numeric_p)
        allowed = atol + rtol * np.abs(numeric_p)
        if error.size and not np.all(error <= allowed):
            bad = np.where(np.isnan(error), np.inf, error - allowed)
            row, col = np.unravel_index(np.argmax(bad), bad.shape)
            element = np.unravel_index(col, inputs[i].shape) if inputs[i].shape else ()
            n_bad = int(np.sum(~(error <= allowed)))
            raise GradcheckError(
                f"gradcheck failed for input {i} (shape {inputs[i].shape}): "
                f"{n_bad} of {error.size} Jacobian entries are off.\n"
                f"  worst: input element {tuple(int(e) for e in element)}, {label} {row}\n"
                f"  analytic = {analytic[row, col]:.10g}\n"
                f"  numeric  = {numeric_p[row, col]:.10g}\n"
                f"  |difference| = {error[row, col]:.3g} > atol + rtol*|numeric| = {allowed[row, col]:.3g}"
            )
    return True
