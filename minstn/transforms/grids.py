"""Grid generators beyond affine, as pure array functions (no Tensor in sight).

The grid generator of a spatial transformer (section 3.2) maps every pixel of the
*output* (target) image to a point of the *input* (source) image,
``(x_s, y_s) = T_theta(x_t, y_t)``. Eq. (1) is the affine case; Table 1 also trains
with an *attention* transform (3 parameters), a *projective* transform (8) and a
16-point *thin plate spline* (TPS, Bookstein 1989). This module holds the forward and
the hand-written backward of those three, in PyTorch's conventions, so that a grid made
here can be fed to ``F.grid_sample``: normalised coordinates (-1 and +1 the edges of
the image, or the centres of its corner pixels with ``align_corners``), grids of shape
``(N, H_out, W_out, 2)`` with last axis ``(x, y)``, and target coordinates ``(x_t, y_t)``
that are eq. (1)'s base coordinates (``minstn.kernels.pixel.base_coordinates``, the same
numbers as the affine grid's).

Every ``*_backward`` here takes ``grad_grid = dL/dgrid`` (shape of the grid) and
returns ``dL/dparams``; ``minstn.transforms.functions`` wires them into autograd.
"""

from __future__ import annotations

import functools

import numpy as np

from .. import checks
from ..kernels.pixel import base_coordinates

__all__ = [
    "base_grid",
    "attention_grid_forward",
    "attention_grid_backward",
    "projective_grid_forward",
    "projective_grid_backward",
    "PROJECTIVE_EPS",
    "tps_control_points",
    "tps_radial_basis",
    "tps_kernel_inverse",
    "tps_basis",
    "tps_grid_forward",
    "tps_grid_backward",
]


# ---------------------------------------------------------------------------
# the target grid (x_t, y_t) shared by every transform
# ---------------------------------------------------------------------------


def _hw(size) -> tuple[int, int]:
    """(H_out, W_out) from ``size`` = (N, C, H, W) as in ``affine_grid``, or (H, W)."""
    size = tuple(checks.integer(s, "size", "grid") for s in size)
    if len(size) not in (2, 4) or min(size[-2:]) < 1:
        raise ValueError(f"size must be (N, C, H, W) or (H, W) with H, W >= 1; got {size}")
    return size[-2], size[-1]


@functools.lru_cache(maxsize=64)
def _base_grid64(h: int, w: int, align_corners: bool) -> np.ndarray:
    xs = base_coordinates(w, align_corners)
    ys = base_coordinates(h, align_corners)
    grid = np.empty((h, w, 2))
    grid[..., 0] = xs[None, :]  # x varies along the width
    grid[..., 1] = ys[:, None]  # y varies along the height
    grid.flags.writeable = False  # cached: a caller must not be able to corrupt it
    return grid


def base_grid(size, align_corners: bool = False, dtype=np.float64) -> np.ndarray:
    """The identity grid ``(H, W, 2)`` of target points ``(x_t, y_t)``, read-only."""
    h, w = _hw(size)
    grid = _base_grid64(h, w, bool(align_corners))
    return grid if np.dtype(dtype) == np.float64 else grid.astype(dtype)


def _check_batch(params: np.ndarray, name: str, tail: tuple) -> None:
    if params.ndim != 1 + len(tail) or params.shape[1:] != tail:
        want = "(N, " + ", ".join(str(t) for t in tail) + ")"
        raise ValueError(f"{name} must have shape {want}; got {params.shape}")


# ---------------------------------------------------------------------------
# attention: theta = [[s, 0, tx], [0, s, ty]]   (Table 1, "Att")
# ---------------------------------------------------------------------------


def attention_grid_forward(params: np.ndarray, size, align_corners: bool = False) -> np.ndarray:
    """Attention grid: isotropic scale ``s`` plus translation ``(tx, ty)``.

    ``params`` is ``(N, 3)`` = ``(s, tx, ty)``; this is eq. (2), the affine eq. (1) with
    ``A_theta = [[s, 0, tx], [0, s, ty]]`` (section 3.2 of the paper), i.e.
    ``x_s = s x_t + tx`` and ``y_s = s y_t + ty``. Identity: ``(1, 0, 0)``.
    """
    params = np.asarray(params)
    _check_batch(params, "params", (3,))
    base = base_grid(size, align_corners, params.dtype)
    s = params[:, 0, None, None, None]
    t = params[:, None, None, 1:3]  # (N, 1, 1, 2): (tx, ty) lines up with the (x, y) axis
    return s * base[None] + t


