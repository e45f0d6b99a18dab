"""PyTorch programs run on minstn with only the imports changed, and agree with PyTorch.

The two programs are plain PyTorch files: ``tutorials/pytorch_stn.py`` (the STN of course
step 11, on 42x42 RTS digits) and ``benchmarks/rgb512_stn.py`` (the reading note's
localisation net, 4 x [strided conv + BatchNorm + ReLU], on 512x512 RGB images). Each is
loaded twice with :func:`minstn.interop.load_module`: once as written (torch), once with
its imports rewritten (minstn). Both get the same initial weights through the converter,
take two training steps on the same batch with the program's own ``train_step`` and
optimiser, and must agree on the losses, every gradient and the updated weights (float32
tolerance), in train and in eval mode.

Dropout draws random masks from each framework's own generator, so in train mode both
frameworks' dropout functions are replaced by one that reads the same masks from a shared
NumPy stream (dropout itself is compared with torch in test_torch_idioms.py).
"""

import functools
import os
from pathlib import Path

import numpy as np
import pytest

import minstn as mt
from minstn import interop

ROOT = Path(__file__).resolve().parents[1]
COURSE_PROGRAM = ROOT / "tutorials" / "pytorch_stn.py"
RGB512_PROGRAM = ROOT / "benchmarks" / "rgb512_stn.py"


@functools.lru_cache(maxsize=1)
def _digits():
    """64 real MNIST test digits when the shared copy is found, else minstn's drawn digits."""
    from minstn.data.glyphs import load_glyphs
    from minstn.data.mnist import load_mnist

    folder = Path(os.environ.get("MINSTN_DATA") or ROOT.parent / "shared" / "data" / "mnist")
    try:
        images, labels = load_mnist("test", data_dir=folder, download=False)
        return images[:64], labels[:64]
    except (FileNotFoundError, ValueError):
        return load_glyphs("test", n=64, seed=0)


def _rts_batch(n=16, seed=0):
    """``n`` digits on the 42x42 RTS canvas (float32) and their labels (int64)."""
    from minstn.data import distort

    images, labels = _digits()
    return distort(images[:n], "rts", seed=seed), labels[:n].astype(np.int64)


def _smooth_rgb(n=2):
    """Smooth colour images (sums of sinusoids; float32 gradients stay well conditioned)."""
    return interop.load_module(RGB512_PROGRAM).example_images(n)


def _shared_dropout(monkeypatch, torch):
    """Make every dropout of both frameworks read its masks from a NumPy stream seeded alike
    for each run (the programs call dropout in the same order with the same shapes, so
    both get the same masks). Returns ``restart()``, to call before each run."""
    import minstn.functional
    import minstn.nn.functional

    stream = {}

    def restart():
        stream["rng"] = np.random.default_rng(7)

    def masks(shape, p):
        return (stream["rng"].random(shape) >= p).astype(np.float32) / np.float32(1 - p)

    def make(as_operand):
        def dropout(x, p=0.5, training=True, inplace=False):
            return x * as_operand(masks(tuple(x.shape), p)) if training and p else x

        def dropout2d(x, p=0.5, training=True, inplace=False):
            return x * as_operand(masks(tuple(x.shape[:2]) + (1, 1), p)) if training and p else x

        return dropout, dropout2d

    mt_dropout, mt_dropout2d = make(lambda mask: mask)
    for module in (minstn.nn.functional, minstn.functional):
        monkeypatch.setattr(module, "dropout", mt_dropout)
        monkeypatch.setattr(module, "dropout2d", mt_dropout2d)
    t_dropout, t_dropout2d = make(torch.from_numpy)
    monkeypatch.setattr(torch.nn.functional, "dropout", t_dropout)
    monkeypatch.setattr(torch.nn.functional, "dropout2d", t_dropout2d)
    restart()
    return restart


def _numpy(x):
    return x.detach().numpy() if hasattr(x, "detach") else np.asarray(x)


def _assert_same(ours, theirs, what, rtol, atol):
    np.testing.assert_allclose(_numpy(ours), _numpy(theirs), rtol=rtol, atol=atol, err_msg=what)


def _two_steps(program, model, step, batch, dtype):
    """Run the program's own training step twice; return each step's loss and gradients,
    and the state dict at the end (updated weights, BatchNorm buffers), as float64 arrays."""
    to_tensor = mt.from_numpy if program.torch is mt else program.torch.from_numpy
    if dtype == np.float64:
        model.double()
    optimizer = program.make_optimizer(model)
    batch = [to_tensor(b.astype(dtype) if b.dtype.kind == "f" else b) for b in batch]
    steps = []
    for _ in range(2):
        loss = getattr(program, step)(model, optimizer, *batch)
        steps.append((loss, {n: _numpy(p.grad).astype(np.float64) for n, p in model.named_parameters()}))
    return steps, {n: _numpy(v).astype(np.float64) for n, v in model.state_dict().items()}


