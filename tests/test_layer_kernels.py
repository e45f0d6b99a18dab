"""The fast CPU layer kernels (kernels/conv_cpu, pool_cpu, activation_cpu) against the
readable references in kernels/layers.py (im2col + matmul, col2im, the pooling loops),
their Functions by float64 gradcheck, the thread policy, and torch.nn."""
import contextlib
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import minstn as mt
from minstn import nn
from minstn.kernels import activation_cpu, conv_cpu, pool_cpu, threads
from minstn.kernels import layers as K
from minstn.nn import functional as NF
from strategies import assert_close


@contextlib.contextmanager
def small_tasks(task_images=2, chunk_floats=40):
    """Several tasks and several chunks per task, even for tiny batches."""
    saved = conv_cpu.TASK_IMAGES, conv_cpu.CHUNK_FLOATS, pool_cpu.TASK_IMAGES, activation_cpu.BLOCK
    conv_cpu.TASK_IMAGES, conv_cpu.CHUNK_FLOATS, pool_cpu.TASK_IMAGES = task_images, chunk_floats, task_images
    activation_cpu.BLOCK = 7
    try:
        yield
    finally:
        conv_cpu.TASK_IMAGES, conv_cpu.CHUNK_FLOATS, pool_cpu.TASK_IMAGES, activation_cpu.BLOCK = saved


def reference_conv_backward(grad, x, w, stride, padding):
    """The reference Function's backward: one product with the whole batch's columns, col2im."""
    _, cols = K.conv2d_forward(x, w, None, stride, padding)
    O = w.shape[0]
    g = np.ascontiguousarray(grad.transpose(1, 0, 2, 3)).reshape(O, -1)
    gx = K.col2im(w.reshape(O, -1).T @ g, x.shape, w.shape[2:], stride, padding)
    return gx, (g @ cols.T).reshape(w.shape), g.sum(axis=1)


@st.composite
def conv_cases(draw):
    N, C, O = draw(st.integers(1, 5)), draw(st.integers(1, 3)), draw(st.integers(1, 3))
    kh, kw = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    sh, sw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    ph, pw = draw(st.integers(0, 2)), draw(st.integers(0, 2))
    H = draw(st.integers(max(1, kh - 2 * ph), 9))
    W = draw(st.integers(max(1, kw - 2 * pw), 9))
    dtype = draw(st.sampled_from([np.float32, np.float64]))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    x = rng.standard_normal((N, C, H, W)).astype(dtype)
    w = rng.standard_normal((O, C, kh, kw)).astype(dtype)
    b = rng.standard_normal(O).astype(dtype)
    return x, w, b, (sh, sw), (ph, pw), rng, draw(st.booleans())


@settings(deadline=None, max_examples=80)
@given(conv_cases())
def test_fast_conv_matches_reference(case):
    x, w, b, stride, padding, rng, small = case
    with small_tasks() if small else contextlib.nullcontext():
        out = conv_cpu.conv2d_forward(x, w, b, stride, padding)
        ref, _ = K.conv2d_forward(x, w, b, stride, padding)
        assert_close(out, ref, x.dtype, "forward")
        grad = rng.standard_normal(ref.shape).astype(x.dtype)
        got = conv_cpu.conv2d_backward(grad, x, w, stride, padding)
        for name, a, r in zip(("grad_x", "grad_w", "grad_b"), got, reference_conv_backward(grad, x, w, stride, padding)):
            assert_close(a, r, x.dtype, name)
        # the gradients nobody needs are not computed
        gx, gw, gb = conv_cpu.conv2d_backward(grad, x, w, stride, padding, need_input=False, need_bias=False)
        assert gx is None and gb is None
        assert_close(gw, got[1], x.dtype, "grad_w alone")


