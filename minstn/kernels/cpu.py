"""Numba CPU backend: compiled loops over output locations that call ``pixel.py``.

How to read it: the kernels (``*_kernel``) are serial loops over a RUN of output
locations (or rows) ``[r0, r1)``; the math at each location is calls into ``pixel.py``.
``_in_parallel`` runs a kernel on the calling thread for small inputs, or splits the
range into runs and hands them to Numba's threads through a thin ``prange`` launcher
per kernel (``_*_parallel``). The host functions at the bottom are the backend's four
entry points (``kernels/__init__.py``).

* eq. (1) and its gradient: serial loops that the compiler vectorises.
* bilinear + zeros padding (the default): chunks of ``CHUNK`` locations in two passes,
  pass 1 the coordinates, taps and weights of the chunk on SIMD lanes (``_footprints``),
  pass 2 the image reads channel by channel; locations with a tap outside come last.
* eq. (6) is a scatter: with the input gradient the runs are whole images, so one thread
  owns ``grad_input[n]`` (no races, a fixed summation order).
* nearest, border and reflection: the generic location-by-location kernels, compiled
  only when used.

``cache=True`` keeps the compiled kernels on disk; ``_refresh_cache_stamp`` makes that
cache see edits to ``pixel.py``. Measurements behind these choices: benchmarks/RESULTS.md.
"""
import os

import numba
import numpy as np
from numba import njit, prange

from . import numpy_backend, pixel, warm


def _refresh_cache_stamp(here: str = __file__, math: str = pixel.__file__) -> None:
    """Make Numba's cache see edits to ``pixel.py``.

    Numba keys its on-disk cache on THIS file's time stamp only, but the kernels inline
    ``pixel.py``: so that a learner who edits ``pixel.py`` never runs a stale compiled
    kernel, this file's time stamp is bumped whenever ``pixel.py`` is newer."""
    try:
        if os.path.getmtime(math) > os.path.getmtime(here):
            os.utime(here)  # a read-only install has no edits to see: ignore failure
    except OSError:
        pass


_refresh_cache_stamp()

# Below this many (sample x channel) operations a kernel runs on the calling thread:
# starting a parallel region costs ~10 us on an idle machine (milliseconds on a loaded
# one), more than the whole loop on a few thousand samples.
SERIAL_WORK = 1 << 15
# Runs per thread: more than one evens out the load when other processes share the
# cores (a thread that finishes early takes the next run).
RUNS_PER_THREAD = 4
# Output locations per pass of the bilinear kernels (a chunk; see ``_footprints``).
CHUNK = 128
# Indices into arrays in the bilinear kernels are unsigned (np.uintp): Numba puts a
# test for negative indices (Python's a[-1]) in front of every SIGNED index, and that
# test kept LLVM from vectorising the loops (and costs a compare per access).
_U = np.uintp
# The scratch ``fp`` of the bilinear kernels: SLOTS rows of CHUNK numbers in one flat
# array; location j of a chunk has its tap code at fp[CODE + j], its 1-D weights at
# fp[WX0 + j] ..., the products w_ji = wy_j * wx_i at fp[W00 + j] ..., and the
# derivatives d(pixel)/d(grid) at fp[MX + j], fp[MY + j]. (The forward fills CODE and
# the products, the backward CODE, the 1-D weights and MX, MY.)
SLOTS = 11
CODE, WX0, WX1, WY0, WY1, W00, W01, W10, W11, MX, MY = [_U(i * CHUNK) for i in range(SLOTS)]
# ``taps`` codes for a footprint with a tap outside the image (see ``pixel.tap_code``).
PARTLY, NONE_INSIDE = int(pixel.PARTLY_OUTSIDE), int(pixel.ALL_OUTSIDE)

# error_model="numpy": a float division by zero gives inf/nan instead of raising, so no
# zero test precedes each division (every divisor in pixel.py is a non-zero size or a
# constant). No fastmath: float64 results must agree with the reference to 1e-10, and
# reassociation would make the taps depend on the compiler.
JIT = dict(nogil=True, cache=True, error_model="numpy")


