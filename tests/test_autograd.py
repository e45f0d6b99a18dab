"""The autodiff core: Tensor, Function, backward order, hooks, no_grad, errors."""

import gc
import threading

import numpy as np
import pytest

import minstn as mt
import minstn.functional as F


def test_tensor_dtype_rules_follow_pytorch():
    assert mt.tensor(1.5).dtype == np.float32
    assert mt.tensor([1.0, 2.0]).dtype == np.float32
    assert mt.tensor([1, 2]).dtype == np.int64
    assert mt.tensor(np.zeros(3, dtype=np.float64)).dtype == np.float64
    assert mt.tensor([1.0], dtype=np.float64).dtype == np.float64
    t = mt.tensor(np.ones((2, 3)))
    assert (t.shape, t.ndim, t.grad, t.grad_fn, t.requires_grad) == ((2, 3), 2, None, None, False)


def test_tensor_copies_its_input():
    a = np.zeros(3)
    t = mt.tensor(a)
    a[0] = 5
    assert t.data[0] == 0


def test_requires_grad_on_integer_data_raises():
    with pytest.raises(ValueError, match="floating"):
        mt.tensor([1, 2, 3], requires_grad=True)
    with pytest.raises(ValueError, match="floating"):
        mt.tensor(np.arange(3), requires_grad=True)


def test_simple_backward_matches_hand_derivative():
    x = mt.tensor([2.0, -3.0], requires_grad=True, dtype=np.float64)
    y = (x * x * x).sum()  # dy/dx = 3 x^2
    y.backward()
    np.testing.assert_allclose(x.grad, [12.0, 27.0])


def test_gradient_accumulates_when_a_tensor_is_reused():
    x = mt.tensor(3.0, requires_grad=True, dtype=np.float64)
    y = x * x + x  # dy/dx = 2x + 1 = 7: x feeds three consumers
    y.backward()
    assert x.grad == pytest.approx(7.0)


def test_diamond_graph_waits_for_all_consumers():
    # a -> b, a -> c, (b, c) -> d: b's node must see both paths before passing on.
    a = mt.tensor(2.0, requires_grad=True, dtype=np.float64)
    b = a * 3
    c = b * b
    d = b + c  # d = 3a + 9a^2, d' = 3 + 18a = 39
    d.backward()
    assert a.grad == pytest.approx(39.0)


def test_leaves_accumulate_across_backward_calls():
    x = mt.tensor([1.0, 2.0], requires_grad=True, dtype=np.float64)
    (x * 2).sum().backward()
    (x * 2).sum().backward()
    np.testing.assert_allclose(x.grad, [4.0, 4.0])
    x.zero_grad()
    assert x.grad is None


def test_long_chain_does_not_recurse():
    x = mt.tensor(1.0, requires_grad=True, dtype=np.float64)
    y = x
    for _ in range(20_000):
        y = y * 1.0001
    y.backward()
    assert x.grad == pytest.approx(1.0001**20_000)
    del y
    gc.collect()


def test_backward_on_non_scalar_without_gradient_says_so():
    x = mt.tensor(np.ones((2, 3)), requires_grad=True)
    with pytest.raises(RuntimeError, match=r"one-element.*\(2, 3\)"):
        (x * 2).backward()
    (x * 2).backward(np.ones((2, 3)))
    np.testing.assert_allclose(x.grad, 2 * np.ones((2, 3)))


def test_backward_with_wrong_gradient_shape_raises():
    x = mt.tensor(np.ones((2, 3)), requires_grad=True)
    with pytest.raises(ValueError, match=r"\(3,\).*\(2, 3\)"):
        (x * 2).backward(np.ones(3))


def test_backward_on_constant_raises():
    with pytest.raises(RuntimeError, match="does not require grad"):
        mt.tensor([1.0]).sum().backward()


def test_mismatched_shapes_name_both():
    a = mt.tensor(np.ones((2, 3)))
    b = mt.tensor(np.ones((4,)))
    with pytest.raises(ValueError, match=r"\(2, 3\).*\(4,\)"):
        a + b
    with pytest.raises(ValueError, match=r"\(2, 3\).*\(4,\)"):
        a @ b


def test_no_grad_records_nothing():
    x = mt.tensor([1.0], requires_grad=True)
    with mt.no_grad():
        y = x * 2
        assert not mt.is_grad_enabled()
    assert mt.is_grad_enabled()
    assert y.grad_fn is None and not y.requires_grad


