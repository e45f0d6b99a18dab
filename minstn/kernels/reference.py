"""The oracle: eq. (1) and (3)-(7) of the paper, computed literally, every pixel summed.

Jaderberg et al. write the sampler as a sum over all input pixels (n = row, m = column):

    eq. (3)  V_i^c = sum_n sum_m U_nm^c k(x_i^s - m) k(y_i^s - n)
    eq. (4)  nearest:  k(d) = delta(round(d))                   (one pixel gets weight 1)
    eq. (5)  bilinear: k(d) = max(0, 1 - |d|)
    eq. (6)  dV_i^c / dU_nm^c = max(0, 1 - |x_i^s - m|) max(0, 1 - |y_i^s - n|)
    eq. (7)  dV_i^c / dx_i^s = sum_n sum_m U_nm^c max(0, 1 - |y_i^s - n|) *
                                 { 0 if |m - x_i^s| >= 1;  1 if m >= x_i^s;  -1 if m < x_i^s }

This module evaluates exactly those sums -- every output location against every input
pixel, with ``np.einsum`` doing the double sum -- so it costs O(Ho Wo H W) and is only
for small images. Every faster backend is tested against it, so it is self-contained:
it imports nothing from the backends it checks (not even their coordinate helpers).
Read ``kernel_derivative`` and ``grid_sample_backward`` for two remarks on the printed
equations worth telling learners (the typo in eq. (6); eq. (7) at integer coordinates).
"""
import numpy as np


# ----------------------------------------------------------- coordinates ----
def base_coordinates(size, align_corners):
    """The target grid G of eq. (1) along one axis, as the convention is written:
    ``linspace(-1, 1, size)``, times ``(size - 1) / size`` when align_corners=False;
    a single pixel sits at 0."""
    if size == 1:
        return np.zeros(1)
    coords = np.linspace(-1.0, 1.0, size)
    return coords if align_corners else coords * (size - 1) / size


def homogeneous_base_grid(H, W, align_corners):
    """G = {(x_t, y_t, 1)} of eq. (1) -> (H, W, 3)."""
    base = np.ones((H, W, 3))
    base[..., 0] = base_coordinates(W, align_corners)[None, :]
    base[..., 1] = base_coordinates(H, align_corners)[:, None]
    return base


def pixel_coordinates(coord, size, padding_mode, align_corners):
    """Grid values in [-1, 1] -> (pixel coordinates, d pixel / d grid value).

    Unnormalise (align_corners=True: -1 and +1 are the centres of the corner pixels;
    False: their outer edges), then apply the padding rule: "border" clamps to
    [0, size-1] (derivative 0 where the clamp holds, end points included), "reflection"
    folds the coordinate back and forth between two mirrors (a triangle wave, slope +1
    or -1). A NaN or infinite grid value lies outside the image: -inf, zero weights.
    """
    coord = np.asarray(coord, dtype=np.float64)
    finite = np.isfinite(coord)
    with np.errstate(all="ignore"):
        if align_corners:
            ix, scale = (coord + 1.0) / 2.0 * (size - 1), (size - 1) / 2.0
            low, high = 0.0, size - 1.0               # mirrors at the corner pixel centres
        else:
            ix, scale = ((coord + 1.0) * size - 1.0) / 2.0, size / 2.0
            low, high = -0.5, size - 0.5              # mirrors at the image edges
        slope = np.full_like(ix, scale)
        if padding_mode == "reflection":
            span = high - low
            if span == 0:
                ix, slope = np.zeros_like(ix), np.zeros_like(ix)
            else:
                # reflect about `low` first, then the position within one period of the
                # triangle wave: |x - low| and its remainder are exact in floating point,
                # so a coordinate a hair inside a mirror stays inside (where the clamp's
                # derivative changes from 1 to 0)
                side = np.where(ix < low, -1.0, 1.0)
                t = np.mod(np.abs(ix - low), 2.0 * span)
                rising = t < span
                ix = np.where(rising, t + low, 2.0 * span - t + low)
                slope = slope * side * np.where(rising, 1.0, -1.0)
        if padding_mode in ("border", "reflection"):
            inside = (ix > 0.0) & (ix < size - 1.0)
            ix, slope = np.clip(ix, 0.0, size - 1.0), slope * inside
    ok = finite & np.isfinite(ix)                     # 1e308 * size overflows to inf
    return np.where(ok, ix, -np.inf), np.where(ok, slope, 0.0)


# ----------------------------------------------------------- affine grid ----
def affine_grid_forward(theta, size, align_corners):
    """Eq. (1): (x_s, y_s)^T = A_theta (x_t, y_t, 1)^T at every target location."""
    N, _, H, W = size
    base = homogeneous_base_grid(H, W, align_corners)
    return np.einsum("nij,hwj->nhwi", theta.astype(np.float64), base).astype(theta.dtype)


def affine_grid_backward(grad_grid, size, align_corners):
    """dL/dA_theta[i, j] = sum over target locations of dL/d(x_s, y_s)_i * (x_t, y_t, 1)_j."""
    N, _, H, W = size
    base = homogeneous_base_grid(H, W, align_corners)
    return np.einsum("nhwi,hwj->nij", grad_grid.astype(np.float64), base).astype(grad_grid.dtype)


# ---------------------------------------------------------------- kernels ----
def kernel_weights(coord, size, mode):
    """k(coord - m) for every pixel m in 0..size-1 -> (..., size), eq. (4) or (5).

    Nearest: the paper's eq. (4) uses floor(x + 0.5) (round half up); minstn follows
    PyTorch and rounds half to EVEN (np.rint). They differ only at exact half-integers.
    """
    m = np.arange(size, dtype=np.float64)
    if mode == "nearest":
        return (np.rint(coord)[..., None] == m).astype(np.float64)
    return np.maximum(0.0, 1.0 - np.abs(coord[..., None] - m))


