# %% [markdown]
# # 06 · Localisation networks: watching a transformer learn (Figure 1 of the paper)
#
# **Study time** about 45 min, plus the training run (see the teacher's page) ·
# **Prerequisites** 03, 04, 05; a classifier trained with cross-entropy ·
# **Paper** section 3, section 4.1, Figure 1
#
# Nobody tells a spatial transformer what theta should be. It sits in front of a
# classifier, and the classification loss, flowing back through the sampler
# (tutorial 05) and the grid generator, trains its localisation network to
# produce whatever transform makes classification easiest. On digits that are
# rotated, scaled and placed anywhere on a 42x42 canvas (the paper's RTS data),
# that turns out to be: find the digit, centre it and zoom in on it (and, given
# more training than a tutorial affords, undo the rotation too).
#
# **You will learn**
#
# 1. what an ST-FCN is in minstn: `models.st_fcn` = a fully connected
#    localisation net (3 x 32 units) + regression layer started at the identity +
#    `SpatialTransformer` + an FCN classifier;
# 2. to write the training loop yourself (forward, cross-entropy, backward, step);
# 3. to watch theta and the transformed digits evolve epoch by epoch (Figure 1);
# 4. to *measure* what the transformer learned: its outputs are more centred than its
#    inputs, and it zooms in.

# %%
import time

import numpy as np

import minstn as mt
import minstn.functional as F
from _course import FAST, digits, savefig
from minstn import models, optim
from minstn.data import batches, distort
from minstn.experiments.health import measure_health
from minstn.viz.geometry import before_after, grid_overlay

mt.manual_seed(0)
N_TRAIN, N_TEST, EPOCHS = (4000, 500, 6) if FAST else (9000, 1000, 20)
BATCH, LR = 64, 2e-3

images, labels, source = digits(N_TRAIN + N_TEST, seed=0)
# The shared MNIST copy is the 10,000-digit test set; we split it ourselves, so the
# digits we evaluate on were never trained on.
train_img, train_y = images[:N_TRAIN], labels[:N_TRAIN]
test_img, test_y = images[N_TRAIN:], labels[N_TRAIN:]
x_test = distort(test_img, "rts", seed=1)  # float32 (N, 1, 42, 42), a fixed test set
print(f"{source} digits: {N_TRAIN} train, {N_TEST} test, RTS canvas {x_test.shape[-2:]}, "
      f"{EPOCHS} epochs{' (fast mode)' if FAST else ''}")

# %% [markdown]
# ## 1. The model
#
# Printing a Module shows its tree, as in PyTorch. The regression layer of the
# transformer starts with zero weights and the identity as bias, so at step 0
# the transformer passes its input through unchanged.

# %%
model = models.st_fcn(in_size=42)
print(model)
print("parameters:", models.count_parameters(model))
print("initial theta (bias of the regression layer):", model.st.regression.bias.data)

# %% [markdown]
# ## 2. Train, and keep a snapshot of the transformer after every epoch
#
# The paper draws fresh random distortions every epoch ("on the fly"):
# `distort(..., epoch=e)` does exactly that. We watch six fixed test digits.

# %%
watch = x_test[:6]


def transformer_view(model, x):
    """The transformer's output and theta for a batch, without recording a graph."""
    model.eval()
    with mt.no_grad():
        out = model.st(mt.tensor(x)).numpy()
    model.train()
    return out, model.st.last_theta.copy()


def error_rate(model, x, y):
    model.eval()
    with mt.no_grad():
        pred = np.concatenate([model(mt.tensor(x[i:i + 500])).numpy().argmax(1) for i in range(0, len(x), 500)])
    model.train()
    return float((pred != y).mean())


def train(model, epochs=EPOCHS, after_epoch=None):
    """The loop, by hand: fresh distortions and a new shuffle every epoch; one dict per epoch.

    ``after_epoch(model, record)``, if given, runs after each epoch (here: keep a snapshot
    of the transformer and measure its health)."""
    # The paper uses plain SGD for many more iterations; Adam gets somewhere in the
    # few epochs a tutorial can afford.
    optimizer = optim.Adam(model.parameters(), lr=LR)
    history, start = [], time.perf_counter()
    for epoch in range(1, epochs + 1):
        x_train = distort(train_img, "rts", seed=0, epoch=epoch)
        losses = []
        for xb, yb in batches(x_train, train_y, BATCH, seed=0, epoch=epoch):  # shuffled anew each epoch
            loss = F.cross_entropy(model(mt.tensor(xb)), yb)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
        record = {"epoch": epoch, "loss": float(np.mean(losses)), "test_error": error_rate(model, x_test, test_y)}
        history.append(record)
        if after_epoch is not None:
            after_epoch(model, record)
        print(f"epoch {epoch:2d}  loss {record['loss']:.3f}  test error {100 * record['test_error']:5.1f}%  "
              f"({time.perf_counter() - start:.0f} s)" + record.get("note", ""))
    return history


