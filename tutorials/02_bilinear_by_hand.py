# %% [markdown]
# # 02 · Bilinear interpolation by hand
#
# **Study time** about 30 min · **Prerequisites** 01 · **Paper** eq. (3)-(5)
#
# The sampler of a spatial transformer asks one question per output pixel: *what
# is the input worth at the real-valued location (x_s, y_s)?* This tutorial
# answers it three ways on a 3x3 image and gets the same number each time.
#
# **You will learn**
#
# 1. bilinear interpolation as two 1-D linear interpolations (the way you would
#    do it with pencil and paper);
# 2. the paper's eq. (3) with the bilinear kernel of eq. (5), a sum over **all**
#    pixels: $V = \sum_n \sum_m U_{nm} \max(0, 1 - |x - m|) \max(0, 1 - |y - n|)$;
# 3. the 4-tap form every fast implementation uses (only 4 of those weights are
#    non-zero), and the nearest-neighbour kernel of eq. (4) for contrast;
# 4. how to call `F.grid_sample` for the same point (pixel -> normalised coordinates).

# %%
import numpy as np
from matplotlib.figure import Figure

import minstn.functional as F
from _course import savefig

np.set_printoptions(precision=4, suppress=True)

# A 3x3 image. Rows are n (y, downwards), columns are m (x, rightwards).
# Not a linear ramp on purpose: bilinear interpolation reproduces linear images
# exactly, so a ramp would hide mistakes.
U = np.array([[0.0, 1.0, 0.0],
              [2.0, 5.0, 1.0],
              [0.0, 3.0, 4.0]])
H, W = U.shape
x, y = 0.3, 1.6  # the sampling point, in PIXEL coordinates: column 0.3, row 1.6

# %% [markdown]
# ## 1. Pencil and paper
#
# The point (0.3, 1.6) sits in the cell with corners at columns 0, 1 and rows 1, 2.
# Interpolate along x in row 1 and in row 2, then along y between the two results.

# %%
m0, n0 = int(np.floor(x)), int(np.floor(y))  # top-left corner of the cell: (0, 1)
fx, fy = x - m0, y - n0                      # how far into the cell: 0.3, 0.6
row_top = (1 - fx) * U[n0, m0] + fx * U[n0, m0 + 1]            # row 1 at x = 0.3
row_bottom = (1 - fx) * U[n0 + 1, m0] + fx * U[n0 + 1, m0 + 1]  # row 2 at x = 0.3
V_hand = (1 - fy) * row_top + fy * row_bottom
print(f"row {n0} at x={x}: (1-{fx:.1f})*{U[n0, m0]} + {fx:.1f}*{U[n0, m0 + 1]} = {row_top:.4f}")
print(f"row {n0 + 1} at x={x}: (1-{fx:.1f})*{U[n0 + 1, m0]} + {fx:.1f}*{U[n0 + 1, m0 + 1]} = {row_bottom:.4f}")
print(f"between them at y={y}: (1-{fy:.1f})*{row_top:.4f} + {fy:.1f}*{row_bottom:.4f} = {V_hand:.4f}")

# %% [markdown]
# ## 2. Eq. (3) with the kernel of eq. (5): a sum over every pixel
#
# The paper writes a generic sampler, eq. (3), for output pixel $i$ of channel $c$,
#
# $$
# V_i^c = \sum_n^H \sum_m^W U_{nm}^c \, k(x_i^s - m; \Phi_x) \, k(y_i^s - n; \Phi_y),
# $$
#
# and for bilinear sampling, eq. (5), chooses the "tent" $k(d) = \max(0, 1 - |d|)$:
#
# $$
# V_i^c = \sum_n^H \sum_m^W U_{nm}^c \max(0, 1 - |x_i^s - m|) \max(0, 1 - |y_i^s - n|).
# $$
#
# Every pixel gets a weight; most weights are zero. Nothing is clever here, and
# that is the point: this form is easy to differentiate (tutorial 05).

# %%
def k_bilinear(d):
    return np.maximum(0.0, 1.0 - np.abs(d))  # eq. (5)


weights = np.zeros((H, W))
V_sum = 0.0
for n in range(H):
    for m in range(W):
        weights[n, m] = k_bilinear(x - m) * k_bilinear(y - n)
        V_sum += U[n, m] * weights[n, m]
print("weight of every pixel, k(x - m) k(y - n):\n", weights)
print("V by eq. (3)+(5):", V_sum)

