"""Layers: gradients (gradcheck), values (direct loops), and agreement with PyTorch."""

import numpy as np
import pytest

import minstn as mt
import minstn.functional as F
from minstn import nn


def _gradcheck_module(module, x, **kw):
    """Check d out / d input and d out / d every parameter of ``module`` (in float64)."""
    module.double()
    x = mt.tensor(x, dtype=np.float64, requires_grad=True)
    params = list(module.parameters())
    return mt.gradcheck(lambda x, *ps: module(x), [x, *params], **kw)


def _distinct(shape, seed=0):
    """Values spaced 0.1 apart in random order: no ties, so max pooling is smooth."""
    rng = np.random.default_rng(seed)
    return (rng.permutation(int(np.prod(shape))) * 0.1).reshape(shape)


# ---------------------------------------------------------------------------
# gradient checks
# ---------------------------------------------------------------------------


def test_linear_gradcheck():
    assert _gradcheck_module(nn.Linear(4, 3), np.random.default_rng(0).standard_normal((2, 4)))


def test_linear_without_bias_gradcheck():
    assert _gradcheck_module(nn.Linear(4, 3, bias=False), np.random.default_rng(1).standard_normal((2, 4)))


@pytest.mark.parametrize("stride,padding,bias", [(1, 0, True), (2, 1, True), (1, 1, False), ((2, 1), (0, 2), True)])
def test_conv2d_gradcheck(stride, padding, bias):
    mt.manual_seed(0)
    conv = nn.Conv2d(2, 3, (3, 2), stride=stride, padding=padding, bias=bias)
    assert _gradcheck_module(conv, np.random.default_rng(2).standard_normal((2, 2, 5, 4)))


@pytest.mark.parametrize("kernel,stride,size", [(2, None, (4, 4)), (2, None, (5, 7)), (3, 2, (7, 6)), (3, 1, (4, 5))])
def test_max_pool2d_gradcheck(kernel, stride, size):
    x = _distinct((2, 2, *size))
    assert _gradcheck_module(nn.MaxPool2d(kernel, stride), x)


@pytest.mark.parametrize("kernel,stride,size", [(2, None, (5, 4)), (3, 2, (7, 6)), (2, 1, (3, 4))])
def test_avg_pool2d_gradcheck(kernel, stride, size):
    x = np.random.default_rng(3).standard_normal((2, 2, *size))
    assert _gradcheck_module(nn.AvgPool2d(kernel, stride), x)


@pytest.mark.parametrize("training", [True, False])
def test_batch_norm2d_gradcheck(training):
    bn = nn.BatchNorm2d(3)
    bn.weight.data[:] = [0.5, 1.5, -1.0]
    bn.bias.data[:] = [0.1, -0.2, 0.3]
    bn.running_mean.data[:] = [0.2, -0.1, 0.0]
    bn.running_var.data[:] = [1.5, 0.5, 2.0]
    bn.train(training)
    assert _gradcheck_module(bn, np.random.default_rng(4).standard_normal((3, 3, 2, 3)))


def test_dropout_eval_gradcheck_and_identity():
    drop = nn.Dropout(0.5).eval()
    x = np.random.default_rng(5).standard_normal((3, 4))
    assert np.array_equal(drop(mt.tensor(x)).data, x)
    assert _gradcheck_module(drop, x)


def test_gradcheck_catches_a_wrong_conv_backward(monkeypatch):
    """Negative control: break the fast kernel's col2im and gradcheck must notice."""
    from minstn.kernels import conv_cpu

    good_chunk = conv_cpu._col2im_chunk

    def wrong_chunk(dcols, n0, n1, *rest):
        good_chunk(dcols, n0, n1, *rest)
        rest[-1][n0:n1] *= 1.01

    x = np.random.default_rng(6).standard_normal((1, 1, 3, 3))
    monkeypatch.setattr(conv_cpu, "_col2im_chunk", wrong_chunk)
    with pytest.raises(mt.GradcheckError):
        _gradcheck_module(nn.Conv2d(1, 1, 2), x)


# ---------------------------------------------------------------------------
# values against direct loops
# ---------------------------------------------------------------------------


def _conv_loop(x, w, b, stride, padding):
    N, C, H, W = x.shape
    O, _, kh, kw = w.shape
    (sh, sw), (ph, pw) = stride, padding
    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    Ho, Wo = (H + 2 * ph - kh) // sh + 1, (W + 2 * pw - kw) // sw + 1
    out = np.zeros((N, O, Ho, Wo))
    for n in range(N):
        for o in range(O):
            for i in range(Ho):
                for j in range(Wo):
                    patch = xp[n, :, i * sh : i * sh + kh, j * sw : j * sw + kw]
                    out[n, o, i, j] = np.sum(patch * w[o]) + (0 if b is None else b[o])
    return out


