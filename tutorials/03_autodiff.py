# %% [markdown]
# # 03 · Reverse-mode autodiff with minstn
#
# A spatial transformer is trained by backpropagation: the loss gradient must
# flow from the classifier, through the sampler, into theta and the localisation
# network. minstn's autodiff engine is about 500 lines (`minstn/autograd.py`);
# this tutorial drives it by hand.
#
# **You will learn**
#
# 1. how operations on Tensors record a graph, and how to look at it (`mt.graph`);
# 2. what `backward()` computes (a vector-Jacobian product per op, in reverse
#    topological order), checked against a gradient derived by hand;
# 3. hooks (`register_hook`) to watch or change a gradient in flight, and
#    `retain_grad()` to keep the gradient of an intermediate tensor;
# 4. `mt.gradcheck`: analytic gradients against finite differences, and its
#    negative control: a deliberately wrong backward is caught.

# %%
import numpy as np

import minstn as mt
from _course import savefig
from minstn.viz.geometry import draw_graph

np.set_printoptions(precision=4, suppress=True)
rng = np.random.default_rng(0)

# %% [markdown]
# ## 1. A graph that looks like eq. (1)
#
# Fit an affine map: four homogeneous points `P = (x_t, y_t, 1)` are sent to
# `src = P theta^T` (eq. (1) for four grid points), and we ask them to land on
# four targets. The loss is the mean squared distance. `theta` is a leaf that
# requires a gradient; `P` and `target` are constants.

# %%
P = mt.tensor([[-1.0, -1.0, 1.0], [1.0, -1.0, 1.0], [1.0, 1.0, 1.0], [-1.0, 1.0, 1.0]],
              dtype=np.float64, name="P")
target = mt.tensor(rng.uniform(-1, 1, (4, 2)), dtype=np.float64, name="target")
theta = mt.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]], requires_grad=True, dtype=np.float64, name="theta")

src = P @ theta.T              # (4, 2): where each point goes
diff = src - target
loss = (diff * diff).mean()
print("loss =", loss)

# %% [markdown]
# Every result remembers the op that made it (`grad_fn`). `mt.graph` prints the
# graph that `backward` will walk, root first; `names=` labels tensors that have
# no `name`. Constants (`P`, `target`) do not appear: no gradient flows to them.

# %%
print(mt.graph(loss, names={"src": src, "diff": diff}))
fig = draw_graph(loss, names={"src": src, "diff": diff}, title="backward graph of the loss")
savefig(fig, "03_graph")

# %% [markdown]
# ## 2. `backward()` and the gradient by hand
#
# `loss = (1/8) sum_ij (src_ij - target_ij)^2` with `src = P theta^T`, so
#
#     dloss/dsrc   = (2/8) (src - target)            (4, 2)
#     dloss/dtheta = (dloss/dsrc)^T P                (2, 3)   (chain rule through the matmul)
#
# `backward()` computes exactly these products, one op at a time, from the loss
# back to the leaves. Before calling it we attach two observers.

# %%
seen = {}


def watch_src(grad):
    """A hook: called with dloss/dsrc when backward reaches src. Returning None changes nothing."""
    seen["dloss/dsrc"] = grad.copy()


handle = src.register_hook(watch_src)
diff.retain_grad()  # keep .grad on this intermediate tensor (leaves always keep theirs)
loss.backward()

by_hand_dsrc = 2.0 / 8.0 * (src.data - target.data)
by_hand_dtheta = by_hand_dsrc.T @ P.data
print("theta.grad (backward):\n", theta.grad)
print("theta.grad (by hand):\n", by_hand_dtheta)
print("the hook saw dloss/dsrc:\n", seen["dloss/dsrc"])
print("diff.grad (retained):\n", diff.grad)
print("src.grad is", src.grad, "(not retained: intermediate gradients are freed by default)")

# %% [markdown]
# ## 3. A hook that *changes* the gradient
#
# If a hook returns an array, it replaces the gradient from then on. A classic
# use in spatial transformers: scale down the gradient reaching theta (the paper
# used a lower learning rate for the localisation network). Here we halve it.
# Gradients **accumulate** in `.grad`, so clear it first (an optimiser's `zero_grad`).

