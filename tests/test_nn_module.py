"""Module bookkeeping: registration, traversal, modes, dtype, state_dict, repr."""

from collections import OrderedDict

import numpy as np
import pytest

import minstn as mt
from minstn import nn


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2), nn.ReLU())
        self.head = nn.Linear(2 * 4 * 4, 3)
        self.scale = 2.0  # a plain attribute: not state

    def forward(self, x):
        return self.head(self.features(x).flatten(1)) * self.scale


def test_parameters_and_names_follow_pytorch():
    net = Net()
    names = [n for n, _ in net.named_parameters()]
    assert names == ["features.0.weight", "features.0.bias", "features.1.weight", "features.1.bias",
                     "head.weight", "head.bias"]
    assert all(isinstance(p, nn.Parameter) and p.requires_grad for p in net.parameters())
    assert [n for n, _ in net.named_children()] == ["features", "head"]
    assert len(list(net.modules())) == 6
    assert [n for n, _ in net.named_buffers()] == ["features.1.running_mean", "features.1.running_var",
                                                   "features.1.num_batches_tracked"]


def test_shared_parameter_listed_once():
    lin = nn.Linear(2, 2)
    seq = nn.Sequential(lin, lin)
    assert len(list(seq.parameters())) == 2


def test_train_eval_zero_grad_and_forward():
    net = Net()
    assert net.training and net.features[1].training
    net.eval()
    assert not net.training and not net.features[1].training
    net.train()
    out = net(mt.tensor(np.random.default_rng(0).standard_normal((2, 1, 6, 6)).astype(np.float32)))
    out.sum().backward()
    assert all(p.grad is not None for p in net.parameters())
    net.zero_grad()
    assert all(p.grad is None for p in net.parameters())


def test_parameter_defaults():
    p = nn.Parameter([1, 2, 3])
    assert p.dtype == np.float32 and p.requires_grad
    assert nn.Parameter(np.zeros(2)).dtype == np.float64  # an array keeps its float dtype
    assert "Parameter containing" in repr(p)


def test_assigning_a_plain_tensor_to_a_parameter_is_refused():
    lin = nn.Linear(2, 2)
    with pytest.raises(TypeError, match="weight"):
        lin.weight = mt.tensor(np.zeros((2, 2), np.float32))
    lin.weight = nn.Parameter(np.zeros((2, 2), np.float32))  # a new Parameter is fine
    assert np.all(lin.weight.data == 0)


def test_forgetting_super_init_gives_a_clear_error():
    class Bad(nn.Module):
        def __init__(self):
            self.fc = nn.Linear(1, 1)

    with pytest.raises(AttributeError, match="super\\(\\).__init__"):
        Bad()


def test_register_buffer_is_state_but_not_parameter():
    m = nn.Module()
    m.register_buffer("count", np.zeros(3, np.float32))
    m.register_buffer("scratch", np.zeros(1), persistent=False)
    assert list(m.parameters()) == []
    assert list(m.state_dict()) == ["count"]
    m.count = np.ones(3, np.float32)  # reassignment keeps it a buffer
    assert m.state_dict()["count"].tolist() == [1, 1, 1]


def test_state_dict_is_a_copy_and_round_trips():
    mt.manual_seed(0)
    a = Net()
    sd = a.state_dict()
    assert isinstance(sd, OrderedDict) and "features.1.running_var" in sd
    sd["head.bias"][:] = 123  # a copy: the model is untouched
    assert not np.any(a.head.bias.data == 123)
    mt.manual_seed(1)
    b = Net()
    weight_before = b.head.weight  # load_state_dict writes in place (optimisers keep references)
    result = b.load_state_dict(a.state_dict())
    assert result.missing_keys == [] and result.unexpected_keys == []
    assert b.head.weight is weight_before
    for k, v in a.state_dict().items():
        np.testing.assert_array_equal(b.state_dict()[k], v)
    x = mt.tensor(np.random.default_rng(1).standard_normal((2, 1, 6, 6)).astype(np.float32))
    np.testing.assert_array_equal(a.eval()(x).data, b.eval()(x).data)