def _assert_two_steps_agree(ours, theirs, reference=None):
    """``ours`` and ``theirs`` are :func:`_two_steps` records. Float64 runs (no reference):
    the same losses to 1e-10 and gradients to 1e-9 of the largest, i.e. the engines compute
    the same function. Float32 runs: losses to 1e-4; gradients to 0.1% of the largest, or
    to twice PyTorch's own float32 error (against the float64 ``reference``) where that is
    larger: a sampling point within float32 rounding of a pixel boundary takes the other
    side of the bilinear kink, which moves a gradient by a step, not by rounding."""
    loss_rtol, rel = (1e-10, 1e-9) if reference is None else (1e-4, 1e-3)
    for k, ((loss_a, grads_a), (loss_b, grads_b)) in enumerate(zip(ours[0], theirs[0]), start=1):
        assert loss_a == pytest.approx(loss_b, rel=loss_rtol), f"step {k}: losses {loss_a} vs {loss_b}"
        largest = max(float(np.abs(g).max()) for g in grads_b.values())
        assert largest > 0 and set(grads_a) == set(grads_b)
        for name, g in grads_a.items():
            atol = rel * largest
            if reference is not None:
                atol = max(atol, 2 * float(np.abs(grads_b[name] - reference[0][k - 1][1][name]).max()))
            _assert_same(g, grads_b[name], f"step {k}: gradient of {name}", rtol=rel, atol=atol)
    for name, value in ours[1].items():
        atol = rel * (float(np.abs(value).max()) if value.size else 0.0)
        if reference is not None:
            atol = max(atol, 2 * float(np.abs(theirs[1][name] - reference[1][name]).max()))
        _assert_same(value, theirs[1][name], f"after two steps: {name}", rtol=rel, atol=atol)


def _compare_on_both(path, make_model, step, batch, dtype, mode, prepare=None, restart=lambda: None):
    """The program at ``path`` on minstn and on torch, from the same initial weights
    (``restart()`` is called before each run)."""
    import torch

    ours, theirs = interop.load_module(path), interop.load_module(path, "torch")
    mt.manual_seed(0)
    model = getattr(ours, make_model)()
    if prepare is not None:
        prepare(model)
    state = interop.state_dict_to_torch(model)

    def torch_model():
        m = getattr(theirs, make_model)()
        m.load_state_dict(state)
        return m.train(mode == "train")

    restart()
    on_minstn = _two_steps(ours, model.train(mode == "train"), step, batch, dtype)
    restart()
    on_torch = _two_steps(theirs, torch_model(), step, batch, dtype)
    reference = None
    if dtype == np.float32:
        restart()
        reference = _two_steps(theirs, torch_model(), step, batch, np.float64)
    _assert_two_steps_agree(on_minstn, on_torch, reference)
    return model


def test_the_agreement_check_fails_on_a_wrong_gradient_negative_control():
    grads = {"w": np.array([1.0, -2.0, 0.5]), "b": np.array([0.25])}
    record = ([(0.5, grads), (0.4, grads)], {"w": np.ones(3)})
    wrong = {"w": grads["w"] * [1, 1, 1.01], "b": grads["b"]}          # one entry 1% off
    _assert_two_steps_agree(record, record, reference=record)
    with pytest.raises(AssertionError, match="step 2: gradient of w"):
        _assert_two_steps_agree(([(0.5, grads), (0.4, wrong)], record[1]), record, reference=record)
    with pytest.raises(AssertionError, match="losses"):
        _assert_two_steps_agree(record, ([(0.5, grads), (0.41, grads)], record[1]))


# ---------------------------------------------------------------------------
# the course step's program
# ---------------------------------------------------------------------------


def test_course_program_runs_on_minstn_imports():
    program = interop.load_module(COURSE_PROGRAM)
    assert program.torch is mt and program.nn is mt.nn and program.DataLoader is mt.utils.data.DataLoader
    mt.manual_seed(0)
    model = program.STNet()
    assert np.array_equal(model.fc_loc[2].bias.data, [1, 0, 0, 0, 1, 0])
    assert not model.fc_loc[2].weight.data.any()
    x, y = _rts_batch(32)
    loader = program.make_loader(x, y, batch_size=16, shuffle=True)
    optimizer = program.make_optimizer(model)
    loss = program.train(model, optimizer, loader)
    test_loss, error = program.test(model, program.make_loader(x, y, batch_size=10))
    assert np.isfinite(loss) and np.isfinite(test_loss) and 0 <= error <= 1
    assert program.transformed(model, x[:3]).shape == (3, 1, 28, 28)
    assert not model.training  # test() left it in eval mode, as PyTorch's idiom does


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
@pytest.mark.parametrize("mode", ["train", "eval"])
def test_course_program_agrees_with_torch_for_two_steps(mode, dtype, monkeypatch):
    torch = pytest.importorskip("torch")
    restart = _shared_dropout(monkeypatch, torch) if mode == "train" else (lambda: None)
    _compare_on_both(COURSE_PROGRAM, "STNet", "train_step", _rts_batch(16), dtype, mode, restart=restart)


