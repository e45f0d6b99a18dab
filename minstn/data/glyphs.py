"""Glyph digits: an MNIST-like data set the project makes itself, offline.

Why: MNIST may not be on the machine (no network, no data folder). The digits
here are drawn with the DejaVu fonts that ship with matplotlib, then varied like
handwriting, and finally normalised the way MNIST was made (LeCun et al.): the digit
is fitted into a 20x20 box keeping its aspect ratio, then placed on a 28x28 canvas
with its centre of mass at the centre.

How (fast: 10,000 digits in about a second):

1. *prototypes*, once per process: each (font, digit) outline from ``TextPath``
   is rasterised at 96x96 with an even-odd point-in-polygon test, averaged down to
   48x48 (anti-aliasing), and thickened by grey dilation to give several stroke
   widths;
2. *variation*, per digit, with minstn's own sampler: a random affine map (rotation,
   slant, aspect) plus a smooth random displacement field ("elastic wobble",
   Simard et al. 2003) moves the sampling grid;
3. *MNIST normalisation*: bounding box and centre of mass of each drawn digit give a
   second affine map that resamples it into the 20x20 box of a 28x28 uint8 image,
   centred by mass.

The train and test splits use different random streams of the same generator.
"""
from __future__ import annotations

import functools
from pathlib import Path

import numpy as np

from .memory import check_memory
from .warp import kernels, rotation_matrix, warp_affine, warp_grid

__all__ = ["load_glyphs", "glyph_prototypes", "FONTS"]

FONTS = (
    "DejaVuSans.ttf", "DejaVuSans-Bold.ttf", "DejaVuSans-Oblique.ttf", "DejaVuSans-BoldOblique.ttf",
    "DejaVuSerif.ttf", "DejaVuSerif-Bold.ttf", "DejaVuSerif-Italic.ttf", "DejaVuSerif-BoldItalic.ttf",
    "DejaVuSansMono.ttf", "DejaVuSansMono-Bold.ttf", "DejaVuSansMono-Oblique.ttf",
    "DejaVuSansMono-BoldOblique.ttf",
)
PROTO = 48  # prototype resolution (pixels)
STROKES = (0, 1)  # dilation steps of 1 px at 48x48 (regular fonts thicken towards bold)
DEFAULT_SIZE = {"train": 60000, "test": 10000}
_SPLIT_STREAM = {"train": 0, "test": 1}


def _rasterise(text_path, supersample: int = 2) -> np.ndarray:
    """Anti-aliased coverage ``(PROTO, PROTO)`` of a glyph outline, scaled to 33 px high."""
    from matplotlib.path import Path as MplPath

    res = PROTO * supersample
    ext = text_path.get_extents()
    scale = 0.69 * res / max(ext.height, ext.width)  # glyph height ~ 33 px of 48
    centre = np.array([ext.x0 + ext.width / 2, ext.y0 + ext.height / 2])
    g = np.arange(res) + 0.5
    xx, yy = np.meshgrid(g, g)
    points = np.stack([xx.ravel(), yy.ravel()], 1)
    inside = np.zeros(len(points), bool)
    for poly in text_path.to_polygons():
        # font y points up, image rows point down; even-odd rule carves the holes
        inside ^= MplPath((poly - centre) * scale * [1, -1] + res / 2).contains_points(points)
    cover = inside.reshape(PROTO, supersample, PROTO, supersample).mean(axis=(1, 3))
    return cover.astype(np.float32)


def _grey_morph(img: np.ndarray, steps: int) -> np.ndarray:
    """``steps`` 3x3 grey dilations (steps > 0) or erosions (steps < 0) of ``(..., H, W)``."""
    op = np.maximum if steps > 0 else np.minimum
    for _ in range(abs(steps)):
        p = np.pad(img, [(0, 0)] * (img.ndim - 2) + [(1, 1), (1, 1)], mode="edge")
        rows = op(op(p[..., :-2, :], p[..., 1:-1, :]), p[..., 2:, :])
        img = op(op(rows[..., :-2], rows[..., 1:-1]), rows[..., 2:])
    return img


@functools.lru_cache(maxsize=1)
def glyph_prototypes() -> np.ndarray:
    """``(len(FONTS), 10, len(STROKES), 48, 48)`` float32 coverage images, read-only."""
    import matplotlib
    from matplotlib.font_manager import FontProperties
    from matplotlib.textpath import TextPath

    font_dir = Path(matplotlib.get_data_path()) / "fonts" / "ttf"
    base = np.stack([
        np.stack([_rasterise(TextPath((0, 0), str(d), size=100, prop=FontProperties(fname=str(font_dir / f))))
                  for d in range(10)])
        for f in FONTS
    ])
    protos = np.stack([_grey_morph(base, s) for s in STROKES], axis=2)
    protos.flags.writeable = False
    return protos