def keep_snapshot(model, record):
    """A snapshot of the transformer on the watched digits, and its health on the test set:
    ``theta_shift`` (mean |theta - identity|: 0 means it has not moved) and ``off_canvas``
    (the share of its samples outside the input: near 1 means it looks at nothing; the
    monitor of ``minstn train`` and tutorial 10 watch the same numbers)."""
    snapshots.append(transformer_view(model, watch))
    record.update(measure_health(model, x_test))
    record["note"] = (f"  theta[0] = {np.array2string(snapshots[-1][1][0].ravel(), precision=2)}"
                      f"  shift {record['theta_shift']:.3f}, {100 * record['off_canvas']:.0f}% off canvas")


snapshots = [transformer_view(model, watch)]  # epoch 0: the identity
history = train(model, after_epoch=keep_snapshot)

# %% [markdown]
# This loop, with a progress bar and a stop at the first non-finite loss, is
# `minstn.experiments.train_epoch`: the one loop behind `minstn train`,
# `minstn reproduce` and tutorial 07.
#
# ## 3. Figure 1: the transformed digits, epoch by epoch
#
# Column 0 is the input; then the transformer's output after each epoch. Early
# on the transformer is (almost) the identity; as training goes on it learns to
# zoom in on the digit and bring it to the centre; turning it upright comes last,
# if at all in the epochs we can afford.

# %%
shown = sorted(set(np.linspace(0, EPOCHS, 5).astype(int)))
fig = before_after(watch, [snapshots[e][0] for e in shown],
                   titles=["input"] + [f"epoch {e}" for e in shown])
savefig(fig, "06_evolution")

# And the sampling grid of the final transformer over one input (as in Figure 3).
model.eval()
with mt.no_grad():
    out = model.st(mt.tensor(watch[:1]))
learned_grid = model.st.last_grid[0]
model.train()
fig = grid_overlay(watch[0], learned_grid, output=out.numpy()[0], step=3, title=r"learned $\mathcal{T}_\theta(G)$")
savefig(fig, "06_learned_grid")

# %% [markdown]
# ## 4. Measuring what was learned
#
# Two numbers per image, from its ink (pixel values as weights):
#
# * **offset**: distance from the ink's centre of mass to the image centre;
# * **size**: the ink's radius of gyration (how spread out it is).
#
# If the transformer centres the digits, its outputs have a smaller mean offset than
# its inputs; if it zooms in, the scale of theta, $\sqrt{|\det A|}$ of its 2x2 part, is
# below 1. In our runs: the offset fell by a third in fast mode and by half or more in full
# mode, and the mean scale was about 0.85 and 0.75. Normalising the *size* (sizes that
# vary less from digit to digit, relative to their mean) takes longer: in full mode the
# spread fell from 0.19 to 0.16 in our run, in fast mode it hardly moved (0.18), so it
# is checked in full mode only.

# %%
def ink_stats(x):
    x = x[:, 0].astype(np.float64)
    H, W = x.shape[1:]
    yy, xx = np.mgrid[0:H, 0:W]
    mass = x.sum(axis=(1, 2)) + 1e-9
    cy, cx = (x * yy).sum(axis=(1, 2)) / mass, (x * xx).sum(axis=(1, 2)) / mass
    offset = np.hypot(cy - (H - 1) / 2, cx - (W - 1) / 2)
    size = np.sqrt((x * ((yy - cy[:, None, None]) ** 2 + (xx - cx[:, None, None]) ** 2)).sum(axis=(1, 2)) / mass)
    return offset / W, size / W  # as fractions of the image width