def test_fast_conv_check_fails_on_a_wrong_kernel(monkeypatch):
    """Negative control: an im2col that drops the last kernel offset is caught."""
    good = conv_cpu._im2col_chunk

    def wrong(x, n0, n1, kh, kw, *rest):
        good(x, n0, n1, kh, kw, *rest)
        rest[-1][-1] = 0.0

    rng = np.random.default_rng(1)
    x, w = rng.standard_normal((2, 2, 6, 6)), rng.standard_normal((3, 2, 3, 3))
    monkeypatch.setattr(conv_cpu, "_im2col_chunk", wrong)
    with pytest.raises(AssertionError):
        assert_close(conv_cpu.conv2d_forward(x, w, None, (1, 1), (0, 0)),
                     K.conv2d_forward(x, w, None, (1, 1), (0, 0))[0], x.dtype)


@st.composite
def pool_cases(draw):
    N, C = draw(st.integers(1, 5)), draw(st.integers(1, 3))
    if draw(st.booleans()):       # the paper's 2x2 / stride 2 (its own unrolled loop)
        kh = kw = sh = sw = 2
    else:
        kh, kw = draw(st.integers(1, 4)), draw(st.integers(1, 4))
        sh, sw = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    H, W = draw(st.integers(kh, 10)), draw(st.integers(kw, 10))
    dtype = draw(st.sampled_from([np.float32, np.float64]))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    kind = draw(st.sampled_from(["normal", "ties", "nan"]))
    x = rng.standard_normal((N, C, H, W))
    if kind == "ties":            # after a ReLU: windows full of zeros
        x = np.maximum(x, 0) * (rng.random(x.shape) < 0.3)
    elif kind == "nan":           # NaN wins; +inf and -inf in one window sum to NaN too
        x[rng.random(x.shape) < 0.1] = np.nan
        x[rng.random(x.shape) < 0.1] = np.inf
        x[rng.random(x.shape) < 0.1] = -np.inf
    return x.astype(dtype), (kh, kw), (sh, sw), rng, draw(st.booleans())


@settings(deadline=None, max_examples=80)
@given(pool_cases())
def test_fast_max_pool_matches_reference(case):
    x, kernel, stride, rng, small = case
    with small_tasks() if small else contextlib.nullcontext():
        out, arg = pool_cpu.max_pool2d_forward(x, kernel, stride)
        ref, ref_arg = K.max_pool2d_forward(x, kernel, stride)
        np.testing.assert_array_equal(out, ref)        # NaN where the reference has NaN
        np.testing.assert_array_equal(arg, ref_arg)
        grad = rng.standard_normal(out.shape).astype(x.dtype)
        dx = pool_cpu.max_pool2d_backward(grad, arg, x.shape, kernel, stride)
        assert_close(dx, K.max_pool2d_backward(grad, ref_arg, x.shape, kernel, stride), x.dtype)


def test_max_pool_with_big_windows_keeps_int32_positions():
    """More than 256 elements per window: the winner's position no longer fits a byte."""
    x = np.random.default_rng(2).standard_normal((2, 1, 20, 19))
    out, arg = pool_cpu.max_pool2d_forward(x, (17, 17), (1, 1))
    assert arg.dtype == np.int32
    ref, ref_arg = K.max_pool2d_forward(x, (17, 17), (1, 1))
    np.testing.assert_array_equal(out, ref)
    np.testing.assert_array_equal(arg, ref_arg)


@settings(deadline=None, max_examples=40)
@given(st.integers(0, 40), st.sampled_from([np.float32, np.float64]), st.integers(0, 2**32 - 1), st.booleans())
def test_fast_relu_matches_reference(size, dtype, seed, small):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((size, 3)).astype(dtype)
    x[rng.random(x.shape) < 0.1] = 0.0
    x[rng.random(x.shape) < 0.05] = np.nan
    x[rng.random(x.shape) < 0.05] = -np.inf
    with small_tasks() if small else contextlib.nullcontext():
        out, mask = activation_cpu.relu_forward(x)
        np.testing.assert_array_equal(out, np.where(np.isnan(x), x, np.maximum(x, 0)))
        np.testing.assert_array_equal(mask, x > 0)
        grad = rng.standard_normal(x.shape).astype(dtype)
        np.testing.assert_array_equal(activation_cpu.relu_backward(grad, mask), np.where(x > 0, grad, 0))


# ---------------------------------------------------------------------------
# Functions: float64 gradcheck on random small shapes (batch 1, odd sizes)
# ---------------------------------------------------------------------------


