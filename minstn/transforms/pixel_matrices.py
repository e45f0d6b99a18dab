"""Between normalised theta and pixel-space matrices (pure arrays).

A theta (Jaderberg et al. 2015, eq. (1)) works in normalised coordinates, where
both axes run over [-1, 1] whatever the image's size. Libraries such as OpenCV
and most augmentation code think in pixels. This module converts between the two,
for affine ``(2, 3)`` matrices and projective ``(3, 3)`` homographies, and builds
rotations that stay rigid on non-square images.

Pixel convention (OpenCV's, and PyTorch's ``grid_sample``): pixel ``(ix, iy)`` has its
centre at integer coordinates, ``ix`` in ``[0, W - 1]`` left to right, ``iy`` in
``[0, H - 1]`` top to bottom. A *pixel matrix* ``M`` maps a **destination**
(output) pixel to the **source** (input) pixel it reads, exactly as
``cv2.warpAffine(src, M, (W_out, H_out), flags=cv2.WARP_INVERSE_MAP)`` (and
``cv2.warpPerspective`` with the same flag) interpret it::

    dst(x, y) = src(M11 x + M12 y + M13, M21 x + M22 y + M23)

That is the same direction as theta (output -> input), so no inversion is needed;
without ``WARP_INVERSE_MAP`` OpenCV would invert ``M`` first.
"""

from __future__ import annotations

import numpy as np

from .. import checks

__all__ = [
    "normaliser",
    "pixel_matrix_from_theta",
    "theta_from_pixel_matrix",
    "homography_matrix",
    "homography_params",
    "homography_from_points",
    "pixel_offsets_to_normalised",
    "aspect_factors",
    "rotation_theta_array",
]


def _axis_scale(n: int, align_corners: bool) -> float:
    """Half the extent of one axis in pixels: ``ix = a * x + (n - 1) / 2``."""
    return (n - 1) / 2 if align_corners else n / 2


def _sizes(hw) -> tuple[int, int]:
    """``(H, W)`` as ints; a float such as 27.5 is refused rather than cut to 27."""
    h, w = hw
    return checks.integer(h, "H", "pixel size"), checks.integer(w, "W", "pixel size")


def normaliser(hw, align_corners: bool = False) -> np.ndarray:
    """The ``3x3`` matrix ``D`` taking normalised ``(x, y, 1)`` to pixel ``(ix, iy, 1)``.

    PyTorch's ``grid_sample``: ``ix = (x + 1) / 2 * (W - 1)`` (align_corners=True) and
    ``ix = ((x + 1) * W - 1) / 2`` (False); both are ``ix = a x + (W - 1) / 2``
    with ``a = (W - 1) / 2`` or ``W / 2``. Note the centre of the image is the
    normalised origin in both conventions.
    """
    h, w = _sizes(hw)
    return np.array([
        [_axis_scale(w, align_corners), 0.0, (w - 1) / 2],
        [0.0, _axis_scale(h, align_corners), (h - 1) / 2],
        [0.0, 0.0, 1.0],
    ])


def _normaliser_inv(hw, align_corners: bool, name: str) -> np.ndarray:
    d = normaliser(hw, align_corners)
    a_w, a_h = d[0, 0], d[1, 1]
    if a_w == 0 or a_h == 0:
        # align_corners=True and a size of 1: every normalised x is pixel 0
        raise ValueError(f"{name} = {tuple(hw)}: a size-1 axis with align_corners=True "
                         "has no invertible pixel <-> normalised map")
    # x = (ix - b) / a, written out rather than np.linalg.inv(d)
    return np.array([[1 / a_w, 0.0, -d[0, 2] / a_w], [0.0, 1 / a_h, -d[1, 2] / a_h], [0.0, 0.0, 1.0]])


def _as_3x3(m: np.ndarray, name: str) -> tuple[np.ndarray, bool]:
    m = np.asarray(m, dtype=np.float64)
    if m.ndim not in (2, 3) or m.shape[-2:] not in ((2, 3), (3, 3)):
        raise ValueError(f"{name} must have shape (2, 3), (3, 3), (N, 2, 3) or (N, 3, 3); got {m.shape}")
    affine = m.shape[-2:] == (2, 3)
    if affine:
        last = np.broadcast_to(np.array([0.0, 0.0, 1.0]), m.shape[:-2] + (1, 3))
        m = np.concatenate([m, last], axis=-2)
    return m, affine


def _back(m: np.ndarray, affine: bool) -> np.ndarray:
    if affine:
        return m[..., :2, :]
    # a homography is defined up to scale: fix H[2, 2] = 1 as the 8-parameter form does
    return m / m[..., 2:3, 2:3]


def pixel_matrix_from_theta(theta, in_hw, out_hw=None, align_corners: bool = False) -> np.ndarray:
    """Pixel matrix ``M`` (dst pixel -> src pixel) equivalent to ``theta``.

    ``theta`` is an affine ``(2, 3)`` / ``(N, 2, 3)`` or a homography ``(3, 3)`` /
    ``(N, 3, 3)`` (see :func:`homography_matrix` for the 8-vector form);
    ``in_hw = (H_in, W_in)`` is the source image, ``out_hw`` the output (default:
    same). ``M = D_in @ theta @ D_out^-1``: pixel -> normalised (output), apply
    theta, normalised -> pixel (input).
    """
    m, affine = _as_3x3(theta, "theta")
    out_hw = in_hw if out_hw is None else out_hw
    return _back(normaliser(in_hw, align_corners) @ m @ _normaliser_inv(out_hw, align_corners, "out_hw"), affine)