def test_shared_dropout_changes_the_result_negative_control(monkeypatch):
    """The comparison above would catch different dropout masks: without the shared
    stream, the two frameworks' first train-mode losses differ."""
    torch = pytest.importorskip("torch")
    ours, theirs = interop.load_module(COURSE_PROGRAM), interop.load_module(COURSE_PROGRAM, "torch")
    mt.manual_seed(0)
    torch.manual_seed(0)
    ours_model, theirs_model = ours.STNet(), theirs.STNet()
    theirs_model.load_state_dict(interop.state_dict_to_torch(ours_model))
    x, y = _rts_batch(16)
    loss_mt = ours.train_step(ours_model, ours.make_optimizer(ours_model), mt.from_numpy(x), mt.from_numpy(y))
    loss_t = theirs.train_step(theirs_model, theirs.make_optimizer(theirs_model), torch.from_numpy(x),
                               torch.from_numpy(y))
    assert loss_mt != pytest.approx(loss_t, rel=2e-5)


def test_a_model_trained_in_either_framework_evaluates_the_same_in_the_other():
    torch = pytest.importorskip("torch")
    ours, theirs = interop.load_module(COURSE_PROGRAM), interop.load_module(COURSE_PROGRAM, "torch")
    x, y = _rts_batch(64)
    mt.manual_seed(1)
    torch.manual_seed(1)
    trained_mt, trained_t = ours.STNet(), theirs.STNet()
    ours.train(trained_mt, ours.make_optimizer(trained_mt), ours.make_loader(x, y, 16))
    theirs.train(trained_t, theirs.make_optimizer(trained_t), theirs.make_loader(x, y, 16))
    fresh_mt, fresh_t = ours.STNet(), theirs.STNet()
    interop.state_dict_from_torch(trained_t.state_dict(), fresh_mt)          # torch-trained -> minstn
    fresh_t.load_state_dict(interop.state_dict_to_torch(trained_mt))        # minstn-trained -> torch
    for a, b in ((fresh_mt, trained_t), (trained_mt, fresh_t)):
        a.eval()
        b.eval()
        with mt.no_grad(), torch.no_grad():
            _assert_same(a(mt.from_numpy(x)).data, b(torch.from_numpy(x)), "log-probabilities", rtol=1e-4,
                         atol=1e-5)


# ---------------------------------------------------------------------------
# the 512x512 RGB module with BatchNorm
# ---------------------------------------------------------------------------


def _off_identity(model):
    # Start just off the identity: there every sampling point lies exactly on a pixel centre,
    # where bilinear interpolation has a kink, and the float32 rounding of the base grid (which
    # differs between the engines) picks its side; in float64 both agree to 1e-12 there too.
    model.regressor[2].bias.data.copy_(np.array(interop.load_module(RGB512_PROGRAM).NEAR_IDENTITY))


@pytest.mark.parametrize("dtype", [np.float32, pytest.param(np.float64, marks=pytest.mark.slow)],
                         ids=["float32", "float64"])
@pytest.mark.parametrize("mode", ["train", "eval"])
def test_rgb512_module_agrees_with_torch_for_two_steps(mode, dtype):
    pytest.importorskip("torch")
    x = _smooth_rgb(2)
    target = np.roll(x, 9, axis=3).copy()  # what the transformer should learn: a shift to the right
    model = _compare_on_both(RGB512_PROGRAM, "LargeImageTransformer", "training_step", (x, target), dtype, mode,
                             prepare=_off_identity)
    batch_norm = model.features[0][1]
    assert batch_norm.num_batches_tracked.item() == (2 if mode == "train" else 0)
    assert batch_norm.running_mean.data.any() == (mode == "train")  # the buffers were compared too


