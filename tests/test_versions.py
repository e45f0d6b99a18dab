"""Version counters: an in-place change between forward and backward is an error, not a stale gradient.

Each write path a learner or an optimiser uses is tried between forward and backward and
must make backward raise, naming the op; the writes that happen at the right time
(initialisation under no_grad, optimiser steps after backward, load_state_dict) must not.
The blind spots documented in minstn/versions.py and the README are tested as such, so the
documentation stays true.
"""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import minstn as mt
from minstn import nn, optim


def _mul_graph():
    """w (leaf) * x (constant) summed: MulBackward saves both."""
    w = mt.tensor([1.0, 2.0, 3.0], requires_grad=True, dtype=np.float64, name="w")
    x = mt.tensor([4.0, 5.0, 6.0], dtype=np.float64)
    return w, x, (w * x).sum()


def _write_w_data_item(w, x):
    w.data[0] = 7.0


def _write_w_data_all(w, x):
    w.data[...] = 0.0


def _write_w_data_view(w, x):
    w.data[1:][...] = 1.0          # through a view of .data


def _write_w_data_isub(w, x):
    w.data -= 0.1                  # what the optimisers do


def _write_w_data_imul(w, x):
    w.data *= 2


def _write_w_data_ufunc_out(w, x):
    np.add(w.data, 1, out=w.data)


def _write_w_data_copyto(w, x):
    np.copyto(w.data, np.zeros(3))


def _write_w_data_fill(w, x):
    w.data.fill(0)


def _write_w_data_torch_methods(w, x):
    w.data.fill_(0.5)


def _write_w_data_zero_(w, x):
    w.data.zero_()


def _write_w_data_copy_(w, x):
    w.data.copy_(mt.tensor([9.0, 9.0, 9.0]))


def _write_w_data_add_(w, x):
    w.data.add_(1.0, alpha=2)


def _write_w_numpy(w, x):
    w.numpy()[0] = 3.0


def _write_w_no_grad(w, x):
    with mt.no_grad():
        w.mul_(2)


def _write_w_no_grad_operator(w, x):
    with mt.no_grad():
        w -= 0.5 * np.ones(3)      # the PyTorch idiom for a hand-written update


def _write_x_method(w, x):
    x.add_(1.0)                    # the constant input (no grad needed, so allowed)


def _write_x_through_detach(w, x):
    x.detach().mul_(3)             # detach shares the values and the counter


def _write_x_data_view_reshape(w, x):
    x.data.reshape(3, 1)[0, 0] = 0.0


def _write_x_numpy_function_view(w, x):
    np.reshape(x.data, (1, 3))[0, 1] = 0.0     # a view made by a NumPy function


def _optimiser_step_before_backward(w, x):
    w.grad = np.ones(3)
    optim.SGD([w], lr=0.1).step()


WRITES = [_write_w_data_item, _write_w_data_all, _write_w_data_view, _write_w_data_isub, _write_w_data_imul,
          _write_w_data_ufunc_out, _write_w_data_copyto, _write_w_data_fill, _write_w_data_torch_methods,
          _write_w_data_zero_, _write_w_data_copy_, _write_w_data_add_, _write_w_numpy, _write_w_no_grad,
          _write_w_no_grad_operator, _write_x_method, _write_x_through_detach, _write_x_data_view_reshape,
          _write_x_numpy_function_view, _optimiser_step_before_backward]


@pytest.mark.parametrize("write", WRITES, ids=[f.__name__.lstrip("_") for f in WRITES])
def test_an_in_place_write_between_forward_and_backward_raises(write):
    w, x, loss = _mul_graph()
    write(w, x)
    with pytest.raises(RuntimeError, match=r"MulBackward .*modified in place.*version"):
        loss.backward()


def test_the_message_names_the_op_the_input_and_its_name():
    w, x, loss = _mul_graph()
    w.data[0] = 7.0
    with pytest.raises(RuntimeError) as error:
        loss.backward()
    message = str(error.value)
    assert "MulBackward" in message and "input 0" in message and "'w'" in message and "(3,)" in message
    assert "version 1, expected 0" in message