def _in_parallel(kernel, args, items, step, work):
    """Call ``kernel(*args, r0, r1)`` on runs ``[r0, r1)`` covering ``range(items)``
    (the kernel's unit: output locations for the bilinear kernels, output rows for the
    generic ones), each a multiple of ``step`` items long, on
    ``numba.get_num_threads()`` threads (through the kernel's launcher in
    ``_PARALLEL``).

    Runs are disjoint, so as long as each kernel writes only to its own items (or, with
    ``step`` = one image, its own images) the threads never touch the same memory.
    """
    threads = numba.get_num_threads()
    units = items // step
    if threads == 1 or work < SERIAL_WORK or units == 1:
        warm.run(kernel, *args, 0, items)
    else:
        warm.run(_PARALLEL[kernel], args, items, step, min(units, threads * RUNS_PER_THREAD))


@njit(inline="always")
def _run_bounds(t, runs, items, step):
    """Items [r0, r1) of run t of `runs`: an even split of `items`, in multiples of `step`."""
    units = items // step
    return t * units // runs * step, (t + 1) * units // runs * step


@njit(**JIT)
def affine_grid_kernel(theta, grid, align_corners):
    N, H, W = grid.shape[0], grid.shape[1], grid.shape[2]
    xs = pixel.base_coordinates(W, align_corners)
    ys = pixel.base_coordinates(H, align_corners)
    out = grid.reshape(-1)          # flat, unsigned indices: SIMD (see _U)
    for n in range(N):
        a0, a1, a2 = float(theta[n, 0, 0]), float(theta[n, 0, 1]), float(theta[n, 0, 2])
        b0, b1, b2 = float(theta[n, 1, 0]), float(theta[n, 1, 1]), float(theta[n, 1, 2])
        for h in range(H):
            ay, by = a1 * ys[h], b1 * ys[h]
            row = _U(2 * (n * H + h) * W)
            for w in range(W):      # eq. (1): A_theta times (x_t, y_t, 1), row by row
                x = xs[_U(w)]
                out[row + _U(2 * w)] = a0 * x + ay + a2
                out[row + _U(2 * w + 1)] = b0 * x + by + b2


@njit(**JIT)
def affine_grid_backward_kernel(grad_grid, grad_theta, align_corners):
    N, H, W = grad_grid.shape[0], grad_grid.shape[1], grad_grid.shape[2]
    xs = pixel.base_coordinates(W, align_corners)
    ys = pixel.base_coordinates(H, align_corners)
    # Column sums over h (one accumulator per w: the inner loop runs on SIMD lanes):
    # of g_x, g_y and of y_t * g_x, y_t * g_y. Four scratch rows of W numbers per call.
    sx, sy = np.empty(W, np.float64), np.empty(W, np.float64)
    tx, ty = np.empty(W, np.float64), np.empty(W, np.float64)
    gg = grad_grid.reshape(-1)      # flat, unsigned indices: SIMD (see _U)
    for n in range(N):
        sx[:] = 0.0
        sy[:] = 0.0
        tx[:] = 0.0
        ty[:] = 0.0
        for h in range(H):
            yt = ys[h]
            row = _U(2 * (n * H + h) * W)
            for w in range(W):
                gx = float(gg[row + _U(2 * w)])
                gy = float(gg[row + _U(2 * w + 1)])
                uw = _U(w)
                sx[uw] += gx
                sy[uw] += gy
                tx[uw] += yt * gx
                ty[uw] += yt * gy
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
def forward_kernel(inp, grid, out, mode, padding, align_corners, fill, r0, r1):
    """Any mode and padding, one location after the other, for output rows [r0, r1)
    (used for the nearest kernel, and for border and reflection padding)."""
    Ho, Wo = grid.shape[1], grid.shape[2]
    for k in range(r0, r1):
        n, ho = k // Ho, k % Ho
        for wo in range(Wo):
            pixel.sample_location(inp, out, n, ho, wo, grid[n, ho, wo, 0], grid[n, ho, wo, 1],
                                  mode, padding, align_corners, fill)


