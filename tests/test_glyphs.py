"""Glyph digits: an MNIST-shaped data set generated offline from matplotlib's fonts."""
import numpy as np
import pytest

from minstn.data import load_glyphs
from minstn.data.glyphs import FONTS, STROKES, glyph_prototypes


@pytest.fixture(scope="module")
def train():
    return load_glyphs("train", n=2000, seed=0)


@pytest.fixture(scope="module")
def test():
    return load_glyphs("test", n=500, seed=0)


def test_prototypes():
    p = glyph_prototypes()
    assert p.shape == (len(FONTS), 10, len(STROKES), 48, 48) and p.dtype == np.float32
    assert p.min() >= 0 and p.max() <= 1
    ink = p.sum(axis=(-1, -2))
    assert np.all(ink[:, :, 1:] > ink[:, :, :-1])  # dilation thickens every stroke
    assert np.all(ink[:, 1] < ink[:, 8])  # a "1" has less ink than an "8", in every font


def test_shapes_dtypes_balance(train):
    x, y = train
    assert x.shape == (2000, 28, 28) and x.dtype == np.uint8
    assert y.shape == (2000,) and y.dtype == np.int64
    assert np.bincount(y, minlength=10).tolist() == [200] * 10
    assert x.max() == 255 and 0.05 < x.mean() / 255 < 0.3  # MNIST: 0.13


def test_mnist_like_normalisation(train):
    """The digit fits a 20x20 box (one pixel of slack for anti-aliasing), mass at centre."""
    x = train[0].astype(np.float64) / 255
    ink = x > 0.25
    rows, cols = ink.any(2), ink.any(1)
    h = 28 - rows[:, ::-1].argmax(1) - rows.argmax(1)
    w = 28 - cols[:, ::-1].argmax(1) - cols.argmax(1)
    assert np.all(np.maximum(h, w) <= 22) and np.median(np.maximum(h, w)) >= 19
    g = np.arange(28) - 13.5
    m = x.sum((1, 2))
    cx, cy = (x.sum(1) * g).sum(1) / m, (x.sum(2) * g).sum(1) / m
    assert np.abs(cx).max() < 0.6 and np.abs(cy).max() < 0.6


def test_deterministic_and_seeded(train):
    x, y = load_glyphs("train", n=2000, seed=0)
    assert x.tobytes() == train[0].tobytes() and np.array_equal(y, train[1])
    assert load_glyphs("train", n=200, seed=1)[0].tobytes() != x[:200].tobytes()


def test_splits_disjoint(train, test):
    xt, xv = train[0], test[0]
    assert not set(map(bytes, xt)) & set(map(bytes, xv))
    a = xt.reshape(len(xt), -1).astype(np.float32)
    b = xv.reshape(len(xv), -1).astype(np.float32)
    nearest = np.sqrt(np.maximum((b ** 2).sum(1)[:, None] - 2 * b @ a.T + (a ** 2).sum(1)[None], 0).min(1))
    assert np.median(nearest) > 255  # no test digit is a near-copy of a training digit


def test_learnable_but_not_trivial(train, test):
    """1-nearest-neighbour: far above chance, yet the variations matter (not 100%)."""
    (xt, yt), (xv, yv) = train, test
    a = xt.reshape(len(xt), -1).astype(np.float32)
    b = xv.reshape(len(xv), -1).astype(np.float32)
    d = (b ** 2).sum(1)[:, None] - 2 * b @ a.T + (a ** 2).sum(1)[None]
    acc = (yt[d.argmin(1)] == yv).mean()
    assert 0.85 < acc < 0.995, acc


def test_bad_split():
    with pytest.raises(ValueError, match="split"):
        load_glyphs("validation", n=10)