def test_rgb512_module_runs_on_minstn_imports_forward_and_backward():
    program = interop.load_module(RGB512_PROGRAM)
    mt.manual_seed(0)
    model = program.LargeImageTransformer()
    x = mt.from_numpy(_smooth_rgb(2))
    out = model(x)
    assert out.shape == (2, 3, 512, 512)
    np.testing.assert_allclose(out.data, x.data, atol=1e-5)  # the identity transform, as initialised
    (out * out).mean().backward()
    assert model.regressor[2].bias.grad is not None and np.abs(model.regressor[2].bias.grad).max() > 0


# ---------------------------------------------------------------------------
# weights both ways
# ---------------------------------------------------------------------------


def test_round_trip_torch_minstn_torch_is_exact(tmp_path):
    torch = pytest.importorskip("torch")
    theirs = interop.load_module(RGB512_PROGRAM, "torch")
    torch.manual_seed(3)
    model = theirs.LargeImageTransformer()
    model.train()
    model(torch.rand(2, 3, 512, 512))                 # non-trivial BatchNorm buffers
    original = model.state_dict()
    torch.save(original, tmp_path / "model.pt")
    state = interop.state_dict_from_torch(tmp_path / "model.pt")   # .pt file -> minstn
    back = interop.state_dict_to_torch(state, tmp_path / "back.pt")  # -> torch, and a .pt file
    reread = torch.load(tmp_path / "back.pt", weights_only=True)
    for again in (back, reread):
        assert list(again) == list(original)
        for name, value in original.items():
            assert again[name].dtype == value.dtype and again[name].shape == value.shape, name
            assert torch.equal(again[name], value), name
    assert state["features.0.1.num_batches_tracked"].dtype == np.int64


def test_round_trip_through_a_minstn_checkpoint_folder(tmp_path):
    torch = pytest.importorskip("torch")
    from minstn.checkpoint import load_state, save_checkpoint

    ours, theirs = interop.load_module(COURSE_PROGRAM), interop.load_module(COURSE_PROGRAM, "torch")
    torch.manual_seed(5)
    original = theirs.STNet().state_dict()
    model = ours.STNet()
    interop.state_dict_from_torch(original, model)
    save_checkpoint(tmp_path / "run", model, {"model": "pytorch_stn"})
    back = interop.state_dict_to_torch(tmp_path / "run")             # a checkpoint folder -> torch
    assert all(torch.equal(back[k], v) for k, v in original.items()) and list(back) == list(original)
    assert set(load_state(tmp_path / "run")) == set(original)


def test_a_mismatched_state_dict_names_the_key_and_both_shapes():
    ours = interop.load_module(COURSE_PROGRAM)
    model = ours.STNet()
    state = model.state_dict()
    state["fc1.weight"] = np.zeros((64, 1000), np.float32)
    del state["fc2.bias"]
    state["fc3.weight"] = np.zeros(3, np.float32)
    before = model.fc1.weight.data.copy()
    with pytest.raises(ValueError) as error:
        interop.state_dict_from_torch(state, model)
    message = str(error.value)
    assert "'fc1.weight'" in message and "(64, 1000)" in message and "(64, 1568)" in message
    assert "missing keys: 'fc2.bias'" in message and "unexpected keys: 'fc3.weight'" in message
    assert np.array_equal(model.fc1.weight.data, before)            # nothing was written


def test_torch_refuses_a_mismatched_minstn_state_dict_naming_key_and_shapes():
    torch = pytest.importorskip("torch")
    theirs = interop.load_module(COURSE_PROGRAM, "torch")
    state = interop.state_dict_to_torch({"fc1.weight": np.zeros((64, 10), np.float32)})
    with pytest.raises(RuntimeError, match=r"fc1\.weight.*torch\.Size\(\[64, 10\]\).*torch\.Size\(\[64, 1568\]\)"):
        theirs.STNet().load_state_dict(state, strict=False)


def test_minstn_checkpoints_and_the_import_rewriting_never_need_torch(tmp_path):
    """In a process where `import torch` fails: minstn's own checkpoints work, the program
    loads on minstn, and the converters say what they need."""
    import subprocess
    import sys
    import textwrap

    code = textwrap.dedent(f"""
        import sys
        sys.modules["torch"] = None                       # import torch now raises ImportError
        import numpy as np, minstn as mt
        from minstn import interop
        from minstn.checkpoint import save_checkpoint, load_state
        program = interop.load_module({str(COURSE_PROGRAM)!r})
        model = program.STNet()
        save_checkpoint({str(tmp_path)!r}, model, {{}})
        assert set(load_state({str(tmp_path)!r})) == set(model.state_dict())
        try:
            interop.state_dict_to_torch(model)
        except ImportError as error:
            assert "needs PyTorch" in str(error) and "model.npz" in str(error)
            print("ok")
    """)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert result.stdout.strip() == "ok", result.stderr[-2000:]
