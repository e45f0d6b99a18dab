"""Benchmark of the spatial-transformer core: affine_grid + grid_sample, float32.

    python benchmarks/sampler.py [--repeats 7]

Times the forward and the forward+backward of the CPU backends (``--backends``,
default numpy and numba; reference only at a tiny size) on three shapes, and PyTorch's
F.affine_grid/F.grid_sample on the same arrays in the same run when torch is
installed, with as many threads as Numba. The timed calls are INTERLEAVED (one call
of each contender in turn, repeated), so that load from other jobs on a shared
machine hits every contender alike. Reports the median of the repeats, after a
warm-up call (which also triggers Numba's JIT compilation).
"""
import argparse

import numpy as np

from _common import describe_run, interleaved_median_ms
from minstn import backend

SHAPES = [(256, 1, 42, 42, 42, 42), (64, 32, 28, 28, 28, 28), (16, 64, 64, 64, 64, 64)]
TINY = (4, 2, 8, 8, 8, 8)


def make_case(shape, seed=0):
    N, C, H, W, Ho, Wo = shape
    rng = np.random.default_rng(seed)
    a = rng.uniform(-0.5, 0.5, N)
    s = rng.uniform(0.7, 1.2, N)
    theta = np.zeros((N, 2, 3), np.float32)
    theta[:, 0, 0], theta[:, 0, 1] = s * np.cos(a), -s * np.sin(a)
    theta[:, 1, 0], theta[:, 1, 1] = s * np.sin(a), s * np.cos(a)
    theta[:, :, 2] = rng.uniform(-0.2, 0.2, (N, 2))
    u = rng.standard_normal((N, C, H, W)).astype(np.float32)
    go = rng.standard_normal((N, C, Ho, Wo)).astype(np.float32)
    return theta, u, go, (N, C, Ho, Wo)


def minstn_fns(name, theta, u, go, size):
    """Forward and forward+backward on plain arrays, straight through the kernels
    (theta and the image both need gradients, as in a spatial transformer)."""
    k = backend.kernels(name)
    opts = ("bilinear", "zeros", False)

    def fwd():
        return k.grid_sample_forward(u, k.affine_grid_forward(theta, size, False), *opts)

    def fwd_bwd():
        grid = k.affine_grid_forward(theta, size, False)
        k.grid_sample_forward(u, grid, *opts)
        gi, gg = k.grid_sample_backward(go, u, grid, *opts)
        return gi, k.affine_grid_backward(gg, size, False)

    return fwd, fwd_bwd


def torch_fns(torch, theta, u, go, size):
    F = torch.nn.functional
    tt = torch.from_numpy(theta).requires_grad_(True)
    tu = torch.from_numpy(u).requires_grad_(True)
    tgo = torch.from_numpy(go)

    def fwd():
        with torch.no_grad():
            return F.grid_sample(tu, F.affine_grid(tt, size, align_corners=False),
                                 align_corners=False)

    def fwd_bwd():
        tt.grad = tu.grad = None
        out = F.grid_sample(tu, F.affine_grid(tt, size, align_corners=False), align_corners=False)
        out.backward(tgo)

    return fwd, fwd_bwd


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=7)
    p.add_argument("--backends", nargs="+", default=["numpy", "numba"])
    p.add_argument("--no-tiny", action="store_true", help="skip the tiny shape")
    args = p.parse_args(argv)
    import numba
    describe_run(f"numpy {np.__version__}, numba {numba.__version__} ({numba.get_num_threads()} threads)")
    try:
        import torch
        torch.set_num_threads(numba.get_num_threads())
        print(f"torch {torch.__version__} ({torch.get_num_threads()} threads)")
    except ImportError:
        torch = None
        print("torch not installed: no comparison")
    print()
    header = f"{'shape N,C,HxW->HoxWo':<26}{'backend':<11}{'fwd ms':>10}{'fwd+bwd ms':>12}" \
             f"{'torch/this fwd':>16}{'torch/this f+b':>16}"
    print(header)
    print("-" * len(header))
    for shape in ([] if args.no_tiny else [TINY]) + SHAPES:
        theta, u, go, size = make_case(shape)
        label = f"{shape[0]},{shape[1]},{shape[2]}x{shape[3]}->{shape[4]}x{shape[5]}"
        names = (["reference"] if shape == TINY else []) + list(args.backends)
        fns = {}
        for name in names:
            fns[name, 0], fns[name, 1] = minstn_fns(name, theta, u, go, size)
        if torch is not None:
            fns["torch", 0], fns["torch", 1] = torch_fns(torch, theta, u, go, size)
        ms = interleaved_median_ms(fns, args.repeats)
        rows = {name: (ms[name, 0], ms[name, 1]) for name in names + (["torch"] if torch else [])}
        for name, (f, fb) in rows.items():
            ratio = ""
            if torch is not None and name != "torch":
                tf, tfb = rows["torch"]
                ratio = f"{tf / f:>16.2f}{tfb / fb:>16.2f}"
            print(f"{label:<26}{name:<11}{f:>10.2f}{fb:>12.2f}{ratio}")
        print()


if __name__ == "__main__":
    main()