def attention_grid_backward(grad_grid: np.ndarray, size, align_corners: bool = False) -> np.ndarray:
    """dL/d(s, tx, ty) from dL/dgrid.

    ``dx_s/ds = x_t``, ``dy_s/ds = y_t``, ``dx_s/dtx = dy_s/dty = 1``; summing over
    the output pixels is the chain rule through every grid point at once.
    """
    grad_grid = np.asarray(grad_grid)
    base = base_grid(size, align_corners, grad_grid.dtype)
    n, pixels = grad_grid.shape[0], base.shape[0] * base.shape[1]  # no -1 in reshape: n may be 0
    grad = np.empty((n, 3), dtype=grad_grid.dtype)
    # sum over pixels of g_x x_t + g_y y_t: one dot product per sample
    grad[:, 0] = grad_grid.reshape(n, 2 * pixels) @ base.reshape(-1)
    # sum over pixels of (g_x, g_y), as ones @ g: NumPy's strided .sum(axis=1) is ~100x slower here
    grad[:, 1:] = np.ones(pixels, grad_grid.dtype) @ grad_grid.reshape(n, pixels, 2)
    return grad


# ---------------------------------------------------------------------------
# projective: an 8-parameter homography   (Table 1, "Proj")
# ---------------------------------------------------------------------------

#: Smallest magnitude the projective denominator may take (see projective_grid_forward).
PROJECTIVE_EPS = 1e-6


def _projective_parts(theta, size, align_corners, eps):
    """Numerators, raw denominator and the clamped denominator, shared by fwd and bwd."""
    theta = np.asarray(theta)
    _check_batch(theta, "theta", (8,))
    base = base_grid(size, align_corners, theta.dtype)
    x, y = base[None, ..., 0], base[None, ..., 1]  # (1, H, W)
    t = [theta[:, k, None, None] for k in range(8)]  # eight (N, 1, 1) columns
    num_x = t[0] * x + t[1] * y + t[2]
    num_y = t[3] * x + t[4] * y + t[5]
    den = t[6] * x + t[7] * y + 1
    # Keep the sign (sign(0) counts as +) and push |den| up to eps: the points on
    # the "horizon" line den = 0 go far outside the image instead of to infinity.
    sign = np.where(den < 0, -1, 1).astype(den.dtype)
    clamped = np.abs(den) < eps
    den_safe = np.where(clamped, sign * eps, den)
    return x, y, num_x, num_y, den_safe, clamped


def projective_grid_forward(theta: np.ndarray, size, align_corners: bool = False,
                            eps: float = PROJECTIVE_EPS) -> np.ndarray:
    """Projective (homography) grid, ``theta`` of shape ``(N, 8)``.

    With ``H = [[t0, t1, t2], [t3, t4, t5], [t6, t7, 1]]`` acting on homogeneous
    target points, the source point is::

        x_s = (t0 x_t + t1 y_t + t2) / (t6 x_t + t7 y_t + 1)
        y_s = (t3 x_t + t4 y_t + t5) / (t6 x_t + t7 y_t + 1)

    Identity: ``(1, 0, 0, 0, 1, 0, 0, 0)``; with ``t6 = t7 = 0`` it is the affine
    eq. (1). Fixing ``H[2, 2] = 1`` removes the scale ambiguity of homogeneous
    coordinates, which is why the paper counts 8 parameters.

    Safe denominator: where ``|den| < eps`` the denominator is replaced by
    ``+-eps`` with den's sign (``+eps`` at exactly 0). The map is then finite for
    every finite ``theta`` (points near the horizon line land ~1/eps away, far
    outside the image, where the sampler reads padding), and the backward is the
    exact gradient of this clamped function: inside the clamp the denominator is
    a constant, so ``t6`` and ``t7`` get no gradient from those points.
    """
    _, _, num_x, num_y, den, _ = _projective_parts(theta, size, align_corners, eps)
    return np.stack([num_x / den, num_y / den], axis=-1)


