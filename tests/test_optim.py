"""Optimisers against hand-computed steps (and PyTorch), and the StepLR schedule."""

import numpy as np
import pytest

import minstn as mt
from minstn import nn, optim


def _param(values):
    return nn.Parameter(np.array(values, dtype=np.float64))


def test_sgd_plain_step():
    p = _param([1.0, -2.0])
    opt = optim.SGD([p], lr=0.1)
    p.grad = np.array([0.5, 1.0])
    opt.step()
    np.testing.assert_allclose(p.data, [0.95, -2.1])


def test_sgd_momentum_matches_hand_computation():
    p = _param([1.0])
    opt = optim.SGD([p], lr=0.1, momentum=0.9, weight_decay=0.01)
    expected, buf = 1.0, None
    for g in [1.0, -0.5, 2.0]:
        p.grad = np.array([g])
        opt.step()
        d = g + 0.01 * expected
        buf = d if buf is None else 0.9 * buf + d  # PyTorch: first buffer = gradient
        expected -= 0.1 * buf
        np.testing.assert_allclose(p.data, [expected])


def test_adam_matches_hand_computation():
    p = _param([0.5, -1.0])
    opt = optim.Adam([p], lr=0.01, betas=(0.9, 0.99), eps=1e-8)
    x, m, v = p.data.copy(), 0.0, 0.0
    for t, g in enumerate([np.array([1.0, -2.0]), np.array([0.3, 0.1]), np.array([-1.0, 4.0])], start=1):
        p.grad = g
        opt.step()
        m = 0.9 * m + 0.1 * g
        v = 0.99 * v + 0.01 * g * g
        x = x - 0.01 * (m / (1 - 0.9**t)) / (np.sqrt(v / (1 - 0.99**t)) + 1e-8)
        np.testing.assert_allclose(p.data, x, rtol=1e-10)
    # the first step moves every coordinate by about lr: Adam's scale invariance
    q = _param([0.0, 0.0])
    optim.Adam([q], lr=0.01).step()  # no grad: skipped, nothing moves
    assert q.data.tolist() == [0, 0]


def test_params_without_grad_are_skipped_and_zero_grad():
    a, b = _param([1.0]), _param([2.0])
    opt = optim.SGD([a, b], lr=1.0, momentum=0.5)
    a.grad = np.array([1.0])
    opt.step()
    assert a.data.tolist() == [0.0] and b.data.tolist() == [2.0]
    opt.zero_grad()
    assert a.grad is None


def test_param_groups_have_their_own_lr():
    a, b = _param([1.0]), _param([1.0])
    opt = optim.SGD([{"params": [a]}, {"params": [b], "lr": 0.5}], lr=0.1)
    a.grad, b.grad = np.array([1.0]), np.array([1.0])
    opt.step()
    np.testing.assert_allclose([a.data[0], b.data[0]], [0.9, 0.5])


def test_optimizer_state_dict_round_trip():
    p = _param([1.0, 2.0])
    opt = optim.Adam([p], lr=0.1)
    p.grad = np.array([1.0, 1.0])
    opt.step()
    sd = opt.state_dict()
    assert sd["param_groups"][0]["params"] == [0] and sd["state"][0]["step"] == 1
    q = _param(p.data.copy())
    opt2 = optim.Adam([q], lr=0.5)
    opt2.load_state_dict(sd)
    assert opt2.param_groups[0]["lr"] == 0.1
    p.grad = q.grad = np.array([0.2, -0.3])
    opt.step()
    opt2.step()
    np.testing.assert_allclose(q.data, p.data)


def _adam_after_one_step():
    p, q = _param([1.0, 2.0]), _param([3.0])
    opt = optim.Adam([{"params": [p]}, {"params": [q], "lr": 0.5}], lr=0.1)
    p.grad, q.grad = np.array([1.0, 1.0]), np.array([1.0])
    opt.step()
    return opt


