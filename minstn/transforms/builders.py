"""Restricted affine transforms: theta ``(N, 2, 3)`` from a few parameters.

Eq. (1) of Jaderberg et al. (2015) lets the localisation net regress all six
entries of ``A_theta``. Section 3.2 notes that the transform "can be more
constrained", e.g. attention (scale + translation); Table 1's RTS experiment and
the original Torch ``stnbhwd`` package (``nn.AffineTransformMatrixGenerator``,
with switches for rotation, scale and translation) use such restricted forms.

Every builder here is composed from differentiable Tensor ops (sin, cos, *, +,
stack), so no backward has to be written: autograd differentiates through the
construction, and ``F.affine_grid`` then turns the theta into a grid.

Rotation on non-square images: PyTorch's usual ``[[cos, -sin], [sin, cos]]`` acts
on *normalised* coordinates, where x and y both span [-1, 1]; on a W x H image
with W != H that is a rotation composed with a stretch. Passing ``H`` and ``W``
makes the builders rotate rigidly in pixel space instead (see
:func:`minstn.transforms.pixel_matrices.aspect_factors`).
"""

from __future__ import annotations

import numpy as np

from .. import ops, shape_ops
from ..autograd import Tensor, as_tensor
from .pixel_matrices import aspect_factors

__all__ = [
    "affine_from_params",
    "attention_theta",
    "rotation_theta",
    "scale_theta",
    "anisotropic_scale_theta",
    "translation_theta",
    "similarity_theta",
    "compose_theta",
]


def _floating(x, name: str, shape_ok, want: str) -> Tensor:
    t = as_tensor(x)
    if not np.issubdtype(t.dtype, np.floating):
        raise ValueError(f"{name} must be a floating-point array; got dtype {t.dtype}")
    if not shape_ok(t.shape):
        raise ValueError(f"{name} must have shape {want}; got {t.shape}")
    return t


def _theta(rows) -> Tensor:
    """Assemble ``[[a, b, c], [d, e, f]]`` from six ``(N,)`` Tensors into ``(N, 2, 3)``."""
    return shape_ops.stack([shape_ops.stack(rows[0], dim=-1), shape_ops.stack(rows[1], dim=-1)], dim=-2)


def _zeros(like: Tensor) -> Tensor:
    return Tensor(np.zeros(like.shape, dtype=like.dtype), _copy=False)


def _ones(like: Tensor) -> Tensor:
    return Tensor(np.ones(like.shape, dtype=like.dtype), _copy=False)


def _aspect(H, W, align_corners) -> tuple[float, float]:
    if (H is None) != (W is None):
        raise ValueError("give both H and W (pixel-rigid rotation) or neither (normalised rotation)")
    return (1.0, 1.0) if H is None else aspect_factors(H, W, align_corners)


def affine_from_params(params) -> Tensor:
    """``(N, 6)`` -> ``(N, 2, 3)``: the full affine of eq. (1), row-major."""
    p = _floating(params, "params", lambda s: len(s) == 2 and s[1] == 6, "(N, 6)")
    return p.reshape(p.shape[0], 2, 3)


def attention_theta(params) -> Tensor:
    """``(N, 3)`` = ``(s, tx, ty)`` -> ``[[s, 0, tx], [0, s, ty]]`` (section 3.2)."""
    p = _floating(params, "params", lambda s: len(s) == 2 and s[1] == 3, "(N, 3)")
    s, tx, ty = p[:, 0], p[:, 1], p[:, 2]
    z = _zeros(s)
    return _theta([[s, z, tx], [z, s, ty]])


def rotation_theta(angle, H=None, W=None, align_corners: bool = False) -> Tensor:
    """Rotation about the image centre, ``angle`` ``(N,)`` in radians.

    Without ``H, W``: ``[[cos, -sin, 0], [sin, cos, 0]]`` in normalised
    coordinates (PyTorch's usual form; stretched when H != W). With ``H, W`` (the
    image's size; input and output the same): rigid in pixel space, i.e.
    ``[[cos, -sin * a_h/a_w, 0], [sin * a_w/a_h, cos, 0]]``. The output pixel at
    offset ``d`` from the centre reads the input at ``R(angle) d``, so the content
    turns counter-clockwise on screen by ``angle`` (y points down).
    """
    a = _floating(angle, "angle", lambda s: len(s) == 1, "(N,)")
    ky, kx = _aspect(H, W, align_corners)
    c, s = ops.cos(a), ops.sin(a)
    z = _zeros(a)
    return _theta([[c, -s * ky, z], [s * kx, c, z]])


