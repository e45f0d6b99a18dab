"""Every op: values match NumPy and float64 gradients pass gradcheck (Hypothesis)."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import minstn as mt
import minstn.functional as F

SETTINGS = settings(max_examples=25, deadline=None)

small_shape = st.lists(st.integers(1, 4), min_size=0, max_size=3).map(tuple)
seeds = st.integers(0, 2**31 - 1)


def leaf(array):
    return mt.tensor(np.asarray(array, dtype=np.float64), requires_grad=True)


def away_from_zero(rng, shape, margin=0.05):
    """Random values with |x| >= margin, so kinks (relu, abs) are not straddled."""
    x = rng.uniform(margin, 1.5, size=shape)
    return x * rng.choice([-1.0, 1.0], size=shape)


@st.composite
def broadcast_pair(draw):
    """Two shapes that broadcast: drop leading dims and set some dims to 1."""
    shape = draw(st.lists(st.integers(1, 4), min_size=1, max_size=3))
    other = list(shape)
    for i in range(len(other)):
        if draw(st.booleans()):
            other[i] = 1
    other = other[draw(st.integers(0, len(other))) :]
    if draw(st.booleans()):
        return tuple(shape), tuple(other)
    return tuple(other), tuple(shape)


@pytest.mark.parametrize(
    "name, op, reference",
    [
        ("add", lambda a, b: a + b, np.add),
        ("sub", lambda a, b: a - b, np.subtract),
        ("mul", lambda a, b: a * b, np.multiply),
        ("div", lambda a, b: a / b, np.divide),
        ("pow", lambda a, b: a**b, np.power),
    ],
)
@SETTINGS
@given(shapes=broadcast_pair(), seed=seeds)
def test_binary_ops_broadcast(name, op, reference, shapes, seed):
    rng = np.random.default_rng(seed)
    a = rng.uniform(0.5, 2.0, size=shapes[0])  # positive: valid for div and pow
    b = rng.uniform(0.5, 2.0, size=shapes[1])
    x, y = leaf(a), leaf(b)
    out = op(x, y)
    np.testing.assert_allclose(out.data, reference(a, b), rtol=1e-12)
    assert mt.gradcheck(op, [x, y])
    out.sum().backward()
    assert x.grad.shape == a.shape and y.grad.shape == b.shape


@pytest.mark.parametrize(
    "op, reference, domain",
    [
        (lambda t: -t, np.negative, "any"),
        (lambda t: t.exp(), np.exp, "any"),
        (lambda t: t.log(), np.log, "positive"),
        (lambda t: t.sqrt(), np.sqrt, "positive"),
        (lambda t: t.sin(), np.sin, "any"),
        (lambda t: t.cos(), np.cos, "any"),
        (lambda t: t.abs(), np.abs, "any"),
        (lambda t: t.relu(), lambda a: np.maximum(a, 0), "any"),
        (lambda t: F.relu(t), lambda a: np.maximum(a, 0), "any"),
        (lambda t: t.tanh(), np.tanh, "any"),
        (lambda t: t.sigmoid(), lambda a: 1 / (1 + np.exp(-a)), "any"),
        (lambda t: t**3, lambda a: a**3, "any"),
        (lambda t: 2.0**t, lambda a: 2.0**a, "any"),
        (lambda t: 1.0 / t, lambda a: 1.0 / a, "any"),
        (lambda t: t.clamp(-0.5, 0.5), lambda a: np.clip(a, -0.5, 0.5), "any"),
    ],
)
@SETTINGS
@given(shape=small_shape, seed=seeds)
def test_unary_ops(op, reference, domain, shape, seed):
    rng = np.random.default_rng(seed)
    a = away_from_zero(rng, shape)
    if domain == "positive":
        a = np.abs(a)
    if np.any(np.abs(np.abs(a) - 0.5) < 1e-3):  # clamp's kinks
        a = a + 1e-2
    x = leaf(a)
    np.testing.assert_allclose(op(x).data, reference(a), rtol=1e-12)
    assert mt.gradcheck(op, [x])


@st.composite
def matmul_shapes(draw):
    n, k, m = (draw(st.integers(1, 4)) for _ in range(3))
    kind = draw(st.sampled_from(["mm", "batched", "broadcast", "vec_left", "vec_right", "dot"]))
    if kind == "mm":
        return (n, k), (k, m)
    if kind == "batched":
        b = draw(st.integers(1, 3))
        return (b, n, k), (b, k, m)
    if kind == "broadcast":
        b = draw(st.integers(1, 3))
        return (b, n, k), (k, m)
    if kind == "vec_left":
        return (k,), (2, k, m)
    if kind == "vec_right":
        return (2, n, k), (k,)
    return (k,), (k,)


@SETTINGS
@given(shapes=matmul_shapes(), seed=seeds)
def test_matmul(shapes, seed):
    rng = np.random.default_rng(seed)
    a, b = rng.standard_normal(shapes[0]), rng.standard_normal(shapes[1])
    x, y = leaf(a), leaf(b)
    np.testing.assert_allclose((x @ y).data, a @ b, rtol=1e-12, atol=1e-12)
    assert mt.gradcheck(lambda p, q: p @ q, [x, y])


@st.composite
def reduce_case(draw):
    shape = tuple(draw(st.lists(st.integers(1, 4), min_size=1, max_size=3)))
    dim = draw(st.one_of(st.none(), st.integers(-len(shape), len(shape) - 1),
                         st.lists(st.integers(0, len(shape) - 1), min_size=1, max_size=len(shape), unique=True).map(tuple)))
    return shape, dim, draw(st.booleans())


@pytest.mark.parametrize("name", ["sum", "mean", "amax"])
@SETTINGS
@given(case=reduce_case(), seed=seeds)
def test_reductions(name, case, seed):
    shape, dim, keepdim = case
    rng = np.random.default_rng(seed)
    a = rng.permutation(np.arange(np.prod(shape), dtype=np.float64)).reshape(shape) / 7.0  # no ties for max
    x = leaf(a)
    axis = dim if dim is None or isinstance(dim, tuple) else dim
    expected = {"sum": np.sum, "mean": np.mean, "amax": np.max}[name](a, axis=axis, keepdims=keepdim)
    fn = lambda t: getattr(t, name)(dim=dim, keepdim=keepdim)  # noqa: E731
    np.testing.assert_allclose(fn(x).data, expected, rtol=1e-12)
    assert mt.gradcheck(fn, [x])


def test_max_splits_gradient_between_ties():
    x = leaf([1.0, 3.0, 3.0])
    x.max().backward()
    np.testing.assert_allclose(x.grad, [0.0, 0.5, 0.5])


@SETTINGS
@given(shape=st.lists(st.integers(1, 4), min_size=1, max_size=4).map(tuple), seed=seeds)
def test_reshape_permute_transpose(shape, seed):
    rng = np.random.default_rng(seed)
    a = rng.standard_normal(shape)
    x = leaf(a)
    perm = tuple(rng.permutation(len(shape)))
    np.testing.assert_array_equal(x.permute(*perm).data, np.transpose(a, perm))
    assert mt.gradcheck(lambda t: t.permute(*perm) * np.arange(a.size).reshape(np.transpose(a, perm).shape), [x])
    np.testing.assert_array_equal(x.reshape(-1).data, a.reshape(-1))
    assert mt.gradcheck(lambda t: t.reshape(a.size, 1) * np.arange(a.size)[:, None], [x])
    if len(shape) >= 2:
        np.testing.assert_array_equal(x.transpose(0, -1).data, np.swapaxes(a, 0, -1))
        assert mt.gradcheck(lambda t: t.transpose(0, -1).sum(dim=0) * 1.5, [x])


@SETTINGS
@given(n=st.integers(1, 6), m=st.integers(1, 4), seed=seeds)
def test_getitem_slices_and_integer_arrays(n, m, seed):
    rng = np.random.default_rng(seed)
    a = rng.standard_normal((n, m))
    x = leaf(a)
    rows = rng.integers(0, n, size=5)  # repeats must accumulate
    cols = rng.integers(0, m, size=5)
    weights = rng.standard_normal(5)
    np.testing.assert_array_equal(x[rows, cols].data, a[rows, cols])
    assert mt.gradcheck(lambda t: t[rows, cols] * weights, [x])
    np.testing.assert_array_equal(x[1:, ::2].data, a[1:, ::2])
    assert mt.gradcheck(lambda t: t[1:, ::2] * 2.0, [x])
    assert mt.gradcheck(lambda t: t[rows] * 3.0, [x])
    assert mt.gradcheck(lambda t: t[-1] * 3.0, [x])


@SETTINGS
@given(sizes=st.lists(st.integers(1, 3), min_size=1, max_size=3), other=st.integers(1, 3), seed=seeds)
def test_cat_and_stack(sizes, other, seed):
    rng = np.random.default_rng(seed)
    arrays = [rng.standard_normal((s, other)) for s in sizes]
    xs = [leaf(a) for a in arrays]
    np.testing.assert_array_equal(mt.cat(xs, dim=0).data, np.concatenate(arrays, axis=0))
    w = rng.standard_normal((sum(sizes), other))
    assert mt.gradcheck(lambda *ts: mt.cat(ts, dim=0) * w, xs)
    same = [rng.standard_normal((2, other)) for _ in sizes]
    ys = [leaf(a) for a in same]
    np.testing.assert_array_equal(mt.stack(ys, dim=1).data, np.stack(same, axis=1))
    w2 = rng.standard_normal((2, len(sizes), other))
    assert mt.gradcheck(lambda *ts: mt.stack(ts, dim=1) * w2, ys)


def test_cat_and_stack_shape_errors():
    with pytest.raises(ValueError, match=r"\(2, 3\).*\(2, 4\)"):
        mt.cat([mt.tensor(np.ones((2, 3))), mt.tensor(np.ones((2, 4)))], dim=0)
    with pytest.raises(ValueError, match=r"\(2, 3\).*\(3, 2\)"):
        mt.stack([mt.tensor(np.ones((2, 3))), mt.tensor(np.ones((3, 2)))])


@SETTINGS
@given(n=st.integers(1, 4), classes=st.integers(2, 5), seed=seeds)
def test_log_softmax_and_cross_entropy(n, classes, seed):
    rng = np.random.default_rng(seed)
    a = rng.standard_normal((n, classes)) * 3
    target = rng.integers(0, classes, size=n)
    x = leaf(a)
    shifted = a - a.max(axis=1, keepdims=True)
    expected = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    np.testing.assert_allclose(F.log_softmax(x, dim=1).data, expected, rtol=1e-12, atol=1e-12)
    assert mt.gradcheck(lambda t: F.log_softmax(t, dim=-1), [x])
    assert mt.gradcheck(lambda t: F.log_softmax(t, dim=0), [x])
    ce = F.cross_entropy(x, target)
    assert ce.item() == pytest.approx(-expected[np.arange(n), target].mean())
    assert mt.gradcheck(lambda t: F.cross_entropy(t, target), [x])


@SETTINGS
@given(shape=small_shape, seed=seeds)
def test_dropout_gradient_with_fixed_mask(shape, seed):
    x = leaf(np.random.default_rng(seed).standard_normal(shape))

    def fn(t):
        mt.manual_seed(seed)  # the same mask on every call, so the function is deterministic
        return F.dropout(t, p=0.3, training=True)

    assert mt.gradcheck(fn, [x])
    assert mt.gradcheck(lambda t: F.dropout(t, p=0.3, training=False) * 2.0, [x])
