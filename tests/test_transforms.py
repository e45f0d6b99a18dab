"""Tests of the grid generators beyond affine (issue 6): attention, projective, TPS,
restricted affine builders, pixel-matrix helpers and the TRANSFORMS registry.

Every generator is gradient-checked in float64, and every forward is compared with
an independent computation written here with plain loops.
"""

from __future__ import annotations

import importlib
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import minstn as mt
import minstn.transforms as T

SETTINGS = settings(deadline=None, max_examples=25)
SIZES = [(2, 1, 3, 5), (1, 2, 4, 4), (2, 1, 1, 3), (1, 1, 6, 1)]


def _sampling():
    """The sampler module (it exists now: an ImportError fails the test, not skips it)."""
    return importlib.import_module("minstn.sampling")


def _loop_base(n, align_corners):
    """Target coordinates by PyTorch's normalised-to-pixel formula, one pixel at a time."""
    if n == 1:
        return [0.0]
    out = []
    for i in range(n):
        v = -1.0 + 2.0 * i / (n - 1)
        out.append(v if align_corners else v * (n - 1) / n)
    return out


def _loop_affine_grid(theta, size, align_corners):
    n, _, h, w = size
    xs, ys = _loop_base(w, align_corners), _loop_base(h, align_corners)
    grid = np.zeros((n, h, w, 2))
    for b in range(n):
        for i in range(h):
            for j in range(w):
                for c in range(2):
                    grid[b, i, j, c] = theta[b, c, 0] * xs[j] + theta[b, c, 1] * ys[i] + theta[b, c, 2]
    return grid


def _t64(a, grad=True):
    return mt.tensor(np.asarray(a, dtype=np.float64), requires_grad=grad, dtype=np.float64)


# ---------------------------------------------------------------------------
# gradient checks (float64) of every generator
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("align_corners", [False, True])
@pytest.mark.parametrize("size", SIZES[:3])
def test_gradcheck_attention(size, align_corners):
    p = _t64(np.random.default_rng(0).normal(size=(size[0], 3)))
    assert mt.gradcheck(lambda p: T.attention_grid(p, size, align_corners), [p])


@pytest.mark.parametrize("align_corners", [False, True])
@pytest.mark.parametrize("size", SIZES[:3])
def test_gradcheck_projective(size, align_corners):
    rng = np.random.default_rng(1)
    identity = np.array([1, 0, 0, 0, 1, 0, 0, 0.0])
    th = _t64(identity + 0.2 * rng.normal(size=(size[0], 8)))
    assert mt.gradcheck(lambda t: T.projective_grid(t, size, align_corners), [th])


@pytest.mark.parametrize("align_corners", [False, True])
@pytest.mark.parametrize("grid_shape", [(4, 4), (2, 3)])
def test_gradcheck_tps(grid_shape, align_corners):
    k = grid_shape[0] * grid_shape[1]
    off = _t64(0.1 * np.random.default_rng(2).normal(size=(2, k, 2)))
    assert mt.gradcheck(lambda o: T.tps_grid(o, (2, 1, 5, 4), grid_shape, align_corners), [off])


BUILDERS = [
    ("affine_from_params", lambda p: T.affine_from_params(p), (3, 6)),
    ("attention_theta", lambda p: T.attention_theta(p), (3, 3)),
    ("rotation", lambda p: T.rotation_theta(p), (3,)),
    ("rotation_aspect", lambda p: T.rotation_theta(p, 5, 9), (3,)),
    ("rotation_aspect_ac", lambda p: T.rotation_theta(p, 5, 9, align_corners=True), (3,)),
    ("scale", lambda p: T.scale_theta(p), (3,)),
    ("anisotropic_scale", lambda p: T.anisotropic_scale_theta(p), (3, 2)),
    ("translation", lambda p: T.translation_theta(p), (3, 2)),
    ("rts", lambda p: T.similarity_theta(p), (3, 4)),
    ("rts_aspect", lambda p: T.similarity_theta(p, H=7, W=4), (3, 4)),
    ("rotation_scale", lambda p: T.similarity_theta(p, use_translation=False), (3, 2)),
    ("rotation_translation", lambda p: T.similarity_theta(p, use_scale=False), (3, 3)),
    ("scale_translation", lambda p: T.similarity_theta(p, use_rotation=False), (3, 3)),
]