# %%
handle.remove()  # the observer on src is no longer needed
theta.grad = None
halve = theta.register_hook(lambda g: 0.5 * g)
loss = ((P @ theta.T - target) ** 2).mean()
loss.backward()
print("theta.grad with the halving hook:\n", theta.grad)
halve.remove()
halved = theta.grad.copy()

# %% [markdown]
# ## 4. Gradient descent, by hand
#
# With the gradient in hand, fitting theta is a loop. `mt.no_grad()` keeps the
# update out of the graph.

# %%
for step in range(200):
    theta.grad = None
    loss = ((P @ theta.T - target) ** 2).mean()
    loss.backward()
    with mt.no_grad():
        theta.data -= 0.5 * theta.grad
print(f"after 200 steps: loss = {loss.item():.5f}")
print("least-squares solution:\n", np.linalg.lstsq(P.data, target.data, rcond=None)[0].T)
print("theta found by gradient descent:\n", theta.data)

# %% [markdown]
# (Four points give eight equations for six unknowns: an affine map sends a square
# to a parallelogram, and four random targets are in general not one. So the loss
# stops at the least-squares residual, and theta at the least-squares solution.)
#
# ## 5. `mt.gradcheck` and its negative control
#
# Every `backward` in minstn is checked against central finite differences,
#
#     dL/dx_k ~ (L(x + eps e_k) - L(x - eps e_k)) / (2 eps),
#
# on float64 inputs. `gradcheck` builds the whole Jacobian both ways and compares
# them entry by entry.

# %%
a = mt.tensor(rng.standard_normal((3, 4)), requires_grad=True, dtype=np.float64)
b = mt.tensor(rng.standard_normal((4, 2)), requires_grad=True, dtype=np.float64)
print("gradcheck(tanh(a @ b) * a.sum()):", mt.gradcheck(lambda a, b: (a @ b).tanh() * a.sum(), [a, b]))

# %% [markdown]
# A check that cannot fail proves nothing. So write an op with a **wrong**
# backward (the classic slip: forgetting the factor 2 of `d(x^2)/dx = 2x`) and
# watch gradcheck catch it, naming the input and the worst entry.

# %%
class WrongSquare(mt.Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x * x

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return grad * x  # BUG on purpose: should be grad * 2 * x


class Square(WrongSquare):  # same forward; only the backward is fixed
    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return grad * 2 * x


x = mt.tensor(rng.standard_normal(5), requires_grad=True, dtype=np.float64)
assert mt.gradcheck(lambda x: Square.apply(x), [x])
try:
    mt.gradcheck(lambda x: WrongSquare.apply(x), [x])
    caught = None
except mt.GradcheckError as error:
    caught = error
print("gradcheck on the wrong backward says:\n", caught)

# %% [markdown]
# ## What you should have seen (checked)

# %%
# backward agrees with the chain rule done by hand ...
assert np.allclose(seen["dloss/dsrc"], by_hand_dsrc)
assert np.allclose(diff.grad, by_hand_dsrc)  # d(loss)/d(diff) = d(loss)/d(src): src - target is a shift
assert np.allclose(halved, 0.5 * by_hand_dtheta)  # the hook halved exactly that gradient
# ... gradient descent reached the least-squares fit ...
assert np.allclose(theta.data, np.linalg.lstsq(P.data, target.data, rcond=None)[0].T, atol=1e-4)
# ... intermediate gradients are only kept when asked ...
assert src.grad is None
# ... and gradcheck passes the right backward and catches the wrong one.
assert isinstance(caught, mt.GradcheckError) and "input 0" in str(caught)
print("03: all checks passed")

# %% [markdown]
# ## Exercises
#
# 1. Write `Cube(mt.Function)` computing `x**3` with its backward, and check it
#    with `mt.gradcheck(lambda x: Cube.apply(x), [x])`. Then break it on purpose
#    (`3 * x` instead of `3 * x**2`) and confirm `mt.GradcheckError` is raised.
# 2. Use a hook to *clip* the gradient reaching `theta` to [-0.01, 0.01]
#    (`theta.register_hook(lambda g: np.clip(g, -0.01, 0.01))`). *Check*: after
#    `backward`, `np.abs(theta.grad).max() <= 0.01`.
