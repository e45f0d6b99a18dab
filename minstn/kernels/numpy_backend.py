"""Vectorised NumPy backend: gathers for the forward, ``np.add.at`` for the scatter.

The same math as ``pixel.py`` (read that file first), expressed on whole arrays:
every output location is handled at once, the four bilinear taps of eq. (5) are
four fancy-indexing gathers, and the input gradient of eq. (6) is a scatter-add
(``np.add.at`` accumulates repeated indices, a plain ``+=`` would not).

Coordinate math runs in float64 (as in every backend) so that the taps agree bit for
bit with ``cpu.py`` and ``cuda.py``; results are cast back to the input dtype.
"""
import numpy as np

from . import pixel
from .pixel import NEAREST, BORDER, REFLECTION, OUTSIDE


# ------------------------------------------------------------ coordinates ----
def clip_coordinates(x, size):
    """Vectorised ``pixel.clip_coordinate``: clamp to [0, size-1], derivative 0 at the clamp."""
    hi = size - 1.0
    clamped = (x <= 0.0) | (x >= hi)
    return np.where(x <= 0.0, 0.0, np.where(x >= hi, hi, x)), np.where(clamped, 0.0, 1.0)


def reflect_coordinates(x, twice_low, twice_high):
    """Vectorised ``pixel.reflect_coordinate`` (mirrors at twice_low/2 and twice_high/2)."""
    if twice_low == twice_high:
        return np.zeros_like(x), np.zeros_like(x)
    low = twice_low / 2.0
    span = (twice_high - twice_low) / 2.0
    x = x - low
    sign = np.where(x < 0.0, -1.0, 1.0)
    x = np.abs(x)
    r = np.mod(x, 2.0 * span)                    # exact, as in pixel.reflect_coordinate
    even = r < span
    return np.where(even, r + low, 2.0 * span - r + low), np.where(even, sign, -sign)


def source_indices(coord, size, padding, align_corners):
    """Vectorised ``pixel.source_index``: grid values -> (pixel coords, d pixel / d grid).

    Non-finite or hopelessly-outside values become (OUTSIDE, 0): all taps outside.
    """
    coord = np.asarray(coord, dtype=np.float64)
    finite = np.isfinite(coord)
    with np.errstate(all="ignore"):                 # 1e308 * W overflows: fine, caught below
        ix, g = pixel.unnormalize(np.where(finite, coord, 0.0), size, align_corners)
        g = np.full_like(ix, g)
        if padding == BORDER:
            ix, gc = clip_coordinates(ix, size)
            g = g * gc
        elif padding == REFLECTION:
            if align_corners:
                ix, gr = reflect_coordinates(ix, 0.0, 2.0 * (size - 1))
            else:
                ix, gr = reflect_coordinates(ix, -1.0, 2.0 * size - 1.0)
            ix, gc = clip_coordinates(ix, size)
            g = g * gr * gc
        ok = finite & (ix > -2.0) & (ix < size + 1.0)
    return np.where(ok, ix, OUTSIDE), np.where(ok, g, 0.0)


# ------------------------------------------------------------ affine grid ----
def affine_grid_forward(theta, size, align_corners):
    """Eq. (1): (x_s, y_s) = A_theta (x_t, y_t, 1) for every target location."""
    N, _, H, W = size
    t = theta.astype(np.float64)
    xt = pixel.base_coordinates(W, align_corners)[None, None, :]
    yt = pixel.base_coordinates(H, align_corners)[None, :, None]
    grid = np.empty((N, H, W, 2), dtype=theta.dtype)
    for row in range(2):
        a = t[:, row, :, None, None]
        grid[..., row] = a[:, 0] * xt + a[:, 1] * yt + a[:, 2]
    return grid


def affine_grid_backward(grad_grid, size, align_corners):
    """dL/dA_theta = sum over target locations of dL/d(x_s, y_s) (x_t, y_t, 1)^T."""
    N, _, H, W = size
    g = grad_grid.astype(np.float64)
    xt = pixel.base_coordinates(W, align_corners)
    yt = pixel.base_coordinates(H, align_corners)
    out = np.empty((N, 2, 3), dtype=np.float64)
    out[:, :, 0] = np.einsum("nhwr,w->nr", g, xt)
    out[:, :, 1] = np.einsum("nhwr,h->nr", g, yt)
    out[:, :, 2] = g.sum(axis=(1, 2))
    return out.astype(grad_grid.dtype)


# --------------------------------------------------------------- sampler ----
def _taps(grid, H, W, mode, padding, align_corners):
    """Everything about the taps that does not depend on the channel."""
    ix, mx = source_indices(grid[..., 0], W, padding, align_corners)
    iy, my = source_indices(grid[..., 1], H, padding, align_corners)
    if mode == NEAREST:
        x = np.rint(ix).astype(np.int64)
        y = np.rint(iy).astype(np.int64)
        return dict(x=x, y=y, mx=mx, my=my)
    x0f, y0f = np.floor(ix), np.floor(iy)
    x0, y0 = x0f.astype(np.int64), y0f.astype(np.int64)
    return dict(x0=x0, y0=y0, wx0=(x0f + 1.0) - ix, wx1=ix - x0f,
                wy0=(y0f + 1.0) - iy, wy1=iy - y0f, mx=mx, my=my)


