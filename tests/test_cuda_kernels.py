"""The CUDA backend against the numba CPU backend (run under NUMBA_ENABLE_CUDASIM=1 in CI):

    NUMBA_ENABLE_CUDASIM=1 python -m pytest -m cuda tests/test_cuda_kernels.py
"""
import numpy as np
import pytest
from hypothesis import given, settings, HealthCheck

pytestmark = pytest.mark.cuda

from strategies import assert_close, run_backend, sampler_cases  # noqa: E402


@pytest.fixture(scope="module")
def kernels():
    pytest.importorskip("numba.cuda")
    try:
        from minstn.kernels import cpu, cuda
    except (ImportError, RuntimeError) as exc:
        pytest.skip(f"cuda backend unavailable: {exc}")
    return cpu, cuda


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                 HealthCheck.function_scoped_fixture])
@given(case=sampler_cases(max_n=2, max_side=4))
def test_cuda_agrees_with_numba(kernels, case):
    cpu, cuda = kernels
    want = run_backend(cpu, case)
    got = run_backend(cuda, case, sample_at=want["grid"])   # one grid: see run_backend
    for key in want:
        assert_close(got[key], want[key], case["dtype"], f"cuda {key} {case['opts']}")


def test_cuda_backward_is_deterministic(kernels):
    _, cuda = kernels
    rng = np.random.default_rng(0)
    u = rng.standard_normal((2, 3, 4, 4)).astype(np.float32)
    grid = rng.uniform(-0.3, 0.3, (2, 5, 5, 2)).astype(np.float32)   # many hits per pixel
    go = rng.standard_normal((2, 3, 5, 5)).astype(np.float32)
    a = cuda.grid_sample_backward(go, u, grid, "bilinear", "zeros", False)
    b = cuda.grid_sample_backward(go, u, grid, "bilinear", "zeros", False)
    assert a[0].tobytes() == b[0].tobytes() and a[1].tobytes() == b[1].tobytes()


def test_cuda_backend_through_the_switch(kernels):
    import minstn as mt
    from minstn import backend
    from minstn.sampling import affine_grid, grid_sample
    theta = mt.tensor(np.array([[[0.9, 0.2, 0.1], [-0.1, 1.1, 0.0]]]), requires_grad=True,
                      dtype=np.float64)
    u = mt.tensor(np.random.default_rng(1).standard_normal((1, 2, 3, 4)), requires_grad=True,
                  dtype=np.float64)
    with backend.use_backend("cuda"):
        out = grid_sample(u, affine_grid(theta, (1, 2, 2, 3)), padding_mode="reflection")
        out.sum().backward()
    cuda_theta_grad, cuda_u_grad = theta.grad, u.grad
    theta.grad = u.grad = None
    with backend.use_backend("numba"):
        ref = grid_sample(u, affine_grid(theta, (1, 2, 2, 3)), padding_mode="reflection")
        ref.sum().backward()
    np.testing.assert_allclose(out.data, ref.data, atol=1e-12)
    np.testing.assert_allclose(cuda_theta_grad, theta.grad, atol=1e-12)
    np.testing.assert_allclose(cuda_u_grad, u.grad, atol=1e-12)
