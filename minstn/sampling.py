"""The differentiable grid generator and sampler: ``affine_grid`` and ``grid_sample``.

Three layers, as everywhere in minstn:

    kernels (pure arrays, one module per backend)  ->  Function (AffineGrid, GridSample)
    ->  the public functions below (validation, Tensor-or-array arguments)

The kernel module is looked up at call time from ``minstn.backend`` and stored on
``ctx``, so a backward always runs on the backend that did the forward, even if
the backend was switched in between.

Conventions are PyTorch's (``F.affine_grid`` / ``F.grid_sample``): images are
(N, C, H, W), grids (N, H_out, W_out, 2) with last axis (x, y) in [-1, 1].
"""
import numbers

import numpy as np

from . import backend
from .autograd import Function, as_tensor
from .kernels.pixel import MODES, PADDINGS

_FLOATS = (np.float32, np.float64)


class AffineGrid(Function):
    """Eq. (1): sampling grid (x_s, y_s) = A_theta (x_t, y_t, 1) over the target grid."""

    @staticmethod
    def forward(ctx, theta, size, align_corners):
        ctx.kernels = backend.kernels()
        ctx.size, ctx.align_corners = size, align_corners
        return ctx.kernels.affine_grid_forward(theta, size, align_corners)

    @staticmethod
    def backward(ctx, grad_grid):
        grad_theta = ctx.kernels.affine_grid_backward(grad_grid, ctx.size, ctx.align_corners)
        return grad_theta, None, None


class GridSample(Function):
    """Eq. (3)-(7): V = sample(U, grid); gradients w.r.t. both U (eq. 6) and grid (eq. 7)."""

    @staticmethod
    def forward(ctx, input, grid, mode, padding_mode, align_corners, fill_value):
        ctx.kernels = backend.kernels()
        ctx.options = (mode, padding_mode, align_corners, fill_value)
        ctx.save_for_backward(input, grid)
        return ctx.kernels.grid_sample_forward(input, grid, mode, padding_mode, align_corners,
                                               fill_value)

    @staticmethod
    def backward(ctx, grad_output):
        input, grid = ctx.saved_tensors
        mode, padding_mode, align_corners, fill_value = ctx.options
        grad_input, grad_grid = ctx.kernels.grid_sample_backward(
            grad_output, input, grid, mode, padding_mode, align_corners, fill_value,
            need_input_grad=ctx.needs_input_grad[0], need_grid_grad=ctx.needs_input_grad[1])
        return grad_input, grad_grid, None, None, None, None


# ---------------------------------------------------------------- validation ----
def _float_tensor(x, name):
    t = as_tensor(x)
    if t.data.dtype not in _FLOATS:
        raise ValueError(f"{name} must be float32 or float64, got {t.data.dtype}")
    return t


def _choice(value, choices, name):
    if value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(map(repr, choices))}; got {value!r}")


# -------------------------------------------------------------- public API ----
def affine_grid(theta, size, align_corners=False):
    """Sampling grid of an affine transform, eq. (1), like ``torch.nn.functional.affine_grid``.

    Args:
        theta: (N, 2, 3) Tensor or array; rows produce x_s then y_s.
        size: (N, C, H_out, W_out), the size of the output image.
        align_corners: whether -1/+1 are the centres (True) or the edges (False) of the
            corner pixels.

    Returns:
        (N, H_out, W_out, 2) Tensor of (x_s, y_s) in normalised coordinates.
    """
    theta = _float_tensor(theta, "theta")
    if theta.data.ndim != 3 or theta.data.shape[1:] != (2, 3):
        raise ValueError(f"theta must have shape (N, 2, 3), got {theta.data.shape}")
    if (not isinstance(size, (tuple, list)) or len(size) != 4
            or not all(isinstance(s, numbers.Integral) and not isinstance(s, bool) for s in size)):
        raise ValueError(f"size must be 4 ints (N, C, H_out, W_out), got {size!r}")
    size = tuple(int(s) for s in size)
    if min(size) < 0:
        raise ValueError(f"size must not be negative, got {size}")
    if size[0] != theta.data.shape[0]:
        raise ValueError(f"size[0] = {size[0]} does not match the batch of theta, "
                         f"{theta.data.shape[0]}")
    return AffineGrid.apply(theta, size, bool(align_corners))


def grid_sample(input, grid, mode="bilinear", padding_mode="zeros", align_corners=False,
                fill_value=0.0):
    """Sample ``input`` at ``grid``, eq. (3), like ``torch.nn.functional.grid_sample``.

    Args:
        input: (N, C, H, W) image U.
        grid: (N, H_out, W_out, 2) sampling points (x, y) in [-1, 1]; same dtype as input.
        mode: "bilinear" (kernel of eq. (5)) or "nearest" (eq. (4)).
        padding_mode: what taps outside the image read: "zeros" (fill_value), "border"
            (the clamped edge pixel) or "reflection" (the image mirrored at its borders).
        align_corners: as in ``affine_grid``.
        fill_value: constant read outside the image when padding_mode="zeros"
            (0 as in PyTorch; non-zero gives constant padding with correct grid gradients).

    Returns:
        (N, C, H_out, W_out) Tensor V.
    """
    input = _float_tensor(input, "input")
    grid = _float_tensor(grid, "grid")
    if input.data.ndim != 4:
        raise ValueError(f"input must be 4-D (N, C, H, W), got shape {input.data.shape}")
    if grid.data.ndim != 4 or grid.data.shape[-1] != 2:
        raise ValueError(f"grid must have shape (N, H_out, W_out, 2), got {grid.data.shape}")
    if input.data.shape[0] != grid.data.shape[0]:
        raise ValueError(f"batch sizes differ: input has {input.data.shape[0]}, "
                         f"grid has {grid.data.shape[0]}")
    if input.data.dtype != grid.data.dtype:
        raise ValueError(f"input ({input.data.dtype}) and grid ({grid.data.dtype}) must have "
                         "the same dtype")
    if min(input.data.shape[2:]) < 1:
        raise ValueError(f"input must have H, W >= 1, got shape {input.data.shape}")
    _choice(mode, tuple(MODES), "mode")
    _choice(padding_mode, tuple(PADDINGS), "padding_mode")
    if not isinstance(fill_value, numbers.Real) or not np.isfinite(fill_value):
        raise ValueError(f"fill_value must be a finite number, got {fill_value!r}")
    return GridSample.apply(input, grid, mode, padding_mode, bool(align_corners),
                            float(fill_value))
