"""The sampler's math at ONE output location, written once for the CPU and CUDA kernels.

Read it top to bottom: coordinates (``unnormalize``, the padding rules, ``source_index``),
the taps and weights of the bilinear kernel, eq. (5), and of the nearest kernel, eq. (4),
the arithmetic on the tap values (``bilinear_sum``, eq. (3); ``bilinear_grid_terms``,
eq. (7)), then whole per-location routines (``sample_location``, ``backward_location``,
``input_grad_location``: eq. (3), (6), (7)) and eq. (1)'s base coordinates.

Every function is a plain Python function on scalars (call it in a REPL:
``source_index(0.5, 4, 0, True)``) that Numba compiles wherever a jitted caller uses it:
``numba.njit`` loops in ``cpu.py`` and, after ``register_for_cuda``, CUDA kernels in
``cuda.py``. Hence only what both targets compile (``math.floor``, not ``np.floor``,
except in ``floor_float``). Small hot functions are inlined (``inline="always"``) so that
LLVM can run a loop of them on SIMD lanes.

Conventions every backend shares (they must agree bit for bit on the taps): float64
coordinate math whatever the image dtype; bilinear taps ``x0 = floor(ix)``, ``x0 + 1``
(the grid gradient at an integer is the right-hand derivative, see ``reference.py``);
nearest rounds half to even; a NaN/inf or hopelessly-outside grid value becomes the
sentinel ``OUTSIDE`` before any float -> int conversion. Modes and paddings are small
ints (``BILINEAR, NEAREST``; ``ZEROS, BORDER, REFLECTION``) to keep compiled signatures few.
"""
import math

import numpy as np
from numba.extending import overload as _overload_cpu
from numba.extending import register_jitable as _cpu_jitable

_JITABLE = []                     # (function, options) of every function below, for CUDA


def register_jitable(fn=None, **options):
    """Make ``fn`` callable from Numba-compiled code (numba.extending.register_jitable),
    and remember it so that ``register_for_cuda`` can do the same for the CUDA target
    (numba-cuda keeps its own registry). ``fn`` itself stays a plain Python function."""
    def register(f):
        _JITABLE.append((f, options))
        _cpu_jitable(**options)(f) if options else _cpu_jitable(f)
        return f
    return register(fn) if fn is not None else register


def register_for_cuda():
    """Register every function of this module for numba-cuda too (``cuda.py`` calls
    this once, so importing minstn for the CPU never imports numba-cuda)."""
    from numba.cuda.extending import register_jitable as cuda_jitable
    for f, options in _JITABLE + [(floor_float, {})]:
        cuda_jitable(**options)(f) if options else cuda_jitable(f)


BILINEAR, NEAREST = 0, 1
ZEROS, BORDER, REFLECTION = 0, 1, 2
MODES = {"bilinear": BILINEAR, "nearest": NEAREST}
PADDINGS = {"zeros": ZEROS, "border": BORDER, "reflection": REFLECTION}

# A pixel coordinate whose taps (floor -2 and -1, or rint -2) are all outside.
OUTSIDE = -2.0


# ---------------------------------------------------------------- coordinates ----
@register_jitable
def unnormalize(coord, size, align_corners):
    """Normalised grid value in [-1, 1] -> pixel coordinate; returns (pix, dpix/dcoord).

    align_corners=True : -1 and +1 are the CENTRES of the corner pixels,
                         ix = (x + 1) / 2 * (W - 1)
    align_corners=False: -1 and +1 are the outer EDGES of the corner pixels,
                         ix = ((x + 1) * W - 1) / 2
    """
    if align_corners:
        return (coord + 1.0) / 2.0 * (size - 1), (size - 1) / 2.0
    return ((coord + 1.0) * size - 1.0) / 2.0, size / 2.0


@register_jitable
def clip_coordinate(x, size):
    """Clamp x to [0, size-1]; returns (clamped, d clamped / d x).

    The derivative is 0 where the clamp is active, including the end points
    themselves (x <= 0 or x >= size-1), as in PyTorch.
    """
    if x <= 0.0:
        return 0.0, 0.0
    hi = size - 1.0
    if x >= hi:
        return hi, 0.0
    return x, 1.0


