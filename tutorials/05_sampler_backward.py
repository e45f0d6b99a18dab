# %% [markdown]
# # 05 · The backward of the sampler (eq. 6-7)
#
# **Study time** about 60 min · **Prerequisites** 02, 03, 04 · **Paper** eq. (6)-(7)
#
# What makes a spatial transformer trainable is that the sampler is
# differentiable with respect to **both** the input image U (eq. 6) and the
# sampling locations (x_s, y_s) (eq. 7); from the locations the gradient flows
# into theta through eq. (1) and on into the localisation network.
#
# **You will learn**
#
# 1. to derive eq. (6) and (7) from eq. (3) + (5), and to spot the typo in eq. (6)
#    as printed (a double sum in front of dV/dU_nm that does not belong there);
# 2. the subtlety of eq. (7) at integer coordinates: read literally it is neither
#    the left nor the right derivative; minstn uses the floor convention, whose
#    derivative is the right-hand one, and we measure that;
# 3. to gradcheck the sampler and the grid generator on every CPU backend;
# 4. to draw dL/d(x_s, y_s) as a vector field over the image: each sampling point
#    is told where to move to make the output look more like a target.

# %%
import numpy as np

import minstn as mt
import minstn.functional as F
from _course import digits, savefig
from minstn.viz.geometry import vector_field

np.set_printoptions(precision=4, suppress=True)

# %% [markdown]
# ## 1. The derivation
#
# Eq. (3) + (5), one channel, $x_i, y_i$ in pixel units:
# $V_i = \sum_n \sum_m U_{nm}\, k(x_i - m)\, k(y_i - n)$ with $k(d) = \max(0, 1 - |d|)$.
#
# **With respect to one input pixel $U_{nm}$.** $V_i$ is linear in U, so
#
# $$
# \frac{\partial V_i}{\partial U_{nm}} = \max(0, 1 - |x_i - m|)\, \max(0, 1 - |y_i - n|) \qquad \text{(eq. 6)}
# $$
#
# The paper prints this with $\sum_n^H \sum_m^W$ in front. That is a typo: the
# derivative with respect to *one* pixel has no sum over pixels (n, m are fixed).
# The sum that does appear is the chain rule over the outputs that read that pixel:
#
# $$
# \frac{\partial L}{\partial U_{nm}} = \sum_i \frac{\partial L}{\partial V_i}\, k(x_i - m)\, k(y_i - n),
# $$
#
# which is a *scatter*: every output pushes its gradient back to its four taps,
# with the same weights it used to read them.
#
# **With respect to the sampling location $x_i$.** Only the x kernel depends on $x_i$:
#
# $$
# \frac{\partial V_i}{\partial x_i} = \sum_n^H \sum_m^W U_{nm} \max(0, 1 - |y_i - n|)
# \begin{cases} 0 & \text{if } |m - x_i| \ge 1 \\ 1 & \text{if } m \ge x_i \\ -1 & \text{if } m < x_i \end{cases}
# \qquad \text{(eq. 7)}
# $$
#
# (and the same for $y_i$). The derivative of $\max(0, 1 - |x - m|)$ is 0 when
# $|m - x| \ge 1$, +1 when $m > x$, -1 when $m < x$; the paper writes the middle case as
# $m \ge x$. Away from
# integers that is the same thing; at an integer x it is not (section 3).

# %%
U = np.array([[0.0, 1.0, 0.0],
              [2.0, 5.0, 1.0],
              [0.0, 3.0, 4.0]])
H, W = U.shape


def k(d):
    return np.maximum(0.0, 1.0 - np.abs(d))


def V_at(x, y):
    """Eq. (3) + (5) at one pixel location (x, y)."""
    return sum(U[n, m] * k(x - m) * k(y - n) for n in range(H) for m in range(W))


def dVdx_eq7_literal(x, y):
    """Eq. (7) exactly as printed: +1 if m >= x, -1 if m < x, 0 if |m - x| >= 1."""
    total = 0.0
    for n in range(H):
        for m in range(W):
            sign = 0.0 if abs(m - x) >= 1 else (1.0 if m >= x else -1.0)
            total += U[n, m] * k(y - n) * sign
    return total


x, y, h = 0.3, 1.6, 1e-6
central = (V_at(x + h, y) - V_at(x - h, y)) / (2 * h)
print(f"at x={x}: eq. (7) = {dVdx_eq7_literal(x, y):.6f}, central difference = {central:.6f}")

# %% [markdown]
# ## 2. Eq. (6) in the library: `grad_input` is the scatter of dL/dV
#
# Take $L = \sum_i g_i V_i$ for a random vector g. Then
# $\partial L / \partial U_{nm} = \sum_i g_i\, k(x_i - m)\, k(y_i - n)$.
# Build the weights by hand for a few random locations and compare with what
# `backward` puts in `U.grad`.

# %%
rng = np.random.default_rng(0)
P = 5
pix = np.stack([rng.uniform(0, W - 1, P), rng.uniform(0, H - 1, P)], -1)  # pixel locations
grid = (2 * pix / np.array([W - 1, H - 1]) - 1)[None, None]           # (1, 1, P, 2), align_corners=True
g = rng.standard_normal(P)

