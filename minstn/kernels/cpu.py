"""Numba CPU backend: parallel loops over output locations calling ``pixel.py``.

Each kernel below is a loop nest; the body at one output location is a call into
``pixel.py`` (compiled by ``numba.njit`` where it is used). How the work is split:

* affine grid (eq. (1)) and its gradient: plain serial loops (see ``SERIAL_JIT``).
* forward and grid gradient: ``prange`` over the N * H_out output rows. Every output
  location writes only its own output/grad_grid entries: no races. For images with
  many large channels the forward fills each row channel by channel instead
  (``_forward_rows_kernel``, chosen by ``ROWS_BYTES``). The grid gradient
  of eq. (7) is summed over channels in registers.
* input gradient (eq. (6)) is a SCATTER: two output locations may hit the same input
  pixel. Running two of them at once on different threads would race, so the fused
  backward runs ``prange`` over the batch N: each thread owns grad_input[n] whole.
  (With N smaller than the thread count this leaves cores idle; the benchmark batch
  sizes are >= 16.) When the input gradient is not needed the scatter is skipped and
  the grid-only kernel parallelises over N * H_out again.

Small ints for mode/padding and C-contiguous arrays keep the compiled signatures to
one per dtype (float32, float64) per kernel; ``cache=True`` keeps them on disk.

Performance notes (issue 9, measured in ``benchmarks/RESULTS.md``):

* ``error_model="numpy"``: a float division by zero gives inf/nan instead of raising,
  so Numba does not put a zero test in front of every division. No result changes:
  every divisor in ``pixel.py`` is a non-zero size or a constant.
* no ``fastmath``: the float64 kernels must agree with the reference to 1e-10, and
  reassociation would also make the taps depend on the compiler.
* small inputs run on ONE thread (``_serial_if_small``): starting a parallel region
  costs ~10 us on an idle machine and milliseconds on a loaded one, more than the
  whole loop on a few thousand samples.
* outputs that a kernel overwrites completely are ``np.empty``, not ``np.zeros``;
  grad_input is zeroed inside the kernel by the thread that owns it (one parallel
  pass instead of a serial memset). The backward allocates nothing but its outputs.

Caching caveat: Numba's on-disk cache (``cache=True``) is keyed on THIS file's time
stamp only, but the kernels inline ``pixel.py``. So that a learner who edits
``pixel.py`` never runs a stale compiled kernel, ``_refresh_cache_stamp`` below bumps
this file's time stamp whenever ``pixel.py`` is newer (what ``touch cpu.py`` would do).
"""
import contextlib
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

# Below this many (sample x channel) operations a kernel runs on one thread.
SERIAL_WORK = 1 << 15
# The bilinear forward switches to the channel-outer loop (``_forward_rows_kernel``)
# when one image (all its channels) is larger than this: then reading the channels
# location by location misses the cache. Measured (issue 9, round 2, one thread):
# 16 x 64 x 64 x 64 float32 (1 MB per image) 1.1-1.4x faster; 64 x 32 x 28 x 28
# (100 KB) slower, so it stays location-outer; C = 1 no difference.
ROWS_BYTES = 1 << 18

JIT = dict(parallel=True, cache=True, error_model="numpy")
# The affine-grid kernels do a multiply-add per grid value: a 256 x 42 x 42 grid takes
# ~1.6 ms on one core, less than waking a second thread costs on a loaded machine.
# So they are plain serial loops, which also compile several times faster than
# parallel ones (cold start, see benchmarks/cold_start.py).
SERIAL_JIT = dict(cache=True, error_model="numpy")


@contextlib.contextmanager
def _serial_if_small(work):
    """Run the enclosed kernel call on one thread when ``work`` is small."""
    threads = numba.get_num_threads()
    if work >= SERIAL_WORK or threads == 1:
        yield
        return
    numba.set_num_threads(1)
    try:
        yield
    finally:
        numba.set_num_threads(threads)


@njit(**SERIAL_JIT)
def _affine_grid_kernel(theta, grid, align_corners):
    N, H, W = grid.shape[0], grid.shape[1], grid.shape[2]
    for k in range(N * H):
        n, h = k // H, k % H
        yt = pixel.base_coordinate(h, H, align_corners)
        for w in range(W):
            xt = pixel.base_coordinate(w, W, align_corners)
            for r in range(2):          # eq. (1): row r of A_theta times (x_t, y_t, 1)
                grid[n, h, w, r] = float(theta[n, r, 0]) * xt + float(theta[n, r, 1]) * yt + float(theta[n, r, 2])


@njit(**SERIAL_JIT)
def _affine_grid_backward_kernel(grad_grid, grad_theta, align_corners):
    N, H, W = grad_grid.shape[0], grad_grid.shape[1], grad_grid.shape[2]
    for n in range(N):
        # One pass over grad_grid[n] (it is (H, W, 2): x and y side by side).
        ax, ay, a1 = 0.0, 0.0, 0.0      # row 0 of A_theta: sums of g_x * (x_t, y_t, 1)
        bx, by, b1 = 0.0, 0.0, 0.0      # row 1: sums of g_y * (x_t, y_t, 1)
        for h in range(H):
            yt = pixel.base_coordinate(h, H, align_corners)
            rx, ry, sx, sy = 0.0, 0.0, 0.0, 0.0
            for w in range(W):
                xt = pixel.base_coordinate(w, W, align_corners)
                gx = float(grad_grid[n, h, w, 0])
                gy = float(grad_grid[n, h, w, 1])
                rx += gx * xt
                ry += gy * xt
                sx += gx
                sy += gy
            ax += rx
            bx += ry
            ay += sx * yt
            by += sy * yt
            a1 += sx
            b1 += sy
        grad_theta[n, 0, 0] = ax
        grad_theta[n, 0, 1] = ay
        grad_theta[n, 0, 2] = a1
        grad_theta[n, 1, 0] = bx
        grad_theta[n, 1, 1] = by
        grad_theta[n, 1, 2] = b1


