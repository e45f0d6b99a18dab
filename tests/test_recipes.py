"""Training recipes: learning-rate schedules against their formulas (and PyTorch), gradient
clipping against a hand computation, AdamW, the localisation lr scale, and the flags."""

import math
import os
from pathlib import Path

import numpy as np
import pytest

import minstn as mt
from minstn import lr_scheduler, nn, optim
from minstn.experiments import cli, make_optimizer
from minstn.experiments.loop import LOCALISATION, make_scheduler
from minstn.models import st_fcn
from minstn.nn.utils import clip_grad_norm_


def _param(values):
    return nn.Parameter(np.asarray(values, dtype=np.float64))


def _lrs(scheduler, optimizer, steps, group=0):
    out = []
    for _ in range(steps):
        out.append(optimizer.param_groups[group]["lr"])
        scheduler.step()
    return out


def test_cosine_follows_its_formula():
    opt = optim.SGD([_param([0.0])], lr=0.1)
    lrs = _lrs(lr_scheduler.CosineAnnealingLR(opt, T_max=10, eta_min=0.001), opt, 11)
    want = [0.001 + (0.1 - 0.001) * (1 + math.cos(math.pi * t / 10)) / 2 for t in range(11)]
    np.testing.assert_allclose(lrs, want, rtol=0, atol=1e-15)
    assert lrs[0] == pytest.approx(0.1) and lrs[-1] == pytest.approx(0.001)


def test_onecycle_follows_its_formula():
    """Warm-up from max/25 to max over 30% of the steps, cosine down to max/25/1e4; beta1 the other way."""
    opt = optim.Adam([_param([0.0])], lr=1.0)
    total, top = 20, 0.02
    sched = lr_scheduler.OneCycleLR(opt, max_lr=top, total_steps=total)
    lrs, betas = [], []
    for _ in range(total):
        lrs.append(opt.param_groups[0]["lr"])
        betas.append(opt.param_groups[0]["betas"][0])
        sched.step()
    start, low = top / 25, top / 25 / 1e4
    cos = lambda a, b, pct: b + (a - b) / 2 * (math.cos(math.pi * pct) + 1)
    warm_end = 0.3 * total - 1
    want = [cos(start, top, t / warm_end) if t <= warm_end else cos(top, low, (t - warm_end) / (total - 1 - warm_end))
            for t in range(total)]
    np.testing.assert_allclose(lrs, want, rtol=1e-12)
    assert max(lrs) == pytest.approx(top) and lrs[0] == pytest.approx(start) and lrs[-1] == pytest.approx(low)
    assert betas[0] == pytest.approx(0.95) and min(betas) == pytest.approx(0.85)


@pytest.mark.parametrize("kind", ["step", "cosine", "onecycle"])
@pytest.mark.parametrize("opt_kind", ["sgd", "adam"])
def test_schedules_match_torch(kind, opt_kind):
    torch = pytest.importorskip("torch")
    ours, theirs = _param([1.0, -2.0]), torch.tensor([1.0, -2.0], dtype=torch.float64, requires_grad=True)
    if opt_kind == "sgd":
        o1, o2 = optim.SGD([ours], lr=0.1, momentum=0.9), torch.optim.SGD([theirs], lr=0.1, momentum=0.9)
    else:
        o1, o2 = optim.Adam([ours], lr=0.1), torch.optim.Adam([theirs], lr=0.1)
    T = torch.optim.lr_scheduler
    s1, s2 = {"step": lambda: (lr_scheduler.StepLR(o1, 4), T.StepLR(o2, 4)),
              "cosine": lambda: (lr_scheduler.CosineAnnealingLR(o1, 12), T.CosineAnnealingLR(o2, 12)),
              "onecycle": lambda: (lr_scheduler.OneCycleLR(o1, 0.3, 12), T.OneCycleLR(o2, 0.3, total_steps=12)),
              }[kind]()
    rng = np.random.default_rng(0)
    for _ in range(12):
        g = rng.standard_normal(2)
        ours.grad, theirs.grad = g.copy(), torch.from_numpy(g.copy())
        o1.step()
        o2.step()
        s1.step()
        s2.step()
        assert s1.get_last_lr() == pytest.approx(s2.get_last_lr(), rel=1e-12)
        np.testing.assert_allclose(ours.data, theirs.detach().numpy(), rtol=1e-9, atol=1e-12)


def test_clip_grad_norm_against_a_hand_computation():
    a, b = _param(np.zeros(2)), _param(np.zeros(3))
    a.grad, b.grad = np.array([3.0, 0.0]), np.array([0.0, 4.0, 12.0])   # global norm 13
    total = clip_grad_norm_([a, b], 6.5)
    assert total == pytest.approx(13.0)
    np.testing.assert_allclose(a.grad, [3.0 * 6.5 / (13 + 1e-6), 0.0])
    np.testing.assert_allclose(b.grad, np.array([0.0, 4.0, 12.0]) * 6.5 / (13 + 1e-6))
    a.grad = np.array([0.3, 0.4])
    assert clip_grad_norm_([a], 1.0) == pytest.approx(0.5) and np.allclose(a.grad, [0.3, 0.4])  # below: untouched
    a.grad = np.array([-7.0, 2.0])
    assert clip_grad_norm_([a], 1.0, norm_type=math.inf) == 7.0
    with pytest.raises(ValueError, match="max_norm"):
        clip_grad_norm_([a], 0.0)