def kernel_derivative(coord, size, mode):
    """Right-hand derivative d k(coord - m) / d coord -> (..., size).

    Eq. (7) read literally is not a one-sided derivative at an integer coordinate
    x_s = m: it gives +1 for the pixel m = x_s and 0 for m = x_s + 1, so dV/dx = U_m,
    which is neither the left derivative U_m - U_{m-1} nor the right one U_{m+1} - U_m.
    Every minstn backend uses the floor convention x0 = floor(x), x1 = x0 + 1 (as
    PyTorch), whose derivative is the RIGHT-HAND one. Here that is the right-hand
    derivative of k(d) = max(0, 1 - |d|) with d = x_s - m:
        dk/dx_s = -1 for 0 <= d < 1,  +1 for -1 <= d < 0,  0 otherwise,
    which differs from the literal eq. (7) only at the two kinks d = 0 and d = -1.
    The two conditions are m = floor(x_s) and m = floor(x_s) + 1, and they are tested in
    that form: floor is exact, while x_s - m can round (x_s = -1e-16 gives
    x_s - 1 = -1.0, which would put pixel 1 on the rising side too).
    """
    if mode == "nearest":
        return np.zeros(np.shape(coord) + (size,))   # piecewise constant
    m = np.arange(size, dtype=np.float64)
    left = np.floor(coord)[..., None]             # the left tap x0 = floor(x_s)
    return np.where(m == left, -1.0, np.where(m == left + 1.0, 1.0, 0.0))


def _prepare(input, grid, padding_mode, align_corners, fill_value):
    """Pixel coordinates of every sampling point, and the value read outside the image."""
    N, C, H, W = input.shape
    g = grid.reshape(N, grid.shape[1] * grid.shape[2], 2)
    xs, mx = pixel_coordinates(g[..., 0], W, padding_mode, align_corners)   # (N, P)
    ys, my = pixel_coordinates(g[..., 1], H, padding_mode, align_corners)
    fill = float(fill_value) if padding_mode == "zeros" else 0.0
    return fill, xs, ys, mx, my


def grid_sample_forward(input, grid, mode, padding_mode, align_corners, fill_value=0.0):
    """Eq. (3): V_i^c = sum_n sum_m U_nm^c k(x_i^s - m) k(y_i^s - n) (+ fill outside).

    The sum runs over the pixels inside the image; with padding_mode="zeros" the pixels
    outside read fill_value. The kernel weights over ALL integer (n, m) sum to 1 (a
    partition of unity), so the outside pixels together carry weight
    1 - sum_inside k k and contribute fill_value * (1 - sum_inside k k).
    """
    N, C, H, W = input.shape
    Ho, Wo = grid.shape[1:3]
    fill, xs, ys, _, _ = _prepare(input, grid, padding_mode, align_corners, fill_value)
    kx = kernel_weights(xs, W, mode)            # (N, P, W): k(x_i^s - m)
    ky = kernel_weights(ys, H, mode)            # (N, P, H): k(y_i^s - n)
    U = input.astype(np.float64)
    V = np.einsum("nchw,nph,npw->ncp", U, ky, kx)      # the double sum over every pixel
    V += fill * (1.0 - ky.sum(-1) * kx.sum(-1))[:, None, :]
    return V.reshape(N, C, Ho, Wo).astype(input.dtype)


def grid_sample_backward(grad_output, input, grid, mode, padding_mode, align_corners,
                         fill_value=0.0, need_input_grad=True, need_grid_grad=True):
    """Eq. (6) and (7), chained with dL/dV: returns (dL/dU or None, dL/dgrid or None).

    Eq. (6) is printed with a double sum over (n, m) in front. That is a typo: the
    derivative with respect to ONE pixel U_nm has no sum; the sum belongs to the chain
    rule over output locations i, dL/dU_nm = sum_i dL/dV_i dV_i/dU_nm.
    """
    N, C, H, W = input.shape
    Ho, Wo = grid.shape[1:3]
    fill, xs, ys, mx, my = _prepare(input, grid, padding_mode, align_corners, fill_value)
    G = grad_output.reshape(N, C, Ho * Wo).astype(np.float64)
    kx, ky = kernel_weights(xs, W, mode), kernel_weights(ys, H, mode)
    grad_in = grad_grid = None
    if need_input_grad:
        # eq. (6) without the printed double sum: dV_i/dU_nm = k(x_i - m) k(y_i - n);
        # the only sum is the chain rule over output locations i (p here).
        grad_in = np.einsum("ncp,nph,npw->nchw", G, ky, kx).astype(input.dtype)
    if need_grid_grad:
        U = input.astype(np.float64)
        dkx, dky = kernel_derivative(xs, W, mode), kernel_derivative(ys, H, mode)
        # eq. (7): dV/dx_s = sum_n sum_m U_nm k(y_s - n) dk(x_s - m)/dx_s, and the same
        # for y_s; the outside pixels add fill * d(1 - inside weight)/dx_s.
        dVdx = np.einsum("nchw,nph,npw->ncp", U, ky, dkx) - fill * (ky.sum(-1) * dkx.sum(-1))[:, None, :]
        dVdy = np.einsum("nchw,nph,npw->ncp", U, dky, kx) - fill * (dky.sum(-1) * kx.sum(-1))[:, None, :]
        gx = (G * dVdx).sum(axis=1) * mx        # chain rule through d(pixel)/d(grid)
        gy = (G * dVdy).sum(axis=1) * my
        grad_grid = np.stack([gx, gy], axis=-1).reshape(N, Ho, Wo, 2).astype(grid.dtype)
    return grad_in, grad_grid
