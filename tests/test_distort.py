"""Distortions of section 4.1: statistics of what is drawn and of what comes out."""
from pathlib import Path

import numpy as np
import pytest

from minstn.data import KINDS, OUTPUT_SIZE, batches, distort, load_glyphs, mnist_addition
from minstn.data.mnist import find_mnist, load_mnist

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "mnist"


@pytest.fixture(scope="module")
def digits():
    """500 real MNIST digits when available, else glyph digits (same format)."""
    if find_mnist(SHARED, "test") is not None:
        return load_mnist("test", data_dir=SHARED, download=False)[0][:500]
    return load_glyphs("test", n=500, seed=3)[0]


def disk(n=200, radius=5.0):
    """uint8 discs centred on the 28x28 canvas: their centre of mass is known exactly."""
    g = np.arange(28) - 13.5
    d = np.hypot(g[:, None], g[None, :])
    return np.repeat((np.clip(radius + 0.5 - d, 0, 1) * 255).astype(np.uint8)[None], n, axis=0)


def com(x):
    """Centre of mass (x, y) of (N, 1, H, W) images, in centred pixels."""
    img = x[:, 0].astype(np.float64)
    h = img.shape[-1]
    g = np.arange(h) - (h - 1) / 2
    m = img.sum(axis=(1, 2))
    return np.stack([(img.sum(1) * g).sum(1), (img.sum(2) * g).sum(1)], -1) / m[:, None]


@pytest.mark.parametrize("kind", KINDS)
def test_shape_dtype_range_determinism(digits, kind):
    out = distort(digits[:100], kind, seed=1)
    s = OUTPUT_SIZE[kind]
    assert out.shape == (100, 1, s, s) and out.dtype == np.float32
    assert out.min() >= 0 and out.max() <= 1 and out.max() > 0.5
    assert distort(digits[:100], kind, seed=1).tobytes() == out.tobytes()
    assert distort(digits[:100], kind, seed=2).tobytes() != out.tobytes()
    assert distort(digits[:100], kind, seed=1, epoch=1).tobytes() != out.tobytes()  # fresh per epoch
    floats = digits[:100].astype(np.float32) / 255  # float input gives the same result
    np.testing.assert_allclose(distort(floats, kind, seed=1), out, atol=1e-6)


def test_unknown_kind(digits):
    with pytest.raises(ValueError, match="kind"):
        distort(digits[:2], "swirl")


def test_rotation_angles_and_orientation():
    n = 300
    bar = np.zeros((n, 28, 28), np.uint8)
    bar[:, 13:15, 4:24] = 255  # horizontal bar through the centre
    out, p = distort(bar, "r", seed=0, return_params=True)
    a = p["angle"]
    assert a.min() >= -90 and a.max() <= 90 and a.min() < -80 and a.max() > 80
    assert abs(a.std() - 180 / np.sqrt(12)) < 6  # the std of U(-90, 90)
    # the principal axis of the output bar is the drawn angle (counter-clockwise on screen)
    img = out[:, 0].astype(np.float64)
    g = np.arange(28) - 13.5
    m = img.sum((1, 2))
    cx, cy = (img.sum(1) * g).sum(1) / m, (img.sum(2) * g).sum(1) / m
    X, Y = g[None, None, :] - cx[:, None, None], g[None, :, None] - cy[:, None, None]
    mxx, myy, mxy = (img * X * X).sum((1, 2)), (img * Y * Y).sum((1, 2)), (img * X * Y).sum((1, 2))
    measured = np.degrees(0.5 * np.arctan2(2 * mxy, mxx - myy))  # y down: screen angle is -this
    diff = (-measured - a + 90) % 180 - 90
    assert np.abs(diff).max() < 3


def test_rts_scale_and_position():
    x = disk()
    out, p = distort(x, "rts", seed=0, return_params=True)
    s, pos = p["scale"], p["position"]
    assert 0.7 <= s.min() < 0.72 and 1.18 < s.max() <= 1.2
    assert np.abs(p["angle"]).max() <= 45 and np.abs(p["angle"]).max() > 40
    reach = 21 - 10 * s
    assert np.all(np.abs(pos) <= reach[:, None] + 1e-9)
    assert pos.std(axis=0).min() > 3  # placement really varies
    np.testing.assert_allclose(com(out), pos, atol=0.1)  # bilinear resampling blurs a little
    ratio = out.sum((1, 2, 3)) / (x.astype(np.float32).sum((1, 2)) / 255)
    np.testing.assert_allclose(ratio, s ** 2, rtol=0.03)  # area scales with s^2


def test_rts_real_digits_stay_mostly_inside(digits):
    out, p = distort(digits, "rts", seed=0, return_params=True)
    kept = out.sum((1, 2, 3)) / (digits.astype(np.float32).sum((1, 2)) / 255 * p["scale"] ** 2)
    assert np.median(kept) > 0.97 and np.mean(kept > 0.9) > 0.97
    err = np.hypot(*(com(out) - p["position"]).T)
    assert np.median(err) < 1.5  # MNIST digits are centred by mass


