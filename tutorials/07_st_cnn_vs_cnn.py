# %% [markdown]
# # 07 · ST-CNN against CNN, and why pooling is not enough: measured
#
# **Study time** about 45 min, plus the run (see the teacher's page) · **Prerequisites** 06 ·
# **Paper** section 4.1, Table 1
#
# A CNN with max-pooling is often said to be "invariant to small translations".
# The paper's argument for spatial transformers is that this invariance is
# *local* (only within a pooling window), *fixed* (designed, not learned) and
# covers neither rotation nor scale. This tutorial measures that claim on a CNN
# trained on rotated digits, then compares it with an ST-CNN.
#
# **You will learn**
#
# 1. to train the paper's CNN and ST-CNN (`minstn.models.cnn`, `st_cnn`) on the
#    **R** data (digits rotated by U(-90°, 90°)) and compare their test errors,
#    overall and by rotation angle;
# 2. to measure the invariance of a CNN's pooled features: how similar they stay
#    when the input is shifted by d pixels, or rotated by a degrees;
# 3. that a spatial transformer with the right theta gives that invariance back
#    in one step, whatever the shift or angle; learning to predict that theta is
#    the job of the localisation network.

# %%
import time

import numpy as np
from matplotlib.figure import Figure

import minstn as mt
import minstn.functional as F
from _course import FAST, digits, savefig
from minstn import models
from minstn.data import distort, to_float_batch
from minstn.experiments import make_optimizer, predict, train_epoch

mt.manual_seed(0)
N_TRAIN, N_TEST, EPOCHS = (2000, 500, 2) if FAST else (9000, 1000, 10)
BATCH, LR = 64, 1e-3
images, labels, source = digits(N_TRAIN + N_TEST, seed=1)
train_img, train_y = images[:N_TRAIN], labels[:N_TRAIN]
test_img, test_y = images[N_TRAIN:], labels[N_TRAIN:]
x_test, test_params = distort(test_img, "r", seed=1, return_params=True)
print(f"{source} digits, {N_TRAIN} train / {N_TEST} test, {EPOCHS} epochs{' (fast mode)' if FAST else ''}")
print("random parameters drawn by distort('r'):", list(test_params))

# %% [markdown]
# ## 1. Train both models
#
# Same loop, same data, same optimiser. (The paper trains for 150k iterations with
# SGD; here a few epochs with Adam, so the numbers are far from Table 1's, but
# the comparison is fair.)

# %%
def train(model, name):
    """minstn's one training loop (`train_epoch`, the loop of `minstn train`), epoch by epoch."""
    optimizer = make_optimizer(model, "adam", lr=LR)
    start = time.perf_counter()
    for epoch in range(1, EPOCHS + 1):
        x = distort(train_img, "r", seed=0, epoch=epoch)  # fresh rotations every epoch
        train_epoch(model, optimizer, x, train_y, batch_size=BATCH, seed=0, epoch=epoch)
        wrong = predict(model, x_test) != test_y  # per-sample mistakes
        print(f"{name:6s} epoch {epoch:2d}  test error {100 * wrong.mean():5.1f}%  ({time.perf_counter() - start:.0f} s)")
    return wrong


cnn, st_cnn = models.cnn(in_size=28), models.st_cnn(in_size=28)
print(f"parameters: CNN {models.count_parameters(cnn)}, ST-CNN {models.count_parameters(st_cnn)}")
wrong_cnn = train(cnn, "CNN")
wrong_st = train(st_cnn, "ST-CNN")

# %% [markdown]
# ## 2. Error by rotation angle
#
# One might expect the CNN's error to rise with the angle. Group the test digits by
# |angle| and look: the CNN was *trained* on digits rotated by up to 90°, and it has
# learned to tolerate rotation from that data, so its error need not rise much. In our
# full-mode runs it hardly did: 5.6%, 5.5% and 6.0% for the three bins in one run,
# 5.0%, 3.7% and 6.3% in another, differences within the noise of some 330 test digits
# per bin. In fast mode, after two epochs, the errors are higher and noisier. The
# figure shows your run. The argument for
# the transformer is not this plot but what the pooled features do (section 3).

# %%
angle = np.abs(np.asarray(test_params["angle"]))
bins = np.array([0, 30, 60, 90])
which = np.clip(np.digitize(angle, bins) - 1, 0, len(bins) - 2)
fig = Figure(figsize=(5, 3.4), layout="constrained")
ax = fig.subplots()
centres = (bins[:-1] + bins[1:]) / 2
for wrong, name, shift in [(wrong_cnn, "CNN", -4), (wrong_st, "ST-CNN", 4)]:
    rate = [100 * wrong[which == b].mean() for b in range(len(bins) - 1)]
    ax.bar(centres + shift, rate, width=8, label=f"{name} ({100 * wrong.mean():.1f}% overall)")
    print(name, "error by |angle| bin:", " ".join(f"{b0}-{b1}°: {r:.1f}%" for b0, b1, r in zip(bins, bins[1:], rate)))
