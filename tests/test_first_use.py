"""First use with an empty Numba cache (``minstn/kernels/warm.py``), in fresh processes.

* the first calls are answered by the NumPy twins, with the compiled kernels' results
  (within the backends' tolerance; max pooling bit for bit) for every sampler option,
  transform and layer, and the process exits at once, leaving no worker behind;
* while the kernels compile, gradients stay right: ``mt.gradcheck`` in float64 passes
  before, during and after the hand-over from the twins to the compiled kernels;
* ``minstn train`` gives the same bytes from an empty and from a warm cache, two runs
  started together on one empty cache both succeed, and a third loads every kernel
  from the cache (no compile);
* a tutorial runs on the twins and passes its checks; a call that waits for its kernel
  lets the worker finish it rather than compiling it a second time;
* the max-pool twins equal the Numba kernels bit for bit (Hypothesis; with a negative
  control).

Each child process gets its own empty ``NUMBA_CACHE_DIR`` and no ``MINSTN_WAIT_FOR_JIT``
(the rest of the suite waits for compiled kernels: ``conftest.py``).
"""
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import first_use_cases
from minstn.kernels import layers, pool_cpu, warm
from strategies import tol

ROOT = Path(__file__).resolve().parents[1]
HERE = Path(__file__).resolve().parent


def _env(cache, **extra):
    env = {k: v for k, v in os.environ.items() if k != "MINSTN_WAIT_FOR_JIT"}
    env.update(NUMBA_CACHE_DIR=str(cache), PYTHONPATH=os.pathsep.join([str(ROOT), str(HERE)]),
               MPLBACKEND="Agg", **extra)
    return env


def _run(args, cache, timeout=600, **extra):
    result = subprocess.run([sys.executable, *args], cwd=ROOT, env=_env(cache, **extra), capture_output=True,
                            text=True, timeout=timeout)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result.stdout


def _gone(pid, seconds=10.0):
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.05)
    return False


def test_importing_minstn_starts_nothing(tmp_path):
    out = _run(["-c", "import threading, minstn, minstn.functional, minstn.kernels.cpu; "
                      "from minstn.kernels import warm; "
                      "print(threading.active_count(), warm._compiler._thread, warm._compiler._worker)"],
               tmp_path)
    assert out.split() == ["1", "None", "None"]


def test_first_calls_match_the_compiled_kernels(tmp_path):
    """Empty cache: every case runs on the twins at first; the results equal this process's
    compiled ones, for each mode, padding, alignment, transform and layer."""
    start = time.perf_counter()
    calls = json.loads(_run([str(HERE / "first_use_cases.py"), str(tmp_path / "first.npz")], tmp_path / "cache")
                       .splitlines()[-1])
    elapsed = time.perf_counter() - start
    hosts = ("cpu.affine_grid_forward", "cpu.affine_grid_backward", "cpu.grid_sample_forward",
             "cpu.grid_sample_backward", "pool_cpu.max_pool2d_forward", "pool_cpu.max_pool2d_backward",
             "conv_cpu.conv2d_forward", "conv_cpu.conv2d_backward", "activation_cpu.relu_forward",
             "activation_cpu.relu_backward")
    for host in hosts:   # the first call of each cannot have waited for a compile
        assert calls.get(f"minstn.kernels.{host} twin", 0) >= 1, (host, calls)
    first = np.load(tmp_path / "first.npz")
    before = warm.calls.copy()
    compiled = first_use_cases.cases()           # here every call waits for its compiled kernel
    assert not any(path == "twin" for (_, path), n in (warm.calls - before).items()), warm.calls - before
    differ = []
    for case, results in compiled.items():
        for key, want in results.items():
            got = first[f"{case}/{key}"]
            what = f"{case} {key}"
            assert got.dtype == want.dtype and got.shape == want.shape, what
            if case.startswith("max-pool"):      # the twin adds in the kernel's order
                np.testing.assert_array_equal(got, want, err_msg=what)
            else:
                np.testing.assert_allclose(got, want, rtol=0, atol=tol(want.dtype, got, want), err_msg=what)
            differ += [what] if not np.array_equal(got, want) else []
    # Why commands that train wait for the compiled kernels: the twin rounds differently.
    assert differ, "the twins gave the compiled kernels' bits everywhere: the same-bytes test proves little"
    print(f"first-use process: {elapsed:.1f} s; {len(differ)} results differ in the last bits")


