"""Shared Hypothesis strategies and helpers: the sampler tests, the fuzzers of file readers."""
import numpy as np
from hypothesis import strategies as st

MODES = ("bilinear", "nearest")
PADDINGS = ("zeros", "border", "reflection")


def tol(dtype, *arrays):
    """Absolute tolerance: 1e-10 (float64) or 1e-5 (float32), scaled by the magnitude."""
    finite = [np.abs(a[np.isfinite(a)]) for a in arrays if a is not None]
    scale = max([1.0] + [float(f.max()) for f in finite if f.size])
    return (1e-10 if dtype == np.float64 else 1e-5) * scale


def assert_close(a, b, dtype, what=""):
    if a is None or b is None:
        assert a is None and b is None, what
        return
    assert a.shape == b.shape and a.dtype == b.dtype, (what, a.shape, b.shape, a.dtype, b.dtype)
    np.testing.assert_allclose(a, b, rtol=0, atol=tol(dtype, a, b), err_msg=what)


@st.composite
def sampler_cases(draw, max_n=3, max_side=7, allow_empty=True):
    """A random (input, theta-or-grid, options) case: big rotations, scales, integer grids."""
    N = draw(st.integers(0 if allow_empty else 1, max_n))
    C = draw(st.integers(1, 3))
    H, W, Ho, Wo = (draw(st.integers(1, max_side)) for _ in range(4))
    dtype = draw(st.sampled_from([np.float32, np.float64]))
    opts = dict(mode=draw(st.sampled_from(MODES)), padding_mode=draw(st.sampled_from(PADDINGS)),
                align_corners=draw(st.booleans()), fill_value=draw(st.sampled_from([0.0, 0.75])))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    inp = rng.standard_normal((N, C, H, W)).astype(dtype)
    kind = draw(st.sampled_from(["random", "rotation", "identity", "integers", "nonfinite"]))
    theta = np.zeros((N, 2, 3))
    grid = None
    if kind == "random":          # scales up to 3: many samples fall outside
        theta = rng.standard_normal((N, 2, 3)) * rng.uniform(0.1, 3.0)
    elif kind == "rotation":      # large rotations, some translation
        a = rng.uniform(-np.pi, np.pi, N)
        s = rng.uniform(0.5, 2.0, N)
        theta[:, 0, 0], theta[:, 0, 1] = s * np.cos(a), -s * np.sin(a)
        theta[:, 1, 0], theta[:, 1, 1] = s * np.sin(a), s * np.cos(a)
        theta[:, :, 2] = rng.uniform(-1, 1, (N, 2))
    elif kind == "identity":
        theta[:, 0, 0] = theta[:, 1, 1] = 1.0
    else:                         # grid values that land on integer / half-integer pixels
        grid = rng.choice([-1.5, -1.0, -0.5, 0.0, 0.5, 1.0, 1.5], size=(N, Ho, Wo, 2))
        if kind == "nonfinite" and grid.size:
            bad = rng.random(grid.shape) < 0.3
            grid[bad] = rng.choice([np.nan, np.inf, -np.inf, 1e30, -1e30, 1e300], size=bad.sum())
    theta = theta.astype(dtype)
    grad_out = rng.standard_normal((N, C, Ho, Wo)).astype(dtype)
    if grid is not None:
        with np.errstate(over="ignore"):          # 1e300 -> inf in float32 is intended
            grid = grid.astype(dtype)
    return dict(input=inp, theta=theta, grid=grid,
                size=(N, C, Ho, Wo), grad_out=grad_out, dtype=dtype, opts=opts)


def run_backend(kern, case, sample_at=None):
    """Forward + backward of affine_grid -> grid_sample on one kernel module.

    ``sample_at``: sample at this grid instead of the module's own ``affine_grid`` (which
    is still returned as ``grid``). Two backends' grids may differ in the last bit, and
    where a sample lands exactly on a pixel a one-bit difference picks the other one-sided
    derivative (both right: bilinear interpolation has a kink there), so comparing the
    sampler on one shared grid tests it without that ambiguity."""
    size, opts = case["size"], case["opts"]
    ac = opts["align_corners"]
    grid = own = case["grid"]
    use_theta = grid is None
    if use_theta:
        own = kern.affine_grid_forward(case["theta"], size, ac)
        grid = own if sample_at is None else sample_at
    out = kern.grid_sample_forward(case["input"], grid, **opts)
    gi, gg = kern.grid_sample_backward(case["grad_out"], case["input"], grid, **opts)
    gt = kern.affine_grid_backward(gg, size, ac) if use_theta else None
    return dict(grid=own, output=out, grad_input=gi, grad_grid=gg, grad_theta=gt)


@st.composite
def damaged_bytes(draw, data: bytes, tail: int = 0):
    """``(damaged, at, value)``: ``data`` cut to its first ``at`` bytes (``value`` None), or
    with byte ``at`` replaced by another ``value`` (half of the time in the last ``tail``
    bytes, when given: a zip's directory, where the lengths and offsets live)."""
    if draw(st.booleans()):
        at = draw(st.integers(0, len(data) - 1))
        return data[:at], at, None
    lowest = len(data) - tail if tail and draw(st.booleans()) else 0
    at = draw(st.integers(lowest, len(data) - 1))
    value = draw(st.integers(0, 255).filter(lambda v: v != data[at]))
    return data[:at] + bytes([value]) + data[at + 1:], at, value
