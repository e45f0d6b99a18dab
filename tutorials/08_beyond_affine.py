# %% [markdown]
# # 08 · Beyond affine: attention, projective, thin plate spline, and several transformers
#
# **Study time** about 45 min · **Prerequisites** 04, 05 (06 helps) · **Paper** section 3.2,
# Table 1, section 4 (addition, CUB)
#
# Eq. (1) is one choice of grid generator. The paper (Table 1) also trains with
#
# | transform | parameters | grid |
# | --- | --- | --- |
# | attention | 3: $(s, t_x, t_y)$ | eq. (2): $x^s = s\,x^t + t_x$, $y^s = s\,y^t + t_y$: crop and zoom, no rotation |
# | affine | 6 | eq. (1) |
# | projective | 8 | $x^s = \frac{t_0 x^t + t_1 y^t + t_2}{t_6 x^t + t_7 y^t + 1}$, $y^s = \frac{t_3 x^t + t_4 y^t + t_5}{t_6 x^t + t_7 y^t + 1}$ |
# | TPS | 32 | a thin plate spline through 16 control points on a 4x4 grid (Bookstein 1989), $U(r) = r^2 \log r^2$ |
#
# Any grid generator that is differentiable in its parameters works with the same
# sampler. This tutorial uses them without any network: it *fits* each transform
# by gradient descent so that the transformer undoes a known distortion, then
# compares how well each family can do it.
#
# **You will learn**
#
# 1. the four grid generators of `minstn.transforms` (`TRANSFORMS[name]`: number of
#    parameters, identity, `make_grid`), and that each passes gradcheck;
# 2. that the families are nested (attention ⊂ affine ⊂ projective; affine ⊂ TPS),
#    and that a richer family undoes a richer distortion: measured as the error
#    left after fitting;
# 3. several transformers at once: in parallel (two attention windows on one
#    canvas, one per digit), as in the paper's two-digit addition experiment.

# %%
import numpy as np

import minstn as mt
import minstn.functional as F
from _course import FAST, digits, savefig
from minstn import nn, optim
from minstn.data import distort, to_float_batch
from minstn.transforms import TRANSFORMS
from minstn.viz.geometry import before_after, grid_overlay

mt.manual_seed(0)
N_DIGITS, STEPS = (6, 120) if FAST else (16, 300)
images, labels, source = digits(N_DIGITS, seed=7)
clean = to_float_batch(images).astype(np.float64)  # (N, 1, 28, 28) in [0, 1]
print(f"{N_DIGITS} {source} digits; fitting for {STEPS} steps per transform")

# %% [markdown]
# ## 1. Four grid generators, one interface
#
# Every transform is a `TransformSpec`: `n_params`, the identity parameters, and
# `make_grid(params (N, n_params), size, align_corners)`. At the identity, each
# returns the same regular grid as `F.affine_grid` with the identity theta.

# %%
size = clean.shape
identity_grid = F.affine_grid(np.tile(np.eye(2, 3), (N_DIGITS, 1, 1)), size).numpy()
for name, spec in TRANSFORMS.items():
    p = np.tile(spec.identity_params(np.float64), (N_DIGITS, 1))
    g = spec.make_grid(mt.tensor(p), size).numpy()
    print(f"{name:10s} {spec.n_params:2d} parameters; identity grid matches affine: "
          f"{np.allclose(g, identity_grid)}   ({spec.description})")

# %% [markdown]
# Each grid generator has its own backward (the TPS one is a precomputed linear
# map, since the TPS grid is linear in the control-point offsets). Gradcheck them
# at a random point near the identity, on a small output:

# %%
rng = np.random.default_rng(0)
for name, spec in TRANSFORMS.items():
    p0 = spec.identity_params(np.float64) + 0.05 * rng.standard_normal(spec.n_params)
    params = mt.tensor(p0[None], requires_grad=True)
    mt.gradcheck(lambda q: spec.make_grid(q, (1, 1, 3, 4)), [params])
print("gradcheck passed for", ", ".join(TRANSFORMS))