@pytest.mark.parametrize("name,build,shape", BUILDERS, ids=[b[0] for b in BUILDERS])
def test_gradcheck_affine_builders(name, build, shape):
    p = _t64(np.random.default_rng(3).normal(size=shape))
    assert mt.gradcheck(build, [p])


def test_gradcheck_compose_theta():
    rng = np.random.default_rng(4)
    a, b = _t64(rng.normal(size=(2, 2, 3))), _t64(rng.normal(size=(2, 2, 3)))
    assert mt.gradcheck(T.compose_theta, [a, b])


# ---------------------------------------------------------------------------
# identity parameters give the identity grid
# ---------------------------------------------------------------------------


IDENTITY = {
    "attention": (lambda p, s, ac: T.attention_grid(p, s, ac), [1.0, 0, 0]),
    "projective": (lambda p, s, ac: T.projective_grid(p, s, ac), [1.0, 0, 0, 0, 1, 0, 0, 0]),
    "tps": (lambda p, s, ac: T.tps_grid(p.reshape(p.shape[0], 16, 2), s, (4, 4), ac), [0.0] * 32),
}


@pytest.mark.parametrize("kind", list(IDENTITY))
@pytest.mark.parametrize("align_corners", [False, True])
@pytest.mark.parametrize("size", SIZES)
def test_identity_params_give_identity_grid(kind, size, align_corners):
    make, ident = IDENTITY[kind]
    params = np.tile(np.array(ident), (size[0], 1))
    grid = make(params, size, align_corners).numpy()
    theta = np.tile(np.array([[1.0, 0, 0], [0, 1, 0]]), (size[0], 1, 1))
    expected = _loop_affine_grid(theta, size, align_corners)
    np.testing.assert_allclose(grid, expected, rtol=0, atol=1e-15)
    assert np.array_equal(T.TRANSFORMS[kind].identity_params(np.float64), np.array(ident))
    affine = _sampling().affine_grid(theta, size, align_corners)
    np.testing.assert_allclose(grid, np.asarray(getattr(affine, "data", affine)), rtol=0, atol=1e-15)


@pytest.mark.parametrize("kind", ["affine", "attention", "projective", "tps"])
@pytest.mark.parametrize("align_corners", [False, True])
def test_identity_reproduces_image_through_grid_sample(kind, align_corners):
    sampling = _sampling()
    spec = T.TRANSFORMS[kind]
    size = (2, 3, 5, 7)
    img = np.random.default_rng(5).random(size)
    params = np.tile(spec.identity_params(np.float64), (2, 1))
    grid = spec.make_grid(params, size, align_corners)
    out = sampling.grid_sample(img, grid, mode="bilinear", padding_mode="zeros", align_corners=align_corners)
    np.testing.assert_allclose(np.asarray(getattr(out, "data", out)), img, rtol=0, atol=1e-12)


# ---------------------------------------------------------------------------
# forward values against independent computations
# ---------------------------------------------------------------------------


@SETTINGS
@given(st.lists(st.floats(-1, 1), min_size=32, max_size=32), st.integers(1, 3))
def test_tps_passes_through_displaced_control_points(values, n):
    offsets = np.tile(np.array(values).reshape(1, 16, 2), (n, 1, 1)) * np.arange(1, n + 1)[:, None, None]
    grid = T.tps_grid(offsets, (n, 1, 4, 4), (4, 4), align_corners=True).numpy()
    expected = T.tps_control_points((4, 4))[None] + offsets
    np.testing.assert_allclose(grid.reshape(n, 16, 2), expected, rtol=0, atol=1e-12)


def test_tps_control_point_order_and_interpolation_off_grid():
    c = T.tps_control_points((4, 4))
    assert tuple(c[0]) == (-1, -1) and tuple(c[3]) == (1, -1) and tuple(c[12]) == (-1, 1)
    assert np.allclose(c[1], (-1 / 3, -1))
    # a uniform shift of every control point is an affine map: TPS reproduces it exactly
    off = np.tile([[0.3, -0.2]], (16, 1))[None]
    grid = T.tps_grid_forward(off, (1, 1, 7, 5), (4, 4), False)
    np.testing.assert_allclose(grid, T.base_grid((7, 5))[None] + [0.3, -0.2], atol=1e-12)