ax.set_xticks(centres, [f"{a}-{b}°" for a, b in zip(bins, bins[1:])])
ax.set_xlabel("|rotation| of the test digit")
ax.set_ylabel("test error, %")
ax.legend(fontsize=8)
savefig(fig, "07_error_by_angle")

# %% [markdown]
# ## 3. How invariant are the CNN's pooled features? Measured.
#
# The CNN is conv 9x9 -> ReLU -> max-pool 2 -> conv 7x7 -> ReLU -> max-pool 2 ->
# classifier. Take the features that reach the classifier (after the second pool),
# for a digit and for the same digit shifted by d pixels or rotated by a degrees,
# and compare them with the cosine similarity (1 = identical up to scale).

# %%
features = cnn[:6]  # everything before Flatten + Linear
clean = to_float_batch(test_img[:64])  # upright digits, (64, 1, 28, 28)


def feats(x):
    with mt.no_grad():
        return features(mt.tensor(x.astype(np.float32))).numpy().reshape(len(x), -1)


def cosine(a, b):
    return float(np.mean((a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1) + 1e-12)))


def shift(x, d):
    """Move the digits d pixels right and d down (zeros come in; MNIST digits have a 4 px margin)."""
    out = np.zeros_like(x)
    out[..., d:, d:] = x[..., : x.shape[-2] - d, : x.shape[-1] - d]
    return out


def rotation_theta(deg, n):
    a = np.deg2rad(deg)
    return np.tile(np.array([[np.cos(a), -np.sin(a), 0.0], [np.sin(a), np.cos(a), 0.0]], np.float32), (n, 1, 1))


def rotate(x, deg):
    return F.grid_sample(x, F.affine_grid(rotation_theta(deg, len(x)), x.shape)).numpy()


def unshift_theta(d, n, size=28):
    # A shift of d pixels right/down is undone by reading d pixels further right/down:
    # d pixels are 2d / size in normalised units.
    return np.tile(np.array([[1.0, 0.0, 2 * d / size], [0.0, 1.0, 2 * d / size]], np.float32), (n, 1, 1))


f0 = feats(clean)
shifts = [0, 1, 2, 3, 4]
angles = [0, 15, 30, 45, 60, 90]
sim_shift = [cosine(f0, feats(shift(clean, d))) for d in shifts]
sim_rot = [cosine(f0, feats(rotate(clean, a))) for a in angles]
# The oracle transformer: the theta that undoes each distortion, then the same CNN.
sim_shift_st = [cosine(f0, feats(F.grid_sample(shift(clean, d), F.affine_grid(unshift_theta(d, 64), clean.shape)).numpy()))
                for d in shifts]
sim_rot_st = [cosine(f0, feats(rotate(rotate(clean, a), -a))) for a in angles]
for d, s, s_st in zip(shifts, sim_shift, sim_shift_st):
    print(f"shift {d} px:  CNN features similarity {s:.3f}   after the undoing transformer {s_st:.3f}")
for a, s, s_st in zip(angles, sim_rot, sim_rot_st):
    print(f"rotate {a:2d}°: CNN features similarity {s:.3f}   after the undoing transformer {s_st:.3f}")

fig = Figure(figsize=(8, 3.2), layout="constrained")
ax1, ax2 = fig.subplots(1, 2)
ax1.plot(shifts, sim_shift, "o-", label="CNN alone")
ax1.plot(shifts, sim_shift_st, "s--", label="transformer + CNN")
ax1.set_xlabel("shift, pixels (pool windows: 2, then 4 px)")
ax2.plot(angles, sim_rot, "o-", label="CNN alone")
ax2.plot(angles, sim_rot_st, "s--", label="transformer + CNN")
ax2.set_xlabel("rotation, degrees")
for ax in (ax1, ax2):
    ax.set_ylabel("cosine similarity of pooled features")
    ax.set_ylim(0, 1.05)
    ax.legend(fontsize=8)
savefig(fig, "07_pooling_invariance")

# %% [markdown]
# Reading the curves: a 1-pixel shift already changes the features (max-pooling
# absorbs a shift only when the maximum stays inside its window), and the
# similarity keeps falling with the shift. This CNN was *trained* on rotated
# digits, so it has learned some tolerance to rotation, yet its features still
# drift steadily with the angle: the invariance is approximate, bought with
# capacity and data, and nothing in the architecture provides it. Once the
# transformer has undone the distortion, the CNN sees (nearly) the original
# digit: the only loss left is interpolation blur. A trained localisation network
# predicts such a theta per input, which is what the ST-CNN above learned to do,
# imperfectly after this little training.

# %% [markdown]
# ## What you should have seen (checked)

