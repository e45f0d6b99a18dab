# %% [markdown]
# # 04 · The grid generator (eq. 1) and the sampler (eq. 3-5), step by step
#
# **Study time** about 40 min · **Prerequisites** 01, 02 · **Paper** eq. (1)-(5), Figure 3
#
# A spatial transformer has three parts: a localisation network that predicts
# theta, a **grid generator** that turns theta into a set of sampling points
# `T_theta(G)`, and a **sampler** that reads the input at those points. This
# tutorial builds the last two from scratch in NumPy for one digit and checks them
# against `F.affine_grid` and `F.grid_sample`.
#
# **You will learn**
#
# 1. the regular target grid G and eq. (1) applied to every point of it;
# 2. the conversion from normalised to pixel coordinates and the vectorised
#    4-tap bilinear sampler of eq. (3) + (5), with zero padding outside the image;
# 3. how to read the picture of Figure 3 of the paper: the grid `T_theta(G)` drawn
#    over the input, and the output it produces;
# 4. that the output size is free (a transformer can crop and shrink at once), and
#    that the identity theta reproduces the input exactly, under either `align_corners`
#    convention (and what mixing the two does).

# %%
import numpy as np

import minstn.functional as F
from _course import digits, savefig
from minstn.viz.geometry import grid_overlay

np.set_printoptions(precision=4, suppress=True)

images, labels, source = digits(1, seed=3)
U = (images[:1, None] / 255.0).astype(np.float64)  # (N=1, C=1, H=28, W=28), values in [0, 1]
N, C, H, W = U.shape
print(f"one {source} digit, label {labels[0]}, shape {U.shape}")

# %% [markdown]
# ## 1. The target grid G
#
# The output V has $H' \times W'$ pixels. Their centres, in normalised
# coordinates with `align_corners=False` (the default; tutorial 01), are
# $x^t_j = \frac{2j + 1}{W'} - 1$, i.e. `linspace(-1, 1, W_out) * (W_out - 1) / W_out`.
# With a 1 appended, each is a homogeneous point $G_i = (x^t_i, y^t_i, 1)$.

# %%
def target_grid(H_out, W_out):
    """G: (H_out, W_out, 3) homogeneous pixel centres, align_corners=False."""
    xt = np.linspace(-1, 1, W_out) * (W_out - 1) / W_out
    yt = np.linspace(-1, 1, H_out) * (H_out - 1) / H_out
    G = np.ones((H_out, W_out, 3))
    G[..., 0] = xt[None, :]
    G[..., 1] = yt[:, None]
    return G


G = target_grid(H, W)
print("first row of G, first three points:\n", G[0, :3])

# %% [markdown]
# ## 2. Eq. (1) at every grid point
#
# $$
# \begin{pmatrix} x_i^s \\ y_i^s \end{pmatrix} = A_\theta \begin{pmatrix} x_i^t \\ y_i^t \\ 1 \end{pmatrix}
# \qquad \text{for every point } i \text{ of } G.
# $$
#
# Here theta scales by 0.7 and rotates by 25°, and $(t_x, t_y) = (0.1, 0.05)$ moves the
# **sampling window** right and down. Remember the direction (tutorial 01): the output
# shows what is inside the window, so the content appears zoomed in by 1/0.7, moved
# left and up, and turned 25° anticlockwise. That is the kind of transform a
# localisation network predicts to centre a digit.

# %%
angle, s, tx, ty = np.deg2rad(25), 0.7, 0.1, 0.05
theta = np.array([[[s * np.cos(angle), -s * np.sin(angle), tx],
                   [s * np.sin(angle), s * np.cos(angle), ty]]])       # (N=1, 2, 3)

src = np.einsum("hwk,nik->nhwi", G, theta)  # (N, H, W, 2): one (x_s, y_s) per output pixel
grid_lib = F.affine_grid(theta, (N, C, H, W)).numpy()
print("our grid == F.affine_grid:", np.allclose(src, grid_lib))