HANDOVER = r"""
import json, sys, time
import numpy as np
import minstn as mt, minstn.functional as F
from minstn.kernels import warm
rng = np.random.default_rng(0)
u = mt.tensor(rng.standard_normal((2, 2, 5, 4)), requires_grad=True)
theta = mt.tensor(np.array([[[0.83, -0.21, 0.07], [0.19, 0.78, 0.03]]] * 2)
                  + 0.01 * rng.standard_normal((2, 2, 3)), requires_grad=True)
fn = lambda t, u: F.grid_sample(u, F.affine_grid(t, (2, 2, 3, 4)))
states, end = [], time.monotonic() + float(sys.argv[1])
while time.monotonic() < end:
    before = warm.calls.copy()
    assert mt.gradcheck(fn, [theta, u]), "gradcheck failed"
    ran = warm.calls - before
    states.append(sorted({f"{host.split('.')[-1]} {path}" for host, path in ran}))
    if not warm.compiling() and not any(path == "twin" for _, path in ran):
        break
print(json.dumps({"states": states, "worker": bool(warm._compiler._worker)}))
"""


def test_gradients_stay_right_through_the_hand_over(tmp_path):
    """Empty cache, float64: gradcheck again and again while the kernels compile in the
    worker; it passes on the twins, on a mix (forward compiled, backward not yet), and
    on the compiled kernels."""
    result = json.loads(_run(["-c", HANDOVER, "400"], tmp_path).splitlines()[-1])
    states = result["states"]
    assert result["worker"], "the kernels were not compiled in the worker process"
    assert all("compiled" not in s for s in states[0]), states[0]       # empty cache: twins first
    assert all("twin" not in s for s in states[-1]), states[-1]         # then the compiled kernels
    mixed = [s for s in states if "grid_sample_forward compiled" in s and "grid_sample_backward twin" in s]
    assert mixed, f"no gradcheck ran with the forward compiled and the backward on its twin: {states}"
    print(f"{len(states)} gradchecks, {len(mixed)} with the forward compiled and the backward on its twin")


TRAIN = ["-m", "minstn", "train", "--model", "st-cnn", "--epochs", "1", "--train-size", "64", "--test-size",
         "32", "--batch-size", "32", "--seed", "3", "--no-progress"]
