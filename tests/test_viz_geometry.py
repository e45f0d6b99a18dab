"""The geometry figures of ``minstn.viz.geometry`` render to real, non-blank PNGs under Agg."""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pytest
from matplotlib.figure import Figure
from matplotlib.image import imread

import minstn as mt
from minstn.viz import geometry


def _digit(H=16, W=16):
    img = np.zeros((H, W))
    img[3:13, 7:9] = 1.0
    img[3:5, 5:9] = 0.7
    return img


def _identity_grid(H, W):
    xs = (2 * np.arange(W) + 1) / W - 1
    ys = (2 * np.arange(H) + 1) / H - 1
    x, y = np.meshgrid(xs, ys)
    return np.stack([x, y], -1)


def _rotated_grid(H, W, deg=30.0, s=0.8):
    a = np.deg2rad(deg)
    A = s * np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
    return _identity_grid(H, W) @ A.T


def _check_png(fig, path):
    assert isinstance(fig, Figure)
    fig.savefig(path, dpi=60)
    assert path.stat().st_size > 1000
    pixels = imread(path)[..., :3]
    assert pixels.ndim == 3 and pixels.shape[0] > 50 and pixels.shape[1] > 50
    # Content: many distinct colours, not a blank canvas.
    assert pixels.std() > 0.05
    assert len(np.unique(pixels.reshape(-1, 3).round(2), axis=0)) > 5


def test_to_pixels_matches_both_conventions():
    g = np.array([[-1.0, -1.0], [1.0, 1.0], [0.0, 0.0]])
    ix, iy = geometry.to_pixels(g, 4, 8, align_corners=False)
    assert np.allclose(ix, [-0.5, 7.5, 3.5]) and np.allclose(iy, [-0.5, 3.5, 1.5])
    ix, iy = geometry.to_pixels(g, 4, 8, align_corners=True)
    assert np.allclose(ix, [0, 7, 3.5]) and np.allclose(iy, [0, 3, 1.5])
    # The identity grid lands exactly on the pixel centres.
    ix, iy = geometry.to_pixels(_identity_grid(5, 7), 5, 7)
    assert np.allclose(ix, np.arange(7)[None, :]) and np.allclose(iy, np.arange(5)[:, None])


def test_grid_overlay(tmp_path):
    img = _digit()
    fig = geometry.grid_overlay(img, _rotated_grid(16, 16)[None], output=img[None, None], step=2)
    assert len(fig.axes) == 2
    _check_png(fig, tmp_path / "overlay.png")
    # Tensors are accepted too, and a grid that leaves the image widens the view.
    fig = geometry.grid_overlay(mt.tensor(img[None, None]), mt.tensor(2.0 * _identity_grid(8, 8)))
    left, right = fig.axes[0].get_xlim()
    assert left < -0.5 - 4 and right > 15.5 + 4
    _check_png(fig, tmp_path / "overlay_out.png")


def test_grid_overlay_rejects_bad_shapes():
    with pytest.raises(ValueError, match="single-channel"):
        geometry.grid_overlay(np.zeros((2, 3, 4, 4)), _identity_grid(4, 4))
    with pytest.raises(ValueError, match="grid"):
        geometry.grid_overlay(np.zeros((4, 4)), np.zeros((4, 4, 3)))


def test_before_after(tmp_path):
    rng = np.random.default_rng(0)
    before = rng.random((3, 1, 12, 12))
    fig = geometry.before_after(before, [before[:, :, 2:10, 2:10], before], titles=["a", "b", "c"],
                                labels=[1, 2, 3])
    assert len(fig.axes) == 9
    _check_png(fig, tmp_path / "before_after.png")


def test_vector_field(tmp_path):
    img = _digit()
    vectors = np.zeros((16, 16, 2))
    vectors[..., 0] = -img                # arrows pointing left where the ink is
    fig = geometry.vector_field(img, vectors)
    ax = fig.axes[0]
    quiver = [c for c in ax.collections if c.__class__.__name__ == "Quiver"][0]
    assert quiver.N == int((img > 0).sum())   # zero vectors are not drawn
    assert np.all(quiver.U < 0)
    _check_png(fig, tmp_path / "field.png")
    fig = geometry.vector_field(img, vectors[::2, ::2], grid=_identity_grid(16, 16)[::2, ::2])
    _check_png(fig, tmp_path / "field_grid.png")
    with pytest.raises(ValueError, match="match the image"):
        geometry.vector_field(img, vectors[::2, ::2])


def test_affine_gallery(tmp_path):
    thetas = [np.eye(2, 3), np.array([[0.5, 0, 0.2], [0, 0.5, 0]]), np.array([[1, 0.5, 0], [0, 1, 0]])]
    fig = geometry.affine_gallery(thetas, titles=["id", "zoom", "shear"])
    assert len(fig.axes) == 3
    _check_png(fig, tmp_path / "gallery.png")


def test_draw_graph(tmp_path):
    x = mt.tensor(np.ones((2, 3)), requires_grad=True, dtype=np.float64, name="x")
    w = mt.tensor(np.full((3, 1), 0.5), requires_grad=True, dtype=np.float64, name="w")
    h = x @ w
    loss = (h * h).sum()
    fig = geometry.draw_graph(loss, names={"h": h}, title="graph")
    texts = [t.get_text() for t in fig.axes[0].texts]
    joined = "\n".join(texts)
    for expected in ("SumBackward", "MulBackward", "MatMulBackward", "[h]", "x\n(2, 3)", "w\n(3, 1)", "x2"):
        assert expected in joined, (expected, texts)
    _check_png(fig, tmp_path / "graph.png")


def test_exported_from_viz_package():
    import minstn.viz as viz

    for name in ("grid_overlay", "before_after", "vector_field", "affine_gallery", "draw_graph"):
        assert getattr(viz, name) is getattr(geometry, name)
