"""Resample batches of images with minstn's own grid generators and sampler.

Data preparation (the distortions of section 4.1, the glyph digits) is a spatial
transformer with *random* instead of learned parameters: build a grid, sample the
input at it (bilinear kernel, eq. (5)), zero padding outside. The helpers here work
in *centred pixel units*, which is how one thinks about "rotate by 30 degrees, move by
5 px": the point ``c = (u - (W-1)/2, v - (H-1)/2)`` for the pixel centre ``(u, v)``.

Data preparation always uses the compiled CPU kernels, whatever backend
``minstn.set_backend`` selected for training: the data are then identical
everywhere, and never waiting on the slow reference kernels.
"""
from __future__ import annotations

import numpy as np

__all__ = ["kernels", "affine_theta", "warp_affine", "warp_grid", "rotation_matrix", "CHUNK"]

CHUNK = 2048  # images per sampler call: keeps the (N, H, W, 2) grid a few tens of MB


def kernels():
    """The module holding ``affine_grid_forward`` and ``grid_sample_forward``."""
    from minstn.backend import kernels as backend_kernels

    return backend_kernels("numba")


def affine_theta(matrix: np.ndarray, shift: np.ndarray, in_size: int, out_size: int) -> np.ndarray:
    """Eq. (1) parameters ``theta (N, 2, 3)`` for a map written in centred pixels.

    The output pixel at centred position ``c_out`` reads the input at
    ``c_in = matrix @ c_out + shift`` (``matrix (N, 2, 2)``, ``shift (N, 2)``). With
    ``align_corners=False`` a normalised coordinate is ``x = 2 c / W``, so for square
    images ``theta = [matrix * W_out / W_in | 2 shift / W_in]``.
    """
    matrix = np.asarray(matrix, np.float64)
    shift = np.asarray(shift, np.float64)
    theta = np.concatenate([matrix * (out_size / in_size), (2.0 / in_size) * shift[:, :, None]], axis=2)
    return theta.astype(np.float32)


def warp_grid(images: np.ndarray, grid_fn, out_size: int) -> np.ndarray:
    """Bilinear-sample ``images (N, C, H, W)`` -> float32 ``(N, C, S, S)``, CHUNK images at a time.

    ``grid_fn(start, stop)`` returns the grid ``(stop - start, S, S, 2)`` of images
    ``start:stop`` (zero padding, align_corners=False).
    """
    k = kernels()
    n, c = images.shape[:2]
    out = np.empty((n, c, out_size, out_size), np.float32)
    for start in range(0, n, CHUNK):
        stop = min(start + CHUNK, n)
        grid = np.ascontiguousarray(grid_fn(start, stop), dtype=np.float32)
        out[start:stop] = k.grid_sample_forward(
            np.ascontiguousarray(images[start:stop], np.float32), grid, "bilinear", "zeros", False)
    return out


def warp_affine(images: np.ndarray, matrix: np.ndarray, shift: np.ndarray, out_size: int) -> np.ndarray:
    """Affine resampling (eq. (1) + eq. (5)) of square ``images (N, C, W, W)`` to ``S x S``."""
    c, in_size = images.shape[1], images.shape[-1]
    theta = affine_theta(matrix, shift, in_size, out_size)
    k = kernels()
    return warp_grid(
        images,
        lambda a, b: k.affine_grid_forward(theta[a:b], (b - a, c, out_size, out_size), False),
        out_size,
    )


def rotation_matrix(angle_deg: np.ndarray) -> np.ndarray:
    """``(N, 2, 2)`` matrices turning points by ``angle`` degrees counter-clockwise on
    screen (the y axis points down, hence the signs)."""
    a = np.deg2rad(np.asarray(angle_deg, np.float64))
    cos, sin = np.cos(a), np.sin(a)
    return np.stack([np.stack([cos, sin], -1), np.stack([-sin, cos], -1)], -2)
