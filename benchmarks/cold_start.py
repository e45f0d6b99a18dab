"""First use: how long a new user waits, with an empty and with a warm Numba cache.

    python benchmarks/cold_start.py [--runs 1] [--source DIR]

Each measurement is a FRESH Python process (nothing compiled in memory), timed from
its start, with its own ``NUMBA_CACHE_DIR``:

* ``sampler``: import, then one affine_grid + grid_sample forward and backward of a
  training-sized batch (64 x 1 x 28 x 28, float32, bilinear, zeros) through the public API;
* ``st-cnn step``: one training step of the ST-CNN of ``minstn train`` (RTS 42 x 42,
  batch 64: forward, cross-entropy, backward, Adam update);
* ``tutorial 02``, ``tutorial 04``: the whole script, ``MINSTN_FAST=1``.

Rows: ``empty`` (an empty cache: minstn answers with the NumPy twins while a worker
compiles, see minstn/kernels/warm.py), ``warm`` (a second process on the cache the first
one filled: for the tutorials a process in between fills it, ``MINSTN_WAIT_FOR_JIT=1``)
and ``empty, wait`` (an empty cache with ``MINSTN_WAIT_FOR_JIT=1``: every call waits for
its kernel, as ``minstn train`` does). ``compiled after`` is how long after the first step
the last queued kernel was ready (the twins answer until then). ``--source DIR`` times
another checkout (e.g. an older commit, which has no twins) with this script.
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

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

PRELUDE = r"""
import json, time
t0 = time.perf_counter()
import numpy as np
import minstn as mt
import minstn.functional as F
t1 = time.perf_counter()
rng = np.random.default_rng(0)
"""
DRAIN = r"""
try:
    from minstn.kernels import warm
    t = time.perf_counter(); warm.drain(); after = time.perf_counter() - t
    paths = sorted({path for _, path in warm.calls})
except ImportError:               # a checkout without twins: everything ran compiled
    after, paths = 0.0, ["compiled"]
print(json.dumps(dict(import_s=t1 - t0, first_s=t3 - t2, compiled_after_s=after, paths=paths)))
"""
SAMPLER = PRELUDE + r"""
theta = mt.tensor(np.array([[[0.9, -0.1, 0.05], [0.1, 0.9, -0.05]]] * 64, np.float32), requires_grad=True)
u = mt.tensor(rng.standard_normal((64, 1, 28, 28)).astype(np.float32), requires_grad=True)
t2 = time.perf_counter()
out = F.grid_sample(u, F.affine_grid(theta, (64, 1, 28, 28)))
(out * out).sum().backward()
t3 = time.perf_counter()
""" + DRAIN
ST_CNN_STEP = PRELUDE + r"""
from minstn import optim
from minstn.models import build_model
mt.manual_seed(0)
model = build_model("st-cnn", in_size=42)
optimizer = optim.Adam(model.parameters(), lr=1e-3)
x, y = mt.tensor(rng.random((64, 1, 42, 42)).astype(np.float32)), rng.integers(0, 10, 64)
t2 = time.perf_counter()
loss = F.cross_entropy(model(x), y)
optimizer.zero_grad()
loss.backward()
optimizer.step()
t3 = time.perf_counter()
""" + DRAIN
SCENARIOS = ["sampler", "st-cnn step", "tutorial 02", "tutorial 04"]
TUTORIALS = {"tutorial 02": "02_bilinear_by_hand.py", "tutorial 04": "04_grid_and_sampler.py"}


def child(source, scenario, cache, wait=False):
    """Run one scenario in a fresh process; returns its timings (seconds)."""
    env = {k: v for k, v in os.environ.items() if k != "MINSTN_WAIT_FOR_JIT"}
    env.update(NUMBA_CACHE_DIR=cache, PYTHONPATH=source, MPLBACKEND="Agg", MINSTN_FAST="1",
               MINSTN_FIGURES=cache)     # the tutorials' figures go to the temporary folder too
    if wait:
        env["MINSTN_WAIT_FOR_JIT"] = "1"
    if scenario in TUTORIALS:
        argv = [os.path.join(source, "tutorials", TUTORIALS[scenario])]
    else:
        argv = ["-c", SAMPLER if scenario == "sampler" else ST_CNN_STEP]
    t0 = time.perf_counter()
    res = subprocess.run([sys.executable, *argv], cwd=source, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if res.returncode != 0:
        raise RuntimeError(f"{scenario} failed:\n{res.stdout[-2000:]}\n{res.stderr[-2000:]}")
    if scenario in TUTORIALS:
        return dict(first_s=wall, process_s=wall)
    return dict(json.loads(res.stdout.strip().splitlines()[-1]), process_s=wall)


def one_run(source):
    """{row: {scenario: timings}} for one empty / warm / empty-wait triple."""
    rows = {"empty": {}, "warm": {}, "empty, wait": {}}
    for scenario in SCENARIOS:
        with tempfile.TemporaryDirectory() as cache, tempfile.TemporaryDirectory() as other:
            rows["empty"][scenario] = child(source, scenario, cache)
            if scenario in TUTORIALS:     # a tutorial leaves before its kernels are compiled
                child(source, scenario, cache, wait=True)
            rows["warm"][scenario] = child(source, scenario, cache)
            rows["empty, wait"][scenario] = child(source, scenario, other, wait=True)
    return rows


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", type=int, default=1, help="repeats (medians reported)")
    p.add_argument("--source", default=ROOT, help="checkout to time (default: this one)")
    args = p.parse_args(argv)
    import numba
    describe_run(f"numba {numba.__version__}; timing the checkout {args.source}\n")
    runs = [one_run(os.path.abspath(args.source)) for _ in range(args.runs)]

    def med(row, scenario, key):
        return statistics.median(r[row][scenario].get(key, float("nan")) for r in runs)

    print(f"{'cache':<13}{'import':>8}{'sampler f+b':>13}{'st-cnn step':>13}{'tutorial 02':>13}"
          f"{'tutorial 04':>13}{'compiled after (sampler, st-cnn)':>36}  answered by")
    for row in runs[0]:
        paths = sorted({p for s in ("sampler", "st-cnn step") for p in runs[0][row][s]["paths"]})
        print(f"{row:<13}{med(row, 'sampler', 'import_s'):>8.2f}"
              + "".join(f"{med(row, s, 'first_s'):>13.2f}" for s in SCENARIOS)
              + f"{med(row, 'sampler', 'compiled_after_s'):>18.1f}{med(row, 'st-cnn step', 'compiled_after_s'):>18.1f}"
              + f"  {' + '.join(paths)}")
    print(f"\n(seconds, median of {args.runs}; sampler f+b and st-cnn step: the first call after import; "
          "tutorials: the whole process)")


if __name__ == "__main__":
    main()
