# %% [markdown]
# # 01 · Affine maps and homogeneous coordinates
#
# **Study time** about 30 min · **Prerequisites** NumPy arrays and matrix products ·
# **Paper** eq. (1)
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
#    (target) coordinates to **input** (source) coordinates, so a scale of 0.5 zooms *in*,
#    and a rotation turns the picture the other way round from the matrix;
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
# linear (it moves the origin). The trick: append a 1 to every point. Then eq. (1)
# of the paper reads
#
# $$
# \begin{pmatrix} x_i^s \\ y_i^s \end{pmatrix}
# = \mathcal{T}_\theta(G_i)
# = A_\theta \begin{pmatrix} x_i^t \\ y_i^t \\ 1 \end{pmatrix}
# = \begin{bmatrix} \theta_{11} & \theta_{12} & \theta_{13} \\ \theta_{21} & \theta_{22} & \theta_{23} \end{bmatrix}
#   \begin{pmatrix} x_i^t \\ y_i^t \\ 1 \end{pmatrix}
# $$
#
# and translation, $(\theta_{13}, \theta_{23})$, is a matrix product like everything
# else. The six numbers of $A_\theta$ are the `theta` a localisation network predicts.

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
#
# ### Which way does a rotation turn the picture?
#
# With y pointing down (image rows), `rotation(30)` sends the point (1, 0) to
# (cos 30°, sin 30°), below it: a **clockwise** turn on the screen (the gallery above
# shows the grid turned that way). But theta maps output to input: the output pixel at
# p shows the input at $A_\theta p$, so what sits at q in the input shows up at
# $A_\theta^{-1} q$ in the output. The picture turns the **other** way,
# anticlockwise by 30°. Below, a bright dot right of the centre and an arrow along x.

# %%
arrow = np.zeros((16, 16))
arrow[7:9, 3:12] = 0.6          # the shaft, along +x
arrow[6:10, 11:13] = 1.0        # the head, right of the centre
turned = warp_nearest(arrow, rotation(30))


def bright_centre(im):
    """(row, column) of the mean position of the brightest pixels: where the arrow's head is."""
    rows, cols = np.nonzero(im == im.max())
    return rows.mean(), cols.mean()


head_in, head_out = bright_centre(arrow), bright_centre(turned)
print(f"arrow head: input row {head_in[0]:.1f}, column {head_in[1]:.1f}; "
      f"output of rotation(30): row {head_out[0]:.1f}, column {head_out[1]:.1f} (it went up)")

# %%
from matplotlib.patches import FancyArrowPatch

fig = Figure(figsize=(7, 2.9), layout="constrained")
axes = fig.subplots(1, 3)
axes[0].imshow(arrow, cmap="gray", vmin=0, vmax=1, interpolation="nearest")
axes[0].set_title("input U", fontsize=9)
axes[1].imshow(turned, cmap="gray", vmin=0, vmax=1, interpolation="nearest")
axes[1].set_title("theta = rotation(30): the picture\nturns 30° ANTIclockwise", fontsize=9)
axes[1].add_patch(FancyArrowPatch((12.5, 7.5), (11.5, 2.5), connectionstyle="arc3,rad=0.3",
                                  arrowstyle="-|>", mutation_scale=14, color="tab:orange", lw=2))
spoke = np.array([[0.25 * k, 0.0] for k in range(5)])      # points on the +x axis
axes[2].plot(*spoke.T, "o-", color="0.6", ms=4, label="output pixels (x, 0)")
axes[2].plot(*apply(rotation(30), spoke).T, "o-", color="tab:orange", ms=4, label="where they read")
axes[2].add_patch(FancyArrowPatch((1.0, 0.0), tuple(apply(rotation(30), spoke)[-1]), connectionstyle="arc3,rad=-0.3",
                                  arrowstyle="-|>", mutation_scale=12, color="k"))
axes[2].set_ylim(1.1, -1.1)  # y down, as in an image
axes[2].set_xlim(-1.1, 1.1)
axes[2].set_aspect("equal")
axes[2].set_title("A_theta turns the reading\npoints clockwise", fontsize=9)
axes[2].legend(fontsize=6, loc="upper left")
for ax in axes[:2]:
    ax.set_xticks([])
    ax.set_yticks([])
savefig(fig, "01_rotation_direction")

