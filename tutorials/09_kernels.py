# %% [markdown]
# # 09 · The kernels: reference, NumPy, Numba, CUDA
#
# **Study time** about 40 min · **Prerequisites** 02, 04, 05; reading Python loops ·
# **Paper** eq. (3)-(7)
#
# The same sampler, eq. (3)-(7), is written four times in `minstn/kernels/`:
#
# | backend | file | what it does |
# | --- | --- | --- |
# | `"reference"` | `reference.py` | eq. (3)-(7) literally: every output against **every** input pixel, as `np.einsum` sums |
# | `"numpy"` | `numpy_backend.py` | the 4-tap form, vectorised: gather 4 taps for all points at once, `np.add.at` to scatter |
# | `"numba"` | `cpu.py` + `pixel.py` | plain Python loops over output locations, compiled by Numba, run in parallel threads |
# | `"cuda"` | `cuda.py` + `pixel.py` | one GPU thread per output location; the per-pixel maths is the same `pixel.py` |
#
# They are interchangeable: `mt.set_backend(name)` or `with mt.use_backend(name):`.
#
# **You will learn**
#
# 1. to switch backends and check that they agree (forward and both gradients);
# 2. to read a Numba kernel: `@njit(cache=True)`, a loop over a run of output rows,
#    the `prange` launcher that runs several runs at once on Numba's threads, and a
#    per-pixel function shared with the GPU;
# 3. *why* each is faster than the one before, with timings measured here, on
#    your machine;
# 4. to run the CUDA kernels on a GPU, or in Numba's CUDA simulator
#    (`NUMBA_ENABLE_CUDASIM=1`, slow, for correctness only) when there is no GPU.

# %%
import inspect
import os
import subprocess
import sys
import time

import numpy as np
from matplotlib.figure import Figure

import minstn as mt
import minstn.functional as F
from _course import FAST, savefig
from minstn.kernels import cpu, pixel

rng = np.random.default_rng(0)


def problem(N, C, H, W, dtype=np.float64):
    """A batch of images and a random affine grid near the identity."""
    U = rng.random((N, C, H, W)).astype(dtype)
    theta = np.tile(np.eye(2, 3), (N, 1, 1)) + 0.2 * rng.standard_normal((N, 2, 3))
    grid = F.affine_grid(theta.astype(dtype), (N, C, H, W)).numpy()
    return U, grid


def forward_backward(backend, U, grid):
    """V, dL/dU, dL/dgrid on one backend, for L = sum(V * G) with a fixed G."""
    with mt.use_backend(backend):
        u = mt.tensor(U, requires_grad=True)
        g = mt.tensor(grid, requires_grad=True)
        V = F.grid_sample(u, g)
        V.backward(np.cos(np.arange(V.numel())).reshape(V.shape).astype(V.dtype))
    return V.numpy(), u.grad, g.grad


# %% [markdown]
# ## 1. Same numbers on every backend
#
# The reference backend is the oracle: it evaluates the printed equations with no
# cleverness at all. Every other backend must agree with it to rounding error.

# %%
U, grid = problem(2, 3, 12, 10)
results = {name: forward_backward(name, U, grid) for name in ("reference", "numpy", "numba")}
for name in ("numpy", "numba"):
    diffs = [np.abs(a - b).max() for a, b in zip(results[name], results["reference"])]
    print(f"{name:6s} vs reference: max |diff| V {diffs[0]:.1e}, dL/dU {diffs[1]:.1e}, dL/dgrid {diffs[2]:.1e}")

# %% [markdown]
# ## 2. Reading a Numba kernel
#
# Here is the simplest forward kernel of the CPU backend, in full. It is the one the
# nearest kernel, eq. (4), uses; the bilinear one, `cpu.bilinear_forward_kernel`, calls
# the same `pixel.py` functions but works on chunks of 128 output locations in two
# passes: first the coordinates, taps and weights of the whole chunk (a loop the
# compiler turns into SIMD instructions), then the image reads.

# %%
print(inspect.getsource(cpu.forward_kernel.py_func))

# %% [markdown]
# How to read it:
#
# * `@njit(**JIT)`, with `JIT = dict(nogil=True, cache=True, error_model="numpy")`:
#   compile this Python function to machine code the first time it is called with
#   given argument types (`nopython`: no Python objects inside, so loops run at C
#   speed); `cache=True` stores the compiled code on disk, so the next process skips
#   compilation (`nogil=True` lets other Python threads run meanwhile).
# * `for k in range(r0, r1)`: one iteration per output *row*, for a run of rows
#   `[r0, r1)`. For a small input the host function `cpu.grid_sample_forward` calls
#   this kernel once on all the rows. Above a small size it goes through a tiny
#   launcher instead (`cpu._in_parallel`): `@njit(parallel=True)` with a `prange` loop
#   over runs of rows (of output locations, for the bilinear kernel), which Numba
#   spreads over its threads. Each row writes only its own outputs, so the threads
#   never race. Only the launcher goes through Numba's parallel compiler, which is
#   slower than compiling a plain loop.
# * `pixel.sample_location(...)`: the per-location maths (normalise, pick the 4
#   taps, weight them), written **once** in `pixel.py` as plain Python marked
#   `@register_jitable`. Numba inlines it here, and `cuda.py` compiles the same
#   function as a GPU device function. Below, the bilinear kernel along one axis,
#   eq. (5):