def _smooth_field(coarse: np.ndarray, size: int) -> np.ndarray:
    """Bilinearly interpolate a coarse random lattice ``(n, 2, k, k)`` to a smooth
    displacement field ``(n, size, size, 2)`` (two small matrix products)."""
    knots = coarse.shape[-1]
    t = np.linspace(0, knots - 1, size, dtype=np.float32)
    interp = np.maximum(0, 1 - np.abs(t[:, None] - np.arange(knots, dtype=np.float32)))  # (size, k)
    return np.moveaxis(interp @ coarse @ interp.T, 1, -1)


def _draw(protos: np.ndarray, rng: np.random.Generator, n: int) -> np.ndarray:
    """Step 2: one randomly varied ``(n, 1, 48, 48)`` drawing per prototype."""
    angle = rng.uniform(-15, 15, n)
    slant = rng.uniform(-0.35, 0.35, n)
    aspect = rng.uniform(0.8, 1.2, n)
    # forward map (prototype -> drawing): shrink to 0.8 so slanted digits fit, then
    # aspect, slant (x -= slant * y: positive leans right, as y points down), rotation;
    # the sampler needs its inverse (output pixel -> prototype point)
    forward = rotation_matrix(angle) @ np.stack(
        [np.stack([0.8 * aspect, -0.8 * slant], -1), np.stack([np.zeros(n), np.full(n, 0.8)], -1)], -2)
    theta = np.concatenate([np.linalg.inv(forward), np.zeros((n, 2, 1))], axis=2).astype(np.float32)
    # elastic wobble: N(0, 2 px) on a 5x5 lattice, in normalised units
    coarse = (rng.normal(0, 2.0, (n, 2, 5, 5)) * (2 / PROTO)).astype(np.float32)
    k = kernels()
    return warp_grid(
        protos,
        lambda a, b: k.affine_grid_forward(theta[a:b], (b - a, 1, PROTO, PROTO), False)
        + _smooth_field(coarse[a:b], PROTO),
        PROTO,
    )


def _mnist_normalise(drawn: np.ndarray) -> np.ndarray:
    """Step 3: fit the 20x20 box, centre the mass on 28x28, return uint8 ``(n, 28, 28)``."""
    size = drawn.shape[-1]
    img = drawn[:, 0]
    ink = img > 0.25
    rows, cols = ink.any(axis=2), ink.any(axis=1)

    def extent(any_ink):  # number of pixels from first to last inked row (or column)
        first = any_ink.argmax(axis=1)
        last = size - 1 - any_ink[:, ::-1].argmax(axis=1)
        return np.maximum(last - first + 1, 1)

    fit = 20.0 / np.maximum(extent(rows), extent(cols))  # output pixels per drawing pixel
    mass = img.sum(axis=(1, 2)) + 1e-6
    g = np.arange(size) - (size - 1) / 2
    com = np.stack([(img.sum(axis=1) * g).sum(1), (img.sum(axis=2) * g).sum(1)], -1) / mass[:, None]
    # centred output pixel c reads the drawing at c / fit + com
    out = warp_affine(drawn, np.eye(2)[None] / fit[:, None, None], com, 28)[:, 0]
    return np.round(np.clip(out, 0, 1) * 255).astype(np.uint8)


def load_glyphs(split: str = "train", n: int | None = None, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Return ``(images, labels)``: uint8 ``(n, 28, 28)`` and int64 ``(n,)`` like MNIST.

    ``n`` defaults to MNIST's sizes (60,000 train, 10,000 test). Classes are balanced
    (counts differ by at most one), fonts and stroke widths uniform. Deterministic in
    ``(split, n, seed)``; train and test come from different random streams.
    """
    if split not in _SPLIT_STREAM:
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    n = DEFAULT_SIZE[split] if n is None else int(n)
    # the drawings, their warps and the digits: about 40 KB per digit at the peak
    check_memory(40_000 * n, f"drawing {n:,} glyph digits")
    rng = np.random.default_rng([int(seed), _SPLIT_STREAM[split], 0x9157])
    protos = glyph_prototypes()
    n_fonts, _, n_strokes = protos.shape[:3]
    labels = rng.permutation(np.arange(n) % 10).astype(np.int64)
    font = rng.integers(0, n_fonts, n)
    stroke = rng.integers(0, n_strokes, n)
    chosen = protos[font, labels, stroke][:, None]  # (n, 1, 48, 48)
    images = _mnist_normalise(_draw(chosen, rng, n))
    return images, labels