def test_negative_control_without_a_write_backward_is_correct():
    w, x, loss = _mul_graph()
    loss.backward()
    np.testing.assert_array_equal(w.grad, [4.0, 5.0, 6.0])


def test_on_main_this_was_a_stale_gradient():
    """The reproduction of issue group 10: the gradient of sum(w * w) at w = 1 is 2, never 4."""
    w = mt.tensor(np.ones(3), requires_grad=True)
    loss = (w * w).sum()
    w.data *= 2
    with pytest.raises(RuntimeError, match="MulBackward"):
        loss.backward()


def test_an_output_written_in_place_is_caught_too():
    x = mt.tensor([0.5, 1.0], requires_grad=True, dtype=np.float64)
    y = x.exp()                    # ExpBackward uses its output
    loss = y.sum()
    y.data[0] = 0.0
    with pytest.raises(RuntimeError, match="ExpBackward.*the output"):
        loss.backward()


def test_a_view_op_shares_the_counter_of_its_input():
    x = mt.tensor(np.arange(6.0), dtype=np.float64)
    w = mt.tensor(np.ones((2, 3)), requires_grad=True)
    loss = (x.view(2, 3) * w).sum()            # MulBackward saved the reshaped x
    x.data[0] = 100.0                          # written through the original
    with pytest.raises(RuntimeError, match="MulBackward"):
        loss.backward()


def test_load_state_dict_between_forward_and_backward_never_gives_a_stale_gradient():
    """Whether load_state_dict writes in place (then backward raises) or swaps arrays (then the
    forward's values are intact), the gradient is never computed from the new values."""
    layer = nn.Linear(3, 1, bias=False).double()
    x = mt.tensor(np.ones((1, 3)), requires_grad=True)
    loss = layer(x).sum()
    forward_weight = layer.weight.data.copy()
    layer.load_state_dict({"weight": np.full((1, 3), 5.0)})
    try:
        loss.backward()
    except RuntimeError as error:
        assert "LinearBackward" in str(error)
    else:
        np.testing.assert_array_equal(x.grad, forward_weight)


def test_replacing_data_with_a_new_array_is_not_an_in_place_change():
    """``w.data = new`` leaves the array the forward saw intact: the gradient is right."""
    w, x, loss = _mul_graph()
    w.data = np.zeros(3)
    loss.backward()
    np.testing.assert_array_equal(w.grad, [4.0, 5.0, 6.0])


def test_training_loop_writes_happen_after_backward_and_pass():
    mt.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2))
    with mt.no_grad():                         # initialisation the PyTorch way
        model[2].weight.fill_(0)
        model[2].bias.copy_(mt.tensor([1.0, -1.0]))
    model[0].bias.data.zero_()
    for opt in (optim.SGD(model.parameters(), lr=0.1, momentum=0.9), optim.Adam(model.parameters(), lr=0.01)):
        for _ in range(3):
            x = mt.tensor(np.random.default_rng(1).random((5, 4)), dtype=np.float32)
            out = model(x)
            loss = (out * out).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
    model.load_state_dict(model.state_dict())


def test_batchnorm_running_statistics_are_not_graph_inputs():
    bn = nn.BatchNorm2d(2)
    x = mt.tensor(np.random.default_rng(0).random((3, 2, 4, 4)), requires_grad=True)
    loss = bn(x).sum()
    bn(x)                                      # a second forward updates the running stats in place
    loss.backward()


def test_leaf_requiring_grad_refuses_in_place_methods_outside_no_grad():
    w = mt.tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(RuntimeError, match="leaf Tensor that requires grad"):
        w.zero_()
    with pytest.raises(RuntimeError, match="leaf Tensor that requires grad"):
        w += 1


def test_in_place_methods_refuse_graph_tensors_and_operators_rebind():
    w = mt.tensor([1.0, 2.0], requires_grad=True, dtype=np.float64)
    h = w * 3
    with pytest.raises(RuntimeError, match="does not record in-place"):
        h.add_(1)
    original = h
    h += 1                                     # x = x + 1: a new tensor, the same value and gradient
    assert h is not original and original.data.tolist() == [3.0, 6.0]
    h.sum().backward()
    np.testing.assert_array_equal(w.grad, [3.0, 3.0])