@njit(inline="always")
def _footprint_loop(grid_flat, k0, m, H, W, align_corners, fp, backward):
    for j in range(m):
        i = _U(2 * (k0 + j))
        ix, iy, mx, my = pixel.locate(grid_flat[i], grid_flat[i + _U(1)], H, W, pixel.ZEROS,
                                      align_corners)
        fx, wx0, wx1 = pixel.bilinear_weights(ix)
        fy, wy0, wy1 = pixel.bilinear_weights(iy)
        s = _U(j)
        fp[CODE + s] = pixel.tap_code(fx, fy, H, W)
        if backward:            # a constant: each copy stores only what its kernel reads
            fp[WX0 + s] = wx0
            fp[WX1 + s] = wx1
            fp[WY0 + s] = wy0
            fp[WY1 + s] = wy1
            fp[MX + s] = mx
            fp[MY + s] = my
        else:
            fp[W00 + s] = wy0 * wx0
            fp[W01 + s] = wy0 * wx1
            fp[W10 + s] = wy1 * wx0
            fp[W11 + s] = wy1 * wx1


# The footprint loop compiled twice, for the forward and for the backward kernel, with
# that choice as a CONSTANT: each copy then has no branch and stores only its slots.
@njit(**JIT)
def _forward_footprints(grid_flat, k0, m, H, W, align_corners, fp):
    _footprint_loop(grid_flat, k0, m, H, W, align_corners, fp, False)


@njit(**JIT)
def _backward_footprints(grid_flat, k0, m, H, W, align_corners, fp):
    _footprint_loop(grid_flat, k0, m, H, W, align_corners, fp, True)


@njit(inline="always")
def _footprints(grid_flat, k0, m, H, W, align_corners, fp, taps, backward):
    """Pass 1 of the bilinear kernels, for locations k0 .. k0 + m - 1 (flat indices
    into the N x H_out x W_out locations, all of one image).

    Fills the scratch ``fp``: for every location ``pixel.tap_code`` (slot CODE) of
    ``pixel.locate`` and ``pixel.bilinear_weights``, and for the forward the four
    weight products w_ji = wy_j * wx_i of eq. (5) (W00 ... W11), for the backward the
    1-D weights and d(pixel)/d(grid) (WX0 ... WY1, MX, MY). Then ``taps`` = the codes
    as ints: the flat offset y0 * W + x0 of the top-left tap, or PARTLY or
    NONE_INSIDE (< 0).

    The loop reads no image and has no branches, so LLVM compiles it to SIMD
    instructions (4 locations at a time with AVX2) -- as long as it is compiled on
    its own (inlined into a kernel, it is not vectorised), with zeros padding as a
    constant (reflection folds coordinates with a remainder, which has no SIMD
    instruction), and writes ONE array at constant distances (``fp``'s slots; with
    one array per quantity LLVM's run-time overlap checks went past its limit and it
    gave up). Its cost is mostly the stores, hence a forward and a backward copy. The
    float-to-int conversion is a separate loop: AVX2 has no SIMD instruction for it.
    """
    if backward:
        _backward_footprints(grid_flat, k0, m, H, W, align_corners, fp)
    else:
        _forward_footprints(grid_flat, k0, m, H, W, align_corners, fp)
    for j in range(m):
        taps[_U(j)] = int(fp[CODE + _U(j)])


