"""Where the time of the sampler's forward+backward goes, kernel by kernel.

    python benchmarks/profile_sampler.py

For each shape of benchmarks/sampler.py, the median wall time of each of the four
numba kernels of one training step (affine_grid forward, grid_sample forward,
grid_sample backward, affine_grid backward), float32, with the current thread count.
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


if __name__ == "__main__":
    main()