def _pool_loop(x, k, s, reduce):
    N, C, H, W = x.shape
    Ho, Wo = (H - k) // s + 1, (W - k) // s + 1
    out = np.zeros((N, C, Ho, Wo))
    for i in range(Ho):
        for j in range(Wo):
            out[:, :, i, j] = reduce(x[:, :, i * s : i * s + k, j * s : j * s + k], axis=(2, 3))
    return out


@pytest.mark.parametrize("stride,padding,bias", [(1, 0, True), (2, 1, False), ((1, 2), (2, 0), True)])
def test_conv2d_matches_loop(stride, padding, bias):
    mt.manual_seed(1)
    conv = nn.Conv2d(3, 4, (3, 3), stride=stride, padding=padding, bias=bias)
    x = np.random.default_rng(7).standard_normal((2, 3, 7, 6)).astype(np.float32)
    out = conv(mt.tensor(x))
    assert out.dtype == np.float32
    ref = _conv_loop(x, conv.weight.data, None if conv.bias is None else conv.bias.data, conv.stride, conv.padding)
    np.testing.assert_allclose(out.data, ref, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("k,s,size", [(2, 2, (6, 6)), (2, 2, (7, 5)), (3, 2, (8, 7)), (3, 1, (5, 5))])
def test_pools_match_loop(k, s, size):
    x = np.random.default_rng(8).standard_normal((2, 3, *size)).astype(np.float32)
    np.testing.assert_allclose(nn.MaxPool2d(k, s)(mt.tensor(x)).data, _pool_loop(x, k, s, np.max), rtol=1e-6)
    np.testing.assert_allclose(nn.AvgPool2d(k, s)(mt.tensor(x)).data, _pool_loop(x, k, s, np.mean), rtol=1e-5, atol=1e-6)


def test_linear_matches_loop():
    lin = nn.Linear(5, 3)
    x = np.random.default_rng(9).standard_normal((4, 5)).astype(np.float32)
    ref = np.array([[sum(x[n, i] * lin.weight.data[o, i] for i in range(5)) + lin.bias.data[o] for o in range(3)] for n in range(4)])
    np.testing.assert_allclose(lin(mt.tensor(x)).data, ref, rtol=1e-5, atol=1e-6)


def test_max_pool_ties_send_gradient_to_first_max():
    x = mt.tensor(np.zeros((1, 1, 2, 4), np.float32), requires_grad=True)
    F.max_pool2d(x, 2).sum().backward()
    assert x.grad.tolist() == [[[[1, 0, 1, 0], [0, 0, 0, 0]]]]


def test_overlapping_max_pool_accumulates_gradient():
    x = mt.tensor(np.array([[[[0, 0, 0], [0, 5, 0], [0, 0, 0]]]], np.float32), requires_grad=True)
    F.max_pool2d(x, 2, 1).sum().backward()
    assert x.grad[0, 0, 1, 1] == 4  # the centre wins all four windows


def test_batch_norm_train_then_eval_statistics():
    bn = nn.BatchNorm2d(2, momentum=0.1)
    x = np.random.default_rng(10).standard_normal((4, 2, 3, 3)).astype(np.float32) * 3 + 1
    y = bn(mt.tensor(x)).data
    np.testing.assert_allclose(y.mean(axis=(0, 2, 3)), 0, atol=1e-5)
    np.testing.assert_allclose(y.var(axis=(0, 2, 3)), 1, atol=1e-3)
    m = x.mean(axis=(0, 2, 3))
    v = x.var(axis=(0, 2, 3), ddof=1)  # running var uses the unbiased estimate
    np.testing.assert_allclose(bn.running_mean.data, 0.1 * m, rtol=1e-5)
    np.testing.assert_allclose(bn.running_var.data, 0.9 + 0.1 * v, rtol=1e-5)
    assert int(bn.num_batches_tracked.data) == 1
    bn.eval()
    y = bn(mt.tensor(x)).data
    expected = (x - bn.running_mean.data[None, :, None, None]) / np.sqrt(bn.running_var.data[None, :, None, None] + 1e-5)
    np.testing.assert_allclose(y, expected, rtol=1e-5, atol=1e-6)
    assert int(bn.num_batches_tracked.data) == 1


def test_default_init_is_pytorch_range_and_seeded():
    mt.manual_seed(3)
    a = nn.Conv2d(2, 8, 3)
    mt.manual_seed(3)
    b = nn.Conv2d(2, 8, 3)
    assert np.array_equal(a.weight.data, b.weight.data) and np.array_equal(a.bias.data, b.bias.data)
    bound = 1 / np.sqrt(2 * 3 * 3)
    assert a.weight.dtype == np.float32 and np.abs(a.weight.data).max() <= bound
    assert np.abs(a.weight.data).max() > 0.8 * bound  # really uses the whole range
    lin = nn.Linear(100, 50)
    assert np.abs(lin.weight.data).max() <= 0.1 and np.abs(lin.bias.data).max() <= 0.1


def test_flatten_sequential_identity():
    model = nn.Sequential(nn.Identity(), nn.Flatten(), nn.Tanh(), nn.ReLU())
    x = np.random.default_rng(11).standard_normal((2, 3, 2, 2)).astype(np.float32)
    np.testing.assert_allclose(model(mt.tensor(x)).data, np.maximum(np.tanh(x.reshape(2, -1)), 0), rtol=1e-6)
    assert len(model) == 4 and isinstance(model[1], nn.Flatten)


def test_conv_reports_channel_mismatch():
    with pytest.raises(ValueError, match=r"\(N, 3, H, W\)"):
        nn.Conv2d(3, 2, 3)(mt.tensor(np.zeros((1, 2, 5, 5), np.float32)))


# ---------------------------------------------------------------------------
# agreement with PyTorch (same weights through a state_dict round trip)
# ---------------------------------------------------------------------------


def _to_torch_state(module):
    torch = pytest.importorskip("torch")
    return {k: torch.from_numpy(v) for k, v in module.state_dict().items()}


def _compare_with_torch(ours, theirs, x, train=True, rtol=1e-4, atol=1e-5):
    """Forward values and gradients (input and every parameter) must agree."""
    torch = pytest.importorskip("torch")
    theirs.load_state_dict(_to_torch_state(ours))
    ours.train(train)
    theirs.train(train)
    g = np.random.default_rng(12).standard_normal
    xt = torch.tensor(x, requires_grad=True)
    xm = mt.tensor(x, requires_grad=True)
    yt, ym = theirs(xt), ours(xm)
    np.testing.assert_allclose(ym.data, yt.detach().numpy(), rtol=rtol, atol=atol)
    upstream = g(ym.shape).astype(np.float32)
    ym.backward(upstream)
    yt.backward(torch.from_numpy(upstream))
    np.testing.assert_allclose(xm.grad, xt.grad.numpy(), rtol=rtol, atol=atol)
    for (name, p), (tname, tp) in zip(ours.named_parameters(), theirs.named_parameters()):
        assert name == tname
        np.testing.assert_allclose(p.grad, tp.grad.numpy(), rtol=rtol, atol=atol, err_msg=name)
    # and back: torch's state into ours (buffers included) reproduces torch's state exactly
    ours.load_state_dict({k: v.detach().numpy() for k, v in theirs.state_dict().items()})
    for k, v in theirs.state_dict().items():
        np.testing.assert_allclose(ours.state_dict()[k], v.numpy(), err_msg=k)


def test_conv2d_matches_torch():
    torch = pytest.importorskip("torch")
    ours = nn.Conv2d(3, 5, (3, 4), stride=(2, 1), padding=(1, 2))
    theirs = torch.nn.Conv2d(3, 5, (3, 4), stride=(2, 1), padding=(1, 2))
    _compare_with_torch(ours, theirs, np.random.default_rng(13).standard_normal((4, 3, 9, 8)).astype(np.float32))


def test_linear_and_pools_match_torch():
    torch = pytest.importorskip("torch")
    x = np.random.default_rng(14).standard_normal((3, 2, 9, 7)).astype(np.float32)
    _compare_with_torch(nn.Linear(7, 4), torch.nn.Linear(7, 4), x)
    _compare_with_torch(nn.MaxPool2d(2), torch.nn.MaxPool2d(2), x)
    _compare_with_torch(nn.MaxPool2d(3, 2), torch.nn.MaxPool2d(3, 2), x)
    _compare_with_torch(nn.AvgPool2d(3, 2), torch.nn.AvgPool2d(3, 2), x)
    # ReLU'd input: pools full of tied zeros route gradients like PyTorch
    relu_x = np.maximum(x, 0)
    _compare_with_torch(nn.MaxPool2d(2), torch.nn.MaxPool2d(2), relu_x)


@pytest.mark.parametrize("train", [True, False])
def test_batch_norm2d_matches_torch(train):
    torch = pytest.importorskip("torch")
    ours, theirs = nn.BatchNorm2d(3), torch.nn.BatchNorm2d(3)
    ours.weight.data[:] = [1.0, 2.0, 0.5]
    ours.bias.data[:] = [0.0, -1.0, 0.3]
    ours.running_mean.data[:] = [0.1, 0.2, -0.3]
    ours.running_var.data[:] = [0.9, 1.1, 2.0]
    x = np.random.default_rng(15).standard_normal((4, 3, 5, 5)).astype(np.float32) * 2 + 1
    _compare_with_torch(ours, theirs, x, train=train)