# %% [markdown]
# ## 3. The sampler: eq. (3) with the bilinear kernel (5), 4 taps per point
#
# For every output pixel i: convert `(x_s, y_s)` to pixel coordinates, take the
# four surrounding pixels, weight them as in tutorial 02. Taps that fall outside
# the image read 0 (`padding_mode="zeros"`). Written with NumPy fancy indexing, it
# handles all `H_out x W_out` points at once.

# %%
def sample_bilinear(U, grid):
    N, C, H, W = U.shape
    ix = ((grid[..., 0] + 1) * W - 1) / 2  # normalised -> pixel (align_corners=False)
    iy = ((grid[..., 1] + 1) * H - 1) / 2
    x0, y0 = np.floor(ix).astype(int), np.floor(iy).astype(int)
    x1, y1 = x0 + 1, y0 + 1
    V = np.zeros((N, C) + grid.shape[1:3])
    for xa, ya, weight in [(x0, y0, (x1 - ix) * (y1 - iy)), (x1, y0, (ix - x0) * (y1 - iy)),
                           (x0, y1, (x1 - ix) * (iy - y0)), (x1, y1, (ix - x0) * (iy - y0))]:
        inside = (xa >= 0) & (xa < W) & (ya >= 0) & (ya < H)  # zero padding: outside taps add 0
        n = np.arange(N)[:, None, None]
        value = U[n, :, ya.clip(0, H - 1), xa.clip(0, W - 1)]  # (N, H_out, W_out, C)
        V += np.moveaxis(value * (weight * inside)[..., None], -1, 1)
    return V


V = sample_bilinear(U, src)
V_lib = F.grid_sample(U, grid_lib).numpy()
print("our sampler == F.grid_sample:", np.allclose(V, V_lib), " max |difference|:", np.abs(V - V_lib).max())

# %% [markdown]
# ## 4. Figure 3 of the paper
#
# Left: the identity theta. `T_theta(G)` is the regular grid itself, and the
# output is the input. Right: our theta. The orange points are where each output
# pixel reads; the orange outline is the border of the output; the red square is
# the output's top-left pixel. The output is what lies inside the outline,
# rotated back upright and stretched to fill the frame.

