# %% [markdown]
# # Solutions to 10 · When a transformer collapses
#
# These cells run after the tutorial, in its namespace: `python tutorials/solutions 10`,
# or paste them at the end of the notebook.

# %% [markdown]
# ### Exercise 1
#
# The output's sampling points are theta times the target grid G of eq. (1): the base
# coordinates `linspace(-1, 1, n) * (n - 1) / n` along each axis (align_corners=False).
# A point is off the canvas when its x or its y leaves [-1, 1].

# %%
from _course import rejects   # runs a check on a wrong answer: it must raise AssertionError


def off_canvas(theta, size):
    t = np.linspace(-1, 1, size) * (size - 1) / size
    xt, yt = np.meshgrid(t, t)
    xs = theta[0, 0] * xt + theta[0, 1] * yt + theta[0, 2]
    ys = theta[1, 0] * xt + theta[1, 1] * yt + theta[1, 2]
    return float(np.mean((np.abs(xs) > 1) | (np.abs(ys) > 1)))


check_exercise_1(off_canvas)

# %% [markdown]
# Looking at x alone misses the points that leave through the top or the bottom:

# %%
def off_canvas_x_only(theta, size):
    t = np.linspace(-1, 1, size) * (size - 1) / size
    xt, yt = np.meshgrid(t, t)
    return float(np.mean(np.abs(theta[0, 0] * xt + theta[0, 1] * yt + theta[0, 2]) > 1))


rejects(check_exercise_1, off_canvas_x_only)

# %% [markdown]
# ### Exercise 2
#
# A black pixel is 0 before normalisation, so afterwards it is `(0 - mean) / std`.


# %%
def background(mean, std):
    return -mean / std


check_exercise_2(background)
rejects(check_exercise_2, lambda mean, std: 0.0)            # zero padding: brighter than the background
rejects(check_exercise_2, lambda mean, std: mean / std)     # the sign lost
print("10 solutions: all checks passed")