def test_shape_mismatch_names_parameter_and_both_shapes():
    sd = Net().state_dict()
    sd["head.weight"] = np.zeros((3, 5), np.float32)
    net = Net()
    before = net.state_dict()
    with pytest.raises(ValueError, match=r"head\.weight.*\(3, 5\).*\(3, 32\)"):
        net.load_state_dict(sd)
    for k, v in before.items():  # nothing was written
        np.testing.assert_array_equal(net.state_dict()[k], v)


@pytest.mark.parametrize("bad, message", [
    (np.zeros((3,), np.complex64) + 1j, r"head\.bias.*complex64"),         # not cut to its real part
    (np.array(["a", "b", "c"]), r"head\.bias.*<U1"),
    (np.array([None, 1.0, 2.0], dtype=object), r"head\.bias.*object"),
    ([[1.0], [2.0, 3.0]], r"head\.bias.*not an array"),
    (np.zeros((2,), np.float32), r"size mismatch for 'head\.bias'"),
    (np.array([1e300, 0.0, 0.0]), r"head\.bias.*overflows float32"),
])
def test_a_failing_load_leaves_every_entry_unchanged(bad, message):
    """The bad value is the LAST entry of the state dict, after every other entry was
    accepted: nothing may be written before everything has been checked."""
    mt.manual_seed(1)
    source = Net().state_dict()
    assert list(source)[-1] == "head.bias"
    source["head.bias"] = bad
    mt.manual_seed(2)
    net = Net()
    before = net.state_dict()
    with pytest.raises(ValueError, match=message):
        net.load_state_dict(source)
    for k, v in before.items():
        np.testing.assert_array_equal(net.state_dict()[k], v, err_msg=k)


def test_integer_buffers_take_integral_values_only():
    net = Net()
    sd = net.state_dict()
    sd["features.1.num_batches_tracked"] = np.array(7.0)  # an integral float is fine, as in PyTorch
    net.load_state_dict(sd)
    assert net.features[1].num_batches_tracked.data == 7
    for bad in (np.array(7.5), np.array(np.nan), np.array(2**70, dtype=np.float64)):
        sd["features.1.num_batches_tracked"] = bad
        with pytest.raises(ValueError, match="num_batches_tracked.*integers"):
            net.load_state_dict(sd)
    assert net.features[1].num_batches_tracked.data == 7


def test_nan_and_inf_values_are_loaded_as_they_are():
    net = Net()
    sd = net.state_dict()
    sd["head.bias"] = np.array([np.nan, np.inf, -1.0])
    net.load_state_dict(sd)
    np.testing.assert_array_equal(net.head.bias.data, np.array([np.nan, np.inf, -1.0], np.float32))


def test_missing_and_unexpected_keys_are_listed():
    sd = Net().state_dict()
    del sd["head.bias"]
    sd["head.extra"] = np.zeros(1)
    with pytest.raises(RuntimeError) as info:
        Net().load_state_dict(sd)
    assert "missing keys: 'head.bias'" in str(info.value)
    assert "unexpected keys: 'head.extra'" in str(info.value)
    result = Net().load_state_dict(sd, strict=False)
    assert result.missing_keys == ["head.bias"] and result.unexpected_keys == ["head.extra"]


def test_double_casts_in_place():
    net = Net()
    w = net.head.weight
    net.double()
    assert net.head.weight is w and w.dtype == np.float64
    assert net.features[1].running_mean.dtype == np.float64
    assert net.features[1].num_batches_tracked.dtype == np.int64
    out = net(mt.tensor(np.zeros((1, 1, 6, 6))))
    assert out.dtype == np.float64
    net.float()
    assert w.dtype == np.float32


def test_repr_reads_like_pytorch():
    text = repr(Net())
    assert text.startswith("Net(\n  (features): Sequential(\n    (0): Conv2d(1, 2, kernel_size=(3, 3), stride=(1, 1))")
    assert "(head): Linear(in_features=32, out_features=3, bias=True)" in text
    assert repr(nn.ReLU()) == "ReLU()"


def test_state_dict_names_match_torch():
    torch = pytest.importorskip("torch")
    theirs = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3), torch.nn.BatchNorm2d(2), torch.nn.ReLU())
    ours = nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2), nn.ReLU())
    assert list(ours.state_dict()) == list(theirs.state_dict())
    ours.load_state_dict({k: v.numpy() for k, v in theirs.state_dict().items()})