def theta_from_pixel_matrix(matrix, in_hw, out_hw=None, align_corners: bool = False) -> np.ndarray:
    """Inverse of :func:`pixel_matrix_from_theta`: ``theta = D_in^-1 @ M @ D_out``."""
    m, affine = _as_3x3(matrix, "matrix")
    out_hw = in_hw if out_hw is None else out_hw
    return _back(_normaliser_inv(in_hw, align_corners, "in_hw") @ m @ normaliser(out_hw, align_corners), affine)


def homography_matrix(theta) -> np.ndarray:
    """8-vector(s) ``(..., 8)`` -> ``(..., 3, 3)`` matrices ``[[t0 t1 t2], [t3 t4 t5], [t6 t7 1]]``."""
    theta = np.asarray(theta, dtype=np.float64)
    if theta.shape[-1:] != (8,):
        raise ValueError(f"theta must have shape (..., 8); got {theta.shape}")
    ones = np.ones(theta.shape[:-1] + (1,))
    return np.concatenate([theta, ones], axis=-1).reshape(theta.shape[:-1] + (3, 3))


def homography_params(matrix) -> np.ndarray:
    """``(..., 3, 3)`` homographies -> 8-vectors, after scaling so that ``H[2, 2] = 1``."""
    m = np.asarray(matrix, dtype=np.float64)
    if m.shape[-2:] != (3, 3):
        raise ValueError(f"matrix must have shape (..., 3, 3); got {m.shape}")
    return (m / m[..., 2:3, 2:3]).reshape(m.shape[:-2] + (9,))[..., :8]


def homography_from_points(target_pts, source_pts) -> np.ndarray:
    """The ``3x3`` homography ``H`` (``H[2,2] = 1``) with ``H @ target ~ source``.

    Direct linear transform on ``>= 4`` point pairs ``(K, 2)`` given as ``(x, y)``
    (least squares when ``K > 4``). It maps target -> source, the direction of a
    grid generator: feed it the output-image corners and where they should read
    from in the input. Works in any coordinate frame (pixels or normalised).
    """
    t = np.asarray(target_pts, dtype=np.float64)
    s = np.asarray(source_pts, dtype=np.float64)
    if t.ndim != 2 or t.shape[1] != 2 or t.shape[0] < 4 or s.shape != t.shape:
        raise ValueError(f"target_pts and source_pts must both be (K >= 4, 2); got {t.shape} and {s.shape}")
    x, y = t[:, 0], t[:, 1]
    u, v = s[:, 0], s[:, 1]
    zero, one = np.zeros_like(x), np.ones_like(x)
    # u (h6 x + h7 y + 1) = h0 x + h1 y + h2, and likewise for v: linear in h0..h7
    rows_u = np.stack([x, y, one, zero, zero, zero, -u * x, -u * y], axis=1)
    rows_v = np.stack([zero, zero, zero, x, y, one, -v * x, -v * y], axis=1)
    a = np.concatenate([rows_u, rows_v])
    b = np.concatenate([u, v])
    h = np.linalg.lstsq(a, b, rcond=None)[0]
    return homography_matrix(h)


def pixel_offsets_to_normalised(offsets_px, hw, align_corners: bool = False) -> np.ndarray:
    """Convert displacements ``(..., 2)`` in pixels ``(dx, dy)`` to normalised units.

    One pixel is ``1 / a`` normalised units (``a`` = W/2, or (W-1)/2 with
    align_corners=True), per axis; e.g. the E distortion's N(0, 1.5 px) TPS moves.
    """
    h, w = _sizes(hw)
    offsets_px = np.asarray(offsets_px, dtype=np.float64)
    scale = np.array([_axis_scale(w, align_corners), _axis_scale(h, align_corners)])
    if (scale == 0).any():
        raise ValueError(f"hw = {(h, w)}: a size-1 axis with align_corners=True has no pixel scale")
    return offsets_px / scale


def aspect_factors(h: int, w: int, align_corners: bool = False) -> tuple[float, float]:
    """``(a_h / a_w, a_w / a_h)``: how a pixel-space rotation shears normalised axes.

    Normalised x is pixel x divided by ``a_w``, normalised y pixel y by ``a_h``;
    rotating rigidly in pixels therefore reads, in normalised coordinates,
    ``x' = c x - s (a_h / a_w) y`` and ``y' = s (a_w / a_h) x + c y``. On a square
    image both factors are 1 and this is PyTorch's plain ``[[c, -s], [s, c]]``.
    """
    h, w = _sizes((h, w))
    a_w = _axis_scale(w, align_corners) or 1.0  # size-1 axis with align_corners: no extent
    a_h = _axis_scale(h, align_corners) or 1.0
    return a_h / a_w, a_w / a_h


def rotation_theta_array(angle, h: int, w: int, align_corners: bool = False) -> np.ndarray:
    """Aspect-correct rotation thetas ``(N, 2, 3)`` (float64) for angles ``(N,)`` in radians.

    The output pixel at offset ``d`` from the image centre reads the input at
    ``R(angle) d`` from the centre, rigidly in pixels, so the content appears
    rotated by ``angle`` counter-clockwise on screen (y points down), like
    ``cv2.getRotationMatrix2D``. See :func:`minstn.transforms.rotation_theta` for
    the differentiable version.
    """
    angle = np.atleast_1d(np.asarray(angle, dtype=np.float64))
    ky, kx = aspect_factors(h, w, align_corners)
    c, s, z = np.cos(angle), np.sin(angle), np.zeros_like(angle)
    return np.stack([np.stack([c, -s * ky, z], -1), np.stack([s * kx, c, z], -1)], -2)
