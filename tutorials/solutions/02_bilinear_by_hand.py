# %% [markdown]
# # Solutions to 02 · Bilinear interpolation by hand
#
# These cells run after the tutorial, in its namespace: `python tutorials/solutions 02`,
# or paste them at the end of the notebook.

# %% [markdown]
# ### Exercise 1
#
# (1.5, 0.5) is in the cell of columns 1, 2 and rows 0, 1, halfway along both axes:
# all four weights are 0.25, and V is the mean of `U[0:2, 1:3]`.

# %%
from _course import rejects   # runs a check on a wrong answer: it must raise AssertionError

V_by_hand = 0.25 * (U[0, 1] + U[0, 2] + U[1, 1] + U[1, 2])
print("V(1.5, 0.5) =", V_by_hand)
check_exercise_1(V_by_hand)

# %% [markdown]
# Reading x as the row and y as the column takes the block `U[1:3, 0:2]` instead.

# %%
rejects(check_exercise_1, 0.25 * (U[1, 0] + U[1, 1] + U[2, 0] + U[2, 1]))

# %% [markdown]
# ### Exercise 2
#
# Along one axis, $(1 - f) (a + b m_0) + f (a + b (m_0 + 1)) = a + b (m_0 + f) = a + b x$:
# linear interpolation of a linear function is exact, and bilinear does it along x,
# then along y.

# %%
def linear_image(a, b, c, H, W):
    n, m = np.mgrid[0:H, 0:W]          # n: row index, m: column index
    return a + b * m + c * n


check_exercise_2(linear_image)

# %% [markdown]
# Swapping the roles of rows and columns gives another linear image, but not the one
# asked for: its samples follow $a + b\,y + c\,x$.

# %%
rejects(check_exercise_2, lambda a, b, c, H, W: a + b * np.mgrid[0:H, 0:W][0] + c * np.mgrid[0:H, 0:W][1])
print("02 solutions: all checks passed")