U_t = mt.tensor(U[None, None], requires_grad=True, dtype=np.float64)
V_t = F.grid_sample(U_t, grid, align_corners=True)
V_t.backward(g.reshape(1, 1, 1, P))
by_hand = np.zeros((H, W))
for i in range(P):
    for n in range(H):
        for m in range(W):
            by_hand[n, m] += g[i] * k(pix[i, 0] - m) * k(pix[i, 1] - n)  # eq. (6), summed over i only
print("dL/dU by hand (eq. 6 + chain rule over i):\n", by_hand)
print("U.grad from backward:\n", U_t.grad[0, 0])

# %% [markdown]
# ## 3. The integer-coordinate subtlety of eq. (7)
#
# V(x) along a row is piecewise linear with kinks at the integers. At x = 1 the
# left derivative is $U_1 - U_0$ (weighted by the y kernel) and the right one is
# $U_2 - U_1$. Eq. (7) read literally gives +1 to m = 1 (since $m \ge x$) and 0 to m = 0
# and m = 2 (since $|m - x| = 1$), so $\partial V / \partial x = U_1$: **neither**.
#
# minstn (like PyTorch) uses taps `x0 = floor(x)`, `x1 = x0 + 1` with weights
# `x1 - x` and `x - x0`; differentiating that gives `U[x1] - U[x0]`, which at an
# integer is the **right-hand** derivative. Let us measure all of them at (1, 1.6).

# %%
x_int = 1.0
left = (V_at(x_int, y) - V_at(x_int - h, y)) / h
right = (V_at(x_int + h, y) - V_at(x_int, y)) / h
literal = dVdx_eq7_literal(x_int, y)

# minstn's value: put the point at pixel (1, 1.6) with align_corners=True, where the
# normalised x is exactly 0.0, so the pixel coordinate is exactly the integer 1.
grid_int = mt.tensor([[[[2 * x_int / (W - 1) - 1, 2 * y / (H - 1) - 1]]]], requires_grad=True,
                     dtype=np.float64)
F.grid_sample(U[None, None], grid_int, align_corners=True).sum().backward()
# grid.grad is dV/d(normalised x); d(pixel x)/d(normalised x) = (W - 1) / 2.
minstn_dVdx = grid_int.grad[0, 0, 0, 0] / ((W - 1) / 2)
print(f"at the integer x = {x_int}:  left derivative {left:+.4f}   right derivative {right:+.4f}")
print(f"                     eq. (7) literally {literal:+.4f}   minstn {minstn_dVdx:+.4f} (right-hand)")

# %% [markdown]
# Why does it matter? A sampling point that sits exactly on a pixel centre is
# common: the identity theta puts *every* point there (under either `align_corners`
# convention, tutorial 04), and that is exactly how the regression layer of a
# transformer is initialised.
# With the literal eq. (7) the first gradient step would be computed from a
# function that is not the derivative of anything.

# %% [markdown]
# ## 4. Gradcheck: sampler and grid generator, every CPU backend
#
# Finite differences check both gradients of `grid_sample` and the theta gradient
# through `affine_grid`. Random points almost surely avoid the kinks (where a
# central difference would straddle two slopes). The CUDA backend is checked in
# tutorial 09.

# %%
Ug = mt.tensor(rng.standard_normal((2, 2, 5, 6)), requires_grad=True, dtype=np.float64)
gg = mt.tensor(rng.uniform(-1.1, 1.1, (2, 3, 4, 2)), requires_grad=True, dtype=np.float64)
th = mt.tensor(np.array([[[0.9, 0.2, 0.1], [-0.1, 0.8, 0.05]]] * 2), requires_grad=True, dtype=np.float64)
checked = []
for name in ("reference", "numpy", "numba"):
    with mt.use_backend(name):
        mt.gradcheck(lambda u, g: F.grid_sample(u, g), [Ug, gg])
        mt.gradcheck(lambda u, g: F.grid_sample(u, g, padding_mode="border", align_corners=True), [Ug, gg])
        mt.gradcheck(lambda t: F.grid_sample(Ug.detach(), F.affine_grid(t, (2, 2, 4, 3))), [th])
    checked.append(name)
print("gradcheck passed on backends:", checked)

# %% [markdown]
# ## 5. dL/d(x_s, y_s) as a vector field
#
# Take a digit U and a target: the same digit moved 2 pixels to the right. Sample
# U with the identity grid (so V = U) and measure `L = sum (V - target)^2`. The
# grid gradient says, for every output pixel, how moving its sampling point would
# change L. We draw **minus** the gradient: the direction gradient descent moves
# each point. Where the target has ink and V does not, points move towards
# the ink; they point *left*, because the output pixel must read from further
# left to show a digit that sits further right.

