"""The transformer health monitor: its numbers against an independent computation on fixed
thetas, collapse detection, and ``minstn train`` with and without ``--guard`` on a collapse
provoked by a huge localisation learning rate."""

import json

import numpy as np
import pytest

import minstn as mt
from minstn import nn
from minstn.experiments import TrainConfig, TrainingDiverged, evaluate, train
from minstn.experiments.health import HealthMonitor, TransformerCollapsed, measure_health, transformer_health


class _Constant(nn.Module):
    """A localisation net with no input dependence: the regression bias alone sets theta."""

    def forward(self, x):
        return mt.tensor(np.zeros((x.shape[0], 1), np.float32))


def _fixed(transform, params, size=12, align_corners=False):
    st = nn.SpatialTransformer(_Constant(), (size, size), transform=transform, features=1, align_corners=align_corners)
    st.regression.bias.data[...] = np.asarray(params, np.float32)
    st(mt.tensor(np.random.default_rng(0).random((3, 1, size, size), dtype=np.float32)))
    return st


def test_affine_numbers_against_an_independent_computation():
    size = 12
    c, s = np.cos(np.radians(30)), np.sin(np.radians(30))
    theta = np.array([0.5 * c, -0.5 * s, 0.75, 0.5 * s, 0.5 * c, 0.0])
    h = transformer_health(_fixed("affine", theta, size))
    assert h["theta_shift"] == pytest.approx(np.mean(np.abs(theta - [1, 0, 0, 0, 1, 0])), rel=1e-6)
    assert h["scale"] == pytest.approx(0.5, rel=1e-5)
    assert h["rotation"] == pytest.approx(30.0, abs=1e-3)
    # the same points by hand: pixel centres of the target grid, then the map
    t = np.linspace(-1, 1, size) * (size - 1) / size
    xt, yt = np.meshgrid(t, t)
    xs = theta[0] * xt + theta[1] * yt + theta[2]
    ys = theta[3] * xt + theta[4] * yt + theta[5]
    assert h["off_canvas"] == pytest.approx(np.mean((np.abs(xs) > 1) | (np.abs(ys) > 1)), abs=1e-12)
    assert 0 < h["off_canvas"] < 1
    assert h["spread"] == pytest.approx(0.5, rel=1e-5)       # a similarity of scale 0.5 halves the spread


@pytest.mark.parametrize("transform, params", [
    ("affine", [1, 0, 5, 0, 1, 0]),            # translated far to the right
    ("attention", [1, 0, 4]),                  # moved down, off the canvas
    ("projective", [1, 0, 0, 0, 1, 3, 0, 0]),
    ("tps", np.full(32, 3.0)),                 # every control point moved by (3, 3)
])
def test_a_theta_with_every_point_off_the_canvas(transform, params):
    st = _fixed(transform, params)
    h = transformer_health(st)
    assert h["off_canvas"] == 1.0 and h["finite"]
    identity = st.spec.identity_params(np.float64)
    assert h["theta_shift"] == pytest.approx(np.mean(np.abs(np.asarray(params, np.float64) - identity)), rel=1e-6)


@pytest.mark.parametrize("transform", ["affine", "attention", "projective", "tps"])
def test_identity_is_healthy(transform):
    st = _fixed(transform, nn.SpatialTransformer(_Constant(), 4, transform=transform, features=1)
                .spec.identity_params())
    h = transformer_health(st)
    assert h["theta_shift"] == 0 and h["off_canvas"] == 0 and h["spread"] == pytest.approx(1.0)


def test_monitor_declares_a_collapse_after_patience_steps(monkeypatch):
    mt.manual_seed(0)
    model = nn.Sequential()
    model.st = _fixed("affine", [1, 0, 5, 0, 1, 0])
    said = []
    monitor = HealthMonitor(model, patience=3, announce=said.append)
    for step in (1, 2):
        monitor.after_step(1, step)
    assert not monitor.events
    monitor.after_step(1, 3)
    assert monitor.events == [{"epoch": 1, "step": 3, "reason": "100% of the sampling points are off the canvas"}]
    assert said and "epoch 1, step 3" in said[0]
    monitor.after_step(1, 4)
    assert len(said) == 1                       # said once per epoch
    stopping = HealthMonitor(model, patience=1, stop=True)
    with pytest.raises(TransformerCollapsed, match="epoch 2, step 7"):
        stopping.after_step(2, 7)
    model.st.last_theta = np.full_like(model.st.last_theta, np.nan)
    with pytest.raises(TransformerCollapsed, match="not finite"):
        HealthMonitor(model, patience=5, stop=True).after_step(1, 1)   # at once
    with pytest.raises(TrainingDiverged, match="theta is not finite"):      # without the guard: stop
        HealthMonitor(model, patience=5).after_step(1, 1)