@register_jitable
def reflect_coordinate(x, twice_low, twice_high):
    """Reflect x into [low, high] like light between two mirrors; returns (x', dx'/dx).

    The bounds are passed doubled so that they are exact for both alignments:
    [0, 2(W-1)] (align_corners=True, mirrors at the corner pixel centres) or
    [-1, 2W-1] (align_corners=False, mirrors at the image edges -0.5 and W-0.5).
    The derivative is +1 or -1: each reflection flips the direction.

    Folding uses one remainder, r = x mod 2*span, which is EXACT in floating point:
    r < span means an even number of flips (x' = low + r), otherwise an odd number
    (x' = low + 2*span - r). PyTorch counts flips as floor(x / span), whose rounding
    can disagree with fmod(x, span) for a few values and overflows an int for huge x.
    (``%`` on floats rather than math.fmod: both compile under numba.njit and
    numba.cuda, and for x >= 0 they are the same exact operation.)
    """
    if twice_low == twice_high:
        return 0.0, 0.0           # a single pixel: everything reflects onto it
    low = twice_low / 2.0
    span = (twice_high - twice_low) / 2.0
    x = x - low
    sign = 1.0
    if x < 0.0:                   # reflect about `low` first
        x = -x
        sign = -1.0
    r = x % (2.0 * span)
    if r < span:                  # even number of flips
        return r + low, sign
    return 2.0 * span - r + low, -sign


@register_jitable
def source_index(coord, size, padding, align_corners):
    """Grid value -> (pixel coordinate, d pixel / d grid value), padding applied.

    Non-finite values and values so far out that no tap can hit the image come back
    as (OUTSIDE, 0.0): every tap is then outside, which reads the fill value.

    Written without early returns (the final range test is a select, and ``&`` does
    not short-circuit): on the CPU the loop that calls this over a chunk of grid
    values then compiles to SIMD instructions (see ``cpu.py``).
    """
    coord = float(coord)          # float64 math everywhere (also in the CUDA simulator)
    ix, g = unnormalize(coord, size, align_corners)
    if padding == BORDER:
        ix, gc = clip_coordinate(ix, size)
        g = g * gc
    elif padding == REFLECTION:
        if align_corners:
            ix, gr = reflect_coordinate(ix, 0.0, 2.0 * (size - 1))
        else:
            ix, gr = reflect_coordinate(ix, -1.0, 2.0 * size - 1.0)
        ix, gc = clip_coordinate(ix, size)
        g = g * gr * gc
    # Range check BEFORE any float -> int conversion (also catches inf from overflow).
    # NaN fails both comparisons by itself, and so does +-inf with zeros padding
    # (unnormalize keeps it infinite or makes it NaN); border and reflection padding
    # would have clamped +-inf onto the image, so for them it is tested explicitly.
    ok = (ix > -2.0) & (ix < size + 1.0)
    if padding != ZEROS:
        ok = ok & math.isfinite(coord)
    return (ix if ok else OUTSIDE), (g if ok else 0.0)


# ---------------------------------------------------------------------- taps ----
def floor_float(x):
    """floor(x) as a float. Under CUDA ``math.floor`` returns a float already; on the
    CPU it returns an int, so the CPU target gets ``np.floor`` instead (overloaded
    below): one SIMD instruction, where an int round trip would stop a loop of
    footprints from running on SIMD lanes. Same value either way."""
    return float(math.floor(x))


@_overload_cpu(floor_float, target="cpu")
def _floor_float_cpu(x):
    return lambda x: np.floor(x)


@register_jitable
def bilinear_weights(ix):
    """Bilinear kernel, eq. (5), along one axis, with the tap as a float.

    k(d) = max(0, 1 - |d|) is non-zero only at m = floor(ix) and floor(ix) + 1.
    Returns (floor(ix), w0, w1) with weights w0 = x1 - ix for x0 and w1 = ix - x0
    for x1. ix must already be range-checked (see ``source_index``).
    """
    f = floor_float(ix)
    return f, (f + 1.0) - ix, ix - f


