"""A/B of the Numba CPU sampler kernels: this checkout's against another commit's, in ONE process.

    python benchmarks/ab_kernels.py REV [--paddings zeros border reflection] [--repeats 11]

Timing two versions in two processes a minute apart is unreliable on a shared VM (we
measured 15-40 % drift between identical runs). This script instead copies
``minstn/kernels/pixel.py`` and ``cpu.py`` of git revision REV (e.g. ``HEAD~1``) into a
temporary package, imports both versions, and times their ``grid_sample_forward`` and
``grid_sample_backward`` (per padding mode) and ``affine_grid_forward`` and
``affine_grid_backward`` interleaved (median ms of ``--repeats`` calls, after a
warm-up call that also compiles), with the current thread count, on the shapes of
``benchmarks/sampler.py``. It prints the ratio old / new: above 1 means this checkout
is faster. (The old copy lives in a temporary folder, so its compiled kernels never
mix with this checkout's in Numba's cache.)
"""
import argparse
import importlib
import os
import subprocess
import sys
import tempfile

import numba

from _common import describe_run, interleaved_median_ms
from sampler import SHAPES, make_case

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def import_kernels_of(rev: str, folder: str):
    """The ``cpu`` module of git revision ``rev``, as package ``kernels_<rev>``."""
    package = "kernels_" + "".join(ch if ch.isalnum() else "_" for ch in rev)
    os.makedirs(os.path.join(folder, package))
    open(os.path.join(folder, package, "__init__.py"), "w").close()
    for name in ("pixel.py", "cpu.py", "numpy_backend.py", "warm.py"):   # cpu.py and what it imports
        shown = subprocess.run(["git", "-C", ROOT, "show", f"{rev}:minstn/kernels/{name}"],
                               capture_output=True, text=True)
        if shown.returncode == 0:            # (older revisions have no warm.py)
            with open(os.path.join(folder, package, name), "w") as f:
                f.write(shown.stdout)
    sys.path.insert(0, folder)
    return importlib.import_module(package + ".cpu")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("rev", help="git revision to compare with, e.g. HEAD~1")
    p.add_argument("--paddings", nargs="+", default=["zeros"])
    p.add_argument("--repeats", type=int, default=11)
    args = p.parse_args(argv)
    from minstn.kernels import cpu as new
    with tempfile.TemporaryDirectory() as folder:
        old = import_kernels_of(args.rev, folder)
        describe_run(f"numba {numba.__version__} ({numba.get_num_threads()} threads); "
                     f"old = {args.rev}, new = this checkout")
        print(f"\n{'shape':<22}{'padding':<14}{'op':<6}{'old ms':>9}{'new ms':>9}{'old/new':>9}")
        for shape in SHAPES:
            theta, u, go, size = make_case(shape)
            grid = new.affine_grid_forward(theta, size, False)
            gg = new.grid_sample_backward(go, u, grid, "bilinear", "zeros", False)[1]
            fns = {}
            for label, k in (("old", old), ("new", new)):
                fns["(affine grid)", "fwd", label] = lambda k=k: k.affine_grid_forward(theta, size, False)
                fns["(affine grid)", "bwd", label] = lambda k=k: k.affine_grid_backward(gg, size, False)
                for padding in args.paddings:
                    opts = ("bilinear", padding, False)
                    fns[padding, "fwd", label] = lambda k=k, o=opts: k.grid_sample_forward(u, grid, *o)
                    fns[padding, "bwd", label] = lambda k=k, o=opts: k.grid_sample_backward(go, u, grid, *o)
            ms = interleaved_median_ms(fns, args.repeats)
            for what in ["(affine grid)"] + args.paddings:
                for op in ("fwd", "bwd"):
                    a, b = ms[what, op, "old"], ms[what, op, "new"]
                    print(f"{str(shape[:4]):<22}{what:<14}{op:<6}{a:>9.2f}{b:>9.2f}{a / b:>9.2f}")


if __name__ == "__main__":
    main()
