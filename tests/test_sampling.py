"""The autograd layer: AffineGrid / GridSample Functions, validation, gradcheck, torch."""
import zlib

import numpy as np
import pytest

import minstn as mt
from minstn import backend
from minstn.sampling import affine_grid, grid_sample
from strategies import MODES, PADDINGS


def _off_kink_grid(rng, shape, H, W, padding, align_corners):
    """Grid whose pixel coordinates stay away from integers and from clamp points,
    so that central differences see a smooth function (reflection pre-images included)."""
    def coords(size, n):
        p = rng.integers(0, max(size - 1, 1), n) + rng.uniform(0.15, 0.85, n)   # inside, off-integer
        if padding == "zeros":
            p = rng.integers(-2, size + 1, n) + rng.uniform(0.15, 0.85, n)     # across the edges
        elif padding == "border":
            far = rng.random(n) < 0.25                                          # clamped: flat
            p = np.where(far, rng.choice([-1.6, size + 0.4], n), p)
        else:                    # a pre-image of p under reflection: p, mirrored low or high
            lo2, hi2 = (0.0, 2.0 * (size - 1)) if align_corners else (-1.0, 2.0 * size - 1)
            k = rng.integers(0, 3, n)
            p = np.where(k == 1, lo2 - p, np.where(k == 2, hi2 - p, p))
        if align_corners:
            return 2.0 * p / (size - 1) - 1.0
        return (2.0 * p + 1.0) / size - 1.0
    n = int(np.prod(shape))
    return np.stack([coords(W, n), coords(H, n)], -1).reshape(shape + (2,))


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("padding", PADDINGS)
@pytest.mark.parametrize("align_corners", [True, False])
def test_gradcheck_grid_sample(mode, padding, align_corners):
    rng = np.random.default_rng(zlib.crc32(f"{mode}-{padding}-{align_corners}".encode()))
    N, C, H, W, Ho, Wo = 2, 2, 4, 5, 3, 3
    u = mt.tensor(rng.standard_normal((N, C, H, W)), requires_grad=True, dtype=np.float64)
    g = _off_kink_grid(rng, (N, Ho, Wo), H, W, padding, align_corners)
    grid = mt.tensor(g, requires_grad=(mode == "bilinear"), dtype=np.float64)
    fill = 0.5 if padding == "zeros" else 0.0
    fn = lambda u, grid: grid_sample(u, grid, mode, padding, align_corners, fill_value=fill)
    assert mt.gradcheck(fn, [u, grid])


@pytest.mark.parametrize("align_corners", [True, False])
def test_gradcheck_affine_grid(align_corners):
    theta = mt.tensor(np.random.default_rng(0).standard_normal((2, 2, 3)), requires_grad=True,
                      dtype=np.float64)
    assert mt.gradcheck(lambda t: affine_grid(t, (2, 1, 3, 4), align_corners), [theta])


def test_gradcheck_spatial_transformer_chain_on_reference():
    rng = np.random.default_rng(5)
    theta = mt.tensor(np.array([[[0.8, 0.3, 0.1], [-0.2, 0.9, 0.05]]]), requires_grad=True,
                      dtype=np.float64)
    u = mt.tensor(rng.standard_normal((1, 2, 5, 6)), requires_grad=True, dtype=np.float64)
    with backend.use_backend("reference"):
        assert mt.gradcheck(lambda t, u: grid_sample(u, affine_grid(t, (1, 2, 4, 3))), [theta, u])


def test_gradcheck_catches_a_wrong_gradient():
    """Negative control: a kernel with a wrong grid gradient must fail gradcheck."""
    from minstn.kernels import numpy_backend

    class Broken:
        def __getattr__(self, name):
            return getattr(numpy_backend, name)

        @staticmethod
        def grid_sample_backward(*args, **kw):
            gi, gg = numpy_backend.grid_sample_backward(*args, **kw)
            return gi, None if gg is None else gg * 1.1

    rng = np.random.default_rng(0)
    u = mt.tensor(rng.standard_normal((1, 1, 4, 4)), dtype=np.float64)
    grid = mt.tensor(_off_kink_grid(rng, (1, 2, 2), 4, 4, "zeros", False), requires_grad=True,
                     dtype=np.float64)
    original = backend.kernels
    backend.kernels = lambda name=None: Broken()
    try:
        with pytest.raises(mt.GradcheckError):
            mt.gradcheck(lambda u, g: grid_sample(u, g), [u, grid])
    finally:
        backend.kernels = original


def test_backward_uses_the_forward_backend_and_switch_restores():
    assert backend.get_backend() == "numba"
    u = mt.tensor(np.ones((1, 1, 2, 2)), requires_grad=True, dtype=np.float64)
    grid = mt.tensor(np.zeros((1, 1, 1, 2)), requires_grad=True, dtype=np.float64)
    with backend.use_backend("reference"):
        assert backend.get_backend() == "reference"
        out = grid_sample(u, grid)
    assert backend.get_backend() == "numba"
    assert out.grad_fn is not None
    out.sum().backward()
    np.testing.assert_allclose(u.grad, 0.25)
    with pytest.raises(ValueError, match="reference"):
        backend.set_backend("tpu")


