"""Edge shapes: empty batches (N = 0) through every transform, forward and backward;
1-D logits in the losses; sizes and control grids that are not integers."""

import numpy as np
import pytest

import minstn as mt
import minstn.functional as F
from minstn import nn
from minstn.transforms import TRANSFORMS, base_grid, normaliser, tps_spec


@pytest.mark.parametrize("transform", sorted(TRANSFORMS))
@pytest.mark.parametrize("backend", ["reference", "numpy", "numba"])
def test_spatial_transformer_on_an_empty_batch(transform, backend):
    mt.manual_seed(0)
    st = nn.SpatialTransformer(nn.Sequential(nn.Flatten(), nn.Linear(36, 5)), out_size=(4, 3),
                               transform=transform, features=5)
    x = mt.tensor(np.zeros((0, 1, 6, 6), np.float32), requires_grad=True)
    with mt.use_backend(backend):
        out = st(x)
        out.sum().backward()
    assert out.shape == (0, 1, 4, 3) and x.grad.shape == (0, 1, 6, 6)
    assert st.last_grid.shape == (0, 4, 3, 2) and st.last_theta.shape[0] == 0
    for p in st.parameters():  # nothing to learn from no samples: zero gradients, not None
        assert p.grad.shape == p.shape and not p.grad.any()


GRIDS = {
    "affine": (lambda p: F.affine_grid(p, (0, 2, 4, 3)), (0, 2, 3)),
    "attention": (lambda p: F.attention_grid(p, (0, 2, 4, 3)), (0, 3)),
    "projective": (lambda p: F.projective_grid(p, (0, 2, 4, 3)), (0, 8)),
    "tps": (lambda p: F.tps_grid(p, (0, 2, 4, 3)), (0, 16, 2)),
    "tps 3x2": (lambda p: F.tps_grid(p, (0, 2, 4, 3), grid_shape=(3, 2)), (0, 6, 2)),
}


@pytest.mark.parametrize("name", sorted(GRIDS))
def test_grid_generators_and_sampler_on_an_empty_batch(name):
    make, shape = GRIDS[name]
    params = mt.tensor(np.zeros(shape), requires_grad=True, dtype=np.float64)
    u = mt.tensor(np.zeros((0, 2, 5, 5)), requires_grad=True, dtype=np.float64)
    grid = make(params)
    v = F.grid_sample(u, grid)
    v.sum().backward()
    assert grid.shape == (0, 4, 3, 2) and v.shape == (0, 2, 4, 3)
    assert params.grad.shape == shape and u.grad.shape == u.shape


@pytest.mark.parametrize("loss", [F.cross_entropy, lambda x, t: F.nll_loss(F.log_softmax(x), t)])
def test_one_dimensional_logits_are_a_clear_error(loss):
    with pytest.raises(ValueError, match=r"logits must have shape \(N, classes\), got \(10,\)"):
        loss(mt.tensor(np.zeros(10)), np.array([3]))


NOT_INTEGERS = {
    "tps grid_shape (2.5, 3)": lambda: F.tps_grid(np.zeros((1, 6, 2)), (1, 1, 4, 4), grid_shape=(2.5, 3)),
    "tps_spec (2.5, 3)": lambda: tps_spec((2.5, 3)),
    "tps grid_shape (4,)": lambda: tps_spec((4,)),
    "attention size 4.5": lambda: F.attention_grid(np.zeros((1, 3)), (1, 1, 4.5, 4)),
    "projective size 4.5": lambda: F.projective_grid(np.zeros((1, 8)), (1, 1, 4, 4.5)),
    "tps size 4.5": lambda: F.tps_grid(np.zeros((1, 16, 2)), (1, 1, 4.5, 4)),
    "base_grid": lambda: base_grid((4.5, 4)),
    "normaliser": lambda: normaliser((27.5, 28)),
}


@pytest.mark.parametrize("case", sorted(NOT_INTEGERS))
def test_sizes_that_are_not_integers_are_refused_not_truncated(case):
    with pytest.raises((TypeError, ValueError), match="int|rows, cols"):
        NOT_INTEGERS[case]()