# %%
print(inspect.getsource(pixel.bilinear_weights))

# %% [markdown]
# The backward is harder: dL/dU (eq. 6) is a **scatter**: two output locations
# may add into the same input pixel. The CPU backward gives each thread runs of
# whole images, so no two threads ever touch the same pixel. The CUDA
# kernel does something similar per (n, c) plane, to stay deterministic without
# atomics (read the docstrings of `cpu.py` and `cuda.py`).

# %% [markdown]
# ## 3. Timings, measured here
#
# **The first call.** Numba compiles a kernel the first time it is called with given
# argument types, and `cache=True` keeps the machine code on disk for the next
# process. In *this* process the kernels have run already (section 1), so timing a
# call here would not show a first call: we time one in a fresh Python process. What
# it costs depends on whether an earlier run (yours, or a warm-up before class) left
# the compiled kernels in Numba's cache.
#
# Then forward + backward of `grid_sample` for a batch of images of growing size,
# the best of a few repetitions.

# %%
def best_time(fn, repeats):
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


FIRST_CALL = """
import time
start = time.perf_counter()
import numpy as np, minstn as mt, minstn.functional as F
imported = time.perf_counter()
u = mt.tensor(np.ones((1, 1, 5, 5), np.float32), requires_grad=True)
with mt.use_backend("numba"):
    F.grid_sample(u, F.affine_grid(np.eye(2, 3, dtype=np.float32)[None], (1, 1, 5, 5))).sum().backward()
print(imported - start, time.perf_counter() - imported)
"""
fresh = subprocess.run([sys.executable, "-c", FIRST_CALL], capture_output=True, text=True, check=True)
import_s, first_call_s = (float(v) for v in fresh.stdout.split())
print(f"a fresh process: import minstn {import_s:.2f} s, then its first Numba forward + backward {first_call_s:.2f} s")

N_BATCH = 8 if FAST else 32
sizes = [8, 16, 28] if FAST else [8, 16, 28, 42, 60]
REF_MAX = 28  # the reference costs O(H_out W_out H W): beyond this it is just slow
repeats = 2 if FAST else 5
timings = {"reference": {}, "numpy": {}, "numba": {}}
for S in sizes:
    U, grid = problem(N_BATCH, 1, S, S, np.float32)
    for name in timings:
        if name == "reference" and S > REF_MAX:
            continue
        timings[name][S] = best_time(lambda: forward_backward(name, U, grid), repeats)
    print(f"{S:3d}x{S:<3d} " + "  ".join(f"{n} {1e3 * timings[n][S]:8.2f} ms" for n in timings if S in timings[n]))

print(f"(Numba threads: {os.environ.get('NUMBA_NUM_THREADS', 'all cores')}; on a shared machine "
      "timings vary, ratios less)")

# %%
fig = Figure(figsize=(5, 3.6), layout="constrained")
ax = fig.subplots()
for name, marker in zip(timings, "osd"):
    xs = sorted(timings[name])
    ax.loglog(xs, [1e3 * timings[name][s] for s in xs], marker=marker, label=name)
ax.minorticks_off()
ax.set_xticks(sizes, [str(s) for s in sizes])
ax.set_xlabel("image side S (batch of %d, S x S -> S x S)" % N_BATCH)
ax.set_ylabel("forward + backward, ms (best of %d)" % repeats)
ax.set_title("grid_sample on this machine", fontsize=10)
ax.legend()
savefig(fig, "09_timings")

# %% [markdown]
# Why each is faster than the one before:
#
# * **reference -> NumPy**: the reference multiplies every output location by
#   every input pixel, `O(H_out W_out H W)` work, almost all of it times a zero
#   weight. The 4-tap form does `O(H_out W_out)`: for a 28x28 image that is about
#   200 times less work.
# * **NumPy -> Numba**: NumPy evaluates one array expression at a time, writing
#   each intermediate (pixel coordinates, floors, 4 weights, 4 gathers...) to
#   memory and reading it back; `np.add.at` (the scatter) is notoriously slow.
#   The Numba kernel works on 128 output locations at a time: a first pass computes
#   their coordinates, taps and weights (a short loop the compiler runs on SIMD
#   lanes, into a scratch array that stays in the L1 cache), a second reads the
#   image, channel by channel; nothing the size of the image is ever written to
#   memory. The locations are split over threads.
# * **Numba -> CUDA**: thousands of GPU threads, one per output location. The host
#   functions here copy arrays to and from the GPU on every call, so for small
#   batches the copies dominate; a training loop that keeps arrays on the device
#   would not pay them.

# %% [markdown]
# ## 4. CUDA: on a GPU, or in the simulator
#
# This part runs only when a CUDA GPU is usable or `NUMBA_ENABLE_CUDASIM=1` is set
# in the environment *before* Python starts (for example
# `NUMBA_ENABLE_CUDASIM=1 python tutorials/09_kernels.py`). The simulator runs
# each GPU thread as a Python thread: very slow, so we use a tiny problem and
# check correctness only.

