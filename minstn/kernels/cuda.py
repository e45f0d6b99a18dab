"""Numba CUDA backend: one GPU thread per output location, calling ``pixel.py``.

The per-location math is the same Python code as on the CPU (``pixel.py``); Numba
compiles it as CUDA device functions where these kernels call it. Host functions take
and return NumPy arrays and copy to/from the device inside (simple, not the fastest:
a training loop on the GPU would keep arrays resident).

Work split:

* forward (eq. 3) and grid gradient (eq. 7): one thread per output location (n, ho, wo);
  the grid gradient is summed over channels in registers; each thread writes only its
  own entries.
* input gradient (eq. 6) is a scatter, and must be DETERMINISTIC (bitwise identical
  across runs). Float atomics would make the summation order depend on thread timing,
  and float addition is not associative, so we use none. Instead one thread owns one
  (n, c) plane of grad_input and walks the output locations in a fixed order,
  adding each location's tap contributions: no two threads ever write the same
  element, and every element is summed in the same order on every run. The price is
  parallelism of only N*C threads for this kernel -- fine for teaching-sized batches.

Runs on a GPU, or on the CPU under ``NUMBA_ENABLE_CUDASIM=1`` (Numba's CUDA simulator:
slow, for tests without a GPU).
"""
import math
import os

import numpy as np

try:
    from numba import cuda
except ImportError as exc:      # pragma: no cover - depends on the installation
    raise ImportError("the 'cuda' backend needs numba-cuda: pip install 'minstn[cuda]' "
                      "(or numba-cuda)") from exc

if os.environ.get("NUMBA_ENABLE_CUDASIM", "0") != "1" and not cuda.is_available():
    raise RuntimeError("the 'cuda' backend found no usable CUDA GPU; use another backend "
                       "(numba, numpy, reference) or set NUMBA_ENABLE_CUDASIM=1 (before "
                       "importing numba) to run the kernels in Numba's CUDA simulator")

from . import pixel  # noqa: E402

if os.environ.get("NUMBA_ENABLE_CUDASIM", "0") != "1":
    pixel.register_for_cuda()   # the simulator runs pixel.py as plain Python instead

THREADS = 64


@cuda.jit
def _affine_grid_kernel(theta, grid, align_corners):
    i = cuda.grid(1)
    N, H, W = grid.shape[0], grid.shape[1], grid.shape[2]
    if i < N * H * W:
        n, h, w = i // (H * W), (i // W) % H, i % W
        xt = pixel.base_coordinate(w, W, align_corners)
        yt = pixel.base_coordinate(h, H, align_corners)
        for r in range(2):
            grid[n, h, w, r] = float(theta[n, r, 0]) * xt + float(theta[n, r, 1]) * yt + float(theta[n, r, 2])


@cuda.jit
def _affine_grid_backward_kernel(grad_grid, grad_theta, align_corners):
    i = cuda.grid(1)                    # one thread per (n, row): a fixed summation order
    N, H, W = grad_grid.shape[0], grad_grid.shape[1], grad_grid.shape[2]
    if i < N * 2:
        n, r = i // 2, i % 2
        sx, sy, s1 = 0.0, 0.0, 0.0
        for h in range(H):
            yt = pixel.base_coordinate(h, H, align_corners)
            for w in range(W):
                g = float(grad_grid[n, h, w, r])
                sx += g * pixel.base_coordinate(w, W, align_corners)
                sy += g * yt
                s1 += g
        grad_theta[n, r, 0] = sx
        grad_theta[n, r, 1] = sy
        grad_theta[n, r, 2] = s1


@cuda.jit
def _forward_kernel(inp, grid, out, mode, padding, align_corners, fill):
    i = cuda.grid(1)
    N, Ho, Wo = grid.shape[0], grid.shape[1], grid.shape[2]
    if i < N * Ho * Wo:
        n, ho, wo = i // (Ho * Wo), (i // Wo) % Ho, i % Wo
        pixel.sample_location(inp, out, n, ho, wo, grid[n, ho, wo, 0], grid[n, ho, wo, 1],
                              mode, padding, align_corners, fill)


@cuda.jit
def _grid_grad_kernel(grad_out, inp, grid, grad_grid, mode, padding, align_corners, fill):
    i = cuda.grid(1)
    N, Ho, Wo = grid.shape[0], grid.shape[1], grid.shape[2]
    if i < N * Ho * Wo:
        n, ho, wo = i // (Ho * Wo), (i // Wo) % Ho, i % Wo
        dx, dy = pixel.grid_grad_location(grad_out, inp, n, ho, wo, grid[n, ho, wo, 0],
                                          grid[n, ho, wo, 1], mode, padding, align_corners, fill)
        grad_grid[n, ho, wo, 0] = dx
        grad_grid[n, ho, wo, 1] = dy