@register_jitable
def bilinear_taps(ix):
    """``bilinear_weights`` with the tap x0 as an int: (x0, w0, w1)."""
    f, w0, w1 = bilinear_weights(ix)
    return int(f), w0, w1


@register_jitable
def bilinear_corner(ix, iy):
    """Top-left tap (x0, y0) of the 2x2 bilinear footprint and the 1-D weights of
    eq. (5) along x and y; tap (y0 + j, x0 + i) has weight wy_j * wx_i."""
    x0, wx0, wx1 = bilinear_taps(ix)
    y0, wy0, wy1 = bilinear_taps(iy)
    return x0, y0, wx0, wx1, wy0, wy1


@register_jitable
def taps_inside(x0, y0, H, W):
    """Which of the taps (y0, x0), (y0, x0+1), (y0+1, x0), (y0+1, x0+1) lie in the image."""
    x1, y1 = x0 + 1, y0 + 1
    return (0 <= x0 < W and 0 <= y0 < H, 0 <= x1 < W and 0 <= y0 < H,
            0 <= x0 < W and 0 <= y1 < H, 0 <= x1 < W and 0 <= y1 < H)


# Codes of ``tap_code`` for a footprint that is not wholly inside the image (an inside
# one is coded by the flat offset of its top-left tap, which is >= 0).
PARTLY_OUTSIDE, ALL_OUTSIDE = -1.0, -2.0


@register_jitable(inline="always")
def tap_code(fx, fy, H, W):
    """Where the 2x2 footprint with top-left tap (fy, fx) lies (floats, as returned by
    ``bilinear_weights``): the flat offset fy * W + fx of the top-left tap when all
    four taps are inside the image (exact in float64), PARTLY_OUTSIDE when some
    are, ALL_OUTSIDE when none is. Float compares and selects only, no branches:
    a loop of these runs on SIMD lanes (``cpu.py``)."""
    inside = (fx >= 0.0) & (fx < W - 1.0) & (fy >= 0.0) & (fy < H - 1.0)
    some = (fx >= -1.0) & (fx < W) & (fy >= -1.0) & (fy < H)
    edge = PARTLY_OUTSIDE if some else ALL_OUTSIDE
    return (fy * W + fx) if inside else edge


@register_jitable(inline="always")
def bilinear_sum(w00, w01, w10, w11, v00, v01, v10, v11):
    """Eq. (3) with kernel (5) at one location and channel: the four taps' values
    v_ji at (y0 + j, x0 + i) times their weights w_ji = wy_j * wx_i."""
    return w00 * v00 + w01 * v01 + w10 * v10 + w11 * v11


@register_jitable(inline="always")
def bilinear_grid_terms(g, v00, v01, v10, v11, wx0, wx1, wy0, wy1):
    """Eq. (7) for one channel: g = dL/dV times (dV/dix, dV/diy) of ``bilinear_sum``
    (dwx0/dix = -1, dwx1/dix = +1, and likewise along y)."""
    return g * (wy0 * (v01 - v00) + wy1 * (v11 - v10)), g * (wx0 * (v10 - v00) + wx1 * (v11 - v01))


@register_jitable(inline="always")
def outside_value(w00, w01, w10, w11, fill):
    """Eq. (3) at a location whose four taps all read the padding value ``fill``
    (weights w_ji = wy_j * wx_i): the same sum as ``sample_location_edge`` computes
    there, term by term."""
    return bilinear_sum(w00, w01, w10, w11, fill, fill, fill, fill)


@register_jitable
def nearest_tap(ix):
    """Nearest-integer kernel, eq. (4): the tap is ix rounded half to even (np.rint)."""
    f = int(math.floor(ix))       # int() for CUDA, where math.floor returns a float
    d = ix - f                    # exact for |ix| < 2**52
    if d > 0.5:
        return f + 1
    if d < 0.5:
        return f
    return f + (f & 1)            # a tie goes to the even neighbour


@register_jitable
def read(img, n, c, y, x, inside, fill):
    """U[n, c, y, x] if the tap is inside the image, else the padding value."""
    if inside:
        return float(img[n, c, y, x])     # float64 arithmetic, whatever the dtype
    return fill


