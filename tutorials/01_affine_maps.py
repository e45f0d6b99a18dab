# %% [markdown]
# # 01 · Affine maps and homogeneous coordinates
#
# A spatial transformer (Jaderberg et al., NIPS 2015) moves pixels around with a
# small matrix. Before any network is involved, this tutorial makes that matrix
# familiar.
#
# **You will learn**
#
# 1. why a 2-D affine map is a 2x3 matrix acting on homogeneous coordinates
#    `(x, y, 1)`, and how rotation, scale, shear and translation look in it;
# 2. how maps compose (and why the order matters);
# 3. the *direction* of the map in a spatial transformer: eq. (1) sends **output**
#    (target) coordinates to **input** (source) coordinates, so a scale of 0.5 zooms *in*;
# 4. normalised coordinates in [-1, 1], and what `align_corners` means, drawn.
#
# Run it as a script (`python tutorials/01_affine_maps.py`) or open it as a
# notebook (VS Code / jupytext understand the `# %%` cells). Figures are written
# to `tutorials/figures/` (or `$MINSTN_FIGURES`).

# %%
import numpy as np

from _course import savefig
from minstn.viz.geometry import affine_gallery, to_pixels

np.set_printoptions(precision=3, suppress=True)

# %% [markdown]
# ## 1. Homogeneous coordinates
#
# A linear map of the plane is a 2x2 matrix, but a *translation* `p -> p + t` is not
# linear (it moves the origin). The trick: append a 1 to every point. Then
#
#     [x_s]   [a b tx] [x_t]
#     [y_s] = [c d ty] [y_t]      (eq. (1) of the paper, with A_theta = [[a, b, tx], [c, d, ty]])
#                      [ 1 ]
#
# and translation is a matrix product like everything else. The six numbers of
# `A_theta` are the `theta` a localisation network predicts.

# %%
def rotation(angle_deg):
    """Rotate by angle (degrees). With y pointing DOWN (image rows) it looks clockwise."""
    a = np.deg2rad(angle_deg)
    return np.array([[np.cos(a), -np.sin(a), 0.0], [np.sin(a), np.cos(a), 0.0]])


def scale(sx, sy=None):
    return np.array([[sx, 0.0, 0.0], [0.0, sx if sy is None else sy, 0.0]])


def shear(k):
    """x moves by k * y: rows slide sideways, more the further they are from y = 0."""
    return np.array([[1.0, k, 0.0], [0.0, 1.0, 0.0]])


def translation(tx, ty):
    return np.array([[1.0, 0.0, tx], [0.0, 1.0, ty]])


identity = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])


def apply(A, points):
    """A (2, 3) applied to points (P, 2): append the 1, multiply, done."""
    homogeneous = np.concatenate([points, np.ones((len(points), 1))], axis=1)  # (P, 3)
    return homogeneous @ A.T


corners = np.array([[-1.0, -1.0], [1.0, -1.0], [1.0, 1.0], [-1.0, 1.0]])
print("translation(0.5, 0) moves every corner right by 0.5:\n", apply(translation(0.5, 0), corners))
print("rotation(90) sends (1, 0) to", apply(rotation(90), np.array([[1.0, 0.0]])))

# %%
fig = affine_gallery(
    [identity, rotation(30), scale(0.5), shear(0.5), translation(0.5, 0.25)],
    titles=["identity", "rotation 30°", "scale 0.5", "shear 0.5", "translate (0.5, 0.25)"],
)
savefig(fig, "01_affine_gallery")

# %% [markdown]
# Grey: the target grid `G`, a lattice of points `(x_t, y_t)` over [-1, 1]^2.
# Orange: where eq. (1) sends them. The red square marks the image of the
# top-left corner (-1, -1), so you can see rotations and flips.

# %% [markdown]
# ## 2. Composition
#
# To compose two affine maps, complete each to a 3x3 matrix with the row
# `[0, 0, 1]` and multiply. `B ∘ A` ("A first, then B") is `B3 @ A3`.
# Order matters: rotating then translating is not translating then rotating.

# %%
def to3x3(A):
    return np.vstack([A, [0.0, 0.0, 1.0]])


def compose(B, A):
    """The 2x3 matrix of "apply A, then B"."""
    return (to3x3(B) @ to3x3(A))[:2]