def test_projective_params(digits):
    out, p = distort(digits, "p", seed=0, return_params=True)
    assert 0.75 <= p["scale"].min() and p["scale"].max() <= 1.0
    assert abs(p["corner_shift"].std() - 5) < 0.3 and abs(p["corner_shift"].mean()) < 0.3
    assert not np.allclose(out[:, 0], digits / 255, atol=0.2)


def test_projective_maps_corners(digits):
    """With theta from the drawn parameters, the grid puts the input corners at the
    shifted, scaled corners: check the homography on its four defining points."""
    from minstn.data.distort import _homography_to_corners
    t = np.array([[[-0.7, -0.8], [0.9, -0.6], [-0.8, 0.75], [0.6, 0.9]]])
    h = np.append(_homography_to_corners(t)[0], 1).reshape(3, 3)
    q = np.c_[t[0], np.ones(4)] @ h.T
    np.testing.assert_allclose(q[:, :2] / q[:, 2:], [[-1, -1], [1, -1], [-1, 1], [1, 1]], atol=1e-9)


def test_elastic_params(digits):
    out, p = distort(digits, "e", seed=0, return_params=True)
    assert 0.75 <= p["scale"].min() and p["scale"].max() <= 1.0
    assert p["jitter"].shape == (len(digits), 16, 2) and abs(p["jitter"].std() - 1.5) < 0.1
    ratio = out.sum((1, 2, 3)) / (digits.astype(np.float32).sum((1, 2)) / 255)
    assert 0.4 < np.median(ratio) < 1.0  # shrunk by 0.75-1.0 (area 0.56-1)


def test_cluttered_is_digit_plus_six_patches(digits):
    n = len(digits)
    out, p = distort(digits, "tc", seed=0, return_params=True)
    x = digits.astype(np.float32) / 255
    src, crop, place = p["clutter_source"], p["clutter_crop"], p["clutter_position"]
    assert src.shape == (n, 6) and np.all(src != np.arange(n)[:, None])
    expected = np.zeros((n, 60, 60), np.float32)
    for i in range(n):
        c, r = p["position"][i]
        expected[i, r:r + 28, c:c + 28] = x[i]
        for j in range(6):
            (cx, cy), (px, py) = crop[i, j], place[i, j]
            patch = x[src[i, j], cy:cy + 6, cx:cx + 6]
            expected[i, py:py + 6, px:px + 6] = np.maximum(expected[i, py:py + 6, px:px + 6], patch)
    np.testing.assert_array_equal(out[:, 0], expected)
    assert np.all((p["position"] >= 0) & (p["position"] <= 32))
    assert p["position"].std(0).min() > 5
    outside = out[:, 0].copy()
    for i in range(n):
        c, r = p["position"][i]
        outside[i, r:r + 28, c:c + 28] = 0
    assert np.mean(outside.sum((1, 2)) > 0) > 0.9  # clutter is visible


def test_mnist_addition(digits):
    labels = np.arange(len(digits)) % 10
    x, y, pair = mnist_addition(digits, labels, 64, seed=0)
    assert x.shape == (64, 2, 42, 42) and x.dtype == np.float32
    assert y.dtype == np.int64 and np.all(y == labels[pair].sum(1)) and y.max() <= 18
    assert not np.array_equal(x[:, 0], x[:, 1])
    x2, y2, _ = mnist_addition(digits, labels, 64, seed=0)
    assert x2.tobytes() == x.tobytes() and np.array_equal(y, y2)


def test_batches_cover_each_epoch_in_a_new_order():
    x, y = np.arange(10)[:, None] * np.ones((1, 3)), np.arange(10)
    b = batches(x, y, 4, seed=0)
    assert len(b) == 3
    first = [yb for _, yb in b]
    assert [len(v) for v in first] == [4, 4, 2] and sorted(np.concatenate(first)) == list(range(10))
    assert all(np.array_equal(xb[:, 0], yb) for xb, yb in batches(x, y, 4))
    second = np.concatenate([yb for _, yb in b])
    assert not np.array_equal(np.concatenate(first), second)
    again = np.concatenate([yb for _, yb in batches(x, y, 4, seed=0)])
    assert np.array_equal(np.concatenate(first), again)  # reproducible
    assert len(batches(x, y, 4, drop_last=True)) == 2
    assert [yb.tolist() for _, yb in batches(x, y, 5, shuffle=False)] == [[0, 1, 2, 3, 4], [5, 6, 7, 8, 9]]
    with pytest.raises(ValueError):
        batches(x, y[:3], 2)


def test_distortion_figure(digits, tmp_path):
    from minstn.viz import distortion_examples, save_figure
    fig = distortion_examples(digits[:80], seed=0, n=4)
    assert len(fig.axes) == 6 * 4  # originals + five kinds, four columns
    path = save_figure(fig, tmp_path / "sub" / "d.png", dpi=40)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size < 200_000