# %% [markdown]
# Only the four pixels around the point have non-zero weight, and the weights add
# up to 1 (a *partition of unity*): interpolating a constant image returns the constant.
#
# ## 3. The 4-tap form
#
# Since only `m0 = floor(x)` and `m0 + 1` (and the same for rows) can have
# `|x - m| < 1`, a fast sampler visits just those four pixels, with weights
# $(m_0 + 1 - x)$ and $(x - m_0)$ along x. This is what every minstn backend does
# (`minstn/kernels/pixel.py`, `bilinear_taps`).

# %%
x0, y0 = int(np.floor(x)), int(np.floor(y))
x1, y1 = x0 + 1, y0 + 1
wx0, wx1 = x1 - x, x - x0
wy0, wy1 = y1 - y, y - y0
V_taps = (wy0 * wx0 * U[y0, x0] + wy0 * wx1 * U[y0, x1]
          + wy1 * wx0 * U[y1, x0] + wy1 * wx1 * U[y1, x1])
print("V by the 4-tap form:", V_taps)

# %% [markdown]
# ## 4. Eq. (4): the nearest-integer kernel
#
# $V_i^c = \sum_n \sum_m U_{nm}^c \, \delta(\lfloor x_i^s + 0.5 \rfloor - m) \, \delta(\lfloor y_i^s + 0.5 \rfloor - n)$:
# one pixel gets weight 1 (minstn rounds half to even, like `np.rint`). It is cheap, but its output is
# piecewise constant in (x, y), so its derivative with respect to the sampling
# location is zero almost everywhere: no gradient reaches theta. That is why the
# paper trains with the bilinear kernel.

# %%
V_nearest = U[int(np.rint(y)), int(np.rint(x))]
print("V with the nearest kernel:", V_nearest, "(pixel", (int(np.rint(y)), int(np.rint(x))), ")")

# %% [markdown]
# ## 5. The same point through `F.grid_sample`
#
# `grid_sample` takes the location in normalised coordinates (tutorial 01). With
# `align_corners=True`, pixel $i_x$ is $x = \frac{2 i_x}{W - 1} - 1$; with the default
# `align_corners=False`, it is $x = \frac{2 i_x + 1}{W} - 1$. Both must give the same V.

# %%
image = U[None, None]  # (N=1, C=1, H, W)
for align_corners in (True, False):
    if align_corners:
        gx, gy = 2 * x / (W - 1) - 1, 2 * y / (H - 1) - 1
    else:
        gx, gy = (2 * x + 1) / W - 1, (2 * y + 1) / H - 1
    grid = np.array([[[[gx, gy]]]])  # (N=1, H_out=1, W_out=1, 2), last axis (x, y)
    V_lib = F.grid_sample(image, grid, align_corners=align_corners).numpy().item()
    print(f"F.grid_sample, align_corners={align_corners}: grid ({gx:+.4f}, {gy:+.4f}) -> {V_lib:.4f}")

# %% [markdown]
# ## 6. Seeing it: the 3x3 image sampled everywhere
#
# Sample the 3x3 image on a fine grid of locations with both kernels. Bilinear is
# continuous (a surface of tents); nearest is a staircase.

# %%
fine = 61
lin = np.linspace(-1, 1, fine)
gx, gy = np.meshgrid(lin, lin)
dense = np.stack([gx, gy], -1)[None]                       # (1, 61, 61, 2)
up_bilinear = F.grid_sample(image, dense, align_corners=True).numpy()[0, 0]
up_nearest = F.grid_sample(image, dense, mode="nearest", align_corners=True).numpy()[0, 0]

fig = Figure(figsize=(10, 3.2), layout="constrained")
ax_img, ax_bil, ax_near, ax_k = fig.subplots(1, 4)
ax_img.imshow(U, cmap="viridis", vmin=0, vmax=5)
for (n, m), w in np.ndenumerate(weights):  # each pixel: its value, and its weight if non-zero
    ax_img.text(m, n - 0.12, f"U={U[n, m]:.0f}", ha="center", va="center", color="w", fontsize=9)
    if w > 0:
        ax_img.text(m, n + 0.22, f"w={w:.2f}", ha="center", va="center", color="w", fontsize=8)