# %%
cuda_result = None
try:
    mt.set_backend("cuda")
    mt.set_backend("numba")
    cuda_ok, why = True, ""
except (ImportError, RuntimeError) as error:
    cuda_ok, why = False, str(error).splitlines()[0]
simulated = os.environ.get("NUMBA_ENABLE_CUDASIM", "0") == "1"
if cuda_ok:
    U_small, grid_small = problem(2, 2, 6, 5)
    cuda_result = forward_backward("cuda", U_small, grid_small)
    ref = forward_backward("reference", U_small, grid_small)
    cuda_diff = max(np.abs(a - b).max() for a, b in zip(cuda_result, ref))
    print(f"CUDA ({'simulator' if simulated else 'GPU'}) vs reference: max |diff| {cuda_diff:.1e}")
    if not simulated:
        U, grid = problem(N_BATCH, 1, 60, 60, np.float32)
        forward_backward("cuda", U, grid)  # compile
        print(f"CUDA 60x60, batch {N_BATCH}: {1e3 * best_time(lambda: forward_backward('cuda', U, grid), 5):.2f} ms"
              " (including host <-> device copies)")
else:
    print("CUDA part skipped:", why)

# %% [markdown]
# ## What you should have seen (checked)

# %%
for name in ("numpy", "numba"):
    for a, b in zip(results[name], results["reference"]):
        assert np.allclose(a, b, atol=1e-10), name
if cuda_result is not None:
    assert cuda_diff < 1e-10
largest = max(s for s in timings["reference"])
# At the largest size the reference ran, both 4-tap backends beat it.
assert timings["numpy"][largest] < timings["reference"][largest]
assert timings["numba"][largest] < timings["reference"][largest]
print("09: all checks passed")

# %% [markdown]
# ## Exercises
#
# Each check passes silently or raises an `AssertionError` that says what is wrong.
# Solutions: `tutorials/solutions/09_kernels.py` (collapsed on the website). To see
# what threads buy, run this file with `NUMBA_NUM_THREADS=1` and without it and
# compare the Numba column: on a machine of your own the time drops with the cores;
# on a shared one, other people's work decides.
#
# ### Exercise 1
#
# Write `nearest_numpy(U, grid)`: the forward of the nearest kernel, eq. (4), vectorised
# with NumPy, computing what the Numba kernel printed in section 2 computes
# (`align_corners=False`, zeros padding: a point whose nearest pixel lies outside the
# image reads 0). Mind the ties: minstn, like PyTorch, rounds half to even
# (`np.rint`). *Check*: `check_exercise_1(nearest_numpy)` compares it with
# `F.grid_sample(..., mode="nearest")` on random problems, points outside and exact
# ties included.

# %%
def check_exercise_1(nearest_numpy):
    check_rng = np.random.default_rng(5)
    for N, C, H, W in [(2, 3, 6, 7), (1, 1, 4, 4), (3, 2, 9, 5)]:
        U = check_rng.random((N, C, H, W))
        grid = check_rng.uniform(-1.3, 1.3, (N, 4, 6, 2))
        # ties: pixel coordinates k + 0.5 exactly (normalised x = (2 (k + 0.5) + 1) / W - 1)
        grid[:, 0, :, 0] = (2 * (check_rng.integers(0, W - 1, (N, 6)) + 0.5) + 1) / W - 1
        expected = F.grid_sample(U, grid, mode="nearest").numpy()
        got = np.asarray(nearest_numpy(U, grid))
        assert got.shape == expected.shape, f"shape {got.shape}, expected {expected.shape}"
        wrong = ~np.isclose(got, expected, rtol=0, atol=1e-12)
        assert not wrong.any(), (
            f"{wrong.sum()} of {wrong.size} values differ on a {N}x{C}x{H}x{W} problem "
            f"(first at index {np.argwhere(wrong)[0].tolist()}): rounding, padding, or (x, y) order?")


# %% [markdown]
# ### Exercise 2
#
# Run `forward_backward` on the three CPU backends with a **float32** problem
# (`problem(2, 3, 12, 10, np.float32)`), as a dict `{backend: (V, dL/dU, dL/dgrid)}`.
# *Check*: `check_exercise_2(results32)`: every array is float32, and the NumPy and
# Numba backends stay within 1e-5 of the reference. Then time them as in section 3:
# does the reference get faster in float32?

# %%
def check_exercise_2(results32):
    assert set(results32) == {"reference", "numpy", "numba"}, f"backends: {sorted(results32)}"
    for name, arrays in results32.items():
        dtypes = [np.asarray(a).dtype for a in arrays]
        assert all(d == np.float32 for d in dtypes), f"{name} returned {dtypes}: was the problem float32?"
    for name in ("numpy", "numba"):
        for what, a, b in zip(("V", "dL/dU", "dL/dgrid"), results32[name], results32["reference"]):
            worst = np.abs(np.asarray(a, np.float64) - np.asarray(b, np.float64)).max()
            assert worst < 1e-5, f"{name} {what} differs from the reference by {worst:.2g}"