p = np.array([[0.3, -0.7]])
rt = compose(translation(0.5, 0), rotation(40))  # rotate, then translate
tr = compose(rotation(40), translation(0.5, 0))  # translate, then rotate
print("rotate then translate:", apply(rt, p), " translate then rotate:", apply(tr, p))

# The inverse of an affine map is the inverse of its 3x3 matrix (when it exists).
A = compose(translation(0.2, -0.1), compose(shear(0.3), rotation(25)))
A_inv = np.linalg.inv(to3x3(A))[:2]
print("A_inv after A gives the identity:\n", compose(A_inv, A))

# %% [markdown]
# ## 3. Which way does the map go?
#
# Eq. (1) maps each **target** pixel `(x_t, y_t)` of the output `V` to the
# **source** location `(x_s, y_s)` in the input `U` where it should read. This
# "inverse warping" is what makes sampling easy: every output pixel asks one
# question, "what is the input worth at (x_s, y_s)?", and no output pixel is left
# empty.
#
# Consequence, and a classic surprise: `theta = scale(0.5)` makes every output
# pixel read from the *central half* of the input, so the output is a **zoom in**
# by 2. Below, a nearest-neighbour inverse warp in six lines of NumPy shows it
# (tutorial 04 does it properly, with the bilinear sampler of eq. (5)).

# %%
def normalised_lattice(H, W):
    """Pixel centres of an H x W image in [-1, 1] (align_corners=False, see section 4)."""
    xs = (2 * np.arange(W) + 1) / W - 1
    ys = (2 * np.arange(H) + 1) / H - 1
    x, y = np.meshgrid(xs, ys)
    return np.stack([x, y], axis=-1)  # (H, W, 2), last axis (x, y)


def warp_nearest(image, A):
    H, W = image.shape
    src = apply(A, normalised_lattice(H, W).reshape(-1, 2)).reshape(H, W, 2)
    ix, iy = to_pixels(src, H, W)  # normalised -> pixel coordinates
    ix, iy = np.rint(ix).astype(int), np.rint(iy).astype(int)
    inside = (ix >= 0) & (ix < W) & (iy >= 0) & (iy < H)
    return np.where(inside, image[iy.clip(0, H - 1), ix.clip(0, W - 1)], 0.0)


# A 16x16 test image: a 2-pixel bright frame around the central half, a grey dot inside.
img = np.zeros((16, 16))
img[4:12, 4:12] = 1.0
img[6:10, 6:10] = 0.0
img[6:8, 6:8] = 0.6
zoomed = warp_nearest(img, scale(0.5))
shrunk = warp_nearest(img, scale(2.0))
moved = warp_nearest(img, translation(0.5, 0))

# %%
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

fig = Figure(figsize=(8, 2.4), layout="constrained")
for ax, (title, im) in zip(fig.subplots(1, 4), [("input U", img), ("theta = scale(0.5)", zoomed),
                                                ("theta = scale(2)", shrunk), ("theta = translate(0.5, 0)", moved)]):
    ax.imshow(im, cmap="gray", interpolation="nearest", vmin=0, vmax=1)
    ax.set_title(title, fontsize=9)
    ax.set_xticks([])
    ax.set_yticks([])
savefig(fig, "01_direction_of_the_map")

# %% [markdown]
# `scale(0.5)` zoomed in: the central half of the input (the frame) now fills the
# output. `scale(2)` zoomed out: the output reads from a region twice the size of
# the image, mostly outside it, which reads 0 (and the 2-pixel frame became 1 pixel
# thick: nearest-neighbour sampling skips every other pixel, which is aliasing).
# `translate(0.5, 0)` moved the content **left**: output pixel x reads input
# x + 0.5, a quarter of the width further right.

# %% [markdown]
# ## 4. Normalised coordinates and `align_corners`
#
# Eq. (1) works in normalised coordinates: -1 is the left (top) of the image,
# +1 the right (bottom), whatever its size. The same theta then means the same
# thing for a 28x28 digit and a 60x60 canvas. The sampler converts to pixel
# indices, and there are two conventions (PyTorch's `align_corners`):
#
# * `align_corners=False` (the default): -1 and +1 are the **outer edges** of the
#   corner pixels: `ix = ((x + 1) W - 1) / 2`. Pixel centres sit at
#   `(2i + 1) / W - 1`, and the identity theta resamples an image of any size exactly.
# * `align_corners=True`: -1 and +1 are the **centres** of the corner pixels:
#   `ix = (x + 1) / 2 (W - 1)`.

