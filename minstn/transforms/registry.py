"""The transforms of Table 1 as data: how many parameters, where identity lies, how to grid.

A spatial transformer's localisation net ends in a regression layer with one
output per transform parameter, initialised at the identity transform (zero
weights, identity bias; Jaderberg et al. 2015, section 4.1). ``TRANSFORMS`` tells
``nn.SpatialTransformer`` both numbers without it knowing any transform::

    spec = TRANSFORMS["tps"]
    fc = nn.Linear(hidden, spec.n_params)       # 32 for the 4x4 TPS
    fc.bias.data[:] = spec.identity_params()
    grid = spec.make_grid(fc(h), size, align_corners)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from .. import sampling
from . import grids
from .builders import affine_from_params
from .functions import attention_grid, projective_grid, tps_grid

__all__ = ["TransformSpec", "TRANSFORMS", "tps_spec"]


@dataclass(frozen=True)
class TransformSpec:
    """One grid generator: ``n_params`` numbers per sample, identity at ``identity``."""

    name: str
    n_params: int
    identity: tuple
    grid_fn: Callable  # (params (N, n_params) Tensor, size, align_corners) -> grid Tensor
    description: str = ""

    def identity_params(self, dtype=np.float32) -> np.ndarray:
        """A fresh flat array of the identity parameters (safe to write into)."""
        return np.array(self.identity, dtype=dtype)

    def make_grid(self, params, size, align_corners: bool = False):
        """Sampling grid ``(N, H, W, 2)`` from flat parameters ``(N, n_params)``."""
        return self.grid_fn(params, size, align_corners)


def _affine_grid(params, size, align_corners):
    return sampling.affine_grid(affine_from_params(params), size, align_corners)


def _tps_grid(grid_shape):
    def make(params, size, align_corners):
        p = params if hasattr(params, "reshape") else np.asarray(params)
        n_params = 2 * grid_shape[0] * grid_shape[1]
        if p.ndim != 2 or p.shape[1] != n_params:
            raise ValueError(f"params must have shape (N, {n_params}); got {tuple(p.shape)}")
        # flat layout: (dx0, dy0, dx1, dy1, ...), control points row-major
        return tps_grid(p.reshape(p.shape[0], n_params // 2, 2), size, grid_shape, align_corners)

    return make


def tps_spec(grid_shape=(4, 4)) -> TransformSpec:
    """A TPS spec for another control grid (``TRANSFORMS["tps"]`` is 4x4)."""
    gh, gw = grids._grid_shape(grid_shape)
    k = gh * gw
    return TransformSpec(f"tps{gh}x{gw}", 2 * k, (0.0,) * (2 * k), _tps_grid((gh, gw)),
                         f"thin plate spline, {gh}x{gw} control points, flat (dx, dy) offsets")


TRANSFORMS = {
    "affine": TransformSpec("affine", 6, (1.0, 0.0, 0.0, 0.0, 1.0, 0.0), _affine_grid,
                            "eq. (1): theta (N, 2, 3) flattened row-major"),
    "attention": TransformSpec("attention", 3, (1.0, 0.0, 0.0), attention_grid,
                               "(s, tx, ty): isotropic scale + translation"),
    "projective": TransformSpec("projective", 8, (1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0), projective_grid,
                                "homography [[t0 t1 t2] [t3 t4 t5] [t6 t7 1]]"),
    "tps": tps_spec((4, 4)),
}