def _inside(y, x, H, W):
    return (x >= 0) & (x < W) & (y >= 0) & (y < H)


def _gather(inp, y, x, fill):
    """U[n, :, y, x] for every location -> (N, Ho, Wo, C) float64; outside taps read fill."""
    N, C, H, W = inp.shape
    n = np.arange(N)[:, None, None]
    inside = _inside(y, x, H, W)
    v = inp[n, :, np.clip(y, 0, max(H - 1, 0)), np.clip(x, 0, max(W - 1, 0))]
    return np.where(inside[..., None], v.astype(np.float64), fill)


def _scatter(grad_in, y, x, values):
    """grad_in[n, :, y, x] += values (N, Ho, Wo, C), skipping taps outside the image."""
    N, C, H, W = grad_in.shape
    inside = _inside(y, x, H, W)
    n = np.broadcast_to(np.arange(N)[:, None, None], y.shape)
    np.add.at(grad_in, (n[inside], slice(None), y[inside], x[inside]), values[inside])


def grid_sample_forward(input, grid, mode, padding_mode, align_corners, fill_value=0.0):
    """Eq. (3) with kernel (4) or (5), 4-tap form. Returns (N, C, Ho, Wo)."""
    mode, padding, fill = pixel.option_codes(mode, padding_mode, fill_value)
    N, C, H, W = input.shape
    t = _taps(grid, H, W, mode, padding, align_corners)
    if input.size == 0 or grid.size == 0:
        return np.zeros((N, C) + grid.shape[1:3], dtype=input.dtype)
    if mode == NEAREST:
        out = _gather(input, t["y"], t["x"], fill)
    else:
        wx0, wx1 = t["wx0"][..., None], t["wx1"][..., None]
        wy0, wy1 = t["wy0"][..., None], t["wy1"][..., None]
        x0, y0 = t["x0"], t["y0"]
        v00 = _gather(input, y0, x0, fill)
        v01 = _gather(input, y0, x0 + 1, fill)
        v10 = _gather(input, y0 + 1, x0, fill)
        v11 = _gather(input, y0 + 1, x0 + 1, fill)
        out = wy0 * (wx0 * v00 + wx1 * v01) + wy1 * (wx0 * v10 + wx1 * v11)
    return np.ascontiguousarray(out.transpose(0, 3, 1, 2)).astype(input.dtype)


def grid_sample_backward(grad_output, input, grid, mode, padding_mode, align_corners,
                         fill_value=0.0, need_input_grad=True, need_grid_grad=True):
    """Eq. (6) (scatter into grad_input) and eq. (7) (grad_grid). Returns a pair."""
    mode, padding, fill = pixel.option_codes(mode, padding_mode, fill_value)
    N, C, H, W = input.shape
    grad_in = np.zeros(input.shape, dtype=np.float64) if need_input_grad else None
    grad_grid = np.zeros(grid.shape, dtype=grid.dtype) if need_grid_grad else None
    if input.size == 0 or grid.size == 0:
        return (None if grad_in is None else grad_in.astype(input.dtype)), grad_grid
    t = _taps(grid, H, W, mode, padding, align_corners)
    g = grad_output.transpose(0, 2, 3, 1).astype(np.float64)      # (N, Ho, Wo, C)
    if mode == NEAREST:
        if need_input_grad:
            _scatter(grad_in, t["y"], t["x"], g)
        # grad_grid stays exactly 0: the nearest kernel is piecewise constant.
    else:
        wx0, wx1 = t["wx0"][..., None], t["wx1"][..., None]
        wy0, wy1 = t["wy0"][..., None], t["wy1"][..., None]
        x0, y0 = t["x0"], t["y0"]
        if need_grid_grad:
            v00 = _gather(input, y0, x0, fill)
            v01 = _gather(input, y0, x0 + 1, fill)
            v10 = _gather(input, y0 + 1, x0, fill)
            v11 = _gather(input, y0 + 1, x0 + 1, fill)
            dx = (g * (wy0 * (v01 - v00) + wy1 * (v11 - v10))).sum(axis=-1)
            dy = (g * (wx0 * (v10 - v00) + wx1 * (v11 - v01))).sum(axis=-1)
            grad_grid[..., 0] = dx * t["mx"]
            grad_grid[..., 1] = dy * t["my"]
        if need_input_grad:
            _scatter(grad_in, y0, x0, g * (wy0 * wx0))
            _scatter(grad_in, y0, x0 + 1, g * (wy0 * wx1))
            _scatter(grad_in, y0 + 1, x0, g * (wy1 * wx0))
            _scatter(grad_in, y0 + 1, x0 + 1, g * (wy1 * wx1))
    return (None if grad_in is None else grad_in.astype(input.dtype)), grad_grid