# %%
# Both models learned something (chance is 90% error).
assert wrong_cnn.mean() < 0.7 and wrong_st.mean() < 0.7, (wrong_cnn.mean(), wrong_st.mean())
# Pooling is not invariance: features change with shift and more with larger shifts ...
assert sim_shift[1] < 0.999 and sim_shift[4] < sim_shift[1]
# ... and with rotation, far more at 90° than at 15°.
assert sim_rot[-1] < sim_rot[1] < 1.0
# The transformer that undoes the distortion restores the features, above the CNN alone.
assert all(st >= cnn_only for st, cnn_only in zip(sim_shift_st[1:], sim_shift[1:]))
assert all(st > cnn_only for st, cnn_only in zip(sim_rot_st[2:], sim_rot[2:]))
assert min(sim_shift_st) > 0.99
if not FAST:
    # With the paper's budget (150k iterations) the ST-CNN beats the CNN on R (Table 1:
    # 0.7% vs 1.2%). After our 10 epochs the two are close (both about 5% in our runs), so
    # we check only that the transformer costs nothing: at most 1 point worse.
    assert wrong_st.mean() <= wrong_cnn.mean() + 0.01, (wrong_st.mean(), wrong_cnn.mean())
print("07: all checks passed")

# %% [markdown]
# ## Exercises
#
# Each check passes silently or raises an `AssertionError` that says what is wrong.
# Solutions: `tutorials/solutions/07_st_cnn_vs_cnn.py` (collapsed on the website).
#
# ### Exercise 1
#
# Repeat section 3 with **average** pooling: build an `nn.Sequential` like `features`
# (`cnn[:6]`) with `nn.AvgPool2d(2)` in place of each `nn.MaxPool2d(2)`, keeping the
# trained convolutions (reuse `cnn[0]` and `cnn[3]`, or copy their weights).
# *Check*: `check_exercise_1(avg_features)` checks the network, measures its shift
# curve and checks that it still falls: no pooling gives shift invariance beyond its window.

# %%
def check_exercise_1(avg_features):
    layers = list(avg_features)
    kinds = [type(m).__name__ for m in layers]
    assert "MaxPool2d" not in kinds and kinds.count("AvgPool2d") == 2, f"layers: {kinds}"
    convs = [m for m in layers if type(m).__name__ == "Conv2d"]
    assert len(convs) == 2 and all(np.array_equal(a.weight.data, b.weight.data) and np.array_equal(a.bias.data, b.bias.data)
                                   for a, b in zip(convs, (cnn[0], cnn[3]))), "the convolutions are not the trained ones"
    with mt.no_grad():
        pooled = [avg_features(mt.tensor(shift(clean, d).astype(np.float32))).numpy().reshape(len(clean), -1)
                  for d in (0, 1, 4)]
    assert pooled[0].shape == f0.shape, f"features of shape {pooled[0].shape}, max pooling gives {f0.shape}"
    sim1, sim4 = cosine(pooled[0], pooled[1]), cosine(pooled[0], pooled[2])
    print(f"average pooling: similarity after a 1 px shift {sim1:.3f}, after 4 px {sim4:.3f}")
    assert sim4 < sim1 < 0.999, "the shift curve of average pooling should still fall"


# %% [markdown]
# ### Exercise 2
#
# Look at what the trained ST-CNN predicts: `st_cnn(mt.tensor(x_test[:64]))`, then
# `st_cnn.st.last_theta` (64, 2, 3). Write `rotation_angle(theta)`, the rotation angle
# in degrees of each theta's 2x2 part, for a rotation that may also be scaled
# (`s * rotation(a)`, with `rotation` as in tutorial 01: `[[cos, -sin], [sin, cos]]`).
# *Check*: `check_exercise_2(rotation_angle)` tries it on known thetas. Then compare
# `rotation_angle(st_cnn.st.last_theta)` with `test_params["angle"][:64]`
# (`np.corrcoef`): if the localisation net has learned to undo the rotations the two
# are strongly correlated (with which sign? the input was rotated one way, the
# transformer must turn it back); after a short training, hardly.

# %%
def check_exercise_2(rotation_angle):
    degrees = np.array([-80.0, -30.0, 0.0, 12.5, 45.0, 89.0])
    a = np.deg2rad(degrees)
    scale = np.array([1.0, 0.7, 1.3, 0.9, 1.0, 0.5])[:, None, None]
    theta = np.zeros((len(a), 2, 3))
    theta[:, 0, 0], theta[:, 0, 1], theta[:, 1, 0], theta[:, 1, 1] = np.cos(a), -np.sin(a), np.sin(a), np.cos(a)
    theta[:, :, :2] *= scale
    theta[:, :, 2] = [0.1, -0.2]
    got = np.asarray(rotation_angle(theta), dtype=float)
    assert got.shape == degrees.shape, f"one angle per theta: shape {got.shape}, expected {degrees.shape}"
    assert np.allclose(got, degrees, atol=1e-6), f"angles {got.round(2).tolist()}, expected {degrees.tolist()}"