def _tps_solve_directly(offsets, points):
    """Bookstein's TPS, solved from scratch for one sample: no cached L^-1 or basis."""
    c = np.array([(x, y) for y in np.linspace(-1, 1, 4) for x in np.linspace(-1, 1, 4)])

    def u(p, q):
        r2 = (p[0] - q[0]) ** 2 + (p[1] - q[1]) ** 2
        return 0.0 if r2 == 0 else r2 * math.log(r2)

    L = np.zeros((19, 19))
    for i in range(16):
        for j in range(16):
            L[i, j] = u(c[i], c[j])
        L[i, 16:] = L[16:, i] = (1.0, c[i, 0], c[i, 1])
    rhs = np.zeros((19, 2))
    rhs[:16] = c + offsets
    coef = np.linalg.solve(L, rhs)  # (w_1..w_16, a_0, a_x, a_y) for x_s and for y_s
    out = []
    for p in points:
        feats = [u(p, c[k]) for k in range(16)] + [1.0, p[0], p[1]]
        out.append(np.array(feats) @ coef)
    return np.array(out)


@pytest.mark.parametrize("align_corners", [False, True])
def test_tps_matches_direct_solve(align_corners):
    off = 0.2 * np.random.default_rng(8).normal(size=(2, 16, 2))
    grid = T.tps_grid(off, (2, 1, 5, 7), (4, 4), align_corners).numpy()
    pts = T.base_grid((5, 7), align_corners).reshape(-1, 2)
    for b in range(2):
        np.testing.assert_allclose(grid[b].reshape(-1, 2), _tps_solve_directly(off[b], pts), atol=1e-12)


def test_tps_no_nan_at_control_points():
    off = _t64(np.random.default_rng(6).normal(size=(1, 16, 2)))
    grid = T.tps_grid(off, (1, 1, 4, 4), (4, 4), align_corners=True)  # output pixels ON the control points
    assert np.isfinite(grid.numpy()).all()
    grid.sum().backward()
    assert np.isfinite(off.grad).all()
    assert T.tps_radial_basis(np.array([0.0]))[0] == 0.0
    assert np.isfinite(T.tps_kernel_inverse((4, 4))).all()


@SETTINGS
@given(st.lists(st.floats(-0.5, 0.5), min_size=8, max_size=8), st.booleans())
def test_projective_matches_per_pixel_homography(delta, align_corners):
    theta = np.array([1, 0, 0, 0, 1, 0, 0, 0.0]) + np.array(delta) * [1, 1, 1, 1, 1, 1, 0.3, 0.3]
    h, w = 3, 5
    grid = T.projective_grid(theta[None], (1, 1, h, w), align_corners).numpy()[0]
    xs, ys = _loop_base(w, align_corners), _loop_base(h, align_corners)
    Hm = [[theta[0], theta[1], theta[2]], [theta[3], theta[4], theta[5]], [theta[6], theta[7], 1.0]]
    for i in range(h):
        for j in range(w):
            v = [xs[j], ys[i], 1.0]
            hx = sum(Hm[0][k] * v[k] for k in range(3))
            hy = sum(Hm[1][k] * v[k] for k in range(3))
            hz = sum(Hm[2][k] * v[k] for k in range(3))  # >= 1 - 0.3 - 0.3 > 0: no clamp here
            assert grid[i, j, 0] == pytest.approx(hx / hz, abs=1e-12)
            assert grid[i, j, 1] == pytest.approx(hy / hz, abs=1e-12)


@pytest.mark.parametrize("align_corners", [False, True])
def test_projective_with_zero_last_row_is_affine(align_corners):
    theta = np.array([[0.9, 0.2, 0.1, -0.3, 1.1, 0.05]])
    grid = T.projective_grid(np.concatenate([theta, [[0.0, 0.0]]], 1), (1, 1, 4, 6), align_corners).numpy()
    np.testing.assert_allclose(grid, _loop_affine_grid(theta.reshape(1, 2, 3), (1, 1, 4, 6), align_corners), atol=1e-14)


@SETTINGS
@given(st.floats(0.1, 2), st.floats(-1, 1), st.floats(-1, 1), st.booleans())
def test_attention_matches_affine_with_equivalent_theta(s, tx, ty, align_corners):
    size = (1, 1, 4, 7)
    grid = T.attention_grid(np.array([[s, tx, ty]]), size, align_corners).numpy()
    theta = np.array([[[s, 0, tx], [0, s, ty]]])
    np.testing.assert_allclose(grid, _loop_affine_grid(theta, size, align_corners), atol=1e-14)
    np.testing.assert_array_equal(T.attention_theta(np.array([[s, tx, ty]])).numpy(), theta)
    affine = _sampling().affine_grid(theta, size, align_corners)
    np.testing.assert_allclose(grid, np.asarray(getattr(affine, "data", affine)), atol=1e-14)


