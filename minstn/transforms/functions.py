"""Grid generators as autograd Functions, and the public ``*_grid`` functions.

Three layers, as everywhere in minstn: the pure array forward/backward in
:mod:`minstn.transforms.grids`, a :class:`~minstn.autograd.Function` here that
only wires them together, and a checked public function on top
(``F.attention_grid``, ``F.projective_grid``, ``F.tps_grid``).
"""

from __future__ import annotations

import numpy as np

from .. import checks
from ..autograd import Function, Tensor, as_tensor
from . import grids

__all__ = [
    "AttentionGrid",
    "ProjectiveGrid",
    "TPSGrid",
    "attention_grid",
    "projective_grid",
    "tps_grid",
]


# ---------------------------------------------------------------------------
# argument checks shared by the public functions
# ---------------------------------------------------------------------------


def _params(x, name: str, tail: tuple) -> Tensor:
    """``x`` as a Tensor of shape ``(N, *tail)`` with a floating dtype, or ValueError naming it."""
    t = as_tensor(x)
    if not np.issubdtype(t.dtype, np.floating):
        # an integer theta would silently truncate every gradient step; refuse it
        raise ValueError(f"{name} must be a floating-point array; got dtype {t.dtype} "
                         "(use np.float32, or np.float64 for gradient checks)")
    if t.ndim != 1 + len(tail) or t.shape[1:] != tail:
        want = "(N, " + ", ".join(str(v) for v in tail) + ")"
        raise ValueError(f"{name} must have shape {want}; got {t.shape}")
    return t


def _size(size, n: int) -> tuple:
    """``size = (N, C, H, W)`` as in ``F.affine_grid``; N must match the parameters (N = 0
    is an empty batch)."""
    try:
        size = tuple(checks.integer(s, "size", "grid") for s in size)
    except TypeError:
        raise ValueError(f"size must be a tuple of ints (N, C, H, W); got {size!r}") from None
    if len(size) != 4 or min(size[:2]) < 0 or min(size[2:]) < 1:
        raise ValueError(f"size must be (N, C, H, W) with N, C >= 0 and H, W >= 1; got {size}")
    if size[0] != n:
        raise ValueError(f"size[0] = {size[0]} does not match the batch of {n} parameter sets")
    return size


# ---------------------------------------------------------------------------
# Functions
# ---------------------------------------------------------------------------


class AttentionGrid(Function):
    """Attention grid, ``theta = [[s, 0, tx], [0, s, ty]]`` (eq. (2), Table 1 "Att")."""

    @staticmethod
    def forward(ctx, params, size, align_corners):
        ctx.size, ctx.align_corners = size, align_corners
        return grids.attention_grid_forward(params, size, align_corners)

    @staticmethod
    def backward(ctx, grad):
        return grids.attention_grid_backward(grad, ctx.size, ctx.align_corners), None, None


class ProjectiveGrid(Function):
    """8-parameter projective grid (Table 1 "Proj"), with the clamped denominator."""

    @staticmethod
    def forward(ctx, theta, size, align_corners, eps):
        ctx.save_for_backward(theta)
        ctx.size, ctx.align_corners, ctx.eps = size, align_corners, eps
        return grids.projective_grid_forward(theta, size, align_corners, eps)

    @staticmethod
    def backward(ctx, grad):
        (theta,) = ctx.saved_tensors
        g = grids.projective_grid_backward(grad, theta, ctx.size, ctx.align_corners, ctx.eps)
        return g, None, None, None


class TPSGrid(Function):
    """Thin plate spline grid (Table 1 "TPS", Bookstein 1989): linear in the offsets."""

    @staticmethod
    def forward(ctx, offsets, size, grid_shape, align_corners):
        ctx.size, ctx.grid_shape, ctx.align_corners = size, grid_shape, align_corners
        return grids.tps_grid_forward(offsets, size, grid_shape, align_corners)

    @staticmethod
    def backward(ctx, grad):
        return grids.tps_grid_backward(grad, ctx.size, ctx.grid_shape, ctx.align_corners), None, None, None


# ---------------------------------------------------------------------------
# public functions (re-exported as F.attention_grid, F.projective_grid, F.tps_grid)
# ---------------------------------------------------------------------------


def attention_grid(params, size, align_corners: bool = False) -> Tensor:
    """Sampling grid ``(N, H, W, 2)`` of the attention transform.

    Args:
        params: ``(N, 3)`` = ``(s, tx, ty)``: isotropic scale and translation, so
            ``x_s = s x_t + tx``, ``y_s = s y_t + ty`` (eq. (2):
            ``A_theta = [[s, 0, tx], [0, s, ty]]``). Identity is ``(1, 0, 0)``.
        size: ``(N, C, H_out, W_out)``, as for ``F.affine_grid``.
        align_corners: PyTorch's meaning (``minstn.kernels.pixel.base_coordinates``).
    """
    params = _params(params, "params", (3,))
    size = _size(size, params.shape[0])
    return AttentionGrid.apply(params, size, bool(align_corners))


def projective_grid(theta, size, align_corners: bool = False, eps: float = grids.PROJECTIVE_EPS) -> Tensor:
    """Sampling grid ``(N, H, W, 2)`` of an 8-parameter homography.

    ``theta`` ``(N, 8)`` fills ``[[t0, t1, t2], [t3, t4, t5], [t6, t7, 1]]``;
    ``x_s = (t0 x + t1 y + t2) / (t6 x + t7 y + 1)`` and likewise ``y_s``. Identity
    is ``(1, 0, 0, 0, 1, 0, 0, 0)``. A denominator with ``|den| < eps`` is clamped to
    ``+-eps`` (keeping its sign), so no NaN or inf comes out for finite theta; the
    gradient is that of the clamped function
    (:func:`minstn.transforms.grids.projective_grid_forward`).
    """
    theta = _params(theta, "theta", (8,))
    size = _size(size, theta.shape[0])
    if not eps > 0:
        raise ValueError(f"eps must be > 0; got {eps}")
    return ProjectiveGrid.apply(theta, size, bool(align_corners), float(eps))


def tps_grid(offsets, size, grid_shape=(4, 4), align_corners: bool = False) -> Tensor:
    """Sampling grid ``(N, H, W, 2)`` of a thin plate spline (Bookstein 1989).

    Args:
        offsets: ``(N, K, 2)`` with ``K = rows * cols`` of ``grid_shape``: how far
            each source control point moves from its regular position (row-major,
            y outer, x inner, each ``(dx, dy)`` in normalised units). Zero offsets
            give the identity grid; the paper's Table 1 uses a 4x4 grid (K = 16,
            32 parameters).
        size: ``(N, C, H_out, W_out)``.
        grid_shape: ``(rows, cols)`` of control points, each >= 2.
        align_corners: PyTorch's meaning; the control points always span [-1, 1].
    """
    try:
        gh, gw = grids._grid_shape(grid_shape)
    except (TypeError, ValueError):
        raise ValueError(f"grid_shape must be (rows, cols) with both >= 2; got {grid_shape!r}") from None
    offsets = _params(offsets, "offsets", (gh * gw, 2))
    size = _size(size, offsets.shape[0])
    return TPSGrid.apply(offsets, size, (gh, gw), bool(align_corners))
