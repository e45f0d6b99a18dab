"""Numba CPU backend: compiled loops over output rows calling ``pixel.py``.

Each kernel below is a loop nest over a RUN of output rows ``[r0, r1)`` (row k is
image ``k // H_out``, row ``k % H_out``); the body at one output location is a call into
``pixel.py`` (compiled by ``numba.njit`` where it is used). The kernels themselves are
serial; ``_in_parallel`` runs one on the whole range (small inputs, one thread) or
splits the rows into runs and hands them to Numba's threads through a ``prange`` loop
(a small parallel launcher per kernel, ``_bilinear_forward_parallel`` and
``_bilinear_backward_parallel``; ``numba.get_num_threads()`` threads, i.e.
NUMBA_NUM_THREADS or ``numba.set_num_threads``). How the work is split:

* affine grid (eq. (1)) and its gradient: plain serial loops, vectorised by the
  compiler (a multiply-add per grid value: well under a millisecond for 256 x 42 x 42).
* bilinear forward and grid gradient: runs of rows. Every output location writes only
  its own output/grad_grid entries: no races. Each row is done in two passes: first
  ``pixel.bilinear_footprint`` for the whole row (coordinates, taps, weights:
  ``_row_footprints``, a loop that compiles to SIMD instructions), then the image
  reads, location by location or, for images with many large channels, channel by
  channel (chosen by ``ROWS_BYTES``). The grid gradient of eq. (7) is summed over
  channels in registers.
* input gradient (eq. (6)) is a SCATTER: two output locations may hit the same input
  pixel. Two threads doing both at once would race, so with the input gradient the
  runs are whole images: each thread owns grad_input[n] whole. (With N smaller than
  the thread count this leaves cores idle; the benchmark batch sizes are >= 16.)
* the nearest kernel (eq. (4)) uses the plain location-by-location kernels
  (``_forward_kernel``, ``_backward_kernel``), on one thread: it is rarely used in training, and each launcher costs compile time.

Why serial kernels plus a thin parallel launcher, rather than the whole loop nest
inside ``prange``: Numba compiles a ``prange`` loop through its parallel-loop
machinery, 2-3x slower than a serial loop; with the launchers only a few lines go
through it (the cold start a new user waits through, ``benchmarks/cold_start.py``),
and small inputs never need it. (Python threads calling ``nogil`` kernels compile
least of all, but ran 1.5-2x slower with two threads here: the OpenMP threads of
other parallel code in the process -- PyTorch, BLAS, Numba's own -- keep spinning
for a while after each parallel region and take their cores.)

Small ints for mode/padding and C-contiguous arrays keep the compiled signatures to
one per dtype (float32, float64) per kernel; ``cache=True`` keeps them on disk.

Performance notes (issue 9, measured in ``benchmarks/RESULTS.md``):

* ``error_model="numpy"``: a float division by zero gives inf/nan instead of raising,
  so Numba does not put a zero test in front of every division. No result changes:
  every divisor in ``pixel.py`` is a non-zero size or a constant.
* no ``fastmath``: the float64 kernels must agree with the reference to 1e-10, and
  reassociation would also make the taps depend on the compiler.
* small inputs run on the calling thread (``SERIAL_WORK``): starting a parallel
  region costs ~10 us on an idle machine and milliseconds on a loaded one, more than
  the whole loop on a few thousand samples.
* outputs that a kernel overwrites completely are ``np.empty``, not ``np.zeros``;
  grad_input is zeroed inside the kernel by the thread that owns it (in parallel,
  cache-warm). Besides its outputs, the backward allocates only one scratch row per
  run of work (10 numbers per output column: 3.4 KB for W_out = 42), never anything
  of the size of the input.

Caching caveat: Numba's on-disk cache (``cache=True``) is keyed on THIS file's time
stamp only, but the kernels inline ``pixel.py``. So that a learner who edits
``pixel.py`` never runs a stale compiled kernel, ``_refresh_cache_stamp`` below bumps
this file's time stamp whenever ``pixel.py`` is newer (what ``touch cpu.py`` would do).
"""
import os

import numba
import numpy as np
from numba import njit, prange

from . import pixel


def _refresh_cache_stamp(here: str = __file__, math: str = pixel.__file__) -> None:
    """Make Numba's cache see edits to ``pixel.py`` (see the caching caveat above)."""
    try:
        if os.path.getmtime(math) > os.path.getmtime(here):
            os.utime(here)  # a read-only install has no edits to see: ignore failure
    except OSError:
        pass


_refresh_cache_stamp()

