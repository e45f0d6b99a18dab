"""Where the time of the sampler's forward+backward goes, kernel by kernel and pass by pass.

    python benchmarks/profile_sampler.py

For each shape of benchmarks/sampler.py, float32:

1. the median wall time of each of the four numba kernels of one training step
   (affine_grid forward, grid_sample forward, grid_sample backward, affine_grid
   backward), with the current thread count;
2. on ONE thread, the sampler kernels against their pass 1 alone (``cpu._footprints``
   over every chunk: coordinates, taps and weights, no image read): the rest of each
   kernel is pass 2, the image reads and writes.
"""
import os
import sys

import numba
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import interleaved_median_ms  # noqa: E402
from sampler import SHAPES, make_case  # noqa: E402

from minstn.kernels import cpu  # noqa: E402


def med(fn, repeats=21):
    return interleaved_median_ms({"fn": fn}, repeats)["fn"]


@numba.njit
def _pass1_only(grid, H, W, backward, fp, taps):
    """Pass 1 of the bilinear kernels for every chunk of every image (zeros padding)."""
    N, L = grid.shape[0], grid.shape[1] * grid.shape[2]
    grid_flat = grid.reshape(-1)
    for n in range(N):
        for k0 in range(n * L, (n + 1) * L, cpu.CHUNK):
            cpu._footprints(grid_flat, k0, min(cpu.CHUNK, (n + 1) * L - k0), H, W, False, fp, taps,
                            backward)


def passes(shape, opts):
    """One thread: [forward kernel, its pass 1, backward kernel, its pass 1] in ms."""
    theta, u, go, size = make_case(shape)
    grid = cpu.affine_grid_forward(theta, size, False)
    fp, taps = np.empty(cpu.SLOTS * cpu.CHUNK), np.empty(cpu.CHUNK, np.intp)
    H, W = shape[2], shape[3]
    threads = numba.get_num_threads()
    numba.set_num_threads(1)
    try:
        return interleaved_median_ms({
            "fwd": lambda: cpu.grid_sample_forward(u, grid, *opts),
            "fwd pass 1": lambda: _pass1_only(grid, H, W, False, fp, taps),
            "bwd": lambda: cpu.grid_sample_backward(go, u, grid, *opts),
            "bwd pass 1": lambda: _pass1_only(grid, H, W, True, fp, taps)}, 11)
    finally:
        numba.set_num_threads(threads)


def main():
    print(f"numba threads {numba.get_num_threads()}, load average {os.getloadavg()[0]:.2f}")
    print(f"{'shape':<22}{'grid fwd':>10}{'sample fwd':>12}{'sample bwd':>12}{'grid bwd':>10}  (ms)")
    opts = ("bilinear", "zeros", False)
    for shape in SHAPES:
        theta, u, go, size = make_case(shape)
        grid = cpu.affine_grid_forward(theta, size, False)
        _, gg = cpu.grid_sample_backward(go, u, grid, *opts)
        t = [med(lambda: cpu.affine_grid_forward(theta, size, False)),
             med(lambda: cpu.grid_sample_forward(u, grid, *opts)),
             med(lambda: cpu.grid_sample_backward(go, u, grid, *opts)),
             med(lambda: cpu.affine_grid_backward(gg, size, False))]
        print(f"{str(shape[:4]):<22}" + "".join(f"{v:>{w}.2f}" for v, w in zip(t, (10, 12, 12, 10))))
    print("\none thread: sampler kernels and their pass 1 (coordinates, taps, weights) alone")
    print(f"{'shape':<22}{'fwd':>8}{'pass 1':>8}{'share':>7}{'bwd':>9}{'pass 1':>8}{'share':>7}  (ms)")
    for shape in SHAPES:
        t = passes(shape, opts)
        f, f1, b, b1 = t["fwd"], t["fwd pass 1"], t["bwd"], t["bwd pass 1"]
        print(f"{str(shape[:4]):<22}{f:>8.2f}{f1:>8.2f}{f1 / f:>7.0%}{b:>9.2f}{b1:>8.2f}{b1 / b:>7.0%}")


if __name__ == "__main__":
    main()