# %%
images, _, source = digits(1, seed=5)
digit = (images[:1, None] / 255.0).astype(np.float64)
target = np.roll(digit, 2, axis=-1)
identity = np.array([[[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]])
grid_id = mt.tensor(F.affine_grid(identity, digit.shape).numpy(), requires_grad=True)
V = F.grid_sample(digit, grid_id)
loss = ((V - target) ** 2).sum()
loss.backward()
descent = -grid_id.grad
fig = vector_field(digit, descent, grid=grid_id.data, step=1,
                   title=r"$-\partial L/\partial(x^s, y^s)$: target = digit moved right")
savefig(fig, "05_grid_gradient_field")

# Where the field is non-zero, does it point left (negative x) on balance?
strong = np.linalg.norm(descent[0], axis=-1) > 1e-3
mean_dx = descent[0][strong][:, 0].mean()
print(f"mean x-component of the descent direction where it is non-zero: {mean_dx:+.4f}")

# %% [markdown]
# The same gradient, pushed through eq. (1), moves theta. One small step on the
# translation should lower the loss.

# %%
theta = mt.tensor(identity, requires_grad=True)
loss0 = ((F.grid_sample(digit, F.affine_grid(theta, digit.shape)) - target) ** 2).sum()
loss0.backward()
print("dL/dtheta:\n", theta.grad[0])
step = 0.02 / np.abs(theta.grad).max()
with mt.no_grad():
    theta_new = theta.data - step * theta.grad
loss1 = ((F.grid_sample(digit, F.affine_grid(theta_new, digit.shape)) - target) ** 2).sum()
print(f"loss before {loss0.item():.3f}, after one step {loss1.item():.3f}; "
      f"tx moved from 0 to {theta_new[0, 0, 2]:+.4f} (negative: read further left)")

# %% [markdown]
# ## What you should have seen (checked)

# %%
# Away from integers, eq. (7) is the derivative.
assert np.isclose(dVdx_eq7_literal(x, y), central, atol=1e-6)
# Eq. (6) without the double sum, chained over i, is U.grad.
assert np.allclose(U_t.grad[0, 0], by_hand)
# At an integer coordinate: the one-sided derivatives differ, the literal eq. (7)
# is neither, and minstn returns the right-hand one (floor convention).
assert not np.isclose(left, right)
assert not np.isclose(literal, left) and not np.isclose(literal, right)
assert np.isclose(minstn_dVdx, right, atol=1e-5)
# Gradcheck passed everywhere (it raises otherwise).
assert checked == ["reference", "numpy", "numba"]
# The field tells points to read from further left, and a step on theta helps.
assert mean_dx < 0
assert loss1.item() < loss0.item() and theta_new[0, 0, 2] < 0
print("05: all checks passed")

# %% [markdown]
# ## Exercises
#
# Each check passes silently or raises an `AssertionError` that says what is wrong.
# Solutions: `tutorials/solutions/05_sampler_backward.py` (collapsed on the website).
#
# ### Exercise 1
#
# Implement the *left-hand* convention: taps `x1 = ceil(x)`, `x0 = x1 - 1`, weights
# `x1 - x` and `x - x0`. Write `dVdx_left(x, y)`, the derivative with respect to x of
# V computed from those taps, on the 3x3 image `U` of section 1. *Check*:
# `check_exercise_1(dVdx_left)` (at x = 1 it must be the left derivative, away from
# integers the central difference).

# %%
def check_exercise_1(dVdx_left):
    h = 1e-6
    for x_at, y_at in [(1.0, 1.6), (1.0, 0.3), (0.3, 1.6), (1.7, 0.5)]:
        left_difference = (V_at(x_at, y_at) - V_at(x_at - h, y_at)) / h
        got = float(dVdx_left(x_at, y_at))
        assert np.isclose(got, left_difference, atol=1e-4), (
            f"at (x, y) = ({x_at}, {y_at}): {got:+.4f}, but the left-hand derivative is {left_difference:+.4f}")


# %% [markdown]
# ### Exercise 2
#
# Sample the digit of section 5 with `mode="nearest"` and backpropagate the same loss.
# Make **fresh leaves** for this: `u = mt.tensor(digit, requires_grad=True)` (`digit` is a
# plain array, which has no `.grad`) and `g = mt.tensor(grid_id.data, requires_grad=True)`
# (reusing `grid_id` would add the new gradient to the one it already holds:
# gradients accumulate). *Check*: `check_exercise_2(u, g)`: after your `backward`,
# `g.grad` must be exactly zero everywhere while `u.grad` is not. Then explain why a
# transformer with a nearest-neighbour sampler cannot learn theta.

# %%
def check_exercise_2(u, g):
    assert u.grad is not None and g.grad is not None, "run backward first (and make u and g with requires_grad=True)"
    assert g.grad.shape == grid_id.shape, f"g should be a grid like grid_id, {grid_id.shape}"
    assert np.abs(u.grad).max() > 0, "u.grad is zero: did the loss depend on u?"
    assert np.all(g.grad == 0), (
        f"g.grad is not zero (max |g.grad| = {np.abs(g.grad).max():.3g}): bilinear sampling, or a reused grid?")