# ------------------------------------------------------ per-location routines ----
@register_jitable
def locate(gx, gy, H, W, padding, align_corners):
    """(grid x, grid y) -> (ix, iy, dix/dgx, diy/dgy)."""
    ix, mx = source_index(gx, W, padding, align_corners)
    iy, my = source_index(gy, H, padding, align_corners)
    return ix, iy, mx, my


@register_jitable(inline="always")
def bilinear_footprint(gx, gy, H, W, padding, align_corners):
    """Everything the bilinear kernel (5) needs at one output location that does not
    read the image: the pixel coordinates and their derivatives (ix, iy, mx, my), the
    top-left tap (x0, y0) and the 1-D weights (tap (y0 + j, x0 + i) has weight
    wy_j * wx_i), and whether all four taps are inside the image.

    ``inside`` is the common case, which the fast paths below handle with no test per
    tap; every other location goes to an ``*_edge`` function. The CUDA kernels call
    this once per thread; the CPU kernels call its float parts (``locate``,
    ``bilinear_weights``, ``tap_code``) for a chunk of locations at a time.
    """
    ix, iy, mx, my = locate(gx, gy, H, W, padding, align_corners)
    x0, y0, wx0, wx1, wy0, wy1 = bilinear_corner(ix, iy)
    inside = (x0 >= 0) & (x0 + 1 < W) & (y0 >= 0) & (y0 + 1 < H)
    return ix, iy, mx, my, x0, y0, wx0, wx1, wy0, wy1, inside


@register_jitable(inline="always")
def interpolate_inside(inp, n, c, x0, y0, wx0, wx1, wy0, wy1):
    """Eq. (3) with kernel (5) for channel c, all four taps inside: sum of w * U."""
    return bilinear_sum(wy0 * wx0, wy0 * wx1, wy1 * wx0, wy1 * wx1,
                        float(inp[n, c, y0, x0]), float(inp[n, c, y0, x0 + 1]),
                        float(inp[n, c, y0 + 1, x0]), float(inp[n, c, y0 + 1, x0 + 1]))


@register_jitable(inline="always")
def backward_inside(grad_out, inp, grad_inp, n, c, ho, wo, x0, y0, wx0, wx1, wy0, wy1,
                    need_input_grad):
    """Backward of ``interpolate_inside`` for channel c: returns this channel's terms of
    eq. (7), (dL/dix, dL/diy), and if need_input_grad scatters eq. (6) into
    grad_inp[n, c] (the caller must make sure no other thread writes it meanwhile)."""
    g = float(grad_out[n, c, ho, wo])
    x1, y1 = x0 + 1, y0 + 1
    v00 = float(inp[n, c, y0, x0])
    v01 = float(inp[n, c, y0, x1])
    v10 = float(inp[n, c, y1, x0])
    v11 = float(inp[n, c, y1, x1])
    if need_input_grad:
        # eq. (6): dV/dU_nm is the kernel weight of tap (n, m).
        grad_inp[n, c, y0, x0] += g * (wy0 * wx0)
        grad_inp[n, c, y0, x1] += g * (wy0 * wx1)
        grad_inp[n, c, y1, x0] += g * (wy1 * wx0)
        grad_inp[n, c, y1, x1] += g * (wy1 * wx1)
    return bilinear_grid_terms(g, v00, v01, v10, v11, wx0, wx1, wy0, wy1)   # eq. (7)


@register_jitable(inline="always")
def sample_location(inp, out, n, ho, wo, gx, gy, mode, padding, align_corners, fill):
    """Eq. (3) at one output location, all channels: out[n, :, ho, wo] = V_i."""
    C, H, W = inp.shape[1], inp.shape[2], inp.shape[3]
    if mode == BILINEAR:
        ix, iy, _, _, x0, y0, wx0, wx1, wy0, wy1, inside = bilinear_footprint(
            gx, gy, H, W, padding, align_corners)
        if inside:
            for c in range(C):
                out[n, c, ho, wo] = interpolate_inside(inp, n, c, x0, y0, wx0, wx1, wy0, wy1)
            return
    else:
        ix, iy, _, _ = locate(gx, gy, H, W, padding, align_corners)
    sample_location_edge(inp, out, n, ho, wo, ix, iy, mode, fill)


