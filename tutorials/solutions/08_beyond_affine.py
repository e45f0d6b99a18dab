# %% [markdown]
# # Solutions to 08 · Beyond affine
#
# These cells run after the tutorial, in its namespace: `python tutorials/solutions 08`,
# or paste them at the end of the notebook.

# %% [markdown]
# ### Exercise 1
#
# The second transformer sees what the first produced, so its parameters are fitted
# on the affine output. The series undoes the distortion better than the affine alone,
# but not better than the TPS alone (in our runs, fast and full mode): the TPS family
# contains the affine maps already, and sampling twice blurs the digit twice. Two
# transformers in series pay off when each has its own job (find the object, then
# correct its shape) and, better still, when their grids are composed so that the
# image is sampled only once.

# %%
from _course import rejects   # runs a check on a wrong answer: it must raise AssertionError

series_fit = fit(results["e"]["affine"][1], "tps")
check_exercise_1(series_fit[3])
fig = before_after(clean[:4], [results["e"]["affine"][1][:4], series_fit[1][:4], results["e"]["tps"][1][:4]],
                   titles=["clean", "affine", "affine, then TPS", "TPS alone"])
savefig(fig, "08_solution_series")

# %% [markdown]
# Fitting the second stage on the distorted input, not on the affine output, gives
# parameters that undo the whole distortion a second time:

# %%
rejects(check_exercise_1, results["e"]["tps"][3])

# %% [markdown]
# ### Exercise 2

# %%
from minstn.transforms import tps_spec

fits = {shape: fit(distorted_by_kind["e"], tps_spec(shape)) for shape in [(3, 3), (6, 6)]}
check_exercise_2(fits)
fig = before_after(clean[:4], [fits[(3, 3)][1][:4], results["e"]["tps"][1][:4], fits[(6, 6)][1][:4]],
                   titles=["clean", "TPS 3x3", "TPS 4x4", "TPS 6x6"])
savefig(fig, "08_solution_control_grids")

# %% [markdown]
# Passing the name `"tps"` for both fits the 4x4 TPS twice: the parameters have the
# wrong size for a 3x3 or a 6x6 grid.

# %%
rejects(check_exercise_2, {(3, 3): results["e"]["tps"], (6, 6): results["e"]["tps"]})
print("08 solutions: all checks passed")