def test_builders_values():
    a = np.array([0.4])
    c, s = math.cos(0.4), math.sin(0.4)
    np.testing.assert_allclose(T.rotation_theta(a).numpy()[0], [[c, -s, 0], [s, c, 0]])
    np.testing.assert_allclose(T.scale_theta(np.array([0.5])).numpy()[0], [[0.5, 0, 0], [0, 0.5, 0]])
    np.testing.assert_allclose(T.anisotropic_scale_theta(np.array([[0.5, 2.0]])).numpy()[0], [[0.5, 0, 0], [0, 2, 0]])
    np.testing.assert_allclose(T.translation_theta(np.array([[0.1, -0.2]])).numpy()[0], [[1, 0, 0.1], [0, 1, -0.2]])
    rts = T.similarity_theta(np.array([[0.4, 0.8, 0.1, -0.2]])).numpy()[0]
    np.testing.assert_allclose(rts, [[0.8 * c, -0.8 * s, 0.1], [0.8 * s, 0.8 * c, -0.2]])
    # RTS = translation after scale after rotation, composed as 3x3 matrices
    composed = T.compose_theta(T.translation_theta(np.array([[0.1, -0.2]])),
                               T.compose_theta(T.scale_theta(np.array([0.8])), T.rotation_theta(a)))
    np.testing.assert_allclose(composed.numpy()[0], rts, atol=1e-15)
    np.testing.assert_allclose(T.rotation_theta(a, 10, 30).numpy()[0], T.rotation_theta_array(a, 10, 30)[0])


def test_float32_stays_float32():
    size = (1, 1, 3, 4)
    assert T.attention_grid(np.array([[1, 0, 0]], np.float32), size).dtype == np.float32
    assert T.projective_grid(np.array([[1, 0, 0, 0, 1, 0, 0, 0]], np.float32), size).dtype == np.float32
    assert T.tps_grid(np.zeros((1, 16, 2), np.float32), size).dtype == np.float32


def test_cached_arrays_are_read_only():
    for a in (T.tps_basis((1, 1, 5, 5)), T.tps_kernel_inverse(), T.tps_control_points(), T.base_grid((3, 4))):
        with pytest.raises(ValueError):
            a[...] = 0
    assert T.tps_basis((1, 1, 5, 5)) is T.tps_basis((2, 3, 5, 5))  # computed once per (H, W, grid, align)


# ---------------------------------------------------------------------------
# the projective denominator
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("align_corners", [False, True])
def test_projective_denominator_crossing_zero_is_finite(align_corners):
    # den = 1 + 1.0 * x crosses 0 at x = -1: a grid column with align_corners=True sits exactly on it
    rows = [[1, 0, 0, 0, 1, 0, 1.0, 0], [0.5, 0.3, 2, 0, 1, 0, 3.0, -4.0], [1, 0, 0, 0, 1, 0, 1 + 1e-9, 0]]
    th = _t64(rows)
    grid = T.projective_grid(th, (3, 1, 9, 9), align_corners)
    assert np.isfinite(grid.numpy()).all()
    (grid * grid).sum().backward()
    assert np.isfinite(th.grad).all()


@SETTINGS
@given(st.lists(st.floats(-50, 50), min_size=8, max_size=8), st.booleans())
def test_projective_never_nan_or_inf(theta, align_corners):
    th = _t64([theta])
    grid = T.projective_grid(th, (1, 1, 5, 6), align_corners)
    assert np.isfinite(grid.numpy()).all()
    grid.sum().backward()
    assert np.isfinite(th.grad).all()


def test_projective_clamp_keeps_sign_and_gradient_of_clamped_function():
    eps = 1e-3
    # den at the single output pixel (x = y = 0 for a 1x1 output) is 1 + 0 = 1; push it with t6 via a 1x3 row
    th = _t64([[1, 0, 0, 0, 1, 0, -1.0002, 0]])  # x = -1, 0, 1 (align_corners): den = 2.0002, 1, -0.0002
    grid = T.projective_grid(th, (1, 1, 1, 3), True, eps=eps)
    g = grid.numpy()[0, 0]
    assert g[2, 0] == pytest.approx(1 / -eps)  # clamped to -eps, sign kept
    assert mt.gradcheck(lambda t: T.projective_grid(t, (1, 1, 1, 3), True, eps=eps), [th])