# Below this many (sample x channel) operations a kernel runs on the calling thread.
SERIAL_WORK = 1 << 15
# Runs per thread: more than one evens out the load when other processes share the
# cores (a thread that finishes early takes the next run).
RUNS_PER_THREAD = 4
# The bilinear forward switches to the channel-outer loop (``channel_outer`` of
# ``_bilinear_forward_kernel``) when one image (all its channels) is larger than
# this: then reading the channels location by location misses the cache. Measured
# (issue 9, one thread): 16 x 64 x 64 x 64 float32 (1 MB per image) 1.15x faster;
# 64 x 32 x 28 x 28 (100 KB) 1.7x slower, so it stays location-outer; C = 1 no
# difference.
ROWS_BYTES = 1 << 18
# The scratch rows of the bilinear kernels (``_row_footprints``): ``taps[X0]`` holds x0,
# or one of these markers where a tap is outside (an inside x0 is >= 0); ``taps[Y0]``
# holds y0; ``fp[IX]`` ... ``fp[WY1]`` the floats of ``pixel.bilinear_footprint``.
PARTLY_OUTSIDE, ALL_OUTSIDE = -1, -2
X0, Y0 = 0, 1
IX, IY, MX, MY, WX0, WX1, WY0, WY1 = range(8)

JIT = dict(nogil=True, cache=True, error_model="numpy")


def _in_parallel(kernel, args, rows, step, work):
    """Call ``kernel(*args, r0, r1)`` on runs ``[r0, r1)`` covering ``range(rows)``,
    each a multiple of ``step`` rows long, on ``numba.get_num_threads()`` threads
    (through the kernel's launcher in ``_PARALLEL``; a kernel without one runs serially).

    Runs are disjoint, so as long as each kernel writes only to its own rows (or, with
    step = H_out, its own images) the threads never touch the same memory.
    """
    threads = numba.get_num_threads()
    units = rows // step
    if threads == 1 or work < SERIAL_WORK or units == 1 or kernel not in _PARALLEL:
        kernel(*args, 0, rows)
    else:
        _PARALLEL[kernel](args, rows, step, min(units, threads * RUNS_PER_THREAD))


@njit(inline="always")
def _run_bounds(t, runs, rows, step):
    """Rows [r0, r1) of run t of `runs`: an even split of `rows`, in multiples of `step`."""
    units = rows // step
    return t * units // runs * step, (t + 1) * units // runs * step


@njit(**JIT)
def _base_coordinates(size, align_corners):
    """The `size` base coordinates of eq. (1) along one axis, as an array."""
    out = np.empty(size, np.float64)
    for i in range(size):
        out[i] = pixel.base_coordinate(i, size, align_corners)
    return out


@njit(**JIT)
def _affine_grid_kernel(theta, grid, align_corners):
    N, H, W = grid.shape[0], grid.shape[1], grid.shape[2]
    xs = _base_coordinates(W, align_corners)
    ys = _base_coordinates(H, align_corners)
    for n in range(N):
        a0, a1, a2 = float(theta[n, 0, 0]), float(theta[n, 0, 1]), float(theta[n, 0, 2])
        b0, b1, b2 = float(theta[n, 1, 0]), float(theta[n, 1, 1]), float(theta[n, 1, 2])
        for h in range(H):
            ay, by = a1 * ys[h], b1 * ys[h]
            for w in range(W):      # eq. (1): A_theta times (x_t, y_t, 1), row by row
                grid[n, h, w, 0] = a0 * xs[w] + ay + a2
                grid[n, h, w, 1] = b0 * xs[w] + by + b2


@njit(**JIT)
def _affine_grid_backward_kernel(grad_grid, grad_theta, align_corners):
    N, H, W = grad_grid.shape[0], grad_grid.shape[1], grad_grid.shape[2]
    xs = _base_coordinates(W, align_corners)
    ys = _base_coordinates(H, align_corners)
    # Column sums over h (one accumulator per w: the inner loop runs on SIMD lanes):
    # of g_x, g_y and of y_t * g_x, y_t * g_y. Four scratch rows of W numbers per call.
    sx, sy = np.empty(W, np.float64), np.empty(W, np.float64)
    tx, ty = np.empty(W, np.float64), np.empty(W, np.float64)
    for n in range(N):
        sx[:] = 0.0
        sy[:] = 0.0
        tx[:] = 0.0
        ty[:] = 0.0
        for h in range(H):
            yt = ys[h]
            for w in range(W):
                gx = float(grad_grid[n, h, w, 0])
                gy = float(grad_grid[n, h, w, 1])
                sx[w] += gx
                sy[w] += gy
                tx[w] += yt * gx
                ty[w] += yt * gy
        ax, ay, a1, bx, by, b1 = 0.0, 0.0, 0.0, 0.0, 0.0, 0.0
        for w in range(W):          # row r of A_theta: sums of g_r * (x_t, y_t, 1)
            ax += xs[w] * sx[w]
            ay += tx[w]
            a1 += sx[w]
            bx += xs[w] * sy[w]
            by += ty[w]
            b1 += sy[w]
        grad_theta[n, 0, 0], grad_theta[n, 0, 1], grad_theta[n, 0, 2] = ax, ay, a1
        grad_theta[n, 1, 0], grad_theta[n, 1, 1], grad_theta[n, 1, 2] = bx, by, b1


