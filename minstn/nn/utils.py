"""Gradient utilities with PyTorch's names (``torch.nn.utils``): clipping by global norm."""

from __future__ import annotations

import math

import numpy as np

__all__ = ["clip_grad_norm_"]


def clip_grad_norm_(parameters, max_norm: float, norm_type: float = 2.0) -> float:
    """Scale the gradients of ``parameters`` IN PLACE so that their global norm is at most
    ``max_norm``; returns the norm before clipping (as ``torch.nn.utils.clip_grad_norm_``).

    The global norm treats every gradient as one long vector:
    ``||g|| = (sum_p sum_i |g_pi|^q)^(1/q)`` (q = ``norm_type``; ``inf``: the largest
    entry). When it exceeds ``max_norm``, every gradient is multiplied by
    ``max_norm / (||g|| + 1e-6)``, so the direction of the update is kept.
    """
    if not max_norm > 0:
        raise ValueError(f"clip_grad_norm_: max_norm must be > 0, got {max_norm}")
    grads = [p.grad for p in parameters if p.grad is not None]
    if not grads:
        return 0.0
    if math.isinf(norm_type):
        total = max(float(np.max(np.abs(g))) if g.size else 0.0 for g in grads)
    else:
        total = sum(float(np.sum(np.abs(g.astype(np.float64)) ** norm_type)) for g in grads) ** (1.0 / norm_type)
    coef = max_norm / (total + 1e-6)
    if coef < 1.0:
        for g in grads:
            g *= g.dtype.type(coef)
    return total
