# %% [markdown]
# # Solutions to 01 · Affine maps and homogeneous coordinates
#
# These cells run after the tutorial, in its namespace: `python tutorials/solutions 01`,
# or paste them at the end of the notebook. Each exercise: a solution, its check, and a
# plausible wrong answer that the check rejects.

# %% [markdown]
# ### Exercise 1
#
# Output x in [-1, 1] must read input x in [0, 1]: $x^s = 0.5\,x^t + 0.5$. Output y in
# [-1, 1] must read the *top* half, y in [-1, 0] (y points down): $y^s = 0.5\,y^t - 0.5$.

# %%
from _course import rejects   # runs a check on a wrong answer: it must raise AssertionError

theta_quadrant = np.array([[0.5, 0.0, 0.5], [0.0, 0.5, -0.5]])
check_exercise_1(theta_quadrant)
print(warp_nearest(img, theta_quadrant)[:6])     # the frame's top-right corner, enlarged

# %% [markdown]
# The usual slip: +0.5 for y, as if y pointed up. That shows the bottom-right quadrant.

# %%
rejects(check_exercise_1, np.array([[0.5, 0.0, 0.5], [0.0, 0.5, 0.5]]))

# %% [markdown]
# ### Exercise 2
#
# Move (0.5, 0.5) to the origin, rotate, move it back: "apply A, then B" is
# `compose(B, A)`, so the first map is the innermost.

# %%
theta_about = compose(translation(0.5, 0.5), compose(rotation(30), translation(-0.5, -0.5)))
check_exercise_2(theta_about)
print(theta_about)

# %% [markdown]
# Composing in reading order (translate back first) rotates about another point.

# %%
rejects(check_exercise_2, compose(translation(-0.5, -0.5), compose(rotation(30), translation(0.5, 0.5))))
print("01 solutions: all checks passed")