@register_jitable
def sample_location_edge(inp, out, n, ho, wo, ix, iy, mode, fill):
    """``sample_location`` where some tap may be outside, and the nearest kernel."""
    C, H, W = inp.shape[1], inp.shape[2], inp.shape[3]
    if mode == NEAREST:
        x = nearest_tap(ix)
        y = nearest_tap(iy)
        inside = 0 <= x < W and 0 <= y < H
        for c in range(C):
            out[n, c, ho, wo] = read(inp, n, c, y, x, inside, fill)
        return
    x0, y0, wx0, wx1, wy0, wy1 = bilinear_corner(ix, iy)
    x1, y1 = x0 + 1, y0 + 1
    w00, w01, w10, w11 = wy0 * wx0, wy0 * wx1, wy1 * wx0, wy1 * wx1
    # Which taps are inside is the same for every channel: decide it once.
    in00, in01, in10, in11 = taps_inside(x0, y0, H, W)
    for c in range(C):
        v00 = read(inp, n, c, y0, x0, in00, fill)
        v01 = read(inp, n, c, y0, x1, in01, fill)
        v10 = read(inp, n, c, y1, x0, in10, fill)
        v11 = read(inp, n, c, y1, x1, in11, fill)
        out[n, c, ho, wo] = bilinear_sum(w00, w01, w10, w11, v00, v01, v10, v11)


@register_jitable(inline="always")
def backward_location(grad_out, inp, grad_inp, n, ho, wo, gx, gy, mode, padding,
                      align_corners, fill, need_input_grad):
    """Backward at one output location, all channels.

    Returns (dL/dgx, dL/dgy), eq. (7) chained with d(pixel)/d(grid). If
    need_input_grad, also scatters eq. (6) into grad_inp[n] -- the caller must make
    sure no other thread writes grad_inp[n] at the same time.
    """
    C, H, W = inp.shape[1], inp.shape[2], inp.shape[3]
    if mode == BILINEAR:
        ix, iy, mx, my, x0, y0, wx0, wx1, wy0, wy1, inside = bilinear_footprint(
            gx, gy, H, W, padding, align_corners)
        if inside:
            dx = 0.0
            dy = 0.0
            for c in range(C):
                ddx, ddy = backward_inside(grad_out, inp, grad_inp, n, c, ho, wo, x0, y0,
                                           wx0, wx1, wy0, wy1, need_input_grad)
                dx += ddx
                dy += ddy
            return dx * mx, dy * my
    else:
        ix, iy, mx, my = locate(gx, gy, H, W, padding, align_corners)
    return backward_location_edge(grad_out, inp, grad_inp, n, ho, wo, ix, iy, mx, my, mode,
                                  fill, need_input_grad)


@register_jitable
def backward_location_edge(grad_out, inp, grad_inp, n, ho, wo, ix, iy, mx, my, mode, fill,
                           need_input_grad):
    """``backward_location`` where some tap may be outside, and the nearest kernel."""
    C, H, W = inp.shape[1], inp.shape[2], inp.shape[3]
    if mode == NEAREST:
        # Piecewise constant: dV/dx = 0 (almost everywhere), so only eq. (6).
        if need_input_grad:
            x = nearest_tap(ix)
            y = nearest_tap(iy)
            if 0 <= x < W and 0 <= y < H:
                for c in range(C):
                    grad_inp[n, c, y, x] += grad_out[n, c, ho, wo]
        return 0.0, 0.0
    x0, y0, wx0, wx1, wy0, wy1 = bilinear_corner(ix, iy)
    x1, y1 = x0 + 1, y0 + 1
    w00, w01, w10, w11 = wy0 * wx0, wy0 * wx1, wy1 * wx0, wy1 * wx1
    in00, in01, in10, in11 = taps_inside(x0, y0, H, W)
    dx = 0.0
    dy = 0.0
    for c in range(C):
        g = float(grad_out[n, c, ho, wo])
        v00 = read(inp, n, c, y0, x0, in00, fill)
        v01 = read(inp, n, c, y0, x1, in01, fill)
        v10 = read(inp, n, c, y1, x0, in10, fill)
        v11 = read(inp, n, c, y1, x1, in11, fill)
        ddx, ddy = bilinear_grid_terms(g, v00, v01, v10, v11, wx0, wx1, wy0, wy1)
        dx += ddx
        dy += ddy
        if need_input_grad:
            if in00:
                grad_inp[n, c, y0, x0] += g * w00
            if in01:
                grad_inp[n, c, y0, x1] += g * w01
            if in10:
                grad_inp[n, c, y1, x0] += g * w10
            if in11:
                grad_inp[n, c, y1, x1] += g * w11
    return dx * mx, dy * my


