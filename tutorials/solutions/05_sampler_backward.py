# %% [markdown]
# # Solutions to 05 · The backward of the sampler
#
# These cells run after the tutorial, in its namespace: `python tutorials/solutions 05`,
# or paste them at the end of the notebook.

# %% [markdown]
# ### Exercise 1
#
# With `x1 = ceil(x)` and `x0 = x1 - 1`, V along x is
# `(x1 - x) V_col(x0) + (x - x0) V_col(x1)` (each column already interpolated along y),
# so its derivative is `V_col(x1) - V_col(x0)`: at an integer x, the slope of the
# segment to its **left**. Taps outside the image read 0 (zero padding).

# %%
from _course import rejects   # runs a check on a wrong answer: it must raise AssertionError


def column(m, y):
    """U's column m interpolated at row y (0 outside the image)."""
    if not 0 <= m < W:
        return 0.0
    return sum(U[n, m] * k(y - n) for n in range(H))


def dVdx_left(x, y):
    x1 = int(np.ceil(x))
    return column(x1, y) - column(x1 - 1, y)


check_exercise_1(dVdx_left)
print(f"at x = 1: left-hand convention {dVdx_left(1.0, y):+.4f}, left derivative {left:+.4f}")

# %% [markdown]
# The floor taps (what minstn uses) give the right-hand derivative at integers:

# %%
rejects(check_exercise_1, lambda x, y: column(int(np.floor(x)) + 1, y) - column(int(np.floor(x)), y))

# %% [markdown]
# ### Exercise 2
#
# Nearest sampling is piecewise **constant** in the sampling location: moving a point a
# little does not change which pixel it reads, so the derivative with respect to the
# location is 0 (almost everywhere; at the jumps it does not exist). No gradient
# reaches the grid, so none reaches theta or the localisation network: it cannot
# learn. The image still gets a gradient (each output copies one pixel).

# %%
u = mt.tensor(digit, requires_grad=True)
g = mt.tensor(grid_id.data, requires_grad=True)
((F.grid_sample(u, g, mode="nearest") - target) ** 2).sum().backward()
check_exercise_2(u, g)

# %% [markdown]
# Reusing `grid_id`, which holds the bilinear gradient of section 5, adds zero to it:
# the check sees a gradient that nearest sampling did not produce.

# %%
((F.grid_sample(digit, grid_id, mode="nearest") - target) ** 2).sum().backward()
rejects(check_exercise_2, u, grid_id)
print("05 solutions: all checks passed")
