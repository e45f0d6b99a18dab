# %% [markdown]
# # Solutions to 07 · ST-CNN against CNN
#
# These cells run after the tutorial, in its namespace: `python tutorials/solutions 07`,
# or paste them at the end of the notebook.

# %% [markdown]
# ### Exercise 1
#
# Reusing the trained `Conv2d` modules shares their weights; only the pooling changes.
# Average pooling changes by a little with every shift instead of jumping when the
# maximum leaves its window, but a shift of 4 pixels is still a different input to it.

# %%
from _course import rejects   # runs a check on a wrong answer: it must raise AssertionError
from minstn import nn

avg_features = nn.Sequential(cnn[0], nn.ReLU(), nn.AvgPool2d(2), cnn[3], nn.ReLU(), nn.AvgPool2d(2))
check_exercise_1(avg_features)

# %% [markdown]
# Fresh convolutions have the right shapes but not the trained weights:

# %%
rejects(check_exercise_1, nn.Sequential(nn.Conv2d(1, 64, 9), nn.ReLU(), nn.AvgPool2d(2),
                                        nn.Conv2d(64, 64, 7), nn.ReLU(), nn.AvgPool2d(2)))

# %% [markdown]
# ### Exercise 2
#
# For $s R(a)$, $\theta_{21} / \theta_{11} = \tan a$ whatever $s > 0$: `arctan2` of the
# first column gives the angle in the right quadrant.

# %%
def rotation_angle(theta):
    theta = np.asarray(theta)
    return np.degrees(np.arctan2(theta[:, 1, 0], theta[:, 0, 0]))


check_exercise_2(rotation_angle)
with mt.no_grad():
    st_cnn.eval()
    st_cnn(mt.tensor(x_test[:64]))
predicted = rotation_angle(st_cnn.st.last_theta)
r = np.corrcoef(predicted, np.asarray(test_params["angle"][:64]))[0, 1]
print(f"correlation of the predicted rotation with the input's rotation: {r:+.2f}")

# %% [markdown]
# Reading the first *row* instead, $\theta_{12} = -s \sin a$, flips the sign:

# %%
rejects(check_exercise_2, lambda theta: np.degrees(np.arctan2(np.asarray(theta)[:, 0, 1], np.asarray(theta)[:, 0, 0])))
print("07 solutions: all checks passed")