def test_grad_mode_is_per_thread():
    """A thread inside no_grad does not switch recording off in another thread (and a new
    thread starts with grad enabled even while the thread that started it is in no_grad)."""
    inside, release = threading.Event(), threading.Event()
    seen = {}

    def other_thread():
        with mt.no_grad():
            seen["other_enabled"] = mt.is_grad_enabled()
            seen["other_records"] = (mt.tensor([1.0], requires_grad=True) * 2).grad_fn is not None
            inside.set()
            release.wait(timeout=30)

    worker = threading.Thread(target=other_thread)
    worker.start()
    try:
        assert inside.wait(timeout=30)
        x = mt.tensor([1.0], requires_grad=True)
        recorded = sum((x * 2).grad_fn is not None for _ in range(2000))
        enabled_here = mt.is_grad_enabled()
    finally:
        release.set()
        worker.join()
    assert not seen["other_enabled"] and not seen["other_records"]
    assert enabled_here and recorded == 2000

    with mt.no_grad():
        fresh = threading.Thread(target=lambda: seen.update(fresh_enabled=mt.is_grad_enabled()))
        fresh.start()
        fresh.join()
    assert seen["fresh_enabled"]


def test_no_grad_as_a_decorator_restores_the_mode_after_each_call():
    @mt.no_grad()
    def depth(n):
        assert not mt.is_grad_enabled()
        return 0 if n == 0 else 1 + depth(n - 1)

    assert depth(3) == 3 and mt.is_grad_enabled()
    with mt.no_grad():
        depth(1)
        assert not mt.is_grad_enabled()


def test_graph_is_recorded_only_when_an_input_needs_grad():
    a = mt.tensor([1.0])
    assert (a * 2).grad_fn is None
    b = mt.tensor([1.0], requires_grad=True)
    assert type(a * b).__name__ == "Tensor" and (a * b).grad_fn.name == "MulBackward"


def test_hook_sees_and_replaces_gradient():
    x = mt.tensor([1.0, 2.0], requires_grad=True, dtype=np.float64)
    seen = []
    h = x * 3
    h.register_hook(lambda g: seen.append(g.copy()))
    x.register_hook(lambda g: g * 10)  # leaf hook: replaces before accumulation
    h.sum().backward()
    np.testing.assert_allclose(seen[0], [1.0, 1.0])
    np.testing.assert_allclose(x.grad, [30.0, 30.0])


def test_hook_can_be_removed():
    x = mt.tensor([1.0], requires_grad=True, dtype=np.float64)
    handle = x.register_hook(lambda g: g * 0)
    handle.remove()
    (x * 2).sum().backward()
    assert x.grad[0] == 2.0


def test_retain_grad_keeps_non_leaf_gradient():
    x = mt.tensor([1.0, 2.0], requires_grad=True, dtype=np.float64)
    h = x * x
    h.retain_grad()
    other = x * 2
    (h * 3).sum().backward()
    np.testing.assert_allclose(h.grad, [3.0, 3.0])
    assert other.grad is None  # not retained: non-leaves drop their grad


def test_detach_and_numpy():
    x = mt.tensor([1.0, 2.0], requires_grad=True)
    d = (x * 2).detach()
    assert d.grad_fn is None and not d.requires_grad
    assert isinstance(d.numpy(), np.ndarray)


def test_custom_function_pytorch_style():
    class Cube(mt.Function):
        @staticmethod
        def forward(ctx, a, scale):
            ctx.save_for_backward(a)
            ctx.scale = scale
            return scale * a**3

        @staticmethod
        def backward(ctx, grad):
            (a,) = ctx.saved_tensors
            return grad * 3 * ctx.scale * a**2, None

    x = mt.tensor([1.0, 2.0], requires_grad=True, dtype=np.float64)
    y = Cube.apply(x, 2.0)
    assert y.grad_fn.name == "CubeBackward"
    y.sum().backward()
    np.testing.assert_allclose(x.grad, [6.0, 24.0])
    assert mt.gradcheck(lambda t: Cube.apply(t, 2.0), [x])


