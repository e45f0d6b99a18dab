# %% [markdown]
# # Solutions to 04 · The grid generator and the sampler
#
# These cells run after the tutorial, in its namespace: `python tutorials/solutions 04`,
# or paste them at the end of the notebook.

# %% [markdown]
# ### Exercise 1
#
# A 14x14 output with `align_corners=False` has its pixel centres at
# $x^t = \frac{2j + 1}{14} - 1$. With $x^s = 0.5\,x^t - 0.5$ they land at
# $\frac{2j + 1}{28} - 1$: exactly the centres of input columns $j = 0 \dots 13$. Every
# sampling point is on a pixel centre, so bilinear sampling returns the pixel itself.

# %%
from _course import rejects   # runs a check on a wrong answer: it must raise AssertionError

theta_crop = np.array([[[0.5, 0.0, -0.5], [0.0, 0.5, -0.5]]])
check_exercise_1(theta_crop)

# %% [markdown]
# With `align_corners=True` in mind, one might shift by half a pixel more; every point
# then falls between pixels and the crop is interpolated (blurred).

# %%
rejects(check_exercise_1, np.array([[[0.5, 0.0, -0.5 - 1 / 28], [0.0, 0.5, -0.5 - 1 / 28]]]))

# %% [markdown]
# ### Exercise 2
#
# With border padding a tap outside the image reads the nearest edge pixel (the
# coordinate is clamped to [0, W - 1]). The window of `zoom_out` reaches beyond every
# corner, so each output corner shows the input's corner pixel: the ramp's values at
# its left and right ends. With zeros padding they would be black.

# %%
out_border = F.grid_sample(frame, F.affine_grid(zoom_out, frame.shape), padding_mode="border")
check_exercise_2(out_border)
print("output corners:", out_border.numpy()[0, 0, [0, 0, -1, -1], [0, -1, 0, -1]])

# %% [markdown]
# Forgetting `padding_mode` leaves the default, zeros:

# %%
rejects(check_exercise_2, F.grid_sample(frame, F.affine_grid(zoom_out, frame.shape)))
print("04 solutions: all checks passed")