def scale_theta(scale) -> Tensor:
    """Isotropic scale ``(N,)`` -> ``[[s, 0, 0], [0, s, 0]]``; ``s < 1`` zooms in."""
    s = _floating(scale, "scale", lambda sh: len(sh) == 1, "(N,)")
    z = _zeros(s)
    return _theta([[s, z, z], [z, s, z]])


def anisotropic_scale_theta(scale) -> Tensor:
    """Per-axis scale ``(N, 2)`` = ``(sx, sy)`` -> ``[[sx, 0, 0], [0, sy, 0]]``."""
    p = _floating(scale, "scale", lambda s: len(s) == 2 and s[1] == 2, "(N, 2)")
    sx, sy = p[:, 0], p[:, 1]
    z = _zeros(sx)
    return _theta([[sx, z, z], [z, sy, z]])


def translation_theta(translation) -> Tensor:
    """Translation ``(N, 2)`` = ``(tx, ty)`` (normalised units) -> ``[[1, 0, tx], [0, 1, ty]]``."""
    p = _floating(translation, "translation", lambda s: len(s) == 2 and s[1] == 2, "(N, 2)")
    tx, ty = p[:, 0], p[:, 1]
    z, o = _zeros(tx), _ones(tx)
    return _theta([[o, z, tx], [z, o, ty]])


def similarity_theta(params, use_rotation: bool = True, use_scale: bool = True, use_translation: bool = True,
                     H=None, W=None, align_corners: bool = False) -> Tensor:
    """Rotation + isotropic scale + translation, after stnbhwd's AffineTransformMatrixGenerator.

    ``params`` ``(N, k)`` holds, in this order, those of ``(angle, scale, tx, ty)``
    that are switched on (k = 1 + 1 + 2 with everything on). The source point is
    ``scale * R(angle) (x_t, y_t) + (tx, ty)``, so::

        theta = [[s cos, -s sin * ky, tx],
                 [s sin * kx, s cos, ty]]

    with ``kx = ky = 1`` unless ``H, W`` ask for pixel-rigid rotation. Identity:
    angle 0, scale 1, translation 0.
    """
    k = int(use_rotation) + int(use_scale) + 2 * int(use_translation)
    if k == 0:
        raise ValueError("similarity_theta: switch on at least one of rotation, scale, translation")
    p = _floating(params, "params", lambda s: len(s) == 2 and s[1] == k, f"(N, {k})")
    ky, kx = _aspect(H, W, align_corners)
    col = 0
    z, o = _zeros(p[:, 0]), _ones(p[:, 0])
    c, s = o, z
    if use_rotation:
        c, s = ops.cos(p[:, col]), ops.sin(p[:, col])
        col += 1
    if use_scale:
        sc = p[:, col]
        c, s = sc * c, sc * s
        col += 1
    tx, ty = (p[:, col], p[:, col + 1]) if use_translation else (z, z)
    return _theta([[c, -s * ky, tx], [s * kx, c, ty]])


def compose_theta(first, second) -> Tensor:
    """Theta of "warp by ``first``, then warp the result by ``second``".

    Each theta maps output coordinates to the coordinates it reads. Warping by
    ``first`` then by ``second`` reads ``first(second(p))``, so in 3x3 form the
    product is ``first @ second``: ``A1 A2`` for the linear part and
    ``A1 t2 + t1`` for the translation.
    """
    ok = lambda s: len(s) == 3 and s[1:] == (2, 3)  # noqa: E731
    a = _floating(first, "first", ok, "(N, 2, 3)")
    b = _floating(second, "second", ok, "(N, 2, 3)")
    mask = np.array([[0.0, 0.0, 1.0], [0.0, 0.0, 1.0]], dtype=a.dtype)
    return a[:, :, :2] @ b + a * mask  # A1 [A2 | t2] + [0 | t1]