@register_jitable(inline="always")
def grid_grad_location(grad_out, inp, n, ho, wo, gx, gy, mode, padding,
                       align_corners, fill):
    """Eq. (7) only: (dL/dgx, dL/dgy) at one output location, summed over channels."""
    # `inp` stands in for grad_inp: with need_input_grad=False it is never written.
    return backward_location(grad_out, inp, inp, n, ho, wo, gx, gy, mode, padding,
                             align_corners, fill, False)


@register_jitable
def input_grad_location(grad_out, grad_inp, n, c, ho, wo, gx, gy, mode, padding,
                        align_corners):
    """Eq. (6) only, ONE channel: scatter grad_out[n, c, ho, wo] into grad_inp[n, c]."""
    H, W = grad_inp.shape[2], grad_inp.shape[3]
    ix, iy, mx, my = locate(gx, gy, H, W, padding, align_corners)
    g = float(grad_out[n, c, ho, wo])
    if mode == NEAREST:
        x = nearest_tap(ix)
        y = nearest_tap(iy)
        if 0 <= x < W and 0 <= y < H:
            grad_inp[n, c, y, x] += g
        return
    x0, y0, wx0, wx1, wy0, wy1 = bilinear_corner(ix, iy)
    x1, y1 = x0 + 1, y0 + 1
    in00, in01, in10, in11 = taps_inside(x0, y0, H, W)
    if in00:
        grad_inp[n, c, y0, x0] += g * (wy0 * wx0)
    if in01:
        grad_inp[n, c, y0, x1] += g * (wy0 * wx1)
    if in10:
        grad_inp[n, c, y1, x0] += g * (wy1 * wx0)
    if in11:
        grad_inp[n, c, y1, x1] += g * (wy1 * wx1)


# ------------------------------------------------------------ affine grid ----
@register_jitable
def base_coordinate(i, size, align_corners):
    """i-th of `size` base coordinates of eq. (1), the target grid G along one axis:
    linspace(-1, 1, size), times (size-1)/size when align_corners=False (the pixel
    centres sit half a pixel inside the edges -1 and +1); 0 for size 1."""
    if size <= 1:
        return 0.0
    v = -1.0 + 2.0 * i / (size - 1)
    if not align_corners:
        v = v * (size - 1) / size
    return v


@register_jitable
def base_coordinates(size, align_corners):
    """All `size` base coordinates along one axis as a float64 array: ``base_coordinate``
    for i = 0 .. size-1, with the same operations in the same order (so the same bits).
    Plain NumPy, so callable from Python (NumPy backend, ``transforms.grids``) and from
    ``numba.njit`` code (``cpu.py``)."""
    if size <= 1:
        return np.zeros(size)
    v = -1.0 + 2.0 * np.arange(size) / (size - 1)
    if not align_corners:
        v = v * (size - 1) / size
    return v


def option_codes(mode, padding_mode, fill_value):
    """The small ints the kernels take for ``mode`` and ``padding_mode``, and the fill
    value (which only padding_mode="zeros" reads). Host-side helper, not compiled."""
    mode, padding = MODES[mode], PADDINGS[padding_mode]
    fill = float(fill_value) if padding == ZEROS else 0.0
    return mode, padding, fill