@cuda.jit
def _input_grad_kernel(grad_out, grid, grad_inp, mode, padding, align_corners):
    i = cuda.grid(1)                    # one thread owns the plane grad_inp[n, c]
    N, C = grad_inp.shape[0], grad_inp.shape[1]
    Ho, Wo = grid.shape[1], grid.shape[2]
    if i < N * C:
        n, c = i // C, i % C
        for ho in range(Ho):            # fixed order => bitwise reproducible sums
            for wo in range(Wo):
                pixel.input_grad_location(grad_out, grad_inp, n, c, ho, wo, grid[n, ho, wo, 0],
                                          grid[n, ho, wo, 1], mode, padding, align_corners)


# ---------------------------------------------------------------- host side ----
def _blocks(total):
    return math.ceil(total / THREADS)


def _dev(a):
    return cuda.to_device(np.ascontiguousarray(a))


def affine_grid_forward(theta, size, align_corners):
    """Eq. (1). theta (N, 2, 3) -> grid (N, H_out, W_out, 2)."""
    N, _, H, W = size
    if N * H * W == 0:
        return np.zeros((N, H, W, 2), dtype=theta.dtype)
    grid = cuda.device_array((N, H, W, 2), dtype=theta.dtype)
    _affine_grid_kernel[_blocks(N * H * W), THREADS](_dev(theta), grid, bool(align_corners))
    return grid.copy_to_host()


def affine_grid_backward(grad_grid, size, align_corners):
    """Gradient of eq. (1) w.r.t. theta."""
    N = size[0]
    if grad_grid.size == 0:
        return np.zeros((N, 2, 3), dtype=grad_grid.dtype)
    out = cuda.device_array((N, 2, 3), dtype=grad_grid.dtype)
    _affine_grid_backward_kernel[_blocks(2 * N), THREADS](_dev(grad_grid), out, bool(align_corners))
    return out.copy_to_host()


def grid_sample_forward(input, grid, mode, padding_mode, align_corners, fill_value=0.0):
    """Eq. (3) with kernel (4) or (5)."""
    m, p, fill = pixel.option_codes(mode, padding_mode, fill_value)
    N, C = input.shape[:2]
    Ho, Wo = grid.shape[1:3]
    if N * C * Ho * Wo == 0:
        return np.zeros((N, C, Ho, Wo), dtype=input.dtype)
    out = cuda.device_array((N, C, Ho, Wo), dtype=input.dtype)
    _forward_kernel[_blocks(N * Ho * Wo), THREADS](_dev(input), _dev(grid), out, m, p,
                                                   bool(align_corners), fill)
    return out.copy_to_host()


def grid_sample_backward(grad_output, input, grid, mode, padding_mode, align_corners,
                         fill_value=0.0, need_input_grad=True, need_grid_grad=True):
    """Eq. (6) (deterministic per-plane scatter) and eq. (7) (per-location, in registers)."""
    m, p, fill = pixel.option_codes(mode, padding_mode, fill_value)
    N, C = input.shape[:2]
    Ho, Wo = grid.shape[1:3]
    grad_in = np.zeros(input.shape, dtype=input.dtype) if need_input_grad else None
    grad_grid = np.zeros(grid.shape, dtype=grid.dtype) if need_grid_grad else None
    if input.size == 0 or grid.size == 0 or not (need_input_grad or need_grid_grad):
        return grad_in, grad_grid
    d_go, d_grid = _dev(grad_output.astype(input.dtype, copy=False)), _dev(grid)
    if need_grid_grad:
        d_gg = cuda.device_array(grid.shape, dtype=grid.dtype)
        _grid_grad_kernel[_blocks(N * Ho * Wo), THREADS](d_go, _dev(input), d_grid, d_gg, m, p,
                                                         bool(align_corners), fill)
        grad_grid = d_gg.copy_to_host()
    if need_input_grad:
        d_gi = cuda.to_device(grad_in)
        _input_grad_kernel[_blocks(N * C), THREADS](d_go, d_grid, d_gi, m, p, bool(align_corners))
        grad_in = d_gi.copy_to_host()
    return grad_in, grad_grid