def projective_grid_backward(grad_grid: np.ndarray, theta: np.ndarray, size,
                             align_corners: bool = False, eps: float = PROJECTIVE_EPS) -> np.ndarray:
    """dL/dtheta ``(N, 8)`` for :func:`projective_grid_forward` (quotient rule).

    ``x_s = a / d`` gives ``dx_s/da = 1/d`` and ``dx_s/dd = -a/d^2 = -x_s/d``;
    ``a`` is linear in ``t0..t2`` with coefficients ``(x_t, y_t, 1)``, ``d`` is
    linear in ``t6, t7`` with coefficients ``(x_t, y_t)`` (zero where clamped).
    """
    x, y, num_x, num_y, den, clamped = _projective_parts(theta, size, align_corners, eps)
    grad_grid = np.asarray(grad_grid)
    gx = grad_grid[..., 0] / den  # dL/d(num_x)
    gy = grad_grid[..., 1] / den  # dL/d(num_y)
    # dL/d(den) = -(gx * x_s + gy * y_s), and nothing where the clamp holds den fixed
    gden = np.where(clamped, 0, -(gx * num_x + gy * num_y) / den)
    # Summing over the output pixels against the coefficients (x_t, y_t, 1) is a
    # matrix product: (N, H*W) @ (H*W, 3).
    n = grad_grid.shape[0]
    coeffs = np.stack([x.ravel(), y.ravel(), np.ones(x.size, x.dtype)], axis=1)
    grad = np.empty((n, 8), dtype=grad_grid.dtype)
    grad[:, 0:3] = gx.reshape(n, x.size) @ coeffs  # d/d(t0, t1, t2); x.size, not -1: n may be 0
    grad[:, 3:6] = gy.reshape(n, x.size) @ coeffs  # d/d(t3, t4, t5)
    grad[:, 6:8] = gden.reshape(n, x.size) @ coeffs[:, :2]  # d/d(t6, t7)
    return grad


# ---------------------------------------------------------------------------
# thin plate spline   (Table 1, "TPS"; Bookstein 1989)
# ---------------------------------------------------------------------------


def _grid_shape(grid_shape) -> tuple[int, int]:
    if not isinstance(grid_shape, (tuple, list)) or len(grid_shape) != 2:
        raise ValueError(f"grid_shape must be (rows, cols); got {grid_shape!r}")
    gh, gw = (checks.integer(g, "grid_shape", "tps") for g in grid_shape)  # 2.5 is refused, not cut to 2
    if gh < 2 or gw < 2:
        # a single row or column of control points is collinear: L is singular
        raise ValueError(f"grid_shape must be (rows, cols) with both >= 2; got {tuple(grid_shape)}")
    return gh, gw


@functools.lru_cache(maxsize=16)
def _control_points64(gh: int, gw: int) -> np.ndarray:
    xs = np.linspace(-1.0, 1.0, gw)
    ys = np.linspace(-1.0, 1.0, gh)
    pts = np.stack(np.meshgrid(xs, ys, indexing="xy"), axis=-1).reshape(gh * gw, 2)
    pts.flags.writeable = False
    return pts


def tps_control_points(grid_shape=(4, 4)) -> np.ndarray:
    """The ``K = rows * cols`` TPS control points ``(K, 2)`` on a regular grid over [-1, 1].

    Row-major: y is the outer loop, x the inner, each point stored as ``(x, y)``;
    so for 4x4, point 0 is (-1, -1) (top left), point 3 is (1, -1) (top right) and
    point 15 is (1, 1). They are the *target* positions; the offsets of
    :func:`tps_grid_forward` move the matching *source* points.
    """
    return _control_points64(*_grid_shape(grid_shape))


def tps_radial_basis(r2: np.ndarray) -> np.ndarray:
    """``U(r) = r^2 log r^2`` evaluated from the squared distance ``r2``, with ``U(0) = 0``.

    ``r^2 log r^2 -> 0`` as ``r -> 0``, but ``0 * log 0`` is ``0 * -inf = nan`` in
    floating point, so log is taken of 1 where r2 == 0 (giving exactly 0).
    """
    r2 = np.asarray(r2, dtype=np.float64)
    positive = r2 > 0
    return np.where(positive, r2 * np.log(np.where(positive, r2, 1.0)), 0.0)


