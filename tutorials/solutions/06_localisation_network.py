# %% [markdown]
# # Solutions to 06 · Localisation networks
#
# These cells run after the tutorial, in its namespace: `python tutorials/solutions 06`,
# or paste them at the end of the notebook.

# %% [markdown]
# ### Exercise 1
#
# The same loop, the same data, the same epochs; only the model changes. The FCN has
# to recognise the digit wherever it is on the 42x42 canvas, at any rotation and
# scale; the ST-FCN's classifier gets it centred and zoomed in.

# %%
from _course import rejects   # runs a check on a wrong answer: it must raise AssertionError

mt.manual_seed(0)
fcn = models.fcn(in_size=42)
fcn_history = train(fcn)
check_exercise_1(fcn)

# %% [markdown]
# A model that was never trained is (almost) at chance:

# %%
rejects(check_exercise_1, models.fcn(in_size=42))

# %% [markdown]
# ### Exercise 2
#
# Random weights make theta depend on the input in arbitrary ways: large scales and
# shifts send most sampling points outside the image, where zero padding reads black.
# The outputs are mostly blank or cut off, and the gradient that reaches theta from
# blank outputs is weak: training starts from a transformer that sees nothing. This
# is why the paper starts the regression layer at the identity.

# %%
rng = np.random.default_rng(0)
random_model = models.st_fcn(in_size=42)
regression = random_model.st.regression
regression.weight.data[...] = rng.normal(size=regression.weight.data.shape)
regression.bias.data[...] = rng.normal(size=regression.bias.data.shape)
check_exercise_2(random_model)
fig = before_after(watch, [transformer_view(random_model, watch)[0]], titles=["input", "random start"])
savefig(fig, "06_solution_random_start")

# %% [markdown]
# Too narrow a spread (here N(0, 0.01)) stays near zero weights but moves the bias off
# the identity to nearly zero: theta = 0 reads the centre pixel everywhere. Inside the
# image, yet useless; the check asks for the failure the exercise is about, samples
# outside the input, and does not see it here:

# %%
narrow = models.st_fcn(in_size=42)
narrow.st.regression.weight.data[...] = rng.normal(0, 0.01, size=narrow.st.regression.weight.data.shape)
narrow.st.regression.bias.data[...] = rng.normal(0, 0.01, size=narrow.st.regression.bias.data.shape)
rejects(check_exercise_2, narrow)
print("06 solutions: all checks passed")