@settings(deadline=None, max_examples=12)
@given(conv_cases())
def test_conv2d_function_gradcheck(case):
    x, w, b, stride, padding, _, _ = case
    xs = [mt.tensor(a[:2], dtype=np.float64, requires_grad=True) for a in (x,)] + [
        mt.tensor(a, dtype=np.float64, requires_grad=True) for a in (w, b)]
    assert mt.gradcheck(lambda x, w, b: NF.conv2d(x, w, b, stride, padding), xs)


@settings(deadline=None, max_examples=12)
@given(pool_cases())
def test_max_pool_and_relu_functions_gradcheck(case):
    x, kernel, stride, rng, _ = case
    # distinct values away from 0: no ties, no kinks within the finite-difference step
    x = (rng.permutation(x.size).reshape(x.shape) - x.size // 2 + 0.5) * 0.1
    t = mt.tensor(x, dtype=np.float64, requires_grad=True)
    assert mt.gradcheck(lambda t: NF.max_pool2d(t.relu(), kernel, stride), [t])


def test_conv2d_skips_the_input_gradient_of_data():
    """The first conv of a CNN sees data: its backward computes no input gradient."""
    x = np.random.default_rng(3).standard_normal((2, 1, 8, 8)).astype(np.float32)
    conv = nn.Conv2d(1, 2, 3)
    conv(mt.tensor(x)).sum().backward()
    assert conv.weight.grad is not None and conv.bias.grad is not None
    xt = mt.tensor(x, requires_grad=True)
    conv(xt).sum().backward()
    assert xt.grad is not None and xt.grad.shape == x.shape


def test_reference_path_for_other_dtypes():
    """A float16 convolution takes the readable reference (the fast kernels are float32/64)."""
    rng = np.random.default_rng(4)
    x, w = rng.standard_normal((2, 2, 7, 6)), rng.standard_normal((3, 2, 3, 3))
    out16 = NF.conv2d(x.astype(np.float16), w.astype(np.float16), None, 2, 1).data
    assert out16.dtype == np.float16
    np.testing.assert_allclose(out16, NF.conv2d(x, w, None, 2, 1).data, rtol=2e-2, atol=5e-2)


# ---------------------------------------------------------------------------
# threads: the same bytes whatever the thread count
# ---------------------------------------------------------------------------


def test_results_do_not_depend_on_the_thread_count():
    rng = np.random.default_rng(5)
    x = rng.standard_normal((37, 3, 11, 10)).astype(np.float32)
    w = rng.standard_normal((4, 3, 3, 3)).astype(np.float32)
    grad = rng.standard_normal((37, 4, 9, 8)).astype(np.float32)
    before = threads.get_num_threads()
    results = []
    try:
        for n in (1, 2, 3):
            threads.set_num_threads(n)
            with small_tasks(task_images=4, chunk_floats=300):
                out = conv_cpu.conv2d_forward(x, w, None, (1, 1), (0, 0))
                spec_out, spectra = conv_dft.conv2d_dft_forward(x, w, None)
                results.append([out, *conv_cpu.conv2d_backward(grad, x, w, (1, 1), (0, 0)),
                                *pool_cpu.max_pool2d_forward(out, (2, 2), (2, 2)),
                                spec_out, *conv_dft.conv2d_dft_backward(grad, spectra)])
    finally:
        threads.set_num_threads(before)
    for other in results[1:]:
        for a, b in zip(results[0], other):
            assert a is None and b is None or a.tobytes() == b.tobytes()


@contextlib.contextmanager
def worker_threads(n):
    before = threads.get_num_threads()
    threads.set_num_threads(n)
    try:
        yield
    finally:
        threads.set_num_threads(before)


def test_run_tasks_uses_the_workers_and_keeps_task_order():
    import threading
    import time

    def task(t):
        time.sleep(0.01)  # releases the GIL, so the sleeping workers wake and take tasks
        return t * t, threading.current_thread().name
    with worker_threads(3):
        results = threads.run_tasks(task, 12)
    assert [r for r, _ in results] == [t * t for t in range(12)]
    names = {name for _, name in results}
    assert threading.current_thread().name in names and any(n.startswith("minstn-") for n in names)


def test_run_tasks_raises_the_lowest_failing_task_and_recovers():
    def task(t):
        if t in (2, 5):
            raise ValueError(f"task {t}")
        return t
    with worker_threads(2):
        with pytest.raises(ValueError, match="task 2"):
            threads.run_tasks(task, 8)
        assert threads.run_tasks(lambda t: t + 1, 5) == [1, 2, 3, 4, 5]


def test_run_tasks_nested_and_from_two_threads():
    """A task that calls run_tasks, and a second Python thread calling it at the same
    time, run their tasks alone instead of waiting for the busy workers."""
    import threading

    def outer(t):
        return sum(threads.run_tasks(lambda u: 10 * t + u, 3))
    other = []
    with worker_threads(2):
        thread = threading.Thread(target=lambda: other.extend(threads.run_tasks(outer, 40)))
        thread.start()
        mine = threads.run_tasks(outer, 40)
        thread.join()
    assert mine == other == [30 * t + 3 for t in range(40)]


def test_set_num_threads_rejects_zero():
    with pytest.raises(ValueError, match="at least 1"):
        mt.set_num_threads(0)


# ---------------------------------------------------------------------------
# torch.nn given the same weights
# ---------------------------------------------------------------------------


def compare_with_torch(torch, ours, theirs, x, rng, grad_atol):
    """Same weights in both; outputs, input gradient and parameter gradients agree."""
    theirs.load_state_dict({k: torch.from_numpy(v) for k, v in ours.state_dict().items()})
    xm, xt = mt.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    ym, yt = ours(xm), theirs(xt)
    np.testing.assert_allclose(ym.data, yt.detach().numpy(), rtol=1e-4, atol=1e-5)
    upstream = rng.standard_normal(ym.shape).astype(np.float32)
    ym.backward(upstream)
    yt.backward(torch.from_numpy(upstream))
    np.testing.assert_allclose(xm.grad, xt.grad.numpy(), rtol=1e-4, atol=1e-4)
    for (name, p), (_, tp) in zip(ours.named_parameters(), theirs.named_parameters()):
        np.testing.assert_allclose(p.grad, tp.grad.numpy(), rtol=1e-4, atol=grad_atol, err_msg=name)


def test_cnn_layers_match_torch():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(6)
    x = rng.standard_normal((3, 2, 13, 12)).astype(np.float32)
    ours = nn.Sequential(nn.Conv2d(2, 4, 5, stride=2, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Conv2d(4, 3, 2), nn.ReLU())
    theirs = torch.nn.Sequential(torch.nn.Conv2d(2, 4, 5, stride=2, padding=1), torch.nn.ReLU(),
                                 torch.nn.MaxPool2d(2), torch.nn.Conv2d(4, 3, 2), torch.nn.ReLU())
    compare_with_torch(torch, ours, theirs, x, rng, grad_atol=1e-4)


# ---------------------------------------------------------------------------
# no out-of-bounds access: the kernels compiled with NUMBA_BOUNDSCHECK=1
# ---------------------------------------------------------------------------

BOUNDSCHECK_SCRIPT = textwrap.dedent("""
    import numpy as np
    from minstn.kernels import activation_cpu, conv_cpu, pool_cpu
    from minstn.kernels import layers as K
    rng = np.random.default_rng(0)
    conv_cpu.TASK_IMAGES, conv_cpu.CHUNK_FLOATS = 2, 50
    for (N, C, H, W, O, kh, kw, sh, sw, ph, pw) in [(3, 2, 7, 6, 2, 3, 2, 2, 1, 1, 2), (1, 1, 5, 5, 1, 5, 5, 1, 1, 0, 0),
                                                    (4, 3, 9, 4, 2, 2, 4, 3, 2, 2, 0), (2, 1, 1, 1, 1, 3, 3, 1, 1, 1, 1)]:
        x = rng.standard_normal((N, C, H, W)); w = rng.standard_normal((O, C, kh, kw))
        out = conv_cpu.conv2d_forward(x, w, None, (sh, sw), (ph, pw))
        assert np.allclose(out, K.conv2d_forward(x, w, None, (sh, sw), (ph, pw))[0])
        conv_cpu.conv2d_backward(rng.standard_normal(out.shape), x, w, (sh, sw), (ph, pw))
    for (shape, k, s) in [((3, 2, 9, 7), (3, 2), (2, 3)), ((1, 1, 4, 4), (4, 4), (1, 1)), ((2, 3, 5, 8), (2, 2), (2, 2))]:
        x = rng.standard_normal(shape)
        out, arg = pool_cpu.max_pool2d_forward(x, k, s)
        pool_cpu.max_pool2d_backward(rng.standard_normal(out.shape), arg, shape, k, s)
    out, mask = activation_cpu.relu_forward(rng.standard_normal((5, 7)))
    activation_cpu.relu_backward(out, mask)
    from numba import njit            # negative control: the check is really on
    try:
        njit(lambda a: a[np.uintp(a.size)])(np.zeros(3))
    except IndexError:
        print("ok")
""")


def test_new_kernels_stay_in_bounds(tmp_path):
    env = dict(os.environ, NUMBA_BOUNDSCHECK="1", NUMBA_CACHE_DIR=str(tmp_path / "cache"))
    done = subprocess.run([sys.executable, "-c", BOUNDSCHECK_SCRIPT], env=env, capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr[-3000:]


def test_cross_entropy_node_matches_the_composition_and_torch():
    import minstn.functional as F
    rng = np.random.default_rng(7)
    logits, target = rng.standard_normal((6, 4)) * 3, rng.integers(0, 4, 6)
    a, b = mt.tensor(logits, requires_grad=True), mt.tensor(logits, requires_grad=True)
    fused, composed = F.cross_entropy(a, target), F.nll_loss(F.log_softmax(b, dim=1), target)
    (fused * 2.5).backward()
    (composed * 2.5).backward()
    np.testing.assert_allclose(fused.item(), composed.item(), rtol=1e-14)
    np.testing.assert_allclose(a.grad, b.grad, rtol=1e-12, atol=1e-15)
    torch = pytest.importorskip("torch")
    t = torch.tensor(logits, requires_grad=True)
    (torch.nn.functional.cross_entropy(t, torch.from_numpy(target)) * 2.5).backward()
    np.testing.assert_allclose(a.grad, t.grad.numpy(), rtol=1e-10, atol=1e-14)


def test_relu_after_max_pool_is_the_same_function_and_gradient():
    """The CNNs pool before their ReLU (four times fewer elements): same values, same
    gradients, also with ties and windows of non-positive values."""
    rng = np.random.default_rng(8)
    x = np.round(rng.standard_normal((3, 2, 8, 9)), 1)            # many ties
    x[0, 0, :2, :2] = -1.0                                        # a window with no positive value
    a, b = mt.tensor(x, requires_grad=True), mt.tensor(x, requires_grad=True)
    ya, yb = NF.max_pool2d(a.relu(), 2), NF.max_pool2d(b, 2).relu()
    np.testing.assert_array_equal(ya.data, yb.data)
    upstream = rng.standard_normal(ya.shape)
    ya.backward(upstream)
    yb.backward(upstream)
    np.testing.assert_array_equal(a.grad, b.grad)


# ---------------------------------------------------------------------------
# the DFT route (kernels/conv_dft): many channels, big kernels, stride 1
# ---------------------------------------------------------------------------

from minstn.kernels import conv_dft  # noqa: E402


@st.composite
def dft_cases(draw):
    N, C, O = draw(st.integers(1, 4)), draw(st.integers(1, 4)), draw(st.integers(1, 4))
    kh, kw = draw(st.integers(1, 5)), draw(st.integers(1, 5))
    H, W = draw(st.integers(kh, 10)), draw(st.integers(kw, 10))     # odd and even sides
    dtype = draw(st.sampled_from([np.float32, np.float64]))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    return (rng.standard_normal((N, C, H, W)).astype(dtype), rng.standard_normal((O, C, kh, kw)).astype(dtype),
            rng.standard_normal(O).astype(dtype), rng)


@settings(deadline=None, max_examples=60)
@given(dft_cases())
def test_dft_conv_matches_reference(case):
    x, w, b, rng = case
    out, saved = conv_dft.conv2d_dft_forward(x, w, b)
    ref, _ = K.conv2d_forward(x, w, b, (1, 1), (0, 0))
    assert_close(out, ref, x.dtype, "forward")
    grad = rng.standard_normal(ref.shape).astype(x.dtype)
    got = conv_dft.conv2d_dft_backward(grad, saved)
    for name, a, r in zip(("grad_x", "grad_w", "grad_b"), got, reference_conv_backward(grad, x, w, (1, 1), (0, 0))):
        assert_close(a, r, x.dtype, name)
    gx, gw, gb = conv_dft.conv2d_dft_backward(grad, saved, need_input=False, need_bias=False)
    assert gx is None and gb is None
    assert_close(gw, got[1], x.dtype, "grad_w alone")


def test_dft_route_is_taken_where_it_is_cheaper():
    """The CNN's 64 -> 64 7x7 convolution on 17x17 maps goes through the DFT; the first
    convolution (one channel), the localiser's small ones and strided or padded ones use
    im2col (``benchmarks/conv_routes.py`` times both routes on every shape of the models)."""
    assert conv_dft.dft_is_cheaper((256, 64, 17, 17), (64, 64, 7, 7), (1, 1), (0, 0))
    assert conv_dft.dft_is_cheaper((64, 33, 17, 17), (33, 33, 7, 7), (1, 1), (0, 0))     # ST-CNN Multi, addition
    assert not conv_dft.dft_is_cheaper((64, 20, 8, 8), (20, 20, 5, 5), (1, 1), (0, 0))   # ST-CNN localiser
    assert not conv_dft.dft_is_cheaper((256, 1, 42, 42), (64, 1, 9, 9), (1, 1), (0, 0))
    assert not conv_dft.dft_is_cheaper((256, 64, 17, 17), (64, 64, 7, 7), (2, 2), (0, 0))
    assert not conv_dft.dft_is_cheaper((256, 64, 17, 17), (64, 64, 7, 7), (1, 1), (1, 1))


@settings(deadline=None, max_examples=8)
@given(dft_cases())
def test_conv2d_function_gradcheck_on_the_dft_route(case):
    x, w, b, _ = case
    always = lambda x_shape, w_shape, stride, padding: tuple(stride) == (1, 1) and tuple(padding) == (0, 0)
    saved, conv_dft.dft_is_cheaper = conv_dft.dft_is_cheaper, always
    try:
        xs = [mt.tensor(a, dtype=np.float64, requires_grad=True) for a in (x[:2], w, b)]
        assert mt.gradcheck(lambda x, w, b: NF.conv2d(x, w, b), xs)
    finally:
        conv_dft.dft_is_cheaper = saved


def test_dft_check_fails_on_a_wrong_table():
    """Negative control: forgetting that the kept frequencies count twice is caught."""
    rng = np.random.default_rng(9)
    x, w = rng.standard_normal((2, 3, 8, 7)), rng.standard_normal((2, 3, 3, 3))
    right = conv_dft._inverse_tables

    def counted_once(H, W, rows, cols, dtype):
        back_h, back_w = right(H, W, rows, cols, dtype)
        V = W // 2 + 1   # W = 7 is odd: every v > 0 should count twice
        return back_h, back_w / np.where(np.tile(np.arange(V) > 0, 2), 2.0, 1.0)[:, None]
    conv_dft._inverse_tables = counted_once
    try:
        with pytest.raises(AssertionError):
            assert_close(conv_dft.conv2d_dft_forward(x, w, None)[0], K.conv2d_forward(x, w, None, (1, 1), (0, 0))[0],
                         x.dtype)
    finally:
        conv_dft._inverse_tables = right
    assert_close(conv_dft.conv2d_dft_forward(x, w, None)[0], K.conv2d_forward(x, w, None, (1, 1), (0, 0))[0], x.dtype)


def test_dft_route_matches_torch():
    """The CNN's second convolution (64 -> 64, 7x7 on 17x17: the DFT route) against torch.nn.Conv2d."""
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(10)
    x = rng.random((3, 64, 17, 17)).astype(np.float32)
    assert conv_dft.dft_is_cheaper(x.shape, (64, 64, 7, 7), (1, 1), (0, 0))
    ours, theirs = nn.Conv2d(64, 64, 7), torch.nn.Conv2d(64, 64, 7)
    compare_with_torch(torch, ours, theirs, x, rng, grad_atol=1e-3)


from minstn.kernels import linear_cpu  # noqa: E402


@settings(deadline=None, max_examples=60)
@given(st.integers(1, 150), st.integers(1, 40), st.integers(1, 70), st.sampled_from([np.float32, np.float64]),
       st.integers(0, 2**32 - 1), st.booleans(), st.sampled_from([linear_cpu.TASK_MACS, 1, 300, 5000]),
       st.sampled_from([linear_cpu.ALIGN, 1, 4]))
def test_fast_linear_matches_reference(M, features, O, dtype, seed, bias, task_macs, align):
    """Row blocks of 64, and (with small ``TASK_MACS``) blocks cut into pieces along the
    features; the same bytes on 1 and 3 threads."""
    rng = np.random.default_rng(seed)
    x, w = rng.standard_normal((M, features)).astype(dtype), rng.standard_normal((O, features)).astype(dtype)
    b = rng.standard_normal(O).astype(dtype) if bias else None
    g = rng.standard_normal((M, O)).astype(dtype)
    saved = linear_cpu.TASK_MACS, linear_cpu.ALIGN
    before = threads.get_num_threads()
    try:
        linear_cpu.TASK_MACS, linear_cpu.ALIGN = task_macs, align
        runs = []
        for n in (1, 3):
            threads.set_num_threads(n)
            runs.append((linear_cpu.linear_forward(x, w, b), *linear_cpu.linear_backward(g, x, w)))
    finally:
        linear_cpu.TASK_MACS, linear_cpu.ALIGN = saved
        threads.set_num_threads(before)
    out, gx, gw = runs[0]
    assert_close(out, K.linear_forward(x, w, b), dtype, "forward")
    assert_close(gx, g @ w, dtype, "grad_x")
    assert_close(gw, g.T @ x, dtype, "grad_w")
    assert all(a.tobytes() == c.tobytes() for a, c in zip(*runs))


@given(st.integers(0, 10**9), st.integers(1, 9), st.integers(1, 64))
def test_linear_cuts_cover_each_column_once(n, pieces, align):
    cuts = linear_cpu._cuts(n, pieces, align)
    if n == 0:
        assert cuts == []
        return
    assert cuts[0][0] == 0 and cuts[-1][1] == n
    assert all(lo < hi for lo, hi in cuts) and all(a[1] == b[0] for a, b in zip(cuts, cuts[1:]))
    assert len(cuts) <= pieces and all(lo % align == 0 for lo, _ in cuts)


def test_linear_products_are_cut_by_size_only():
    """A batch of 64 is one row block; a big enough product is cut along its columns, a
    small one is not, and a batch of 256 is four row blocks however big the product."""
    big = linear_cpu.TASK_MACS * 3
    assert linear_cpu.pieces_for(big) == 3 and linear_cpu.pieces_for(1) == 1
    assert linear_cpu.pieces_for(big * 100) == linear_cpu.MAX_TASKS
    assert len(linear_cpu._row_tasks(64, 1024, big)) == 3
    assert linear_cpu._row_tasks(64, 1024, big // 3) == [(0, 64, 0, 1024)]
    assert [t[:2] for t in linear_cpu._row_tasks(256, 1024, big)] == [(0, 64), (64, 128), (128, 192), (192, 256)]
    assert [t[:2] for t in linear_cpu._row_tasks(130, 8, 1)] == [(0, 64), (64, 128), (128, 130)]


def test_linear_on_three_dimensional_input_gradcheck():
    x = mt.tensor(np.random.default_rng(11).standard_normal((2, 3, 4)), requires_grad=True)
    lin = nn.Linear(4, 5).double()
    assert mt.gradcheck(lambda x, w, b: NF.linear(x, w, b), [x, lin.weight, lin.bias])