@njit(**JIT)
def _forward_kernel(inp, grid, out, mode, padding, align_corners, fill, r0, r1):
    """Any mode, one location after the other (used for the nearest kernel)."""
    Ho, Wo = grid.shape[1], grid.shape[2]
    for k in range(r0, r1):
        n, ho = k // Ho, k % Ho
        for wo in range(Wo):
            pixel.sample_location(inp, out, n, ho, wo, grid[n, ho, wo, 0], grid[n, ho, wo, 1],
                                  mode, padding, align_corners, fill)


@njit(inline="always")
def _footprint_loop(grid, n, ho, H, W, padding, align_corners, taps, fp):
    for wo in range(grid.shape[2]):
        ix, iy, mx, my, x0, y0, wx0, wx1, wy0, wy1, inside = pixel.bilinear_footprint(
            grid[n, ho, wo, 0], grid[n, ho, wo, 1], H, W, padding, align_corners)
        edge = ALL_OUTSIDE if pixel.no_tap_inside(x0, y0, H, W) else PARTLY_OUTSIDE
        taps[X0, wo] = x0 if inside else edge
        taps[Y0, wo] = y0
        fp[IX, wo] = ix
        fp[IY, wo] = iy
        fp[MX, wo] = mx
        fp[MY, wo] = my
        fp[WX0, wo] = wx0
        fp[WX1, wo] = wx1
        fp[WY0, wo] = wy0
        fp[WY1, wo] = wy1


@njit(inline="always")
def _row_footprints(grid, n, ho, H, W, padding, align_corners, taps, fp):
    """``pixel.bilinear_footprint`` for every location of output row (n, ho).

    Fills taps[X0] = x0 (or, where some tap is outside, PARTLY_OUTSIDE or ALL_OUTSIDE:
    both negative, and an inside x0 never is), taps[Y0] = y0, and fp[IX], fp[IY],
    fp[MX], ... fp[WY1] = ix, iy, mx, my, wx0, wx1, wy0, wy1. The loop reads no image and
    has no early exits, so LLVM compiles it to SIMD instructions (4 locations at a
    time with AVX2): this is where most of the arithmetic of the sampler is.

    The loop is written once (``_footprint_loop``) and inlined twice: once with the
    default options, zeros padding and align_corners=False, as CONSTANTS -- the
    compiler then drops the code of the other options from that copy, and it runs on
    SIMD lanes -- and once with the options as run-time values, for the rest. One
    copy for everything made the default case 2.4x slower: reflection folds
    coordinates with a remainder (a call that cannot run on SIMD lanes), and run-time
    option tests stay in the loop. (A copy per option would make the other options
    as fast, at ~3 s more compile time on first use.)
    """
    if padding == pixel.ZEROS and not align_corners:
        _footprint_loop(grid, n, ho, H, W, pixel.ZEROS, False, taps, fp)
    else:
        _footprint_loop(grid, n, ho, H, W, padding, align_corners, taps, fp)