ax_img.scatter([x], [y], marker="x", s=80, color="tab:red")
ax_img.set_title(f"U, point (x={x}, y={y})\nV = {V_taps:.3f}", fontsize=9)
for ax, im, t in [(ax_bil, up_bilinear, "bilinear, eq. (5)"), (ax_near, up_nearest, "nearest, eq. (4)")]:
    half = 1.0 / (fine - 1)  # half a sample spacing, in pixels (61 samples span 0..2)
    ax.imshow(im, cmap="viridis", vmin=0, vmax=5, extent=(-half, 2 + half, 2 + half, -half))
    ax.scatter([x], [y], marker="x", s=80, color="tab:red")
    ax.set_title(t, fontsize=9)
d = np.linspace(-2, 2, 401)
ax_k.plot(d, k_bilinear(d), label="bilinear  max(0, 1-|d|)")
ax_k.plot(d, (np.rint(d) == 0).astype(float), label="nearest  δ(round(d))", ls="--")
ax_k.set_xlabel("d = x - m")
ax_k.set_title("the kernels k(d)", fontsize=9)
ax_k.set_ylim(-0.05, 1.45)
ax_k.legend(fontsize=7, loc="upper center")
for ax in (ax_img, ax_bil, ax_near):
    ax.set_xticks(range(W))
    ax.set_yticks(range(H))
savefig(fig, "02_bilinear_by_hand")

# %% [markdown]
# ## What you should have seen (checked)

# %%
# Three derivations, one number.
assert np.isclose(V_hand, V_sum) and np.isclose(V_sum, V_taps)
print(f"pencil = sum over all pixels = 4 taps = {V_taps:.4f}")
# Exactly four non-zero weights, summing to 1 (partition of unity).
assert np.count_nonzero(weights) == 4 and np.isclose(weights.sum(), 1.0)
# The library agrees, under both align_corners conventions (V_lib is from the last one).
assert np.isclose(V_lib, V_taps)
assert np.isclose(F.grid_sample(image, np.array([[[[2 * x / 2 - 1, 2 * y / 2 - 1]]]]),
                                align_corners=True).numpy().item(), V_taps)
# At the pixel centres, bilinear returns the pixel values themselves.
assert np.allclose(up_bilinear[::30, ::30], U)
# Nearest picks the closest pixel: (0.3, 1.6) -> row 2, column 0.
assert V_nearest == U[2, 0]
print("02: all checks passed")

# %% [markdown]
# ## Exercises
#
# Each check passes silently or raises an `AssertionError` that says what is wrong.
# Solutions: `tutorials/solutions/02_bilinear_by_hand.py` (collapsed on the website).
#
# ### Exercise 1
#
# By hand (pencil, or the 4-tap form), compute V at the pixel location
# (x, y) = (1.5, 0.5) of the 3x3 image `U`. *Check*: `check_exercise_1(V)`.

# %%
def check_exercise_1(V):
    """V at (x, y) = (1.5, 0.5), compared with F.grid_sample (align_corners=True: pixel 1.5 -> 0.5)."""
    expected = F.grid_sample(image, np.array([[[[0.5, -0.5]]]]), align_corners=True).numpy().item()
    assert np.isclose(float(V), expected), (
        f"V = {float(V):.4f}; which four pixels surround (x=1.5, y=0.5), and with which weights? "
        "(x is the column, y the row)")


# %% [markdown]
# ### Exercise 2
#
# Show that bilinear interpolation reproduces any *linear* image
# $U_{nm} = a + b\,m + c\,n$ exactly, at every real (x, y) inside the image. Write
# `linear_image(a, b, c, H, W)` returning that (H, W) array (m is the column, n the
# row). *Check*: `check_exercise_2(linear_image)` samples your image with
# `F.grid_sample` at random points and compares with $a + b\,x + c\,y$.

# %%
def check_exercise_2(linear_image):
    rng = np.random.default_rng(1)
    a, b, c = rng.uniform(-2, 2, 3)
    H, W = 5, 7
    U_linear = np.asarray(linear_image(a, b, c, H, W), dtype=np.float64)
    assert U_linear.shape == (H, W), f"linear_image(a, b, c, {H}, {W}) has shape {U_linear.shape}"
    px, py = rng.uniform(0, W - 1, 50), rng.uniform(0, H - 1, 50)     # pixel coordinates inside
    grid = np.stack([2 * px / (W - 1) - 1, 2 * py / (H - 1) - 1], -1)[None, None]
    sampled = F.grid_sample(U_linear[None, None], grid, align_corners=True).numpy().ravel()
    worst = np.abs(sampled - (a + b * px + c * py)).max()
    assert worst < 1e-10, f"sampled values differ from a + b x + c y by up to {worst:.3g} (x = column, y = row)"