# ---------------------------------------------------------------------------
# pixel-space helpers
# ---------------------------------------------------------------------------


@SETTINGS
@given(st.lists(st.floats(-2, 2), min_size=6, max_size=6), st.integers(2, 40), st.integers(2, 40),
       st.integers(2, 40), st.integers(2, 40), st.booleans())
def test_pixel_matrix_round_trip(theta, h_in, w_in, h_out, w_out, align_corners):
    theta = np.array(theta).reshape(2, 3)
    m = T.pixel_matrix_from_theta(theta, (h_in, w_in), (h_out, w_out), align_corners)
    back = T.theta_from_pixel_matrix(m, (h_in, w_in), (h_out, w_out), align_corners)
    np.testing.assert_allclose(back, theta, rtol=1e-12, atol=1e-12)
    # the meaning of M: dst pixel (j, i) reads src pixel M @ (j, i, 1), the same point theta reads
    grid = _loop_affine_grid(theta[None], (1, 1, h_out, w_out), align_corners)[0]
    for i, j in [(0, 0), (h_out - 1, w_out - 1), (h_out // 2, 1)]:
        src = m @ [j, i, 1.0]
        x, y = grid[i, j]
        if align_corners:
            ix, iy = (x + 1) / 2 * (w_in - 1), (y + 1) / 2 * (h_in - 1)
        else:
            ix, iy = ((x + 1) * w_in - 1) / 2, ((y + 1) * h_in - 1) / 2
        np.testing.assert_allclose(src, [ix, iy], atol=1e-9)


def test_pixel_matrix_of_identity_and_homography_round_trip():
    ident = np.array([[1.0, 0, 0], [0, 1, 0]])
    for ac in (False, True):
        np.testing.assert_allclose(T.pixel_matrix_from_theta(ident, (28, 28), align_corners=ac), ident, atol=1e-13)
    hom = T.homography_matrix(np.array([1.1, 0.1, 0.05, -0.1, 0.9, 0.02, 0.1, -0.05]))
    pix = T.pixel_matrix_from_theta(hom, (20, 30), (24, 24))
    assert pix[2, 2] == 1.0
    back = T.theta_from_pixel_matrix(pix, (20, 30), (24, 24))
    np.testing.assert_allclose(T.homography_params(back), T.homography_params(hom), atol=1e-12)
    with pytest.raises(ValueError, match="theta"):
        T.pixel_matrix_from_theta(np.zeros((4, 4)), (5, 5))


def test_homography_from_points():
    h_true = T.homography_matrix(np.array([1.1, 0.1, 2.0, -0.1, 0.9, 1.0, 0.002, -0.001]))
    tgt = np.array([[0, 0], [27, 0], [27, 27], [0, 27], [13, 5.0]])
    hom = np.c_[tgt, np.ones(5)] @ h_true.T
    src = hom[:, :2] / hom[:, 2:]
    np.testing.assert_allclose(T.homography_from_points(tgt[:4], src[:4]), h_true, atol=1e-9)
    np.testing.assert_allclose(T.homography_from_points(tgt, src), h_true, atol=1e-9)
    np.testing.assert_allclose(T.pixel_offsets_to_normalised([[1.0, 1.0]], (10, 20)), [[0.1, 0.2]])


@pytest.mark.parametrize("align_corners", [False, True])
@pytest.mark.parametrize("hw", [(20, 40), (33, 12), (28, 28)])
def test_aspect_correct_rotation_is_rigid_in_pixels(hw, align_corners):
    h, w = hw
    angle = 0.7
    theta = T.rotation_theta(np.array([angle]), h, w, align_corners).numpy()
    grid = _loop_affine_grid(theta, (1, 1, h, w), align_corners)[0]
    m = T.pixel_matrix_from_theta(theta[0], hw, align_corners=align_corners)
    np.testing.assert_allclose(m[:, :2], [[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]],
                               atol=1e-12)

    def to_px(p):
        x, y = p
        if align_corners:
            return np.array([(x + 1) / 2 * (w - 1), (y + 1) / 2 * (h - 1)])
        return np.array([((x + 1) * w - 1) / 2, ((y + 1) * h - 1) / 2])

    a, b = (1, 2), (h - 2, w - 3)  # two output pixels (row, col)
    d_out = math.hypot(b[1] - a[1], b[0] - a[0])
    d_src = np.linalg.norm(to_px(grid[b]) - to_px(grid[a]))
    assert d_src == pytest.approx(d_out, rel=1e-12)
    # the image centre stays put
    centre = T.pixel_matrix_from_theta(theta[0], hw, align_corners=align_corners) @ [(w - 1) / 2, (h - 1) / 2, 1]
    np.testing.assert_allclose(centre, [(w - 1) / 2, (h - 1) / 2], atol=1e-12)
    if h != w:
        # negative control: the plain normalised rotation stretches distances on non-square images
        plain = _loop_affine_grid(T.rotation_theta(np.array([angle])).numpy(), (1, 1, h, w), align_corners)[0]
        assert abs(np.linalg.norm(to_px(plain[b]) - to_px(plain[a])) - d_out) > 1e-3


# ---------------------------------------------------------------------------
# registry
# ---------------------------------------------------------------------------


def test_registry():
    assert {k: v.n_params for k, v in T.TRANSFORMS.items()} == {"affine": 6, "attention": 3, "projective": 8, "tps": 32}
    for spec in T.TRANSFORMS.values():
        p = spec.identity_params()
        assert p.shape == (spec.n_params,) and p.dtype == np.float32
        p[0] = 99.0  # a fresh copy each call
        assert spec.identity_params()[0] != 99.0
    assert T.tps_spec((3, 3)).n_params == 18
    size = (2, 1, 5, 6)
    p = _t64(0.05 * np.random.default_rng(7).normal(size=(2, 32)))
    grid = T.TRANSFORMS["tps"].make_grid(p, size, False)
    np.testing.assert_array_equal(grid.numpy(), T.tps_grid(p.numpy().reshape(2, 16, 2), size).numpy())
    assert mt.gradcheck(lambda q: T.TRANSFORMS["tps"].make_grid(q, size, False), [p])
    for kind in ("attention", "projective"):
        spec = T.TRANSFORMS[kind]
        q = _t64(np.tile(spec.identity_params(np.float64), (2, 1)) + 0.05)
        assert mt.gradcheck(lambda q: spec.make_grid(q, size, True), [q])


def test_registry_affine_uses_sampler():
    theta = np.array([[0.9, 0.1, 0.2, -0.1, 1.1, 0.0]])
    grid = T.TRANSFORMS["affine"].make_grid(theta, (1, 1, 4, 5), False)
    np.testing.assert_allclose(grid.numpy(), _loop_affine_grid(theta.reshape(1, 2, 3), (1, 1, 4, 5), False), atol=1e-12)
    affine = _sampling().affine_grid(theta.reshape(1, 2, 3), (1, 1, 4, 5), False)
    np.testing.assert_allclose(grid.numpy(), np.asarray(getattr(affine, "data", affine)), rtol=0, atol=1e-15)


# ---------------------------------------------------------------------------
# bad inputs
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("call,match", [
    (lambda: T.attention_grid(np.zeros((2, 4)), (2, 1, 3, 3)), r"params.*\(N, 3\).*\(2, 4\)"),
    (lambda: T.attention_grid(np.zeros((3,)), (1, 1, 3, 3)), r"params.*\(3,\)"),
    (lambda: T.attention_grid(np.ones((1, 3), np.int64), (1, 1, 3, 3)), r"params.*floating.*int64"),
    (lambda: T.projective_grid(np.zeros((1, 9)), (1, 1, 3, 3)), r"theta.*\(N, 8\).*\(1, 9\)"),
    (lambda: T.projective_grid(np.ones((1, 8), np.int32), (1, 1, 3, 3)), r"theta.*floating"),
    (lambda: T.projective_grid(np.zeros((1, 8)), (1, 1, 3, 3), eps=0.0), r"eps"),
    (lambda: T.tps_grid(np.zeros((1, 9, 2)), (1, 1, 3, 3)), r"offsets.*\(N, 16, 2\).*\(1, 9, 2\)"),
    (lambda: T.tps_grid(np.zeros((1, 16, 2), np.int64), (1, 1, 3, 3)), r"offsets.*floating"),
    (lambda: T.tps_grid(np.zeros((1, 4, 2)), (1, 1, 3, 3), grid_shape=(1, 4)), r"grid_shape"),
    (lambda: T.attention_grid(np.zeros((2, 3)), (1, 1, 3, 3)), r"size\[0\] = 1.*2"),
    (lambda: T.attention_grid(np.zeros((1, 3)), (1, 3, 3)), r"size"),
    (lambda: T.attention_grid(np.zeros((1, 3)), (1, 1, 0, 3)), r"size"),
    (lambda: T.rotation_theta(np.zeros((2, 1))), r"angle.*\(N,\)"),
    (lambda: T.rotation_theta(np.zeros(2), H=4), r"H and W"),
    (lambda: T.translation_theta(np.zeros((2, 3))), r"translation.*\(N, 2\)"),
    (lambda: T.similarity_theta(np.zeros((2, 3))), r"params.*\(N, 4\)"),
    (lambda: T.scale_theta(np.ones(2, np.int64)), r"scale.*floating"),
    (lambda: T.compose_theta(np.zeros((1, 2, 3)), np.zeros((1, 3, 3))), r"second"),
    (lambda: T.theta_from_pixel_matrix(np.eye(3)[:2], (1, 5), align_corners=True), r"in_hw"),
    (lambda: T.homography_from_points(np.zeros((3, 2)), np.zeros((3, 2))), r"target_pts"),
    (lambda: T.TRANSFORMS["tps"].make_grid(np.zeros((1, 30)), (1, 1, 3, 3)), r"params.*\(N, 32\).*\(1, 30\)"),
    (lambda: T.projective_grid_forward(np.zeros((8,)), (3, 3)), r"theta"),
    (lambda: T.tps_grid_forward(np.zeros((1, 16, 3)), (3, 3)), r"offsets"),
])
def test_bad_inputs_raise_value_error_naming_the_argument(call, match):
    with pytest.raises(ValueError, match=match):
        call()


# ---------------------------------------------------------------------------
# cross-check with PyTorch when it is installed
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("align_corners", [False, True])
def test_matches_torch_affine_grid(align_corners):
    torch = pytest.importorskip("torch")
    size = (2, 1, 5, 8)
    params = np.array([[0.8, 0.1, -0.3], [1.2, -0.2, 0.05]])
    theta = T.attention_theta(params).numpy()
    ref = torch.nn.functional.affine_grid(torch.tensor(theta), size, align_corners=align_corners).numpy()
    np.testing.assert_allclose(T.attention_grid(params, size, align_corners).numpy(), ref, atol=1e-12)
    rot = T.rotation_theta(np.array([0.5, -1.0]), 5, 8, align_corners).numpy()
    ref = torch.nn.functional.affine_grid(torch.tensor(rot), size, align_corners=align_corners).numpy()
    np.testing.assert_allclose(_loop_affine_grid(rot, size, align_corners), ref, atol=1e-12)


def test_projective_gradient_matches_torch_autograd():
    torch = pytest.importorskip("torch")
    eps = 1e-2
    th_np = np.array([[1.1, 0.2, 0.1, -0.1, 0.9, 0.05, 0.8, -0.4], [1, 0, 0, 0, 1, 0, 1.0, 0.0]])
    size = (2, 1, 6, 5)
    th = _t64(th_np)
    grid = T.projective_grid(th, size, True, eps=eps)
    weights = np.random.default_rng(9).normal(size=grid.shape)
    (grid * weights).sum().backward()
    # the same clamped function written with torch ops
    tt = torch.tensor(th_np, requires_grad=True)
    base = torch.tensor(T.base_grid(size, True))
    x, y = base[..., 0], base[..., 1]
    t = [tt[:, k, None, None] for k in range(8)]
    den = t[6] * x + t[7] * y + 1
    sign = torch.where(den < 0, -1.0, 1.0)
    den = torch.where(den.abs() < eps, sign * eps, den)
    ref = torch.stack([(t[0] * x + t[1] * y + t[2]) / den, (t[3] * x + t[4] * y + t[5]) / den], -1)
    (ref * torch.tensor(weights)).sum().backward()
    np.testing.assert_allclose(grid.numpy(), ref.detach().numpy(), atol=1e-12)
    np.testing.assert_allclose(th.grad, tt.grad.numpy(), atol=1e-9)