@njit(**JIT)
def _forward_kernel(inp, grid, out, mode, padding, align_corners, fill):
    N, Ho, Wo = grid.shape[0], grid.shape[1], grid.shape[2]
    for k in prange(N * Ho):
        n, ho = k // Ho, k % Ho
        for wo in range(Wo):
            pixel.sample_location(inp, out, n, ho, wo, grid[n, ho, wo, 0], grid[n, ho, wo, 1],
                                  mode, padding, align_corners, fill)


@njit(**JIT)
def _forward_rows_kernel(inp, grid, out, padding, align_corners, fill):
    """Bilinear forward, loop order for many large channels (see ``ROWS_BYTES``).

    Same sums as ``_forward_kernel`` (bit for bit), in another order: the taps and
    the 4 weights of eq. (5) of a whole output row are computed first, then the row
    is filled channel by channel. Each channel pass reads one input plane (a few KB,
    cache-resident) and writes a contiguous run of ``out``; location by location, the
    channel loop would jump ``H * W`` elements per channel instead.
    """
    N, Ho, Wo = grid.shape[0], grid.shape[1], grid.shape[2]
    C, H, W = inp.shape[1], inp.shape[2], inp.shape[3]
    for k in prange(N * Ho):
        n, ho = k // Ho, k % Ho
        x0s = np.empty(Wo, np.intp)          # x0 of an all-inside location, -1 otherwise
        y0s = np.empty(Wo, np.intp)
        ws = np.empty((4, Wo), np.float64)   # w00, w01, w10, w11
        ixs = np.empty(Wo, np.float64)
        iys = np.empty(Wo, np.float64)
        edge = False
        for wo in range(Wo):
            ix, iy, _, _ = pixel.locate(grid[n, ho, wo, 0], grid[n, ho, wo, 1], H, W, padding,
                                        align_corners)
            x0, y0, wx0, wx1, wy0, wy1 = pixel.bilinear_corner(ix, iy)
            ixs[wo] = ix
            iys[wo] = iy
            if 0 <= x0 and x0 + 1 < W and 0 <= y0 and y0 + 1 < H:
                x0s[wo] = x0
                y0s[wo] = y0
                ws[0, wo] = wy0 * wx0
                ws[1, wo] = wy0 * wx1
                ws[2, wo] = wy1 * wx0
                ws[3, wo] = wy1 * wx1
            else:
                x0s[wo] = -1
                edge = True
        for c in range(C):
            for wo in range(Wo):
                x0 = x0s[wo]
                if x0 >= 0:
                    y0 = y0s[wo]
                    out[n, c, ho, wo] = (ws[0, wo] * float(inp[n, c, y0, x0])
                                         + ws[1, wo] * float(inp[n, c, y0, x0 + 1])
                                         + ws[2, wo] * float(inp[n, c, y0 + 1, x0])
                                         + ws[3, wo] * float(inp[n, c, y0 + 1, x0 + 1]))
        if edge:
            for wo in range(Wo):
                if x0s[wo] < 0:
                    pixel.sample_location_edge(inp, out, n, ho, wo, ixs[wo], iys[wo],
                                               pixel.BILINEAR, fill)


@njit(**JIT)
def _backward_fused_kernel(grad_out, inp, grid, grad_inp, grad_grid, mode, padding,
                           align_corners, fill, need_grid_grad):
    N, Ho, Wo = grid.shape[0], grid.shape[1], grid.shape[2]
    for n in prange(N):                 # one thread owns grad_inp[n]: the scatter is race-free
        grad_inp[n] = 0.0               # zeroed here, by its owner: parallel and cache-warm
        for ho in range(Ho):
            for wo in range(Wo):
                dx, dy = pixel.backward_location(grad_out, inp, grad_inp, n, ho, wo,
                                                 grid[n, ho, wo, 0], grid[n, ho, wo, 1],
                                                 mode, padding, align_corners, fill, True)
                if need_grid_grad:
                    grad_grid[n, ho, wo, 0] = dx
                    grad_grid[n, ho, wo, 1] = dy


@njit(**JIT)
def _grid_grad_kernel(grad_out, inp, grid, grad_grid, mode, padding, align_corners, fill):
    N, Ho, Wo = grid.shape[0], grid.shape[1], grid.shape[2]
    for k in prange(N * Ho):
        n, ho = k // Ho, k % Ho
        for wo in range(Wo):
            dx, dy = pixel.grid_grad_location(grad_out, inp, n, ho, wo,
                                              grid[n, ho, wo, 0], grid[n, ho, wo, 1],
                                              mode, padding, align_corners, fill)
            grad_grid[n, ho, wo, 0] = dx
            grad_grid[n, ho, wo, 1] = dy


# ---------------------------------------------------------------- host side ----
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
    with _serial_if_small(out.size):
        if m == pixel.BILINEAR and inp[0].nbytes > ROWS_BYTES:
            _forward_rows_kernel(inp, grd, out, p, bool(align_corners), fill)
        else:
            _forward_kernel(inp, grd, out, m, p, bool(align_corners), fill)
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
    with _serial_if_small(go.size):
        if need_input_grad:
            gg = grad_grid if need_grid_grad else np.empty((0, 0, 0, 0), dtype=grid.dtype)
            _backward_fused_kernel(go, inp, grd, grad_in, gg, m, p, bool(align_corners), fill,
                                   bool(need_grid_grad))
        else:
            _grid_grad_kernel(go, inp, grd, grad_grid, m, p, bool(align_corners), fill)
    return grad_in, grad_grid