ONE_THREAD = dict(NUMBA_NUM_THREADS="1", OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1")
CACHE_STATS = r"""
import json, sys
from minstn.experiments.cli import main
assert main(sys.argv[1:]) == 0
from minstn.kernels import activation_cpu, conv_cpu, cpu, pool_cpu
from numba.core.dispatcher import Dispatcher
stats = [d.stats for m in (cpu, pool_cpu, conv_cpu, activation_cpu) for d in vars(m).values()
         if isinstance(d, Dispatcher)]
print(json.dumps({"hits": sum(sum(s.cache_hits.values()) for s in stats),
                  "misses": sum(sum(s.cache_misses.values()) for s in stats)}))
"""


def _run_bytes(folder):
    metrics = json.loads((folder / "metrics.json").read_text())
    for epoch in metrics["history"]:
        epoch.pop("seconds")
    with np.load(folder / "model.npz") as model:
        return metrics, {k: model[k] for k in model.files}


def test_train_same_bytes_from_empty_and_warm_cache_two_at_once(tmp_path):
    """Two `minstn train` started together on ONE empty cache both succeed (each compiles,
    or loads what the other saved), a third then compiles nothing, and all three runs write
    the same metrics (minus timings) and the same weights, bit for bit."""
    cache = tmp_path / "cache"
    runs = [subprocess.Popen([sys.executable, *TRAIN, "--out", str(tmp_path / name)], cwd=ROOT,
                             env=_env(cache, **ONE_THREAD), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                             text=True) for name in ("a", "b")]
    for run in runs:
        output = run.communicate(timeout=600)[0]
        assert run.returncode == 0, output[-3000:]
    warm_run = json.loads(_run(["-c", CACHE_STATS, *TRAIN[2:], "--out", str(tmp_path / "c")], cache,
                               **ONE_THREAD).splitlines()[-1])
    assert warm_run["misses"] == 0 and warm_run["hits"] > 0, warm_run
    metrics, weights = _run_bytes(tmp_path / "a")
    assert metrics["status"] == "done"
    for other in ("b", "c"):
        m, w = _run_bytes(tmp_path / other)
        assert m == metrics, other
        assert w.keys() == weights.keys() and all(np.array_equal(w[k], weights[k]) for k in w), other


def test_a_tutorial_runs_on_the_twins(tmp_path):
    """Tutorial 02 in a fresh process on an empty cache: its own checks pass on the twins."""
    out = _run(["tutorials/02_bilinear_by_hand.py"], tmp_path / "cache", MINSTN_FAST="1",
               MINSTN_FIGURES=str(tmp_path))
    assert "02: all checks passed" in out


@pytest.mark.parametrize("exit_after", [0.2, 2.0])
def test_exit_while_compiling_is_prompt_and_clean(tmp_path, exit_after):
    """A process that leaves while its worker compiles (the sampler's forward and backward
    kernels: seconds) exits with status 0, without waiting for the compile (a hang would
    hit the timeout), and takes the worker with it."""
    script = ("import sys, time, numpy as np, minstn as mt, minstn.functional as F\n"
              "from minstn.kernels import warm\n"
              "u = mt.tensor(np.ones((1, 1, 4, 4)), requires_grad=True)\n"
              "F.grid_sample(u, np.zeros((1, 2, 2, 2))).sum().backward()\n"
              "time.sleep(float(sys.argv[1]))\n"
              "print(warm._compiler._worker.pid, warm.compiling())\n")
    pid, busy = _run(["-c", script, str(exit_after)], tmp_path, timeout=60).split()
    assert busy == "True"                          # it did leave mid-compile
    assert _gone(int(pid)), "the worker outlived its process"


def test_a_waiting_call_does_not_compile_beside_the_worker(tmp_path):
    """A call inside wait_for_compiled whose kernel the worker is compiling lets the worker
    finish and loads its kernel (no compile in this process: no cache miss)."""
    script = ("import numpy as np\n"
              "from minstn.kernels import cpu, warm\n"
              "theta = np.ones((2, 2, 3))\n"
              "cpu.affine_grid_forward(theta, (2, 1, 5, 5), False)\n"       # twin; the worker compiles
              "with warm.wait_for_compiled():\n"
              "    cpu.affine_grid_forward(theta, (2, 1, 5, 5), False)\n"
              "s = cpu.affine_grid_kernel.stats\n"
              "print(sum(s.cache_hits.values()), sum(s.cache_misses.values()), dict(warm.calls))\n")
    hits, misses, calls = _run(["-c", script], tmp_path).split(maxsplit=2)
    assert (hits, misses) == ("1", "0"), calls
    assert "'twin'): 1" in calls and "'compiled'): 1" in calls, calls


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 3), st.integers(1, 3), st.integers(1, 3), st.integers(1, 3), st.integers(0, 2 ** 32 - 1),
       st.sampled_from([np.float32, np.float64]), st.sampled_from(["normal", "ties", "nan"]))
def test_max_pool_twins_equal_the_kernels_bit_for_bit(kh, kw, sh, sw, seed, dtype, values):
    """The max-pool twins (np.argmax, np.add.at) against the Numba kernels, any window and
    stride (overlapping or not): the same outputs, winners and gradients, bit for bit,
    also with ties (the first maximum wins) and NaNs (the first NaN wins)."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((2, 3, rng.integers(kh, kh + 6), rng.integers(kw, kw + 6))).astype(dtype)
    if values == "ties":
        x = np.maximum(np.round(x), 0)                  # many equal maxima, as after a ReLU
    elif values == "nan":
        x[rng.random(x.shape) < 0.2] = np.nan
    forward, backward = pool_cpu.max_pool2d_forward, pool_cpu.max_pool2d_backward
    out, arg = forward.compiled(x, (kh, kw), (sh, sw))
    twin_out, twin_arg = forward.twin(x, (kh, kw), (sh, sw))
    np.testing.assert_array_equal(twin_out, out)
    np.testing.assert_array_equal(twin_arg, arg)
    grad = rng.standard_normal(out.shape).astype(dtype)
    np.testing.assert_array_equal(backward.twin(grad, arg, x.shape, (kh, kw), (sh, sw)),
                                  backward.compiled(grad, arg, x.shape, (kh, kw), (sh, sw)))


def test_the_bit_for_bit_check_catches_a_last_maximum():
    """Negative control: a twin that let the LAST maximum win fails the comparison above."""
    x = np.zeros((1, 1, 2, 2))                          # one window, four equal maxima
    _, arg = pool_cpu.max_pool2d_forward.compiled(x, (2, 2), (2, 2))
    last = 3 - layers._windows(x, (2, 2), (2, 2)).reshape(1, 1, 1, 1, 4)[..., ::-1].argmax(axis=-1)
    with pytest.raises(AssertionError):
        np.testing.assert_array_equal(last, arg)
