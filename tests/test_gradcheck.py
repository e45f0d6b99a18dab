"""The gradient checker itself, including the negative controls it exists for."""

import numpy as np
import pytest

import minstn as mt


class WrongSquare(mt.Function):
    """x^2 with a deliberately wrong backward (x instead of 2x)."""

    @staticmethod
    def forward(ctx, a):
        ctx.save_for_backward(a)
        return a * a

    @staticmethod
    def backward(ctx, grad):
        (a,) = ctx.saved_tensors
        return (grad * a,)


class RightSquare(WrongSquare):
    @staticmethod
    def backward(ctx, grad):
        (a,) = ctx.saved_tensors
        return (2 * grad * a,)


def test_passes_on_a_correct_backward():
    x = mt.tensor(np.random.default_rng(0).standard_normal((3, 2)), requires_grad=True)
    assert mt.gradcheck(RightSquare.apply, [x]) is True


def test_negative_control_wrong_backward_is_caught():
    x = mt.tensor([[0.5, -1.0], [2.0, 3.0]], requires_grad=True, dtype=np.float64)
    with pytest.raises(mt.GradcheckError) as info:
        mt.gradcheck(WrongSquare.apply, [x])
    message = str(info.value)
    assert "input 0" in message
    # worst element is the largest |x| = 3.0 at (1, 1): analytic 3.0, numeric 6.0
    assert "(1, 1)" in message
    assert "analytic = 3" in message and "numeric  = 6" in message


def test_negative_control_on_large_output_uses_projections():
    x = mt.tensor(np.linspace(0.5, 2.0, 300), requires_grad=True, dtype=np.float64)
    assert mt.gradcheck(RightSquare.apply, [x])
    with pytest.raises(mt.GradcheckError, match="random projection"):
        mt.gradcheck(WrongSquare.apply, [x])


def test_negative_control_names_the_second_input():
    class WrongMulGradB(mt.Function):
        @staticmethod
        def forward(ctx, a, b):
            ctx.save_for_backward(a, b)
            return a * b

        @staticmethod
        def backward(ctx, grad):
            a, b = ctx.saved_tensors
            return grad * b, grad * b  # second should be grad * a

    a = mt.tensor([1.0, 2.0], requires_grad=True, dtype=np.float64)
    b = mt.tensor([3.0, 5.0], requires_grad=True, dtype=np.float64)
    with pytest.raises(mt.GradcheckError, match="input 1"):
        mt.gradcheck(WrongMulGradB.apply, [a, b])


def test_missing_gradient_is_caught():
    class Forgets(mt.Function):
        @staticmethod
        def forward(ctx, a):
            return a * 2

        @staticmethod
        def backward(ctx, grad):
            return (None,)

    x = mt.tensor([1.0, 2.0], requires_grad=True, dtype=np.float64)
    with pytest.raises(mt.GradcheckError):
        mt.gradcheck(Forgets.apply, [x])


def test_requires_float64_and_something_to_check():
    with pytest.raises(ValueError, match="float64"):
        mt.gradcheck(lambda t: t * 2, [mt.tensor([1.0], requires_grad=True)])
    with pytest.raises(ValueError, match="nothing to check"):
        mt.gradcheck(lambda t: t * 2, [mt.tensor([1.0], dtype=np.float64)])


def test_leaves_inputs_and_their_grads_untouched():
    data = np.array([1.0, 2.0])
    x = mt.tensor(data, requires_grad=True)
    x.grad = np.array([7.0, 7.0])
    mt.gradcheck(RightSquare.apply, [x])
    np.testing.assert_array_equal(x.data, data)
    np.testing.assert_array_equal(x.grad, [7.0, 7.0])
