# %% [markdown]
# # Solutions to 03 · Reverse-mode autodiff with minstn
#
# These cells run after the tutorial, in its namespace: `python tutorials/solutions 03`,
# or paste them at the end of the notebook.

# %% [markdown]
# ### Exercise 1
#
# $\frac{d}{dx} x^3 = 3 x^2$: the backward multiplies the incoming gradient by it.

# %%
from _course import rejects   # runs a check on a wrong answer: it must raise AssertionError


class Cube(mt.Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x * x * x

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return grad * 3 * x * x


check_exercise_1(Cube)

# %% [markdown]
# The broken one, `3 * x`: gradcheck names the input and the worst entry.

# %%
class BrokenCube(Cube):
    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return grad * 3 * x


rejects(check_exercise_1, BrokenCube)

# %% [markdown]
# ### Exercise 2
#
# A hook that returns an array replaces the gradient; `np.clip` cuts only what is
# beyond the bounds.

# %%
def clip_hook(grad):
    return np.clip(grad, -0.01, 0.01)


check_exercise_2(clip_hook)

# %% [markdown]
# Rescaling the whole gradient so that its largest entry is 0.01 also keeps it within
# bounds, but it shrinks the small entries too: that is not clipping.

# %%
rejects(check_exercise_2, lambda grad: grad * (0.01 / np.abs(grad).max()))
print("03 solutions: all checks passed")