def test_clip_grad_norm_matches_torch():
    torch = pytest.importorskip("torch")
    g = [np.random.default_rng(i).standard_normal(s) for i, s in enumerate([(3, 4), (5,)])]
    ours = [_param(np.zeros_like(x)) for x in g]
    theirs = [torch.zeros(x.shape, dtype=torch.float64, requires_grad=True) for x in g]
    for p, q, x in zip(ours, theirs, g):
        p.grad, q.grad = x.copy(), torch.from_numpy(x.copy())
    assert clip_grad_norm_(ours, 0.7) == pytest.approx(float(torch.nn.utils.clip_grad_norm_(theirs, 0.7)))
    for p, q in zip(ours, theirs):
        np.testing.assert_allclose(p.grad, q.grad.numpy(), rtol=1e-12)


def test_adamw_matches_torch():
    torch = pytest.importorskip("torch")
    start = np.array([0.5, -1.5, 2.0])
    ours, theirs = _param(start.copy()), torch.tensor(start.copy(), requires_grad=True)
    o1, o2 = optim.AdamW([ours], lr=0.05, weight_decay=0.1), torch.optim.AdamW([theirs], lr=0.05, weight_decay=0.1)
    for i in range(5):
        g = np.random.default_rng(i).standard_normal(3)
        ours.grad, theirs.grad = g.copy(), torch.from_numpy(g.copy())
        o1.step()
        o2.step()
    np.testing.assert_allclose(ours.data, theirs.detach().numpy(), rtol=1e-10)


def test_localisation_group_learns_at_its_scale_and_follows_the_schedule():
    mt.manual_seed(0)
    model = st_fcn(28)
    opt = make_optimizer(model, "adam", 2e-3, loc_lr_scale=0.1)
    loc = [g for g in opt.param_groups if g.get("name") == LOCALISATION]
    assert len(loc) == 1 and loc[0]["lr"] == pytest.approx(2e-4)
    assert {id(p) for p in loc[0]["params"]} == {id(p) for p in model.st.parameters()}
    sched = make_scheduler(opt, "onecycle", 100)
    assert [g["max_lr"] for g in opt.param_groups] == pytest.approx([2e-3, 2e-4])
    sched.scale_group(1, 0.1)                 # what --guard does
    assert opt.param_groups[1]["max_lr"] == pytest.approx(2e-5)
    step = make_scheduler(make_optimizer(model, "sgd", 0.1), "step", 30)
    assert step.step_size == 10
    with pytest.raises(ValueError, match="schedule"):
        make_scheduler(opt, "warm", 10)


@pytest.mark.parametrize("argv, message", [
    (["--loc-lr-scale", "0"], "--loc-lr-scale: must be a positive"),
    (["--clip", "-1"], "--clip: must be a positive"),
    (["--schedule", "linear"], "invalid choice: 'linear'"),
    (["--warmup", "2"], "--warmup: must be a number in [0, 1]"),
    (["--weight-decay", "-0.1"], "--weight-decay: must be a finite number >= 0"),
])
def test_bad_recipe_flags_are_argparse_errors(argv, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["train", *argv])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


# --- real data: the main job's recipe against the old one (slow) -----------------------

MNIST_DIR = Path(os.environ.get("MINSTN_DATA", Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist"))


@pytest.mark.slow
@pytest.mark.skipif(not (MNIST_DIR / "t10k-images-idx3-ubyte.gz").is_file(), reason=f"no MNIST in {MNIST_DIR}")
def test_one_cycle_recipe_beats_the_old_constant_lr_on_real_rts_digits(tmp_path):
    """An ST-CNN on 8,000 / 2,000 real RTS digits, 4 epochs (500 updates) each: the main
    job's recipe (one-cycle, peak 3e-3) against the old default (constant 1e-3). Measured
    numbers: benchmarks/RESULTS.md, "The main job"."""
    from minstn.experiments import TrainConfig, train
    common = dict(data_dir=str(MNIST_DIR), model="st-cnn", distortion="rts", epochs=4, train_size=8000,
                  test_size=2000, progress=False)
    said = []
    new = train(TrainConfig(**common, lr=3e-3, schedule="onecycle", out=str(tmp_path / "new")), announce=said.append)
    old = train(TrainConfig(**common, lr=1e-3, schedule="constant", out=str(tmp_path / "old")), announce=said.append)
    print(f"one-cycle 3e-3: {100 * new['test_error']:.2f}%, theta shift {new['history'][-1]['theta_shift']:.3f}; "
          f"constant 1e-3: {100 * old['test_error']:.2f}%, theta shift {old['history'][-1]['theta_shift']:.3f}")
    assert new["status"] == old["status"] == "done"
    assert new["test_error"] < old["test_error"]
