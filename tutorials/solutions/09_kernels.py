# %% [markdown]
# # Solutions to 09 · The kernels
#
# These cells run after the tutorial, in its namespace: `python tutorials/solutions 09`,
# or paste them at the end of the notebook.

# %% [markdown]
# ### Exercise 1
#
# Normalised -> pixel coordinates, round each to the nearest integer, read the pixel
# where it is inside, 0 elsewhere. Fancy indexing with the batch index broadcast over
# the grid gathers all points at once.

# %%
from _course import rejects   # runs a check on a wrong answer: it must raise AssertionError


def nearest_numpy(U, grid, rounding=np.rint):
    N, C, H, W = U.shape
    ix = rounding(((grid[..., 0] + 1) * W - 1) / 2)    # align_corners=False
    iy = rounding(((grid[..., 1] + 1) * H - 1) / 2)
    inside = (ix >= 0) & (ix < W) & (iy >= 0) & (iy < H)
    ix = np.where(inside, ix, 0).astype(int)
    iy = np.where(inside, iy, 0).astype(int)
    n = np.arange(N)[:, None, None]
    values = U[n, :, iy, ix]                            # (N, H_out, W_out, C)
    return np.moveaxis(np.where(inside[..., None], values, 0.0), -1, 1)


check_exercise_1(nearest_numpy)

# %% [markdown]
# Eq. (4) as printed, $\lfloor x + 0.5 \rfloor$, rounds ties up; minstn and PyTorch
# round them to even:

# %%
rejects(check_exercise_1, lambda U, grid: nearest_numpy(U, grid, rounding=lambda v: np.floor(v + 0.5)))

# %% [markdown]
# ### Exercise 2

# %%
problem32 = problem(2, 3, 12, 10, np.float32)
results32 = {name: forward_backward(name, *problem32) for name in ("reference", "numpy", "numba")}
check_exercise_2(results32)
for name in results32:
    print(f"{name:9s} float32: {1e3 * best_time(lambda: forward_backward(name, *problem32), 3):.2f} ms")

# %% [markdown]
# The float64 problem of section 1 agrees even better, but it is not float32:

# %%
rejects(check_exercise_2, results)
print("09 solutions: all checks passed")