def test_arrays_are_accepted_and_dtype_kept():
    for dt in (np.float32, np.float64):
        theta = np.tile(np.array([[1.0, 0, 0], [0, 1.0, 0]], dtype=dt), (2, 1, 1))
        grid = affine_grid(theta, (2, 3, 4, 5))
        assert grid.dtype == dt and grid.shape == (2, 4, 5, 2)
        u = np.random.default_rng(0).standard_normal((2, 3, 4, 5)).astype(dt)
        out = grid_sample(u, grid, align_corners=False)
        assert out.dtype == dt
        np.testing.assert_allclose(out.data, u, atol=1e-6)


@pytest.mark.parametrize("call, match", [
    (lambda: affine_grid(np.zeros((2, 3, 3)), (2, 1, 3, 3)), "theta"),
    (lambda: affine_grid(np.zeros((2, 2, 3)), (2, 1, 3)), "size"),
    (lambda: affine_grid(np.zeros((2, 2, 3)), (2, 1, 3.0, 3)), "size"),
    (lambda: affine_grid(np.zeros((2, 2, 3)), (3, 1, 3, 3)), "batch"),
    (lambda: affine_grid(np.zeros((2, 2, 3), dtype=np.int64), (2, 1, 3, 3)), "float32 or float64"),
    (lambda: grid_sample(np.zeros((2, 3, 3)), np.zeros((2, 3, 3, 2))), "input"),
    (lambda: grid_sample(np.zeros((2, 1, 3, 3)), np.zeros((2, 3, 3, 3))), "grid"),
    (lambda: grid_sample(np.zeros((2, 1, 3, 3)), np.zeros((1, 3, 3, 2))), "batch"),
    (lambda: grid_sample(np.zeros((2, 1, 3, 3), dtype=np.int32), np.zeros((2, 3, 3, 2))), "float32 or float64"),
    (lambda: grid_sample(np.zeros((2, 1, 3, 3), dtype=bool), np.zeros((2, 3, 3, 2))), "float32 or float64"),
    (lambda: grid_sample(np.zeros((2, 1, 3, 3)), np.zeros((2, 3, 3, 2)), mode="bicubic"), "bilinear"),
    (lambda: grid_sample(np.zeros((2, 1, 3, 3)), np.zeros((2, 3, 3, 2)), padding_mode="wrap"), "reflection"),
    (lambda: grid_sample(np.zeros((2, 1, 3, 3), np.float32), np.zeros((2, 3, 3, 2))), "same dtype"),
])
def test_bad_arguments_raise_value_error(call, match):
    with pytest.raises(ValueError, match=match):
        call()


# ------------------------------------------------------------ vs PyTorch ----
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("padding", PADDINGS)
@pytest.mark.parametrize("align_corners", [True, False])
@pytest.mark.parametrize("name", ["numba", "numpy"])
def test_matches_torch(mode, padding, align_corners, name):
    torch = pytest.importorskip("torch")
    import torch.nn.functional as TF
    rng = np.random.default_rng(7)
    N, C, H, W, Ho, Wo = 2, 3, 5, 6, 4, 7
    theta = rng.standard_normal((N, 2, 3)) * 1.3
    u = rng.standard_normal((N, C, H, W))
    go = rng.standard_normal((N, C, Ho, Wo))
    tt = torch.tensor(theta, requires_grad=True)
    tu = torch.tensor(u, requires_grad=True)
    tout = TF.grid_sample(tu, TF.affine_grid(tt, (N, C, Ho, Wo), align_corners=align_corners),
                          mode=mode, padding_mode=padding, align_corners=align_corners)
    tout.backward(torch.tensor(go))
    mth = mt.tensor(theta, requires_grad=True, dtype=np.float64)
    mu = mt.tensor(u, requires_grad=True, dtype=np.float64)
    with backend.use_backend(name):
        out = grid_sample(mu, affine_grid(mth, (N, C, Ho, Wo), align_corners), mode, padding,
                          align_corners)
        out.backward(go)
    np.testing.assert_allclose(out.data, tout.detach().numpy(), atol=1e-10)
    np.testing.assert_allclose(mu.grad, tu.grad.numpy(), atol=1e-10)
    np.testing.assert_allclose(mth.grad, tt.grad.numpy(), atol=1e-9)


@pytest.mark.parametrize("padding", PADDINGS)
def test_grid_gradient_matches_torch_float32(padding):
    torch = pytest.importorskip("torch")
    import torch.nn.functional as TF
    rng = np.random.default_rng(8)
    u = rng.standard_normal((2, 4, 6, 5)).astype(np.float32)
    g = rng.uniform(-1.4, 1.4, (2, 3, 4, 2)).astype(np.float32)
    go = rng.standard_normal((2, 4, 3, 4)).astype(np.float32)
    tu, tg = torch.tensor(u, requires_grad=True), torch.tensor(g, requires_grad=True)
    TF.grid_sample(tu, tg, padding_mode=padding, align_corners=False).backward(torch.tensor(go))
    mu, mg = mt.tensor(u, requires_grad=True), mt.tensor(g, requires_grad=True)
    out = grid_sample(mu, mg, padding_mode=padding)
    out.backward(go)
    np.testing.assert_allclose(mg.grad, tg.grad.numpy(), atol=1e-4)
    np.testing.assert_allclose(mu.grad, tu.grad.numpy(), atol=1e-5)