@njit(**JIT)
def _bilinear_forward_kernel(inp, grid, out, padding, align_corners, fill, channel_outer, r0, r1):
    """Eq. (3) with the bilinear kernel (5), row by row in two passes: first the
    footprints of the whole row (``_row_footprints``, SIMD), then the image reads.

    channel_outer: fill the row channel by channel (each pass reads one input plane,
    cache-resident, and writes a contiguous run of ``out``) instead of location by
    location (which jumps H * W elements per channel); see ``ROWS_BYTES``. Same sums,
    bit for bit, in either order.
    """
    Ho, Wo = grid.shape[1], grid.shape[2]
    C, H, W = inp.shape[1], inp.shape[2], inp.shape[3]
    taps = np.empty((2, Wo), np.intp)               # scratch of this run of rows
    fp = np.empty((8, Wo), np.float64)
    for k in range(r0, r1):
        n, ho = k // Ho, k % Ho
        _row_footprints(grid, n, ho, H, W, padding, align_corners, taps, fp)
        if channel_outer:
            for c in range(C):
                for wo in range(Wo):
                    if taps[X0, wo] >= 0:
                        out[n, c, ho, wo] = pixel.interpolate_inside(
                            inp, n, c, taps[X0, wo], taps[Y0, wo], fp[WX0, wo], fp[WX1, wo], fp[WY0, wo],
                            fp[WY1, wo])
        else:
            for wo in range(Wo):
                x0 = taps[X0, wo]
                if x0 >= 0:
                    y0, wx0, wx1, wy0, wy1 = taps[Y0, wo], fp[WX0, wo], fp[WX1, wo], fp[WY0, wo], fp[WY1, wo]
                    for c in range(C):
                        out[n, c, ho, wo] = pixel.interpolate_inside(inp, n, c, x0, y0, wx0, wx1, wy0, wy1)
        for wo in range(Wo):
            if taps[X0, wo] == ALL_OUTSIDE:     # every channel reads only padding
                v = pixel.outside_value(fp[WX0, wo], fp[WX1, wo], fp[WY0, wo], fp[WY1, wo], fill)
                for c in range(C):
                    out[n, c, ho, wo] = v
            elif taps[X0, wo] == PARTLY_OUTSIDE:
                pixel.sample_location_edge(inp, out, n, ho, wo, fp[IX, wo], fp[IY, wo], pixel.BILINEAR, fill)