def test_in_place_methods_follow_numpy_casting_like_pytorch():
    i = mt.tensor([1, 2, 3])
    with pytest.raises(TypeError):
        i += 0.5                               # PyTorch: result type Float can't be cast to Long
    i.copy_(mt.tensor([1.9, 2.1, 3.5]))        # copy_ casts, as in PyTorch
    assert i.data.tolist() == [1, 2, 3] and i.dtype == np.int64


def test_data_computations_are_plain_arrays_and_copies_do_not_share_the_counter():
    w, x, loss = _mul_graph()
    assert type(w.data + 1) is np.ndarray and type(w.data.copy()) is np.ndarray
    assert type(np.asarray(w.data)) is np.ndarray and type(np.zeros_like(w.data)) is np.ndarray
    assert type(np.concatenate([w.data, w.data])) is np.ndarray and type(w.data.sum()) is np.float64
    c = w.data.copy()
    c[0] = 5.0                                 # a copy: not the tensor's values
    loss.backward()
    np.testing.assert_array_equal(w.grad, [4.0, 5.0, 6.0])


def test_pickle_and_deepcopy_of_tensors_keep_data_and_counter_consistent():
    import copy
    import pickle

    w = mt.tensor([1.0, 2.0], requires_grad=True, dtype=np.float64)
    for clone in (copy.deepcopy(w), pickle.loads(pickle.dumps(w))):
        loss = (clone * clone).sum()
        clone.data[0] = 3.0
        with pytest.raises(RuntimeError, match="MulBackward"):
            loss.backward()
    assert type(pickle.loads(pickle.dumps(w.data))) is np.ndarray


# --- the documented blind spots (README, "In-place changes and the version counter") ---


def test_blind_spot_writes_through_the_original_numpy_array():
    array = np.array([4.0, 5.0, 6.0])
    x = mt.from_numpy(array)                   # shares memory, as torch.from_numpy
    w = mt.tensor([1.0, 1.0, 1.0], requires_grad=True, dtype=np.float64)
    loss = (w * x).sum()
    array[0] = 0.0                             # not seen: a plain ndarray, as in PyTorch
    loss.backward()
    assert w.grad[0] == 0.0                    # the gradient uses the new value


def test_blind_spot_writes_through_np_asarray_of_data():
    w, x, loss = _mul_graph()
    np.asarray(x.data)[0] = 0.0
    loss.backward()
    assert w.grad[0] == 0.0


# --- random sequences: backward raises exactly when a tensor it needs was written ---


@settings(deadline=None, max_examples=60)
@given(writes=st.lists(st.tuples(st.sampled_from(["w", "x", "h", "other"]),
                                 st.sampled_from(["setitem", "isub", "fill_", "mul_"])), max_size=4))
def test_backward_raises_if_and_only_if_a_recorded_tensor_was_written(writes):
    w = mt.tensor([1.0, 2.0], requires_grad=True, dtype=np.float64)
    x = mt.tensor([3.0, 4.0], dtype=np.float64)
    other = mt.tensor([5.0, 6.0], dtype=np.float64)  # never used by the graph
    h = (w * x).tanh()                         # TanhBackward saves h
    loss = (h * 2).sum()
    tensors = {"w": w, "x": x, "h": h, "other": other}
    for name, how in writes:
        data = tensors[name].data
        {"setitem": lambda d: d.__setitem__(0, 0.25), "isub": lambda d: d.__isub__(0.5),
         "fill_": lambda d: d.fill_(1.5), "mul_": lambda d: d.mul_(0.5)}[how](data)
    touched = {name for name, _ in writes} - {"other"}
    if touched:
        with pytest.raises(RuntimeError, match="modified in place"):
            loss.backward()
    else:
        loss.backward()
        expected = 2 * (1 - np.tanh(np.array([3.0, 8.0])) ** 2) * np.array([3.0, 4.0])
        np.testing.assert_allclose(w.grad, expected)
