"""The distorted-MNIST data sets of the paper (Jaderberg et al. 2015, section 4.1).

=====  ===========================================================  ======
kind   distortion                                                   size
=====  ===========================================================  ======
r      rotation U(-90, 90) degrees                                  28x28
rts    rotation U(-45, 45), scale U(0.7, 1.2), random placement      42x42
p      scale U(0.75, 1.0), then each corner moved by N(0, 5 px):     28x28
       the projective map taking the image corners there
e      scale U(0.75, 1.0), then a 4x4 thin plate spline control     28x28
       grid moved by N(0, 1.5 px)
tc     digit at a random place, plus six 6x6 patches cut from other  60x60
       random digits ("translated cluttered")
=====  ===========================================================  ======

Each distortion is a spatial transformer with random parameters: a grid generator
(affine eq. (1), projective, or TPS from ``minstn.transforms``) and the bilinear
sampler (eq. (5)). ``distort(x, kind, seed, epoch)`` is deterministic in
``(seed, epoch, kind)``: pass the epoch number to draw fresh distortions every epoch,
as the paper does ("randomly ... distorted on the fly"), or keep it fixed for a fixed
data set.
"""
from __future__ import annotations

import numpy as np

from .warp import rotation_matrix, warp_affine, warp_grid

__all__ = ["distort", "mnist_addition", "OUTPUT_SIZE", "KINDS", "to_float_batch"]

OUTPUT_SIZE = {"r": 28, "rts": 42, "p": 28, "e": 28, "tc": 60}
KINDS = tuple(OUTPUT_SIZE)
N_CLUTTER, CLUTTER_SIZE = 6, 6


def to_float_batch(images: np.ndarray) -> np.ndarray:
    """``(N, 28, 28)`` uint8 or float, or ``(N, 1, H, W)`` -> float32 ``(N, 1, H, W)`` in [0, 1]."""
    x = np.asarray(images)
    if x.ndim == 3:
        x = x[:, None]
    if x.ndim != 4 or x.shape[1] != 1:
        raise ValueError(f"expected images (N, H, W) or (N, 1, H, W), got shape {x.shape}")
    if x.dtype == np.uint8:
        return x.astype(np.float32) / np.float32(255)
    return np.clip(x, 0, 1).astype(np.float32)


def _rng(seed: int, epoch: int, kind: str) -> np.random.Generator:
    # One independent stream per (seed, epoch, kind): changing any one changes all draws.
    return np.random.default_rng([int(seed), int(epoch), KINDS.index(kind)])


def _rotate(x, rng):
    n = len(x)
    angle = rng.uniform(-90, 90, n)
    out = warp_affine(x, rotation_matrix(-angle), np.zeros((n, 2)), OUTPUT_SIZE["r"])
    return out, {"angle": angle}


def _rts(x, rng):
    """Rotate about the image centre, scale, and place the centre at ``position``.

    ``position`` (centred pixels of the 42x42 canvas) is uniform over the range that
    keeps the scaled central 20x20 box of an MNIST digit inside the canvas.
    """
    n, size = len(x), OUTPUT_SIZE["rts"]
    angle = rng.uniform(-45, 45, n)
    scale = rng.uniform(0.7, 1.2, n)
    reach = size / 2 - 10 * scale  # 10 = half the 20x20 box MNIST digits are fitted to
    position = rng.uniform(-1, 1, (n, 2)) * reach[:, None]
    # output c_out reads input c_in = R(-angle) (c_out - position) / scale
    matrix = rotation_matrix(-angle) / scale[:, None, None]
    shift = -np.einsum("nij,nj->ni", matrix, position)
    out = warp_affine(x, matrix, shift, size)
    return out, {"angle": angle, "scale": scale, "position": position}


def _homography_to_corners(targets: np.ndarray) -> np.ndarray:
    """``theta (N, 8)`` of the homography sending ``targets (N, 4, 2)`` to the image
    corners ``(-1,-1), (1,-1), (-1,1), (1,1)`` (normalised coordinates).

    The output pixel at ``targets[k]`` then reads the input's corner k. Each pair
    gives two linear equations in the 8 unknowns (H[2, 2] = 1): the classic DLT.
    """
    corners = np.array([[-1, -1], [1, -1], [-1, 1], [1, 1]], np.float64)
    n = len(targets)
    a = np.zeros((n, 8, 8))
    b = np.zeros((n, 8))
    x, y = targets[..., 0], targets[..., 1]
    for k, (cx, cy) in enumerate(corners):
        one, zero = np.ones(n), np.zeros(n)
        a[:, 2 * k] = np.stack([x[:, k], y[:, k], one, zero, zero, zero, -cx * x[:, k], -cx * y[:, k]], -1)
        a[:, 2 * k + 1] = np.stack([zero, zero, zero, x[:, k], y[:, k], one, -cy * x[:, k], -cy * y[:, k]], -1)
        b[:, 2 * k], b[:, 2 * k + 1] = cx, cy
    return np.linalg.solve(a, b[..., None])[..., 0]