@njit(**JIT)
def _bilinear_backward_kernel(grad_out, inp, grid, grad_inp, grad_grid, padding, align_corners,
                              fill, need_input_grad, need_grid_grad, r0, r1):
    """Eq. (6) and (7) with the bilinear kernel, in the two passes of the forward.

    With need_input_grad the run must be whole images (the scatter into grad_inp[n] is
    then race-free: one thread owns it, and zeroes it first, cache-warm); without, any
    run of rows (only grad_grid is written, each entry by its location).
    """
    Ho, Wo = grid.shape[1], grid.shape[2]
    C, H, W = inp.shape[1], inp.shape[2], inp.shape[3]
    if need_input_grad:
        grad_inp[r0 // Ho:r1 // Ho] = 0.0
    taps = np.empty((2, Wo), np.intp)
    fp = np.empty((8, Wo), np.float64)
    for k in range(r0, r1):
        n, ho = k // Ho, k % Ho
        _row_footprints(grid, n, ho, H, W, padding, align_corners, taps, fp)
        for wo in range(Wo):
            x0 = taps[X0, wo]
            if x0 >= 0:
                y0, wx0, wx1, wy0, wy1 = taps[Y0, wo], fp[WX0, wo], fp[WX1, wo], fp[WY0, wo], fp[WY1, wo]
                dx = 0.0
                dy = 0.0
                for c in range(C):
                    ddx, ddy = pixel.backward_inside(grad_out, inp, grad_inp, n, c, ho, wo, x0, y0,
                                                     wx0, wx1, wy0, wy1, need_input_grad)
                    dx += ddx
                    dy += ddy
                dx, dy = dx * fp[MX, wo], dy * fp[MY, wo]
            else:
                dx, dy = pixel.backward_location_edge(grad_out, inp, grad_inp, n, ho, wo, fp[IX, wo],
                                                      fp[IY, wo], fp[MX, wo], fp[MY, wo], pixel.BILINEAR,
                                                      fill, need_input_grad)
            if need_grid_grad:
                grad_grid[n, ho, wo, 0] = dx
                grad_grid[n, ho, wo, 1] = dy


@njit(**JIT)
def _backward_kernel(grad_out, inp, grid, grad_inp, grad_grid, mode, padding, align_corners, fill,
                     need_input_grad, need_grid_grad, r0, r1):
    """Any mode, location by location (used for the nearest kernel). With
    need_input_grad the run [r0, r1) must be whole images, as in the bilinear backward."""
    Ho, Wo = grid.shape[1], grid.shape[2]
    if need_input_grad:
        grad_inp[r0 // Ho:r1 // Ho] = 0.0
    for k in range(r0, r1):
        n, ho = k // Ho, k % Ho
        for wo in range(Wo):
            dx, dy = pixel.backward_location(grad_out, inp, grad_inp, n, ho, wo,
                                             grid[n, ho, wo, 0], grid[n, ho, wo, 1],
                                             mode, padding, align_corners, fill, need_input_grad)
            if need_grid_grad:
                grad_grid[n, ho, wo, 0] = dx
                grad_grid[n, ho, wo, 1] = dy


# ---------------------------------------------------------------- host side ----
@njit(parallel=True, cache=True)
def _bilinear_forward_parallel(args, rows, step, runs):
    for t in prange(runs):
        _bilinear_forward_kernel(*args, *_run_bounds(t, runs, rows, step))


@njit(parallel=True, cache=True)
def _bilinear_backward_parallel(args, rows, step, runs):
    for t in prange(runs):
        _bilinear_backward_kernel(*args, *_run_bounds(t, runs, rows, step))


# The parallel launchers (the nearest kernel's loops run on one thread).
_PARALLEL = {_bilinear_forward_kernel: _bilinear_forward_parallel,
             _bilinear_backward_kernel: _bilinear_backward_parallel}


def affine_grid_forward(theta, size, align_corners):
    """Eq. (1). theta (N, 2, 3) -> grid (N, H_out, W_out, 2)."""
    N, _, H, W = size
    grid = np.empty((N, H, W, 2), dtype=theta.dtype)
    if grid.size:
        _affine_grid_kernel(np.ascontiguousarray(theta), grid, bool(align_corners))
    return grid


def affine_grid_backward(grad_grid, size, align_corners):
    """Gradient of eq. (1) w.r.t. theta: (N, H_out, W_out, 2) -> (N, 2, 3)."""
    N = size[0]
    grad_theta = np.empty((N, 2, 3), dtype=grad_grid.dtype)   # every entry is written
    if grad_grid.size:
        _affine_grid_backward_kernel(np.ascontiguousarray(grad_grid), grad_theta, bool(align_corners))
    else:
        grad_theta[...] = 0.0
    return grad_theta


def grid_sample_forward(input, grid, mode, padding_mode, align_corners, fill_value=0.0):
    """Eq. (3) with kernel (4) or (5). (N, C, H, W), (N, Ho, Wo, 2) -> (N, C, Ho, Wo)."""
    m, p, fill = pixel.option_codes(mode, padding_mode, fill_value)
    N, C = input.shape[:2]
    out = np.empty((N, C) + tuple(grid.shape[1:3]), dtype=input.dtype)
    if out.size == 0:
        return out
    inp, grd = np.ascontiguousarray(input), np.ascontiguousarray(grid)
    rows = N * grid.shape[1]
    if m == pixel.BILINEAR:
        args = (inp, grd, out, p, bool(align_corners), fill, inp[0].nbytes > ROWS_BYTES)
        _in_parallel(_bilinear_forward_kernel, args, rows, 1, out.size)
    else:
        _in_parallel(_forward_kernel, (inp, grd, out, m, p, bool(align_corners), fill), rows, 1, out.size)
    return out


def grid_sample_backward(grad_output, input, grid, mode, padding_mode, align_corners,
                         fill_value=0.0, need_input_grad=True, need_grid_grad=True):
    """Eq. (6) and (7). Returns (grad_input or None, grad_grid or None)."""
    m, p, fill = pixel.option_codes(mode, padding_mode, fill_value)
    if input.size == 0 or grid.size == 0 or not (need_input_grad or need_grid_grad):
        return (np.zeros(input.shape, dtype=input.dtype) if need_input_grad else None,
                np.zeros(grid.shape, dtype=grid.dtype) if need_grid_grad else None)
    # Both outputs are written whole by the kernels (grad_in is zeroed in the kernel).
    grad_in = np.empty(input.shape, dtype=input.dtype) if need_input_grad else None
    grad_grid = np.empty(grid.shape, dtype=grid.dtype) if need_grid_grad else None
    go = np.ascontiguousarray(grad_output, dtype=input.dtype)
    inp, grd = np.ascontiguousarray(input), np.ascontiguousarray(grid)
    Ho = grid.shape[1]
    rows = input.shape[0] * Ho
    step = Ho if need_input_grad else 1     # the scatter needs runs of whole images
    # An output that is not wanted is never written: the input array stands in for it.
    outputs = (grad_in if need_input_grad else inp, grad_grid if need_grid_grad else grd)
    flags = (bool(need_input_grad), bool(need_grid_grad))
    if m == pixel.BILINEAR:
        args = (go, inp, grd, *outputs, p, bool(align_corners), fill, *flags)
        _in_parallel(_bilinear_backward_kernel, args, rows, step, go.size)
    else:
        args = (go, inp, grd, *outputs, m, p, bool(align_corners), fill, *flags)
        _in_parallel(_backward_kernel, args, rows, step, go.size)
    return grad_in, grad_grid
