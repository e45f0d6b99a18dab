"""ST-CNN Multi and 2xST-FCN (minstn.models_extra): shapes, identity start, gradients."""

import numpy as np
import pytest

from minstn import functional as F
from minstn.autograd import Tensor
from minstn.models import count_parameters
from minstn.models_extra import (ParallelSTFCN, STCNNMulti, build_extra_model, st_cnn_multi, transformers_of,
                                 two_st_fcn)


def _x(shape, seed=0):
    return np.random.default_rng(seed).random(shape, dtype=np.float32)


@pytest.mark.parametrize("transform", ["affine", "projective", "tps"])
def test_st_cnn_multi_shapes_and_budget(transform):
    m = st_cnn_multi(28, transform=transform)
    assert isinstance(m, STCNNMulti)
    assert m(Tensor(_x((3, 1, 28, 28)))).shape == (3, 10)
    assert len(transformers_of(m)) == 2
    assert abs(count_parameters(m) - 400_000) < 40_000  # the paper's ~400k budget


def test_st_cnn_multi_second_transformer_acts_on_feature_maps():
    m = st_cnn_multi(42)
    x = Tensor(_x((2, 1, 42, 42)))
    m(x)
    assert m.st.last_grid.shape == (2, 42, 42, 2)
    side = (42 - 8) // 2
    assert m.st2.last_grid.shape == (2, side, side, 2)  # pooled conv1 maps, 17x17
    # identity at initialisation: the second transformer passes the feature maps through
    h = m.conv1(m.st(x))
    np.testing.assert_allclose(m.st2(h).data, h.data, atol=1e-5)


def test_two_st_fcn_shapes_identity_and_gradients():
    m = two_st_fcn()
    assert isinstance(m, ParallelSTFCN) and len(m.sts) == 2
    x = _x((4, 2, 42, 42))
    for st in m.sts:  # both start at the identity transform
        np.testing.assert_allclose(st(Tensor(x)).data, x, atol=1e-5)
    logits = m(Tensor(x))
    assert logits.shape == (4, 19)
    loss = F.cross_entropy(logits, np.array([0, 5, 12, 18]))
    loss.backward()
    for st in m.sts:  # the loss reaches both localisation nets' regression layers
        assert st.regression.weight.grad is not None and np.abs(st.regression.weight.grad).sum() > 0


def test_build_extra_model_names():
    assert build_extra_model("st_cnn_multi", 28).__class__ is STCNNMulti
    assert build_extra_model("2xst-fcn", 42, num_classes=19, in_channels=2).__class__ is ParallelSTFCN
    base = build_extra_model("cnn", 28)
    assert base(Tensor(_x((1, 1, 28, 28)))).shape == (1, 10)
    with pytest.raises(ValueError):
        build_extra_model("nope")