# %%
identity = np.array([[[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]])
grid_id = F.affine_grid(identity, (N, C, H, W)).numpy()
fig = grid_overlay(U, grid_id, output=F.grid_sample(U, grid_id).numpy(), step=3,
                   title=r"(a) identity: $\mathcal{T}_I(G)$")
savefig(fig, "04_identity_grid")
fig = grid_overlay(U, src, output=V, step=3, title=r"(b) affine: $\mathcal{T}_\theta(G)$")
savefig(fig, "04_grid_overlay")

# %% [markdown]
# ## 5. Any output size; the identity is exact
#
# The output grid need not match the input: `F.affine_grid(theta, (N, C, 14, 14))`
# reads the same region with fewer points. That is how the paper's transformers
# can crop and downsample in one step (e.g. 60x60 cluttered input, smaller
# output). And with the identity theta each output pixel centre lands on an input
# pixel centre, so resampling changes nothing: with `align_corners=False` and with
# `align_corners=True` alike, as long as `affine_grid` and `grid_sample` are given the
# same value (an off-by-one in the pixel mapping would show up here first). Mixing
# them shifts every sampling point by a fraction of a pixel and blurs the digit.

# %%
small = F.grid_sample(U, F.affine_grid(theta, (N, C, 14, 14))).numpy()
print("14x14 output of the same theta:", small.shape)
identity_out = F.grid_sample(U, grid_id).numpy()
identity_out_ac = F.grid_sample(U, F.affine_grid(identity, (N, C, H, W), align_corners=True),
                                align_corners=True).numpy()
mixed = F.grid_sample(U, F.affine_grid(identity, (N, C, H, W), align_corners=True)).numpy()  # sampled with False
print(f"identity, conventions mixed: max |output - input| = {np.abs(mixed - U).max():.3f}")

# %% [markdown]
# ## What you should have seen (checked)

# %%
# Eq. (1) by hand is F.affine_grid, and the 4-tap sampler by hand is F.grid_sample.
assert np.allclose(src, grid_lib)
assert np.allclose(V, V_lib, atol=1e-12)
# The identity reproduces the input exactly, under both conventions.
assert np.allclose(identity_out, U) and np.allclose(identity_out_ac, U)
# ... and mixing the conventions does not.
assert np.abs(mixed - U).max() > 0.05
# Zooming in by 1/0.7 makes the digit bigger: more of the output is ink.
ink_in, ink_out = (U > 0.5).mean(), (V > 0.5).mean()
print(f"fraction of bright pixels: input {ink_in:.3f}, output {ink_out:.3f}")
assert ink_out > ink_in
# The smaller output reads the same region: it looks like the big one, downsampled.
big_down = V.reshape(1, 1, 14, 2, 14, 2).mean(axis=(3, 5))
assert np.abs(small - big_down).mean() < 0.1
print("04: all checks passed")

# %% [markdown]
# ## Exercises
#
# Each check passes silently or raises an `AssertionError` that says what is wrong.
# Solutions: `tutorials/solutions/04_grid_and_sampler.py` (collapsed on the website).
#
# ### Exercise 1
#
# Find the theta (shape (1, 2, 3)) that crops the **top-left quadrant** of the 28x28
# digit into a 14x14 output with no interpolation at all: the output must equal
# `U[..., :14, :14]` exactly. (Hint: scale 0.5, and move the window's centre to
# (-0.5, -0.5); work out why every output centre lands on an input centre.)
# *Check*: `check_exercise_1(theta)`.

# %%
def check_exercise_1(theta):
    theta = np.asarray(theta, dtype=np.float64).reshape(1, 2, 3)
    crop = F.grid_sample(U, F.affine_grid(theta, (1, 1, 14, 14))).numpy()
    worst = np.abs(crop - U[..., :14, :14]).max()
    assert worst < 1e-12, f"the 14x14 output differs from U[..., :14, :14] by up to {worst:.3g}"


# %% [markdown]
# ### Exercise 2
#
# `padding_mode` says what a tap outside the image reads. The digit above has black
# edges, so zeros and border padding would look alike on it: use the image `frame`
# below (bright edges) and the theta `zoom_out` (scale 1.5: the window is larger
# than the image). Compute `out = F.grid_sample(frame, ..., padding_mode="border")`
# and look at it: what does each output corner show, and why? *Check*:
# `check_exercise_2(out)`.

# %%
frame = np.zeros((1, 1, 28, 28))
frame[..., :, :] = np.linspace(0.2, 1.0, 28)[None, :]     # a ramp from left to right ...
frame[..., 3:-3, 3:-3] = U[..., 3:-3, 3:-3]               # ... with the digit inside
zoom_out = np.array([[[1.5, 0.0, 0.0], [0.0, 1.5, 0.0]]])


def check_exercise_2(out):
    out = np.asarray(out.numpy() if hasattr(out, "numpy") else out)
    grid = F.affine_grid(zoom_out, frame.shape)
    zeros = F.grid_sample(frame, grid, padding_mode="zeros").numpy()
    border = F.grid_sample(frame, grid, padding_mode="border").numpy()
    assert np.abs(border - zeros).max() > 0.1             # the two modes differ here: the check can fail
    assert out.shape == border.shape, f"shape {out.shape}, expected {border.shape} (zoom_out on frame)"
    corners = out[0, 0, [0, 0, -1, -1], [0, -1, 0, -1]]
    assert np.allclose(corners, frame[0, 0, [0, 0, -1, -1], [0, -1, 0, -1]]), (
        f"the output's corners are {corners.round(3).tolist()}: with border padding they repeat the input's corners")
    assert np.allclose(out, border), "the corners are right, but the rest is not frame sampled with zoom_out"