@pytest.mark.parametrize("corrupt, message", [
    (lambda sd: sd["state"].update({7: {"step": 1}}), "parameter 7 matches no parameter"),
    (lambda sd: sd["state"][1].update(exp_avg=np.zeros(3)), r"state\[1\]\['exp_avg'\] has shape \(3,\)"),
    (lambda sd: sd["state"][1].update(exp_avg=np.array(["x"])), "dtype <U1"),
    (lambda sd: sd["param_groups"].pop(), "different number of parameter groups"),
    (lambda sd: sd["param_groups"][1]["params"].append(5), "doesn't match the size of optimizer's group"),
    (lambda sd: sd.pop("state"), "'state' and 'param_groups'"),
])
def test_a_failing_optimizer_load_changes_nothing(corrupt, message):
    """Every group's settings come first in the state dict and the bad part last: a load
    that raises must leave both the settings and the state as they were."""
    saved = _adam_after_one_step().state_dict()
    for group in saved["param_groups"]:
        group["lr"] = 9.0
    corrupt(saved)
    opt = _adam_after_one_step()
    before = opt.state_dict()
    with pytest.raises(ValueError, match=message):
        opt.load_state_dict(saved)
    after = opt.state_dict()
    assert [g["lr"] for g in after["param_groups"]] == [0.1, 0.5]
    assert after["state"].keys() == before["state"].keys()
    for index, entries in before["state"].items():
        for key, value in entries.items():
            np.testing.assert_array_equal(after["state"][index][key], value)


def test_optimizer_load_casts_buffers_to_the_parameter_dtype():
    saved = _adam_after_one_step().state_dict()
    saved["state"][0]["exp_avg"] = saved["state"][0]["exp_avg"].astype(np.float32)
    opt = _adam_after_one_step()
    opt.load_state_dict(saved)
    p = opt.param_groups[0]["params"][0]
    assert opt.state[id(p)]["exp_avg"].dtype == p.dtype


def test_step_lr_follows_the_paper_schedule():
    opt = optim.SGD([_param([0.0])], lr=0.01)
    sched = optim.StepLR(opt, step_size=3, gamma=0.1)
    lrs = []
    for _ in range(7):
        lrs.append(opt.param_groups[0]["lr"])
        sched.step()
    np.testing.assert_allclose(lrs, [0.01, 0.01, 0.01, 0.001, 0.001, 0.001, 0.0001])
    assert sched.get_last_lr() == [opt.param_groups[0]["lr"]]


def test_training_a_tiny_model_reduces_the_loss():
    import minstn.functional as F

    mt.manual_seed(0)
    model = nn.Sequential(nn.Linear(2, 8), nn.Tanh(), nn.Linear(8, 2))
    rng = np.random.default_rng(0)
    x = rng.standard_normal((64, 2)).astype(np.float32)
    y = (x[:, 0] * x[:, 1] > 0).astype(np.int64)
    opt = optim.SGD(model.parameters(), lr=0.5, momentum=0.9)
    first = None
    for _ in range(60):
        loss = F.cross_entropy(model(mt.tensor(x)), y)
        first = first if first is not None else loss.item()
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < 0.5 * first


@pytest.mark.parametrize("kind", ["sgd", "adam"])
def test_optimisers_match_torch(kind):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(1)
    start = rng.standard_normal(5)
    grads = [rng.standard_normal(5) for _ in range(4)]
    ours = _param(start.copy())
    theirs = torch.tensor(start.copy(), requires_grad=True)
    if kind == "sgd":
        o1 = optim.SGD([ours], lr=0.05, momentum=0.9, weight_decay=1e-3)
        o2 = torch.optim.SGD([theirs], lr=0.05, momentum=0.9, weight_decay=1e-3)
    else:
        o1 = optim.Adam([ours], lr=0.05, weight_decay=1e-3)
        o2 = torch.optim.Adam([theirs], lr=0.05, weight_decay=1e-3)
    s1, s2 = optim.StepLR(o1, 2, 0.5), torch.optim.lr_scheduler.StepLR(o2, 2, 0.5)
    for g in grads:
        ours.grad = g.copy()
        theirs.grad = torch.from_numpy(g.copy())
        o1.step()
        o2.step()
        s1.step()
        s2.step()
        np.testing.assert_allclose(ours.data, theirs.detach().numpy(), rtol=1e-10, atol=1e-12)
        assert s1.get_last_lr() == pytest.approx(s2.get_last_lr())