@njit(**JIT)
def bilinear_forward_kernel(inp, grid, out, align_corners, fill, r0, r1):
    """Eq. (3) with the bilinear kernel (5), for output locations [r0, r1) (flat
    indices over N x H_out x W_out), a chunk of CHUNK locations at a time, in two
    passes: pass 1 ``_footprints`` (SIMD), pass 2 the image reads, channel by channel
    (each channel reads one input plane, cache-resident, and writes a contiguous run
    of ``out``). Locations with a tap outside the image come last, all channels at
    once: ``pixel.outside_value`` (no tap inside) or ``pixel.sample_location_edge``.
    """
    Ho, Wo = grid.shape[1], grid.shape[2]
    C, H, W = inp.shape[1], inp.shape[2], inp.shape[3]
    L, HW, Wu = Ho * Wo, H * W, _U(W)
    grid_flat, image, output = grid.reshape(-1), inp.reshape(-1), out.reshape(-1)
    fp = np.empty(SLOTS * CHUNK, np.float64)             # scratch of this run
    taps = np.empty(CHUNK, np.intp)
    for n in range(r0 // L, (r1 + L - 1) // L):          # the images of the run
        end = min(r1, (n + 1) * L)
        for k0 in range(max(r0, n * L), end, CHUNK):
            m = min(CHUNK, end - k0)
            _footprints(grid_flat, k0, m, H, W, align_corners, fp, taps, False)
            first = k0 - n * L                           # the chunk's start within image n
            for c in range(C):
                src, dst = (n * C + c) * HW, (n * C + c) * L + first
                for j in range(m):
                    s = _U(j)
                    t = taps[s]
                    if t >= 0:
                        q = _U(src + t)
                        output[_U(dst + j)] = pixel.bilinear_sum(
                            fp[W00 + s], fp[W01 + s], fp[W10 + s], fp[W11 + s],
                            float(image[q]), float(image[q + _U(1)]),
                            float(image[q + Wu]), float(image[q + Wu + _U(1)]))
            for j in range(m):
                t = taps[j]
                if t == NONE_INSIDE:        # every channel reads only padding
                    s = _U(j)
                    v = pixel.outside_value(fp[W00 + s], fp[W01 + s], fp[W10 + s], fp[W11 + s], fill)
                    for c in range(C):
                        output[(n * C + c) * L + first + j] = v
                elif t == PARTLY:
                    ho, wo = divmod(first + j, Wo)
                    ix, iy, _, _ = pixel.locate(grid[n, ho, wo, 0], grid[n, ho, wo, 1], H, W,
                                                pixel.ZEROS, align_corners)
                    pixel.sample_location_edge(inp, out, n, ho, wo, ix, iy, pixel.BILINEAR, fill)


@njit(**JIT)
def bilinear_backward_kernel(grad_out, inp, grid, grad_inp, grad_grid, align_corners, fill,
                              need_input_grad, need_grid_grad, r0, r1):
    """Eq. (6) and (7) with the bilinear kernel, in the chunks and passes of the forward.

    Pass 2 runs channel by channel; eq. (7)'s sum over channels is kept per location
    in the scratch ``acc`` (added in the same order, c = 0, 1, ..., as a sum in
    registers would be), then multiplied by d(pixel)/d(grid) (MX, MY).

    With need_input_grad the run [r0, r1) must be whole images (the scatter into
    grad_inp[n] is then race-free: one thread owns it, and zeroes it first,
    cache-warm); without, any run (only grad_grid is written, each entry by its
    location).
    """
    Ho, Wo = grid.shape[1], grid.shape[2]
    C, H, W = inp.shape[1], inp.shape[2], inp.shape[3]
    L, HW, Wu = Ho * Wo, H * W, _U(W)
    if need_input_grad:
        grad_inp[r0 // L:r1 // L] = 0.0
    grid_flat, image = grid.reshape(-1), inp.reshape(-1)
    g_out, g_inp, g_grid = grad_out.reshape(-1), grad_inp.reshape(-1), grad_grid.reshape(-1)
    fp = np.empty(SLOTS * CHUNK, np.float64)
    taps = np.empty(CHUNK, np.intp)
    acc = np.empty(2 * CHUNK, np.float64)                # dL/dix, dL/diy per location
    for n in range(r0 // L, (r1 + L - 1) // L):          # the images of the run
        end = min(r1, (n + 1) * L)
        for k0 in range(max(r0, n * L), end, CHUNK):
            m = min(CHUNK, end - k0)
            _footprints(grid_flat, k0, m, H, W, align_corners, fp, taps, True)
            acc[:] = 0.0
            first = k0 - n * L                           # the chunk's start within image n
            for c in range(C):
                src, dst = (n * C + c) * HW, (n * C + c) * L + first
                for j in range(m):
                    s = _U(j)
                    t = taps[s]
                    if t >= 0:
                        q = _U(src + t)
                        g = float(g_out[_U(dst + j)])
                        v00, v01 = float(image[q]), float(image[q + _U(1)])
                        v10, v11 = float(image[q + Wu]), float(image[q + Wu + _U(1)])
                        if need_input_grad:     # eq. (6): dV/dU is the tap's weight
                            wx0, wx1, wy0, wy1 = fp[WX0 + s], fp[WX1 + s], fp[WY0 + s], fp[WY1 + s]
                            g_inp[q] += g * (wy0 * wx0)
                            g_inp[q + _U(1)] += g * (wy0 * wx1)
                            g_inp[q + Wu] += g * (wy1 * wx0)
                            g_inp[q + Wu + _U(1)] += g * (wy1 * wx1)
                    elif t == NONE_INSIDE:      # all four taps read the padding value
                        g = float(g_out[_U(dst + j)])
                        v00 = v01 = v10 = v11 = fill
                    else:
                        continue
                    ddx, ddy = pixel.bilinear_grid_terms(g, v00, v01, v10, v11, fp[WX0 + s],
                                                         fp[WX1 + s], fp[WY0 + s], fp[WY1 + s])
                    acc[s] += ddx
                    acc[_U(CHUNK) + s] += ddy
            for j in range(m):
                if taps[j] == PARTLY:
                    ho, wo = divmod(first + j, Wo)
                    ix, iy, mx, my = pixel.locate(grid[n, ho, wo, 0], grid[n, ho, wo, 1], H, W,
                                                  pixel.ZEROS, align_corners)
                    dx, dy = pixel.backward_location_edge(grad_out, inp, grad_inp, n, ho, wo, ix, iy,
                                                          mx, my, pixel.BILINEAR, fill, need_input_grad)
                else:
                    s = _U(j)
                    dx, dy = acc[s] * fp[MX + s], acc[_U(CHUNK) + s] * fp[MY + s]
                if need_grid_grad:
                    g_grid[2 * (k0 + j)] = dx
                    g_grid[2 * (k0 + j) + 1] = dy


@njit(**JIT)
def backward_kernel(grad_out, inp, grid, grad_inp, grad_grid, mode, padding, align_corners, fill,
                     need_input_grad, need_grid_grad, r0, r1):
    """Any mode and padding, location by location, for output rows [r0, r1) (used for
    the nearest kernel, and for border and reflection padding). With need_input_grad
    the run must be whole images, as in the bilinear backward."""
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
# Serial kernels plus a thin parallel launcher each, rather than the whole loop nest in
# ``prange``: small inputs never enter a parallel region, and the kernel body inside
# ``prange`` compiled 20 % slower. One launcher per kernel, the same three lines each:
# a single launcher taking the kernel as an argument compiles, but Numba cannot cache it
# (a cache miss in every new process), and each launcher compiles only when first used.
@njit(parallel=True, cache=True)
def _bilinear_forward_parallel(args, items, step, runs):
    for t in prange(runs):
        bilinear_forward_kernel(*args, *_run_bounds(t, runs, items, step))


@njit(parallel=True, cache=True)
def _bilinear_backward_parallel(args, items, step, runs):
    for t in prange(runs):
        bilinear_backward_kernel(*args, *_run_bounds(t, runs, items, step))


@njit(parallel=True, cache=True)
def _forward_parallel(args, items, step, runs):
    for t in prange(runs):
        forward_kernel(*args, *_run_bounds(t, runs, items, step))


@njit(parallel=True, cache=True)
def _backward_parallel(args, items, step, runs):
    for t in prange(runs):
        backward_kernel(*args, *_run_bounds(t, runs, items, step))


# The parallel launcher of each kernel. Numba compiles one when it is first called, so
# the default options (bilinear, zeros padding) never compile the generic two.
_PARALLEL = {bilinear_forward_kernel: _bilinear_forward_parallel,
             bilinear_backward_kernel: _bilinear_backward_parallel,
             forward_kernel: _forward_parallel,
             backward_kernel: _backward_parallel}


@warm.with_twin(numpy_backend.affine_grid_forward, examples=lambda: _examples("affine_grid_forward"))
def affine_grid_forward(theta, size, align_corners):
    """Eq. (1). theta (N, 2, 3) -> grid (N, H_out, W_out, 2)."""
    N, _, H, W = size
    grid = np.empty((N, H, W, 2), dtype=theta.dtype)
    if grid.size:
        warm.run(affine_grid_kernel, np.ascontiguousarray(theta), grid, bool(align_corners))
    return grid


@warm.with_twin(numpy_backend.affine_grid_backward, examples=lambda: _examples("affine_grid_backward"))
def affine_grid_backward(grad_grid, size, align_corners):
    """Gradient of eq. (1) w.r.t. theta: (N, H_out, W_out, 2) -> (N, 2, 3)."""
    N = size[0]
    grad_theta = np.empty((N, 2, 3), dtype=grad_grid.dtype)   # every entry is written
    if grad_grid.size:
        warm.run(affine_grid_backward_kernel, np.ascontiguousarray(grad_grid), grad_theta,
                 bool(align_corners))
    else:
        grad_theta[...] = 0.0
    return grad_theta


@warm.with_twin(numpy_backend.grid_sample_forward, examples=lambda: _examples("grid_sample_forward"))
def grid_sample_forward(input, grid, mode, padding_mode, align_corners, fill_value=0.0):
    """Eq. (3) with kernel (4) or (5). (N, C, H, W), (N, Ho, Wo, 2) -> (N, C, Ho, Wo)."""
    m, p, fill = pixel.option_codes(mode, padding_mode, fill_value)
    N, C = input.shape[:2]
    out = np.empty((N, C) + tuple(grid.shape[1:3]), dtype=input.dtype)
    if out.size == 0:
        return out
    inp, grd = np.ascontiguousarray(input), np.ascontiguousarray(grid)
    if m == pixel.BILINEAR and p == pixel.ZEROS:
        args = (inp, grd, out, bool(align_corners), fill)
        _in_parallel(bilinear_forward_kernel, args, N * grid.shape[1] * grid.shape[2], 1, out.size)
    else:
        args = (inp, grd, out, m, p, bool(align_corners), fill)
        _in_parallel(forward_kernel, args, N * grid.shape[1], 1, out.size)
    return out


@warm.with_twin(numpy_backend.grid_sample_backward, examples=lambda: _examples("grid_sample_backward"))
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
    # An output that is not wanted is never written: the input array stands in for it.
    outputs = (grad_in if need_input_grad else inp, grad_grid if need_grid_grad else grd)
    flags = (bool(need_input_grad), bool(need_grid_grad))
    # The bilinear kernel's runs are of locations, the generic one's of rows; with the
    # input gradient the runs are whole images (`step`): the scatter needs that.
    N, Ho, Wo = grid.shape[:3]
    if m == pixel.BILINEAR and p == pixel.ZEROS:
        args = (go, inp, grd, *outputs, bool(align_corners), fill, *flags)
        _in_parallel(bilinear_backward_kernel, args, N * Ho * Wo, Ho * Wo if need_input_grad else 1,
                     go.size)
    else:
        args = (go, inp, grd, *outputs, m, p, bool(align_corners), fill, *flags)
        _in_parallel(backward_kernel, args, N * Ho, Ho if need_input_grad else 1, go.size)
    return grad_in, grad_grid


def _examples(entry):
    """The calls of ``entry`` that ``minstn warmup`` makes (``warm.warm_up``): both dtypes,
    the two-pass bilinear kernels and the generic ones, on a small input (the calling
    thread) and on one with enough work for the parallel launchers."""
    calls = []
    for dtype in (np.float32, np.float64):
        for N, H, W in ((1, 4, 4), (4, 96, 96)):         # 4 * 96 * 96 > SERIAL_WORK
            size = (N, 1, H, W)
            theta = np.tile(np.array([[0.9, 0.1, 0.0], [-0.1, 0.9, 0.0]], dtype), (N, 1, 1))
            grid, u = affine_grid_forward(theta, size, False), np.ones(size, dtype)
            calls += {"affine_grid_forward": [(theta, size, False)],
                      "affine_grid_backward": [(grid, size, False)],
                      "grid_sample_forward": [(u, grid, m, p, False) for m, p in _GENERIC_TOO],
                      "grid_sample_backward": [(u, u, grid, m, p, False) for m, p in _GENERIC_TOO]}[entry]
    return calls


_GENERIC_TOO = (("bilinear", "zeros"), ("nearest", "border"))   # the two-pass and the generic kernels