def _projective(x, rng):
    """Shrink the image about its centre, then jitter its four corners."""
    from minstn.transforms.grids import projective_grid_forward

    n, size = len(x), OUTPUT_SIZE["p"]
    scale = rng.uniform(0.75, 1.0, n)
    corner_shift = rng.normal(0, 5, (n, 4, 2))  # pixels
    corners = np.array([[-1, -1], [1, -1], [-1, 1], [1, 1]], np.float64)
    targets = scale[:, None, None] * corners + corner_shift * (2 / size)  # normalised
    theta = _homography_to_corners(targets).astype(np.float32)
    out = warp_grid(x, lambda a, b: projective_grid_forward(theta[a:b], (size, size), False), size)
    return out, {"scale": scale, "corner_shift": corner_shift, "theta": theta}


def _elastic(x, rng):
    """Shrink, then move the 16 TPS control points.

    The TPS grid maps the target control points ``c_k`` to source points
    ``c_k + offset_k``; shrinking the digit by ``s`` means reading the input at
    ``c_k / s``, and the N(0, 1.5 px) jitter is added on top.
    """
    from minstn.transforms.grids import tps_control_points, tps_grid_forward

    n, size = len(x), OUTPUT_SIZE["e"]
    scale = rng.uniform(0.75, 1.0, n)
    control = tps_control_points((4, 4))
    jitter = rng.normal(0, 1.5, (n, len(control), 2))  # pixels
    offsets = control[None] * (1 / scale[:, None, None] - 1) + jitter * (2 / size)
    offsets = offsets.astype(np.float32)
    out = warp_grid(x, lambda a, b: tps_grid_forward(offsets[a:b], (size, size), (4, 4), False), size)
    return out, {"scale": scale, "jitter": jitter, "offsets": offsets}


def _cluttered(x, rng):
    """Paste the digit at a random integer position of a 60x60 canvas, then add six
    6x6 crops of other digits at random places (pixel-wise maximum, so strokes stay
    in [0, 1]). Integer shifts are exact copies: a translation needs no resampling."""
    n, size, h = len(x), OUTPUT_SIZE["tc"], x.shape[-1]
    position = rng.integers(0, size - h + 1, (n, 2))  # top-left (x, y) of the digit
    out = np.zeros((n, 1, size, size), np.float32)
    rows = position[:, 1, None] + np.arange(h)  # (N, 28)
    cols = position[:, 0, None] + np.arange(h)
    out[np.arange(n)[:, None, None], 0, rows[:, :, None], cols[:, None, :]] = x[:, 0]

    k, p = N_CLUTTER, CLUTTER_SIZE
    # another digit: i + U{1..n-1} (mod n) is never i itself when n > 1
    source = (np.arange(n)[:, None] + rng.integers(1, max(n, 2), (n, k))) % n
    crop = rng.integers(4, h - 4 - p + 1, (n, k, 2))  # inside the 20x20 box where the ink is
    place = rng.integers(0, size - p + 1, (n, k, 2))
    d = np.arange(p)
    for j in range(k):
        patch = x[source[:, j, None, None], 0,
                  crop[:, j, 1, None, None] + d[:, None], crop[:, j, 0, None, None] + d[None, :]]
        idx = (np.arange(n)[:, None, None], 0,
               place[:, j, 1, None, None] + d[:, None], place[:, j, 0, None, None] + d[None, :])
        out[idx] = np.maximum(out[idx], patch)
    return out, {"position": position, "clutter_source": source, "clutter_crop": crop, "clutter_position": place}


_DISTORTIONS = {"r": _rotate, "rts": _rts, "p": _projective, "e": _elastic, "tc": _cluttered}


def distort(images: np.ndarray, kind: str, seed: int = 0, epoch: int = 0, return_params: bool = False):
    """Distort a batch of digits as in section 4.1 of the paper.

    ``images``: uint8 ``(N, 28, 28)`` (MNIST) or float in [0, 1]. Returns float32
    ``(N, 1, S, S)`` in [0, 1] with S = 28 (r, p, e), 42 (rts) or 60 (tc); with
    ``return_params=True`` also a dict of the random parameters drawn (angles in
    degrees, scales, positions in pixels...). Same ``(seed, epoch)`` -> same bytes.
    """
    kind = kind.lower()
    if kind not in _DISTORTIONS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    out, params = _DISTORTIONS[kind](to_float_batch(images), _rng(seed, epoch, kind))
    np.clip(out, 0.0, 1.0, out=out)  # bilinear weights sum to <= 1, but float rounding
    return (out, params) if return_params else out


def mnist_addition(images: np.ndarray, labels: np.ndarray, n: int, seed: int = 0, epoch: int = 0):
    """The two-digit addition task of section 4.1 (Table 2, right).

    Returns ``x`` float32 ``(n, 2, 42, 42)``: channel k holds digit ``pair[:, k]``
    with its own independent RTS distortion; ``y`` int64 ``(n,)`` the sum (19
    classes, 0-18); and ``pair (n, 2)``, the indices of the digits used.
    """
    rng = np.random.default_rng([int(seed), int(epoch), len(KINDS)])
    pair = rng.integers(0, len(images), (n, 2))
    channels = [distort(images[pair[:, k]], "rts", seed=int(rng.integers(2**31)), epoch=epoch)[:, 0]
                for k in range(2)]
    y = np.asarray(labels, np.int64)[pair].sum(axis=1)
    return np.stack(channels, axis=1), y, pair