# %% [markdown]
# ## 2. Undo a distortion by gradient descent
#
# Take clean digits, distort them (the paper's **P**rojective and **E**lastic
# distortions, `minstn.data.distort`), and give each transform family one set of
# parameters per digit. Adam moves the parameters to minimise
#
# $$
# L = \operatorname{mean}\big(\operatorname{sample}(\text{distorted}, \mathcal{T}_{p}(G)) - \text{clean}\big)^2,
# $$
#
# the same gradient path a localisation network is trained through, minus the
# network. What error is left when the parameters stop improving tells how well
# the family can represent the inverse of the distortion.

# %%
def fit(distorted, name, steps=STEPS, lr=0.01):
    """Fit one set of parameters per digit; returns (error left, output, grid, parameters)."""
    spec = TRANSFORMS[name] if isinstance(name, str) else name   # a name or a TransformSpec
    params = mt.tensor(np.tile(spec.identity_params(np.float64), (len(distorted), 1)), requires_grad=True)
    opt = optim.Adam([params], lr=lr)
    for _ in range(steps):
        out = F.grid_sample(distorted, spec.make_grid(params, distorted.shape))
        loss = ((out - clean) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    with mt.no_grad():
        grid = spec.make_grid(params, distorted.shape)
        out = F.grid_sample(distorted, grid)
    per_digit = ((out.numpy() - clean) ** 2).mean(axis=(1, 2, 3))
    return per_digit.mean(), out.numpy(), grid.numpy(), params.data.copy()


results, distorted_by_kind = {}, {}
for kind in ("p", "e"):
    distorted = distort(images, kind, seed=3).astype(np.float64)
    distorted_by_kind[kind] = distorted
    before = ((distorted - clean) ** 2).mean()
    results[kind] = {"identity": (before, distorted, identity_grid, None)}
    for name in TRANSFORMS:
        results[kind][name] = fit(distorted, name)
    print(f"distortion {kind.upper()}: error left after fitting  " +
          "  ".join(f"{n} {results[kind][n][0]:.4f}" for n in results[kind]))

# %%
for kind in ("p", "e"):
    r = results[kind]
    names = ["identity", "attention", "affine", "projective", "tps"]
    fig = before_after(clean[:4], [r[n][1][:4] for n in names],
                       titles=["clean", f"{kind.upper()}-distorted"] + [f"{n} fit" for n in names[1:]])
    savefig(fig, f"08_fits_{kind}")
fig = grid_overlay(results["e"]["identity"][1][0], results["e"]["tps"][2][0], output=results["e"]["tps"][1][0],
                   step=2, title="TPS grid fitted to an elastic distortion")
savefig(fig, "08_tps_grid")

# %% [markdown]
# ## 3. Several transformers at once
#
# A spatial transformer is a layer: you can put several side by side, each
# attending to a different part of the input. The paper does this for the
# two-digit addition task and for bird parts (CUB). Here, a 56x56 canvas holds
# two digits, top-left and bottom-right, and two `nn.SpatialTransformer`s with the
# attention transform each crop one of them to 28x28.
#
# We set their regression biases by hand (s = 0.5, (tx, ty) = (-0.5, -0.5) and
# (+0.5, +0.5)) to show the mechanics; in a trained model the localisation
# networks would find these windows themselves.

# %%
canvas = np.zeros((1, 1, 56, 56))
canvas[0, 0, :28, :28] = clean[0, 0]
canvas[0, 0, 28:, 28:] = clean[1, 0]


def attention_st(s, tx, ty):
    loc = nn.Sequential(nn.Flatten(), nn.Linear(56 * 56, 8), nn.ReLU())
    st = nn.SpatialTransformer(loc, out_size=28, transform="attention", features=8)
    st.regression.bias.data[...] = [s, tx, ty]
    return st


sts = [attention_st(0.5, -0.5, -0.5), attention_st(0.5, 0.5, 0.5)]
with mt.no_grad():
    crops = [st(mt.tensor(canvas.astype(np.float32))).numpy() for st in sts]
fig = before_after(np.stack([canvas[0], canvas[0]]), [np.concatenate(crops)],
                   titles=["canvas", "its crop"], labels=["ST 1", "ST 2"])
savefig(fig, "08_two_transformers")

# %% [markdown]
# ## What you should have seen (checked)

# %%
for kind in ("p", "e"):
    err = {n: v[0] for n, v in results[kind].items()}
    # Every family improves on doing nothing.
    assert all(err[n] < err["identity"] for n in TRANSFORMS), (kind, err)
    # Richer families fit at least as well as the ones they contain (small slack for
    # an optimiser stopped after a fixed number of steps).
    assert err["affine"] <= err["attention"] * 1.02, (kind, err)
    assert err["projective"] <= err["affine"] * 1.02, (kind, err)
    assert err["tps"] <= err["affine"] * 1.02, (kind, err)
# The elastic distortion is best undone by the TPS.
assert results["e"]["tps"][0] == min(v[0] for n, v in results["e"].items()), results["e"]
# Each attention window shows exactly one of the two digits.
assert np.allclose(crops[0][0, 0], clean[0, 0].astype(np.float32), atol=1e-5)
assert np.allclose(crops[1][0, 0], clean[1, 0].astype(np.float32), atol=1e-5)
print("08: all checks passed")

# %% [markdown]
# ## Exercises
#
# Each check passes silently or raises an `AssertionError` that says what is wrong.
# Solutions: `tutorials/solutions/08_beyond_affine.py` (collapsed on the website).
#
# ### Exercise 1
#
# Put two transformers **in series** on the E distortion: take the affine fit's output
# (`results["e"]["affine"][1]`), then fit a TPS *on that output* (`fit` with
# `distorted` replaced by it). *Check*: `check_exercise_1(tps_params)` with the TPS
# parameters of the second stage: it resamples the affine output with them and checks
# that the second stage improves on the affine alone. It prints how the series compares
# with the TPS alone: is it better? Look at the digit edges: every sampling blurs a
# little, and the series samples twice.

# %%
def check_exercise_1(tps_params):
    affine_out = results["e"]["affine"][1]
    tps = TRANSFORMS["tps"]
    params = np.asarray(tps_params, dtype=np.float64)
    assert params.shape == (len(clean), tps.n_params), f"params {params.shape}, expected {(len(clean), tps.n_params)}"
    with mt.no_grad():
        series = F.grid_sample(affine_out, tps.make_grid(mt.tensor(params), affine_out.shape)).numpy()
    err_series = ((series - clean) ** 2).mean()
    err_affine, err_tps = results["e"]["affine"][0], results["e"]["tps"][0]
    print(f"error left on E: affine {err_affine:.5f}, affine then TPS {err_series:.5f}, TPS alone {err_tps:.5f}")
    assert err_series < 0.98 * err_affine, (
        f"applied to the affine output, these parameters leave {err_series:.5f}: no better than the affine alone "
        f"({err_affine:.5f}). Were they fitted on the affine output?")


# %% [markdown]
# ### Exercise 2
#
# Use `minstn.transforms.tps_spec((3, 3))` (18 parameters) and `tps_spec((6, 6))` (72)
# instead of the 4x4 TPS on the E distortion (`fit` accepts a spec in place of a
# name). *Check*: `check_exercise_2({(3, 3): fit_3x3, (6, 6): fit_6x6})` with what
# `fit` returned: more control points must leave less error. Then look at the 6x6
# outputs: with that much freedom the fit starts to bend the strokes themselves.

# %%
def check_exercise_2(fits):
    from minstn.transforms import tps_spec

    assert set(fits) == {(3, 3), (6, 6)}, f"expected the keys (3, 3) and (6, 6), got {sorted(fits)}"
    errors = {(4, 4): results["e"]["tps"][0]}
    for shape, fitted in fits.items():
        spec, params = tps_spec(shape), np.asarray(fitted[3])
        assert params.shape == (len(clean), spec.n_params), (
            f"{shape}: parameters {params.shape}, a {shape[0]}x{shape[1]} TPS has {spec.n_params} per digit")
        with mt.no_grad():
            out = F.grid_sample(distorted_by_kind["e"], spec.make_grid(mt.tensor(params), clean.shape)).numpy()
        errors[shape] = ((out - clean) ** 2).mean()
    print("error left on E by control grid:", {f"{a}x{b}": round(float(e), 5) for (a, b), e in sorted(errors.items())})
    assert errors[(3, 3)] > errors[(4, 4)] > errors[(6, 6)], "more control points should leave less error"