@functools.lru_cache(maxsize=16)
def _kernel_inverse64(gh: int, gw: int) -> np.ndarray:
    c = _control_points64(gh, gw)
    k = c.shape[0]
    r2 = ((c[:, None, :] - c[None, :, :]) ** 2).sum(-1)
    p = np.concatenate([np.ones((k, 1)), c], axis=1)  # (K, 3): the affine part [1, x, y]
    L = np.zeros((k + 3, k + 3))
    L[:k, :k] = tps_radial_basis(r2)
    L[:k, k:] = p
    L[k:, :k] = p.T
    inv = np.linalg.inv(L)
    inv.flags.writeable = False
    return inv


def tps_kernel_inverse(grid_shape=(4, 4)) -> np.ndarray:
    """``L^-1`` of Bookstein's TPS system, ``(K + 3, K + 3)``, float64, read-only.

    ``L = [[K, P], [P^T, 0]]`` with ``K_ij = U(|c_i - c_j|)`` and ``P_i = (1, x_i, y_i)``.
    Solving ``L [w; a] = [v; 0]`` gives the spline through values ``v`` at the
    control points: ``f(p) = sum_i w_i U(|p - c_i|) + a_0 + a_1 x + a_2 y``; the
    zero block forces the bending weights ``w`` to carry no affine part.
    It depends only on the control points, so it is computed once and cached.
    """
    return _kernel_inverse64(*_grid_shape(grid_shape))


@functools.lru_cache(maxsize=32)
def _tps_basis64(h: int, w: int, gh: int, gw: int, align_corners: bool) -> np.ndarray:
    c = _control_points64(gh, gw)
    pts = _base_grid64(h, w, align_corners).reshape(-1, 2)  # (HW, 2) target points
    r2 = ((pts[:, None, :] - c[None, :, :]) ** 2).sum(-1)  # (HW, K)
    a = np.concatenate([tps_radial_basis(r2), np.ones((pts.shape[0], 1)), pts], axis=1)
    basis = a @ _kernel_inverse64(gh, gw)[:, : c.shape[0]]  # (HW, K)
    basis.flags.writeable = False
    return basis


def tps_basis(size, grid_shape=(4, 4), align_corners: bool = False) -> np.ndarray:
    """The ``(H*W, K)`` matrix ``B`` with ``grid = B @ source_points``; float64, read-only.

    Row ``p`` of ``[U(|p - c_1|) ... U(|p - c_K|), 1, x_p, y_p] @ L^-1[:, :K]``: the
    spline evaluated at output pixel ``p`` is a fixed linear combination of the
    values at the control points. That is why the TPS grid generator is linear in
    its parameters and why ``B`` is cached per (size, grid_shape, align_corners).
    Because a TPS reproduces affine maps exactly, ``B @ control_points`` is the
    identity grid; :func:`tps_grid_forward` uses that to write the grid as
    ``identity + B @ offsets``, which is exactly the identity at zero offsets.
    """
    h, w = _hw(size)
    return _tps_basis64(h, w, *_grid_shape(grid_shape), bool(align_corners))


def tps_grid_forward(offsets: np.ndarray, size, grid_shape=(4, 4), align_corners: bool = False) -> np.ndarray:
    """TPS grid: source control points = regular control points + ``offsets`` ``(N, K, 2)``.

    The returned ``(N, H, W, 2)`` grid is the thin plate spline (Bookstein 1989)
    that maps each control point ``c_k`` to ``c_k + offsets[:, k]`` with least
    bending energy; zero offsets give the identity grid. With
    ``align_corners=True`` and an output the size of the control grid, the output
    pixels *are* the control points and the grid equals ``c + offsets``.
    """
    offsets = np.asarray(offsets)
    gh, gw = _grid_shape(grid_shape)
    _check_batch(offsets, "offsets", (gh * gw, 2))
    h, w = _hw(size)
    basis = tps_basis(size, grid_shape, align_corners).astype(offsets.dtype, copy=False)
    base = base_grid(size, align_corners, offsets.dtype).reshape(1, h * w, 2)
    return (base + basis @ offsets).reshape(-1, h, w, 2)


def tps_grid_backward(grad_grid: np.ndarray, size, grid_shape=(4, 4), align_corners: bool = False) -> np.ndarray:
    """dL/doffsets ``(N, K, 2)``: the grid is ``base + B @ offsets``, so it is ``B^T @ grad``."""
    grad_grid = np.asarray(grad_grid)
    h, w = _hw(size)
    basis = tps_basis(size, grid_shape, align_corners).astype(grad_grid.dtype, copy=False)
    return basis.T @ grad_grid.reshape(-1, h * w, 2)
