"""The kernel backends (reference, numpy, numba) against each other, on plain arrays."""
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from hypothesis import given, settings, HealthCheck

from minstn.kernels import cpu, numpy_backend, pixel, reference
from strategies import MODES, PADDINGS, assert_close, run_backend, sampler_cases

BACKENDS = {"reference": reference, "numpy": numpy_backend, "numba": cpu}


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(sampler_cases())
def test_backends_agree(case):
    """The grid, output, grad_input, grad_grid and grad_theta agree across every CPU backend
    (the samplers compared on the reference's grid: see ``run_backend``)."""
    ref = run_backend(reference, case)
    results = {name: run_backend(BACKENDS[name], case, sample_at=ref["grid"]) for name in ("numpy", "numba")}
    for name in ("numpy", "numba"):
        for key, value in results[name].items():
            assert_close(value, ref[key], case["dtype"], f"{name} {key} {case['opts']}")


def _identity_column_first_row(column, padding_mode):
    """Identity theta on a one-pixel-wide column, align_corners=False, grad_out = 1: the
    first row's pixel coordinate ((y + 1) * H - 1) / 2, and each backend's y-gradient there."""
    u = np.array(column).reshape(1, 1, len(column), 1)
    theta = np.array([[[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]])
    grid = reference.affine_grid_forward(theta, u.shape, False)
    iy = ((grid[0, 0, 0, 1] + 1) * len(column) - 1) / 2
    grads = {name: k.grid_sample_backward(np.ones_like(u), u, grid, "bilinear", padding_mode, False)[1]
             for name, k in BACKENDS.items()}
    return iy, {name: gg[0, 0, 0, 1] for name, gg in grads.items()}


def test_a_hair_inside_a_mirror_stays_inside():
    """Reflection folds coordinates exactly in every backend, the reference included.

    Identity theta on a 7-pixel column, align_corners=False: the first row's pixel
    coordinate is ((-6/7 + 1) * 7 - 1) / 2 = 1.1e-16, a hair inside the clamp at 0. The
    fold |x - low| mod 2*span keeps it there (the clamp's slope is 1, so the y-gradient is
    (U_1 - U_0) * H / 2 * grad_out). The fold low + span - |t - span|, equal on paper,
    rounds it to 0, where the slope is 0: the negative control."""
    iy, grads = _identity_column_first_row([0.3, -0.1, 0.6, 0.1, -0.5, 0.4, 1.3], "reflection")
    assert 0 < iy < 1e-15
    for name, grad in grads.items():
        assert grad == pytest.approx((-0.1 - 0.3) * 3.5, rel=1e-12), name


def test_a_hair_below_an_integer_takes_the_floor_taps():
    """A pixel coordinate 1.1e-16 below 0 has taps -1 (outside, zero padding) and 0 in
    every backend: the y-gradient is (U_0 - 0) * H / 2 * grad_out. Identity theta on a
    5-pixel column, align_corners=False: ((-4/5 + 1) * 5 - 1) / 2 = -1.1e-16. Testing
    the taps by x - m instead of floor(x) rounds -1.1e-16 - 1 to -1.0 and also counts
    pixel 1 as a right-hand tap: the negative control."""
    iy, grads = _identity_column_first_row([0.3, -0.1, 0.6, 0.1, -0.5], "zeros")
    assert -1e-15 < iy < 0
    for name, grad in grads.items():
        assert grad == pytest.approx(0.3 * 2.5, rel=1e-12), name


def test_integer_coordinates_share_the_right_hand_derivative():
    """At exact integer pixel coordinates every backend gives the right-hand derivative."""
    u = np.array([[[[0.0, 1.0, 4.0, 9.0]]]])               # U_m = m^2 along x
    grid = np.zeros((1, 1, 1, 2))
    grid[..., 0] = 2 * 1 / 3 - 1                              # ix = 1 with align_corners=True
    go = np.ones((1, 1, 1, 1))
    for name, k in BACKENDS.items():
        _, gg = k.grid_sample_backward(go, u, grid, "bilinear", "zeros", True)
        # d ix / d x = (W - 1) / 2 = 1.5; right-hand slope U_2 - U_1 = 3
        assert gg[0, 0, 0, 0] == pytest.approx(3 * 1.5, abs=1e-12), name


@pytest.mark.parametrize("name", list(BACKENDS))
@pytest.mark.parametrize("align_corners", [True, False])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_identity_reproduces_input(name, align_corners, dtype):
    k = BACKENDS[name]
    u = np.random.default_rng(0).standard_normal((2, 3, 5, 7)).astype(dtype)
    theta = np.tile(np.array([[1.0, 0, 0], [0, 1.0, 0]], dtype=dtype), (2, 1, 1))
    grid = k.affine_grid_forward(theta, u.shape, align_corners)
    for padding in PADDINGS:
        out = k.grid_sample_forward(u, grid, "bilinear", padding, align_corners)
        np.testing.assert_allclose(out, u, rtol=0, atol=1e-6 if dtype == np.float32 else 1e-12)


@pytest.mark.parametrize("name", list(BACKENDS))
def test_nonfinite_and_huge_grid_values_read_outside(name):
    k = BACKENDS[name]
    u = np.random.default_rng(1).standard_normal((1, 2, 3, 4))
    bad = [np.nan, np.inf, -np.inf, 1e30, -1e30, 1e308]
    grid = np.zeros((1, 1, len(bad), 2))
    grid[0, 0, :, 0] = bad
    go = np.ones((1, 2, 1, len(bad)))
    for mode in MODES:
        for padding in PADDINGS:
            for ac in (True, False):
                out = k.grid_sample_forward(u, grid, mode, padding, ac, fill_value=0.5)
                gi, gg = k.grid_sample_backward(go, u, grid, mode, padding, ac, fill_value=0.5)
                assert np.isfinite(out).all() and np.isfinite(gi).all() and np.isfinite(gg).all()
                if padding == "zeros":
                    np.testing.assert_allclose(out[..., :3], 0.5)     # NaN, +-inf: fill
                    np.testing.assert_allclose(out[..., 3:], 0.5)     # far outside: fill
                else:
                    np.testing.assert_allclose(out[..., :3], 0.0)     # non-finite: outside
                np.testing.assert_array_equal(gg[..., :3, :], 0.0)


@pytest.mark.parametrize("name", list(BACKENDS))
def test_empty_batch_and_one_pixel_images(name):
    k = BACKENDS[name]
    for size in [(0, 2, 3, 3), (2, 1, 1, 1)]:
        theta = np.tile(np.array([[0.5, 0.1, 0.2], [0.0, 1.0, -0.3]]), (size[0], 1, 1))
        grid = k.affine_grid_forward(theta, size, False)
        assert grid.shape == (size[0], size[2], size[3], 2)
        u = np.ones((size[0], size[1], 1, 1))
        for padding in PADDINGS:
            out = k.grid_sample_forward(u, grid, "bilinear", padding, False)
            gi, gg = k.grid_sample_backward(np.ones_like(out), u, grid, "bilinear", padding, False)
            assert out.shape == size and gi.shape == u.shape and gg.shape == grid.shape
            assert k.affine_grid_backward(gg, size, False).shape == (size[0], 2, 3)


def test_need_flags_skip_work():
    u = np.random.default_rng(2).standard_normal((2, 2, 4, 4))
    grid = np.random.default_rng(3).uniform(-1.2, 1.2, (2, 3, 3, 2))
    go = np.ones((2, 2, 3, 3))
    for k in BACKENDS.values():
        gi, gg = k.grid_sample_backward(go, u, grid, "bilinear", "zeros", False, need_grid_grad=False)
        assert gg is None and gi is not None
        gi2, gg2 = k.grid_sample_backward(go, u, grid, "bilinear", "zeros", False, need_input_grad=False)
        assert gi2 is None and gg2 is not None


def test_numba_chunks_and_parallel_runs_agree_with_numpy(monkeypatch):
    """Images of several CHUNKs of locations (the last one partial), split into runs
    that start in the middle of an image, on the parallel launchers (forced by
    SERIAL_WORK = 0 and a thread count of 3, whatever the machine has), with
    non-finite grid values: the numba kernels match the NumPy backend (float64)."""
    monkeypatch.setattr(cpu, "SERIAL_WORK", 0)
    monkeypatch.setattr(cpu.numba, "get_num_threads", lambda: 3)
    rng = np.random.default_rng(4)
    N, C, H, W, Ho, Wo = 3, 2, 9, 11, 13, 23         # 299 locations: 2 chunks + 43
    assert Ho * Wo % cpu.CHUNK and Ho * Wo > 2 * cpu.CHUNK
    u = rng.standard_normal((N, C, H, W))
    grid = rng.uniform(-1.3, 1.3, (N, Ho, Wo, 2))
    grid[1, 0, :5, 0] = [np.nan, np.inf, -np.inf, 1e30, -1e30]
    go = rng.standard_normal((N, C, Ho, Wo))
    for mode in MODES:
        for padding in PADDINGS:
            for ac in (True, False):
                opts = (mode, padding, ac, 0.25)
                np.testing.assert_allclose(cpu.grid_sample_forward(u, grid, *opts),
                                           numpy_backend.grid_sample_forward(u, grid, *opts),
                                           rtol=0, atol=1e-12, err_msg=str(opts))
                want = numpy_backend.grid_sample_backward(go, u, grid, *opts)
                for need_input_grad in (True, False):
                    got = cpu.grid_sample_backward(go, u, grid, *opts, need_input_grad=need_input_grad)
                    np.testing.assert_allclose(got[1], want[1], rtol=0, atol=1e-12, err_msg=str(opts))
                    if need_input_grad:
                        np.testing.assert_allclose(got[0], want[0], rtol=0, atol=1e-12,
                                                   err_msg=str(opts))


def test_pixel_functions_run_as_plain_python():
    assert pixel.unnormalize(1.0, 5, True) == (4.0, 2.0)
    assert pixel.unnormalize(-1.0, 4, False) == (-0.5, 2.0)
    assert pixel.nearest_tap(2.5) == 2 and pixel.nearest_tap(3.5) == 4 and pixel.nearest_tap(-0.5) == 0
    # reflection over [-0.5, 3.5] (W = 4, align_corners=False): -1 -> 0, 4.5 -> 2.5
    assert pixel.reflect_coordinate(-1.0, -1.0, 7.0) == (0.0, -1.0)
    assert pixel.reflect_coordinate(4.5, -1.0, 7.0) == (2.5, -1.0)
    assert pixel.source_index(float("nan"), 4, pixel.BORDER, True) == (pixel.OUTSIDE, 0.0)


def test_tap_code_agrees_with_the_integer_taps():
    """The CPU kernels classify footprints with floats (``pixel.tap_code`` of
    ``pixel.bilinear_weights``), the CUDA kernels and the edge paths with ints
    (``bilinear_taps``, ``taps_inside``): both must agree, for
    every padding's coordinates, including the sentinel OUTSIDE and exact integers."""
    rng = np.random.default_rng(5)
    H, W = 5, 7
    coords = np.concatenate([rng.uniform(-3, 9, 400), np.arange(-3.0, 9.5, 0.5), [pixel.OUTSIDE]])
    for ix in coords:
        for iy in rng.choice(coords, 6):
            fx, wx0, wx1 = pixel.bilinear_weights(float(ix))
            fy, wy0, wy1 = pixel.bilinear_weights(float(iy))
            x0, y0, *weights = pixel.bilinear_corner(float(ix), float(iy))
            assert (x0, y0) == (fx, fy) and weights == [wx0, wx1, wy0, wy1]
            code = pixel.tap_code(fx, fy, H, W)
            if all(pixel.taps_inside(x0, y0, H, W)):
                assert code == y0 * W + x0
            elif not any(pixel.taps_inside(x0, y0, H, W)):
                assert code == pixel.ALL_OUTSIDE
            else:
                assert code == pixel.PARTLY_OUTSIDE


def test_numba_kernels_under_boundscheck(tmp_path):
    """Run the numba kernels with NUMBA_BOUNDSCHECK=1 (set before anything compiles)."""
    code = textwrap.dedent("""
        import numpy as np
        from minstn.kernels import cpu
        rng = np.random.default_rng(0)
        u = rng.standard_normal((2, 2, 3, 2))
        vals = [np.nan, np.inf, -np.inf, 1e30, -1e30, 1e308, -1.0, 1.0, 0.0, 1.5, -1.5, -0.999, 0.999]
        # a grid of special values, and one of 299 locations per image (several chunks)
        big = rng.uniform(-1.3, 1.3, size=(2, 13, 23, 2))
        big[0, 0, :len(vals), 0] = vals
        for grid in (rng.choice(vals, size=(2, 4, 5, 2)), big):
            go = rng.standard_normal((2, 2) + grid.shape[1:3])
            for mode in ("bilinear", "nearest"):
                for pad in ("zeros", "border", "reflection"):
                    for ac in (True, False):
                        out = cpu.grid_sample_forward(u, grid, mode, pad, ac, 0.5)
                        gi, gg = cpu.grid_sample_backward(go, u, grid, mode, pad, ac, 0.5)
                        cpu.grid_sample_backward(go, u, grid, mode, pad, ac, 0.5, need_input_grad=False)
                        assert np.isfinite(out).all() and np.isfinite(gi).all() and np.isfinite(gg).all()
        th = rng.standard_normal((2, 2, 3))
        cpu.affine_grid_backward(cpu.affine_grid_forward(th, (2, 1, 3, 1), True), (2, 1, 3, 1), True)
        print("ok")
    """)
    env = dict(os.environ, NUMBA_BOUNDSCHECK="1", NUMBA_CACHE_DIR=str(tmp_path))
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env["PYTHONPATH"] = root + os.pathsep + env.get("PYTHONPATH", "")
    res = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         timeout=600)
    assert res.returncode == 0 and "ok" in res.stdout, res.stderr[-3000:]


def test_editing_pixel_py_invalidates_the_numba_cache(tmp_path):
    """cpu.py's kernels inline pixel.py, but Numba's cache only watches cpu.py's time
    stamp: importing cpu.py must bump it when pixel.py is newer."""
    import os

    from minstn.kernels.cpu import _refresh_cache_stamp

    kernel, math = tmp_path / "cpu.py", tmp_path / "pixel.py"
    kernel.write_text("# kernels")
    math.write_text("# math")
    os.utime(kernel, (1_000_000, 1_000_000))
    os.utime(math, (2_000_000, 2_000_000))  # pixel.py edited after cpu.py
    _refresh_cache_stamp(str(kernel), str(math))
    assert os.path.getmtime(kernel) > os.path.getmtime(math)
    os.utime(math, (1_000, 1_000))  # pixel.py older: cpu.py left alone
    before = os.path.getmtime(kernel)
    _refresh_cache_stamp(str(kernel), str(math))
    assert os.path.getmtime(kernel) == before