out_test, theta_test = transformer_view(model, x_test)
off_in, size_in = ink_stats(x_test)
off_out, size_out = ink_stats(out_test)
print(f"mean offset of the ink from the centre: input {off_in.mean():.3f} W, output {off_out.mean():.3f} W")
print(f"spread of digit size (std/mean):        input {size_in.std() / size_in.mean():.3f}, "
      f"output {size_out.std() / size_out.mean():.3f}")
scale = np.sqrt(np.abs(np.linalg.det(theta_test[:, :, :2])))
print(f"mean scale of the learned theta: {scale.mean():.2f} (< 1 means it zooms in)")

# %% [markdown]
# ## What you should have seen (checked)

# %%
final_error = history[-1]["test_error"]
# The classifier learned (chance is 90% error): in our runs about 35-40% after the fast
# mode's 6 epochs on 4,000 digits, below 10% after the full mode's 20 epochs on 9,000.
assert final_error < (0.5 if FAST else 0.15), final_error
# The transformer was the identity at epoch 0 and has moved away from it.
assert np.allclose(snapshots[0][1], [[1, 0, 0], [0, 1, 0]])
assert not np.allclose(snapshots[-1][1], snapshots[0][1], atol=1e-2)
# Healthy: it moved, and most of its samples still land on the input.
assert history[-1]["theta_shift"] > 0.01 and history[-1]["off_canvas"] < 0.5, history[-1]
# Its outputs are more centred than its inputs (by at least a fifth), and it zooms in.
assert off_out.mean() < 0.8 * off_in.mean(), (off_in.mean(), off_out.mean())
assert scale.mean() < 0.95, scale.mean()
# With the full mode's training, the digits' sizes also vary less than the inputs'.
spread_in, spread_out = size_in.std() / size_in.mean(), size_out.std() / size_out.mean()
if not FAST:
    assert spread_out < spread_in, (spread_in, spread_out)
print("06: all checks passed")

# %% [markdown]
# ## Exercises
#
# Each check passes silently or raises an `AssertionError` that says what is wrong.
# Solutions: `tutorials/solutions/06_localisation_network.py` (collapsed on the website).
#
# ### Exercise 1
#
# Train a plain `models.fcn(in_size=42)` (no transformer) with the same loop,
# `train(fcn)`, and compare test errors. *Check*: `check_exercise_1(fcn)`: the FCN
# must have been trained, and the ST-FCN's error must be lower (the paper, after full
# training: FCN 5.2%, ST-FCN 0.8% on RTS; here, after a few epochs, both are far higher,
# and the gap is already there).

# %%
def check_exercise_1(fcn):
    assert not hasattr(fcn, "st"), "this model has a spatial transformer: use models.fcn(in_size=42)"
    fcn_error = error_rate(fcn, x_test, test_y)
    print(f"test error: FCN {100 * fcn_error:.1f}%, ST-FCN {100 * final_error:.1f}%")
    assert fcn_error < 0.8, f"the FCN's error is {100 * fcn_error:.0f}% (chance: 90%): was it trained?"
    assert final_error < fcn_error, "the ST-FCN should beat the FCN trained the same way"


# %% [markdown]
# ### Exercise 2
#
# Make a fresh `models.st_fcn(in_size=42)` and initialise its regression layer
# **randomly** instead of at the identity: weights and bias drawn from N(0, 1)
# (`model.st.regression.weight.data[...] = rng.normal(size=...)`, the same for
# `.bias`). Show its transformer's outputs on `watch` with `before_after`: what do you
# see? *Check*: `check_exercise_2(model)` measures where its sampling points fall on
# the test digits. If you have the time (as long as section 2), train it with
# `train(model)` and compare the error with the identity start.

# %%
def check_exercise_2(random_model):
    regression = random_model.st.regression
    at_identity = not np.any(regression.weight.data) and np.allclose(regression.bias.data, [1, 0, 0, 0, 1, 0])
    assert not at_identity, "the regression layer is still at the identity"
    random_model.eval()
    with mt.no_grad():
        random_model.st(mt.tensor(x_test))
    random_model.train()
    outside = float((np.abs(random_model.st.last_grid) > 1).any(axis=-1).mean())
    print(f"{100 * outside:.0f}% of the sampling points fall outside the input")
    assert outside > 0.3, (f"only {100 * outside:.0f}% of the sampling points fall outside the input: "
                           "is the initialisation as wide as N(0, 1)?")
