"""nn.SpatialTransformer: identity at initialisation, gradients into the localiser."""

import numpy as np
import pytest

import minstn as mt
import minstn.functional as F
from minstn import nn


def _localiser(channels=1):
    """A tiny ST-CNN-style localisation net (pool, conv, FC), 4 features out."""
    return nn.Sequential(
        nn.MaxPool2d(2), nn.Conv2d(channels, 2, 3), nn.ReLU(), nn.Flatten(), nn.Linear(2 * 2 * 2, 4), nn.ReLU()
    )


def _images(shape, seed=0, dtype=np.float32):
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


@pytest.mark.parametrize("transform", ["affine", "attention", "projective", "tps"])
def test_identity_at_initialisation(transform):
    st = nn.SpatialTransformer(_localiser(3), transform=transform, in_shape=(3, 8, 8))
    x = _images((2, 3, 8, 8))
    out = st(mt.tensor(x))
    assert out.shape == x.shape and out.dtype == np.float32
    np.testing.assert_allclose(out.data, x, atol=1e-5)  # works on multi-channel maps too
    assert st.regression.weight.data.shape == (st.spec.n_params, 4)
    assert np.all(st.regression.weight.data == 0)


def test_last_theta_and_grid_are_kept():
    st = nn.SpatialTransformer(_localiser(), out_size=(5, 6), features=4)
    out = st(mt.tensor(_images((3, 1, 8, 8))))
    assert out.shape == (3, 1, 5, 6)
    assert st.last_theta.shape == (3, 2, 3)
    np.testing.assert_array_equal(st.last_theta, np.tile([[1, 0, 0], [0, 1, 0]], (3, 1, 1)))
    assert st.last_grid.shape == (3, 5, 6, 2)
    assert not isinstance(st.last_theta, mt.Tensor)


def test_feature_count_needed_and_inferred_without_side_effects():
    with pytest.raises(ValueError, match="features=F"):
        nn.SpatialTransformer(_localiser(), 8)
    loc = nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2), nn.Flatten())
    st = nn.SpatialTransformer(loc, in_shape=(1, 6, 6))
    assert st.features == 2 * 4 * 4
    assert loc.training and int(loc[1].num_batches_tracked.data) == 0  # the dry run changed nothing
    names = [n for n, _ in st.named_parameters()]
    assert names[-2:] == ["regression.weight", "regression.bias"] and names[0] == "localisation.0.weight"


def test_gradients_reach_the_localisation_network():
    mt.manual_seed(0)
    st = nn.SpatialTransformer(_localiser(), 6, features=4)
    x = mt.tensor(_images((2, 1, 8, 8)), requires_grad=True)
    out = st(x)
    (out * out).sum().backward()
    # at the identity the regression layer's weight is zero, so only it and its bias learn first
    assert np.abs(st.regression.bias.grad).sum() > 0
    assert np.abs(st.regression.weight.grad).sum() > 0
    assert np.abs(x.grad).sum() > 0
    # one step later the weight is not zero and the gradient flows on into the localiser
    st.zero_grad()
    st.regression.weight.data[...] = 0.1 * _images(st.regression.weight.shape, seed=1)
    (st(x) * st(x)).sum().backward()
    for name, p in st.localisation.named_parameters():
        assert p.grad is not None and np.abs(p.grad).sum() > 0, name


class TinySTCNN(nn.Module):
    """ST-CNN shape in miniature: spatial transformer, then conv -> pool -> FC classifier."""

    def __init__(self):
        super().__init__()
        self.st = nn.SpatialTransformer(_localiser(), out_size=6, features=4)
        self.classifier = nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(8, 3))

    def forward(self, x):
        return self.classifier(self.st(x))


def test_whole_st_cnn_gradcheck():
    mt.manual_seed(3)
    model = TinySTCNN().double()
    # move away from the identity, where every sample lands exactly on a pixel (a kink of eq. (5))
    model.st.regression.weight.data[...] = 0.1 * _images(model.st.regression.weight.shape, 4, np.float64)
    model.st.regression.bias.data[...] += 0.05 * _images(6, 5, np.float64)
    x = mt.tensor(_images((2, 1, 8, 8), 6, np.float64), requires_grad=True)
    loc_params = list(model.st.localisation.parameters()) + list(model.st.regression.parameters())
    assert mt.gradcheck(lambda x, *ps: model(x), [x, *loc_params], atol=1e-5, rtol=1e-3)


def test_matches_torch_affine_grid_and_grid_sample():
    torch = pytest.importorskip("torch")
    mt.manual_seed(7)
    st = nn.SpatialTransformer(_localiser(2), out_size=(5, 7), features=4)
    st.regression.weight.data[...] = 0.2 * _images(st.regression.weight.shape, 8)
    x = _images((3, 2, 8, 8), 9)
    out = st(mt.tensor(x)).data
    theta = torch.from_numpy(st.last_theta)
    grid = torch.nn.functional.affine_grid(theta, (3, 2, 5, 7), align_corners=False)
    ref = torch.nn.functional.grid_sample(torch.from_numpy(x), grid, align_corners=False)
    np.testing.assert_allclose(out, ref.numpy(), atol=1e-5)


def test_repr_mentions_the_transform():
    text = repr(nn.SpatialTransformer(_localiser(), 6, features=4))
    assert text.startswith("SpatialTransformer(\n  transform='affine', out_size=(6, 6)")
    assert "(regression): Linear(in_features=4, out_features=6, bias=True)" in text


def test_functional_reexports():
    assert F.conv2d is nn.functional.conv2d and F.batch_norm is nn.functional.batch_norm