# %% [markdown]
# ## 4. Normalised coordinates and `align_corners`
#
# Eq. (1) works in normalised coordinates: -1 is the left (top) of the image,
# +1 the right (bottom), whatever its size. The same theta then means the same
# thing for a 28x28 digit and a 60x60 canvas. The sampler converts to pixel
# indices, and there are two conventions (PyTorch's `align_corners`):
#
# * `align_corners=False` (the default): -1 and +1 are the **outer edges** of the
#   corner pixels: $i_x = \frac{(x + 1) W - 1}{2}$, and pixel centres sit at
#   $x = \frac{2i + 1}{W} - 1$.
# * `align_corners=True`: -1 and +1 are the **centres** of the corner pixels:
#   $i_x = \frac{x + 1}{2} (W - 1)$.
#
# Either way, `F.affine_grid` puts the target grid $G$ on the output's pixel centres in
# the same convention, so the identity theta reads every input pixel centre and
# resamples the image exactly, under both conventions (tutorial 04 checks it). What
# the convention changes is what the numbers of theta mean in pixels: where the edge
# of the image is, how far a translation of 0.5 goes. Mixing the two (a grid made with
# one, sampled with the other) is the classic off-by-half-a-pixel bug.

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
# rotation(30) turns the picture anticlockwise: the arrow's head, right of the centre,
# moved up (smaller row) and towards the centre column.
assert head_out[0] < head_in[0] - 1 and head_out[1] < head_in[1]
# align_corners=False: -1 and +1 are the outer edges (pixel -0.5 and W - 0.5).
assert np.allclose(to_pixels(np.array([[-1.0, -1.0], [1.0, 1.0]]), W, W, False)[0], [-0.5, W - 0.5])
# align_corners=True: -1 and +1 are the centres of the corner pixels (0 and W - 1).
assert np.allclose(to_pixels(np.array([[-1.0, -1.0], [1.0, 1.0]]), W, W, True)[0], [0, W - 1])
print("01: all checks passed")

# %% [markdown]
# ## Exercises
#
# Each exercise comes with a check: call it on your answer; it passes silently or
# raises an `AssertionError` that says what is wrong. The solutions are in
# `tutorials/solutions/01_affine_maps.py` (and, collapsed, on the course website).
#
# ### Exercise 1
#
# Write the theta that shows the **top-right quadrant** of the input, enlarged to fill
# the output. Then look at `warp_nearest(img, theta)`: it should show the top-right
# corner of the frame. *Check*: `check_exercise_1(theta)`.

# %%
def check_exercise_1(theta):
    """The output's corners must read the corners of the input's top-right quadrant."""
    theta = np.asarray(theta, dtype=float)
    assert theta.shape == (2, 3), f"theta must be a 2x3 matrix, got shape {theta.shape}"
    output_corners = np.array([[-1.0, -1.0], [1.0, -1.0], [1.0, 1.0]])
    wanted = np.array([[0.0, -1.0], [1.0, -1.0], [1.0, 0.0]])
    got = apply(theta, output_corners)
    assert np.allclose(got, wanted), (
        f"the output's corners (-1, -1), (1, -1), (1, 1) read the input at {got.round(3).tolist()}, "
        f"not at {wanted.tolist()} (remember: y points down)")


# %% [markdown]
# ### Exercise 2
#
# Rotate by 30° about the point (0.5, 0.5) instead of the centre, by composing
# translate, rotate, translate back. *Check*: `check_exercise_2(theta)` (the point
# (0.5, 0.5) must stay where it is, and the rotation part `theta[:, :2]` must equal
# `rotation(30)[:, :2]`).

# %%
def check_exercise_2(theta):
    """A rotation by 30 degrees that leaves (0.5, 0.5) in place."""
    theta = np.asarray(theta, dtype=float)
    assert theta.shape == (2, 3), f"theta must be a 2x3 matrix, got shape {theta.shape}"
    assert np.allclose(theta[:, :2], rotation(30)[:, :2]), "the 2x2 part is not rotation(30)'s"
    moved_to = apply(theta, np.array([[0.5, 0.5]]))[0]
    assert np.allclose(moved_to, [0.5, 0.5]), f"(0.5, 0.5) moves to {moved_to.round(3).tolist()}: not its centre"