def test_monitor_watches_every_transformer():
    """A model with two transformers (as 2xST-FCN): the second one collapsing is declared,
    named, and raised under ``stop``, while the first stays healthy; a model whose every
    transformer is healthy declares nothing."""
    model = nn.Sequential()
    model.st0 = _fixed("affine", [1, 0, 0, 0, 1, 0])      # the identity: healthy
    model.st1 = _fixed("affine", [1, 0, 5, 0, 1, 0])      # every point off the canvas
    said = []
    monitor = HealthMonitor(model, patience=2, announce=said.append)
    first = monitor.after_step(1, 1)
    assert first["off_canvas"] == 0 and not monitor.events          # the first one's numbers
    monitor.after_step(1, 2)
    assert monitor.events == [{"epoch": 1, "step": 2, "transformer": 2,
                               "reason": "100% of the sampling points are off the canvas"}]
    assert said == ["transformer 2 of 2 collapsed at epoch 1, step 2: 100% of the sampling points are off "
                    "the canvas (training goes on; `--guard` would restore the last healthy weights)"]
    for step in range(3, 50):                 # still collapsed: nothing new in this epoch
        monitor.after_step(1, step)
    assert len(monitor.events) == 1 and len(said) == 1
    monitor.after_step(2, 1)                  # the next epoch records it (and says it) once more
    assert [e["epoch"] for e in monitor.events] == [1, 2] and len(said) == 2
    with pytest.raises(TransformerCollapsed, match="transformer 2 of 2 collapsed"):
        HealthMonitor(model, patience=1, stop=True).after_step(3, 1)
    model.st1 = _fixed("affine", [0.8, 0, 0.1, 0, 0.8, 0])  # both healthy now
    healthy = HealthMonitor(model, patience=1, stop=True)
    healthy.after_step(1, 1)
    assert not healthy.events


def _collapse(tmp_path, **kw):
    # a constant lr, so that the guard's lowered localisation lr can be read off its messages
    config = TrainConfig(dataset="glyphs", model="st-fcn", distortion="rts", epochs=2, lr=1e-3, schedule="constant",
                         train_size=384, test_size=128, loc_lr_scale=300.0, progress=False, out=str(tmp_path), **kw)
    said = []
    return train(config, announce=said.append), said


def test_training_says_when_the_transformer_collapses(tmp_path):
    metrics, said = _collapse(tmp_path)
    assert metrics["status"] == "done" and metrics["collapses"]
    first = metrics["collapses"][0]
    assert any(f"collapsed at epoch {first['epoch']}, step {first['step']}" in m for m in said)
    stored = json.loads((tmp_path / "metrics.json").read_text())
    assert stored["history"][-1]["off_canvas"] > 0.9 and "theta_shift" in stored["history"][-1]
    result = evaluate(tmp_path, announce=lambda s: None)
    assert result["test_error"] == metrics["test_error"] and result["health"]["off_canvas"] > 0.9


def test_guard_restores_the_last_healthy_weights_and_lowers_the_localisation_lr(tmp_path):
    metrics, said = _collapse(tmp_path, guard=True)
    restores = [m for m in said if "guard: restored the last healthy weights" in m]
    assert restores and "localisation lr now" in restores[0]
    scales = [float(m.split(" x its schedule")[0].rsplit("(", 1)[1]) for m in restores]
    assert scales == pytest.approx([0.1 ** k for k in range(1, len(restores) + 1)])   # whichever epochs they fall in
    if metrics["status"] == "done":            # the guard won: every epoch ended healthy
        assert all(h["off_canvas"] < 0.9 for h in metrics["history"])
    else:
        assert metrics["status"] == "collapsed"


def test_measure_health_is_none_without_a_transformer():
    from minstn.models import fcn

    assert measure_health(fcn(28), np.zeros((2, 1, 28, 28), np.float32)) is None


def test_measure_health_reports_every_transformer():
    """Two transformers in a row, the second off the canvas: ``each`` names that one,
    while the top-level numbers stay the first transformer's."""
    model = nn.Sequential()
    model.st0 = _fixed("affine", [0.8, 0, 0.1, 0, 0.8, 0])
    model.st1 = _fixed("affine", [1, 0, 5, 0, 1, 0])
    health = measure_health(model, np.random.default_rng(0).random((7, 1, 12, 12), np.float32), batch_size=3)
    first, second = health["each"]
    assert first["off_canvas"] == 0 and second["off_canvas"] == 1
    assert first["theta_shift"] == pytest.approx(np.mean(np.abs([-0.2, 0, 0.1, 0, -0.2, 0])), rel=1e-6)
    assert second["theta_shift"] == pytest.approx(5 / 6, rel=1e-6)
    assert {k: health[k] for k in first} == first