# %%
W = 4
x = np.linspace(-1, 1, 9)
edges_ix, _ = to_pixels(np.stack([x, x], -1), W, W, align_corners=False)
centres_ix, _ = to_pixels(np.stack([x, x], -1), W, W, align_corners=True)
print("normalised x        :", x)
print("pixel, corners=False:", edges_ix)
print("pixel, corners=True :", centres_ix)

fig = Figure(figsize=(7.5, 2.6), layout="constrained")
for ax, corners_flag in zip(fig.subplots(2, 1), [False, True]):
    for i in range(W):  # the pixels: unit cells centred on integers 0..W-1
        ax.add_patch(Rectangle((i - 0.5, -0.5), 1, 1, facecolor=str(0.55 + 0.1 * i), edgecolor="k"))
        ax.text(i, 0, f"pixel {i}", ha="center", va="center", fontsize=8)
    for xn in (-1.0, 0.0, 1.0):
        ix, _ = to_pixels(np.array([xn, 0.0]), W, W, align_corners=corners_flag)
        ax.axvline(ix, color="tab:red", lw=2)
        ax.text(ix + 0.05, 0.62, f"x = {xn:+.0f}", color="tab:red", ha="left", fontsize=8)
    ax.set_xlim(-1, W)
    ax.set_ylim(-0.6, 0.9)
    ax.set_yticks([])
    ax.set_title(f"align_corners={corners_flag}", fontsize=9)
savefig(fig, "01_align_corners")

# %% [markdown]
# ## What you should have seen (checked)

# %%
# Composition is matrix multiplication, and the inverse undoes the map.
assert np.allclose(compose(A_inv, A), identity)
# Order matters.
assert not np.allclose(rt, tr)
# A rotation preserves lengths; a scale of 0.5 halves them.
v = np.array([[0.6, 0.8]])
assert np.isclose(np.linalg.norm(apply(rotation(33), v)), 1.0)
assert np.isclose(np.linalg.norm(apply(scale(0.5), v)), 0.5)
# The direction of the map: scale(0.5) zooms IN. The frame around the central half
# now runs along the output's border, and the dot grows from 2x2 to 4x4 pixels.
assert np.count_nonzero(zoomed == 0.6) == 4 * np.count_nonzero(img == 0.6)
assert zoomed[0, :].min() == 1.0 and zoomed[:, -1].min() == 1.0
# translate(+0.5, 0) moves content LEFT by a quarter of the width (0.5 of the 2-unit span).
assert np.allclose(moved[:, : 16 - 4], img[:, 4:])
# align_corners=False: -1 and +1 are the outer edges (pixel -0.5 and W - 0.5).
assert np.allclose(to_pixels(np.array([[-1.0, -1.0], [1.0, 1.0]]), W, W, False)[0], [-0.5, W - 0.5])
# align_corners=True: -1 and +1 are the centres of the corner pixels (0 and W - 1).
assert np.allclose(to_pixels(np.array([[-1.0, -1.0], [1.0, 1.0]]), W, W, True)[0], [0, W - 1])
print("01: all checks passed")

# %% [markdown]
# ## Exercises
#
# 1. Write the theta that shows the **top-right quadrant** of the input, enlarged
#    to fill the output. *Check*: it must send the output's corner (-1, -1) to
#    (0, -1) and (1, 1) to (1, 0); `warp_nearest(img, theta)` should show the
#    top-right corner of the frame. (Answer: `[[0.5, 0, 0.5], [0, 0.5, -0.5]]`.)
# 2. Rotate by 30° about the point (0.5, 0.5) instead of the centre, by composing
#    translate, rotate, translate back. *Check*: `apply(theta, [[0.5, 0.5]])`
#    returns `[[0.5, 0.5]]`, and the rotation part `theta[:, :2]` equals
#    `rotation(30)[:, :2]`.
