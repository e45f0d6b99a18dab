# %% [markdown]
# # 03 · Reverse-mode autodiff with minstn
#
# **Study time** about 40 min · **Prerequisites** 01; derivatives and the chain rule ·
# **Paper** section 3.4 (training by backpropagation)
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
# $L = \frac{1}{8} \sum_{ij} (\mathrm{src}_{ij} - \mathrm{target}_{ij})^2$ with
# $\mathrm{src} = P \theta^\top$, so
#
# $$
# \frac{\partial L}{\partial\, \mathrm{src}} = \frac{2}{8} (\mathrm{src} - \mathrm{target}) \quad (4 \times 2),
# \qquad
# \frac{\partial L}{\partial \theta} = \Big(\frac{\partial L}{\partial\, \mathrm{src}}\Big)^{\!\top} P \quad (2 \times 3)
# $$
#
# (the second is the chain rule through the matrix product).
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
# $$
# \frac{\partial L}{\partial x_k} \approx \frac{L(x + \varepsilon e_k) - L(x - \varepsilon e_k)}{2 \varepsilon},
# $$
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
# Each check passes silently or raises an `AssertionError` that says what is wrong.
# Solutions: `tutorials/solutions/03_autodiff.py` (collapsed on the website).
#
# ### Exercise 1
#
# Write `Cube(mt.Function)` computing `x**3`, with its backward, like `Square` above.
# Then break it on purpose (`3 * x` instead of `3 * x**2`) and watch
# `mt.gradcheck(lambda x: Cube.apply(x), [x])` raise `mt.GradcheckError`.
# *Check*: `check_exercise_1(Cube)`.

# %%
def check_exercise_1(Cube):
    x = mt.tensor(np.random.default_rng(3).standard_normal(6), requires_grad=True, dtype=np.float64)
    assert np.allclose(Cube.apply(x).numpy(), x.data ** 3), "the forward is not x**3"
    try:
        mt.gradcheck(lambda x: Cube.apply(x), [x])
    except mt.GradcheckError as error:
        raise AssertionError(f"the backward disagrees with finite differences: {error}") from None


# %% [markdown]
# ### Exercise 2
#
# Write a hook that *clips* the gradient reaching `theta` to [-0.01, 0.01]: entries
# inside that range pass unchanged, the others are cut to the bound (a common guard
# for a localisation network). *Check*: `check_exercise_2(hook)` registers your hook
# on a fresh theta whose gradient has both large and small entries.

# %%
def check_exercise_2(hook):
    corners = mt.tensor(P.data, dtype=np.float64)
    goal = corners.data @ np.array([[1.3, 0.0, 0.2], [0.0, 1.001, 0.0]]).T    # far in x, close in y

    def theta_grad(with_hook):
        th = mt.tensor(np.eye(2, 3), requires_grad=True, dtype=np.float64)   # the identity
        if with_hook:
            th.register_hook(hook)
        ((corners @ th.T - goal) ** 2).mean().backward()
        return th.grad

    plain, clipped = theta_grad(False), theta_grad(True)
    assert (np.abs(plain) > 0.01).any() and ((np.abs(plain) < 0.01) & (plain != 0)).any()  # the test can fail
    assert clipped is not None and clipped.shape == plain.shape, "no gradient reached theta"
    assert np.abs(clipped).max() <= 0.01 + 1e-15, f"entries beyond 0.01 remain: {clipped.round(4).tolist()}"
    assert np.allclose(clipped, np.clip(plain, -0.01, 0.01), rtol=0, atol=1e-15), (
        f"the gradient {plain.round(4).tolist()} became {clipped.round(4).tolist()}: small entries must pass unchanged")

