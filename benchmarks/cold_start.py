"""Cold start: what a new user pays for Numba's JIT on the first spatial-transformer step.

    python benchmarks/cold_start.py [--runs 2]

Runs a FRESH Python process (so nothing is compiled in memory) that imports minstn
and does one affine_grid + grid_sample forward and backward of a training-sized batch
(64 x 1 x 28 x 28: large enough to run on every thread; float32, bilinear, zeros,
the numba backend) through the public API, timing each phase. Twice per run:

* ``cold``: with an EMPTY ``NUMBA_CACHE_DIR``: every kernel is compiled;
* ``warm``: a second process with the SAME cache dir: kernels load from disk
  (``cache=True`` on every ``@njit`` in ``minstn/kernels/cpu.py``).

Only the signatures a call needs are compiled (no eager signature lists). One call
of the sampler needs four kernels (affine grid forward, sampler forward, sampler
backward, affine grid backward), the two footprint loops the sampler kernels call
(``_forward_footprints``, ``_backward_footprints``) and the two parallel launchers of
the sampler kernels; the generic kernels (nearest, border, reflection) are not
compiled. The last column counts the signatures the process's kernel, footprint and
launcher dispatchers hold: 8 in the cold process; fewer in the warm one, because a
function loaded from the disk cache brings the functions it calls compiled inside it,
without going through their dispatchers.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

from _common import describe_run

CHILD = r"""
import json, time
t0 = time.perf_counter()
import numpy as np
import minstn as mt
import minstn.functional as F
t1 = time.perf_counter()
rng = np.random.default_rng(0)
theta = mt.tensor(np.array([[[0.9, -0.1, 0.05], [0.1, 0.9, -0.05]]] * 64, np.float32), requires_grad=True)
u = mt.tensor(rng.standard_normal((64, 1, 28, 28)).astype(np.float32), requires_grad=True)
grid = F.affine_grid(theta, (64, 1, 28, 28), align_corners=False)
out = F.grid_sample(u, grid)
t2 = time.perf_counter()
(out * out).sum().backward()
t3 = time.perf_counter()
from minstn.kernels import cpu
n_sigs = sum(len(getattr(getattr(cpu, k), "signatures", ())) for k in dir(cpu)
             if k.startswith("_") and k.endswith(("_kernel", "_footprints", "_parallel")))
print(json.dumps(dict(import_s=t1 - t0, forward_s=t2 - t1, backward_s=t3 - t2,
                      first_step_s=t3 - t1, signatures=n_sigs)))
"""


def child(cache_dir):
    env = dict(os.environ, NUMBA_CACHE_DIR=cache_dir)
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env["PYTHONPATH"] = root + os.pathsep + env.get("PYTHONPATH", "")
    t0 = time.perf_counter()
    res = subprocess.run([sys.executable, "-c", CHILD], env=env, capture_output=True, text=True,
                         check=True)
    wall = time.perf_counter() - t0
    d = json.loads(res.stdout.strip().splitlines()[-1])
    d["process_s"] = wall
    return d


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", type=int, default=2, help="cold+warm pairs (median reported)")
    args = p.parse_args(argv)
    import numba
    describe_run(f"numba {numba.__version__}\n")
    rows = {"cold": [], "warm": []}
    for _ in range(args.runs):
        with tempfile.TemporaryDirectory() as cache:
            rows["cold"].append(child(cache))
            rows["warm"].append(child(cache))
    keys = ["import_s", "forward_s", "backward_s", "first_step_s", "process_s"]
    print(f"{'cache':<7}" + "".join(f"{k:>14}" for k in keys) + f"{'signatures':>12}")
    for name, runs in rows.items():
        med = {k: statistics.median(r[k] for r in runs) for k in keys}
        print(f"{name:<7}" + "".join(f"{med[k]:>14.2f}" for k in keys) + f"{runs[0]['signatures']:>12}")
    print(f"\n(seconds, median of {args.runs}; first_step = forward + backward of the first call)")


if __name__ == "__main__":
    main()