def test_function_returning_wrong_number_of_gradients_is_reported():
    class Bad(mt.Function):
        @staticmethod
        def forward(ctx, a, b):
            return a + b

        @staticmethod
        def backward(ctx, grad):
            return (grad,)

    x = mt.tensor([1.0], requires_grad=True)
    with pytest.raises(RuntimeError, match="Bad.backward returned 1 gradients for 2 inputs"):
        Bad.apply(x, x).sum().backward()


def test_function_returning_wrong_gradient_shape_names_op_and_input():
    class BadShape(mt.Function):
        @staticmethod
        def forward(ctx, a):
            return a * 2

        @staticmethod
        def backward(ctx, grad):
            return (grad.sum(),)

    x = mt.tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(RuntimeError, match=r"BadShape.backward.*input 0"):
        BadShape.apply(x).sum().backward()


def test_repr_shows_shape_dtype_values_and_grad_fn():
    x = mt.tensor([1.0, 2.0, 3.0], requires_grad=True)
    y = x * 2
    text = repr(y)
    assert "shape=(3,)" in text and "float32" in text and "grad_fn=<MulBackward>" in text
    assert "2." in text and "6." in text
    big = repr(mt.tensor(np.arange(1000.0)))
    assert "..." in big and len(big) < 300


def test_graph_prints_indented_tree_with_names_and_shapes():
    x = mt.tensor(np.ones((2, 3)), requires_grad=True, name="x")
    w = mt.tensor(np.ones((3, 4)), requires_grad=True)
    loss = F.relu(x @ w).sum()
    text = str(mt.graph(loss, names={"w": w}))
    lines = text.splitlines()
    assert lines[0].startswith("SumBackward")
    assert any("ReLUBackward  (2, 4)" in line for line in lines)
    assert any("MatMulBackward" in line for line in lines)
    assert any(line.strip("├└─│ ").startswith("x  (2, 3)") for line in lines)
    assert any(line.strip("├└─│ ").startswith("w  (3, 4)") for line in lines)
    # indentation grows with depth
    depth = {line.strip("├└─│ ").split()[0]: len(line) - len(line.lstrip("├└─│ ")) for line in lines}
    assert depth["SumBackward"] < depth["ReLUBackward"] < depth["MatMulBackward"] < depth["x"]


def test_graph_marks_shared_nodes():
    x = mt.tensor([1.0], requires_grad=True)
    h = x * 2
    text = str(mt.graph(h + h))
    assert "(see above)" in text


def test_float32_stays_float32_with_python_scalars():
    x = mt.tensor([1.0, 2.0], requires_grad=True)
    y = (2.0 * x + 1) / 3.0 - 0.5
    assert y.dtype == np.float32
    y.sum().backward()
    assert x.grad.dtype == np.float32


def test_cross_entropy_value_and_errors():
    logits = mt.tensor([[2.0, 1.0, 0.1], [0.5, 2.5, 0.3]], dtype=np.float64)
    target = np.array([0, 1])
    expected = -np.mean(
        [np.log(np.exp(2.0) / np.exp([2.0, 1.0, 0.1]).sum()), np.log(np.exp(2.5) / np.exp([0.5, 2.5, 0.3]).sum())]
    )
    assert F.cross_entropy(logits, target).item() == pytest.approx(expected)
    with pytest.raises(ValueError, match="integer"):
        F.cross_entropy(logits, np.array([0.0, 1.0]))
    with pytest.raises(ValueError, match=r"\(3,\)"):
        F.cross_entropy(logits, np.array([0, 1, 2]))
    with pytest.raises(ValueError, match="target values"):
        F.cross_entropy(logits, np.array([0, 3]))


def test_log_softmax_is_stable_for_large_logits():
    out = F.log_softmax(mt.tensor([[1000.0, 0.0]], dtype=np.float64)).data
    assert np.all(np.isfinite(out))
    np.testing.assert_allclose(out, [[0.0, -1000.0]])


def test_dropout_train_and_eval():
    mt.manual_seed(0)
    x = mt.tensor(np.ones((1000,)), requires_grad=True, dtype=np.float64)
    y = F.dropout(x, p=0.25, training=True)
    kept = y.data != 0
    assert 0.7 < kept.mean() < 0.8
    np.testing.assert_allclose(y.data[kept], 1 / 0.75)
    y.sum().backward()
    np.testing.assert_allclose(x.grad, kept / 0.75)
    assert F.dropout(x, p=0.25, training=False) is x
    with pytest.raises(ValueError, match="probability"):
        F.dropout(x, p=1.5)
