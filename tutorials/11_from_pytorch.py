# %% [markdown]
# # 11 · From PyTorch to minstn: one program, two engines
#
# **Study time** about 40 min, plus the two training runs · **Prerequisites** 06; a PyTorch
# training loop · **Paper** section 3, Figure 3
#
# Most people meet spatial transformers through PyTorch: a `nn.Module` with a
# localisation net, `F.affine_grid`, `F.grid_sample`, a training loop over a
# `DataLoader`. minstn keeps PyTorch's names so that this knowledge transfers. This
# step takes that claim literally: a spatial transformer written as an ordinary
# PyTorch program (`tutorials/pytorch_stn.py`, written for this course) runs on
# minstn with **only its import lines changed**, and we measure how close the two
# engines come when they start from the same weights.
#
# **You will learn**
#
# 1. the five import lines that turn a PyTorch program into a minstn one, and that
#    nothing else changes (`minstn.interop.minstn_imports`);
# 2. to move weights both ways, bit for bit (`state_dict_to_torch`,
#    `state_dict_from_torch`);
# 3. to compare two engines properly: the same weights and the same batch give the
#    same loss and gradients; training runs drift apart only where randomness differs;
# 4. one thing that does *not* carry over, and why minstn is stricter there: writing
#    into `x.data` between forward and backward.
#
# PyTorch is optional: without it this step runs the minstn half and says so.

# %%
import difflib
import time

import numpy as np

import minstn as mt
import minstn.functional as F
from _course import FAST, HERE, digits, savefig
from minstn import interop
from minstn.data import distort
from minstn.viz.geometry import before_after, grid_overlay

try:
    import torch
except ImportError:
    torch = None
print("PyTorch", torch.__version__ if torch else "is not installed: the torch half of this step is skipped")

N_TRAIN, N_TEST, EPOCHS = (3000, 500, 4) if FAST else (9000, 1000, 12)
BATCH = 64

# %% [markdown]
# ## 1. The program, and the lines that change
#
# Open `tutorials/pytorch_stn.py`: `STNet` (a localisation net over the 42x42
# canvas that regresses theta, started at the identity; the sampler reads a 28x28
# view; a small CNN with `Dropout2d` classifies it), `train_step`, `train`, `test`.
# Every line is PyTorch: `nn.ReLU(True)`, `x.view(-1, 10 * 3 * 3)`, `x.size(0)`,
# `weight.data.zero_()`, `bias.data.copy_(...)`, `F.nll_loss(..., reduction="sum")`,
# `output.argmax(dim=1, keepdim=True)`, `pred.eq(target.view_as(pred)).sum().item()`.
#
# `interop.minstn_imports` rewrites its torch imports and nothing else; the diff is
# the whole port.

# %%
PROGRAM = HERE / "pytorch_stn.py"
source = PROGRAM.read_text()
ported = interop.minstn_imports(source)
diff = [line for line in difflib.unified_diff(source.splitlines(), ported.splitlines(), "torch", "minstn",
                                              lineterm="", n=0) if line[:1] in "+-" and line[:3] not in ("+++", "---")]
print("\n".join(diff))
changed = [line[1:] for line in diff]
assert all(line.startswith(("import ", "from ")) for line in changed)

# %% [markdown]
# `import minstn as torch` keeps every `torch.tensor`, `torch.float`,
# `torch.no_grad()` and `torch.from_numpy` of the program working. Load the file
# twice, once per engine:

# %%
on_minstn = interop.load_module(PROGRAM)                 # the imports rewritten
on_torch = interop.load_module(PROGRAM, "torch") if torch else None
print(on_minstn.torch.__name__, on_torch.torch.__name__ if torch else "-")

# %% [markdown]
# ## 2. The same weights in both engines
#
# State dicts map one to one (the same names, shapes, layouts), so converting is
# copying arrays. The round trip is exact, to the last bit.

# %%
mt.manual_seed(0)
model_mt = on_minstn.STNet()
if torch:
    torch.manual_seed(0)
    model_t = on_torch.STNet()
    model_t.load_state_dict(interop.state_dict_to_torch(model_mt))
    back = interop.state_dict_from_torch(model_t.state_dict())
    exact = all(np.array_equal(back[k], v) and back[k].dtype == v.dtype for k, v in model_mt.state_dict().items())
    print("minstn -> torch -> minstn exact:", exact)

images, labels, data_source = digits(N_TRAIN + N_TEST, seed=0)
labels = labels.astype(np.int64)
train_img, train_y = images[:N_TRAIN], labels[:N_TRAIN]
x_test, y_test = distort(images[N_TRAIN:], "rts", seed=1), labels[N_TRAIN:]
print(f"{data_source} digits: {N_TRAIN} train, {N_TEST} test on the 42x42 RTS canvas"
      f"{' (fast mode)' if FAST else ''}")

# %% [markdown]
# ## 3. One step, side by side
#
# In eval mode (no dropout) both engines take one training step on the same batch.
# The losses and every gradient should agree to float32 precision. (We take a copy
# of each model so that the training below starts from the untouched weights.)

# %%
def one_step(program, model, x, y, to_tensor):
    step_model = type(model)()
    step_model.load_state_dict(model.state_dict())
    step_model.eval()
    loss = program.train_step(step_model, program.make_optimizer(step_model), to_tensor(x), to_tensor(y))
    grads = {name: np.asarray(p.grad.numpy() if hasattr(p.grad, "numpy") else p.grad)  # torch's or minstn's
             for name, p in step_model.named_parameters()}
    return loss, grads


x_batch = distort(train_img[:BATCH], "rts", seed=0)
loss_mt, grads_mt = one_step(on_minstn, model_mt, x_batch, train_y[:BATCH], mt.from_numpy)
print(f"minstn: loss {loss_mt:.7f}")
if torch:
    loss_t, grads_t = one_step(on_torch, model_t, x_batch, train_y[:BATCH], torch.from_numpy)
    largest = max(np.abs(g).max() for g in grads_t.values())
    grad_gap = max(np.abs(grads_mt[k] - grads_t[k]).max() for k in grads_t) / largest
    step_loss_gap = abs(loss_mt - loss_t) / loss_t
    print(f"torch:  loss {loss_t:.7f}   relative difference {step_loss_gap:.1e}; largest gradient "
          f"difference {grad_gap:.1e} of the largest gradient")

# %% [markdown]
# ## 4. Training in both engines
#
# Same initial weights, the same fresh RTS distortions each epoch, the same batches in
# the same order (we shuffle with NumPy and hand both the same order). One thing
# differs: each engine's dropout draws its masks from its own random generator, so
# the runs take slightly different steps and drift apart; "same seed" never means
# "same random numbers" across frameworks.

# %%
def run(program, model):
    optimizer = program.make_optimizer(model)
    test_loader = program.make_loader(x_test, y_test, batch_size=500)
    history, start = [], time.perf_counter()
    for epoch in range(1, EPOCHS + 1):
        x_train = distort(train_img, "rts", seed=0, epoch=epoch)
        order = np.random.default_rng(epoch).permutation(N_TRAIN)
        train_loss = program.train(model, optimizer, program.make_loader(x_train[order], train_y[order], BATCH))
        test_loss, error = program.test(model, test_loader)
        history.append((train_loss, test_loss, error))
    return history, time.perf_counter() - start


engines = {"minstn": (on_minstn, model_mt)} | ({"torch": (on_torch, model_t)} if torch else {})
histories = {}
for name, (program, model) in engines.items():
    histories[name], seconds = run(program, model)
    print(f"{name:>6}: {seconds:.0f} s for {EPOCHS} epochs")
print("epoch  " + "  ".join(f"{name:>22}" for name in histories))
for epoch in range(EPOCHS):
    print(f"{epoch + 1:5d}  " + "  ".join(f"loss {h[epoch][1]:.3f} error {100 * h[epoch][2]:4.1f}%"
                                         for h in histories.values()))

# %% [markdown]
# ## 5. The transformers, and their grids
#
# What each engine's transformer makes of the same test canvases, and minstn's
# learned sampling grid over one of them (Figure 3 of the paper).

# %%
watch = x_test[:6]
views = {name: program.transformed(model, watch) for name, (program, model) in engines.items()}
fig = before_after(watch, list(views.values()), titles=["input"] + [f"{name} ST" for name in views])
savefig(fig, "11_two_engines")

model_mt.eval()
with mt.no_grad():
    x0 = mt.from_numpy(watch[:1])
    theta = model_mt.fc_loc(model_mt.localization(x0).view(-1, 10 * 3 * 3)).view(-1, 2, 3)
    grid = F.affine_grid(theta, (1, 1, 28, 28))
fig = grid_overlay(watch[0], grid.data[0], output=views["minstn"][0], step=2,
                   title=r"minstn's learned $\mathcal{T}_\theta(G)$")
savefig(fig, "11_learned_grid")
print("theta of the first test canvas (minstn):", np.array2string(theta.data[0], precision=2))

# %% [markdown]
# ## 6. A model trained in one engine evaluates the same in the other
#
# The strongest check that both run the same function: load the weights trained by
# PyTorch into a fresh minstn model (and the other way round) and compare the
# log-probabilities on the whole test set.

# %%
if torch:
    crossed_mt, crossed_t = on_minstn.STNet(), on_torch.STNet()
    interop.state_dict_from_torch(model_t.state_dict(), crossed_mt)       # torch-trained, run on minstn
    crossed_t.load_state_dict(interop.state_dict_to_torch(model_mt))      # minstn-trained, run on torch
    for m in (crossed_mt, crossed_t, model_mt, model_t):
        m.eval()
    with mt.no_grad(), torch.no_grad():
        out_t = model_t(torch.from_numpy(x_test)).numpy()
        out_crossed_mt = crossed_mt(mt.from_numpy(x_test)).numpy()
        out_mt = model_mt(mt.from_numpy(x_test)).numpy()
        out_crossed_t = crossed_t(torch.from_numpy(x_test)).numpy()
    cross_gap = max(np.abs(out_t - out_crossed_mt).max(), np.abs(out_mt - out_crossed_t).max())
    same_predictions = min((out_t.argmax(1) == out_crossed_mt.argmax(1)).mean(),
                           (out_mt.argmax(1) == out_crossed_t.argmax(1)).mean())
    print(f"largest difference of a log-probability across engines: {cross_gap:.1e}; "
          f"same prediction for {100 * same_predictions:.1f}% of the test digits")
    final = {name: h[-1][2] for name, h in histories.items()}
    print(f"final test errors: minstn {100 * final['minstn']:.1f}%, torch {100 * final['torch']:.1f}% "
          f"(difference {100 * abs(final['minstn'] - final['torch']):.1f} points, from dropout's masks)")

# %% [markdown]
# ## 7. What does not carry over: writing into `x.data` before backward
#
# In PyTorch, `x.data` is an escape hatch that autograd does not watch: change it
# between forward and backward and backward silently uses the new values. minstn
# counts every write into `x.data` (a version counter per tensor) and refuses.
# The README's "From PyTorch to minstn" section lists the other differences
# (CUDA tensors, `autograd.Function`, `==`, ...).

# %%
w = mt.tensor([1.0, 1.0, 1.0], requires_grad=True)
loss = (w * w).sum()              # d loss / d w = 2 w = 2
w.data.mul_(2)                    # w is now 2, but the forward saw 1
try:
    loss.backward()
    minstn_says = f"gradient {w.grad}"
except RuntimeError as error:
    minstn_says = f"RuntimeError: {str(error)[:95]}..."
print("minstn:", minstn_says)
if torch:
    tw = torch.ones(3, requires_grad=True)
    tloss = (tw * tw).sum()
    tw.data.mul_(2)
    tloss.backward()
    print("torch: gradient", tw.grad.tolist(), "(the right answer at the forward's values is 2)")

# %% [markdown]
# ## What you should have seen (checked)

# %%
# The port is the import lines, nothing else.
assert changed and all(line.lstrip().startswith(("import ", "from ")) for line in changed)
# Both learned something (10 classes: chance is 90% error) and the transformer left the identity.
assert all(h[-1][2] < 0.8 for h in histories.values()), histories
assert not np.allclose(theta.data[0], [[1, 0, 0], [0, 1, 0]], atol=1e-2)
# minstn refused the stale gradient.
assert minstn_says.startswith("RuntimeError") and "MulBackward" in minstn_says
if torch:
    assert exact                               # weights convert bit for bit
    assert step_loss_gap < 1e-5 and grad_gap < 1e-2, (step_loss_gap, grad_gap)
    assert cross_gap < 1e-3 and same_predictions > 0.99, (cross_gap, same_predictions)
    assert tw.grad.tolist() == [4.0, 4.0, 4.0]  # torch: the stale gradient, silently
print("11: all checks passed")

# %% [markdown]
# ## Exercises
#
# ### Exercise 1
#
# `SNIPPET` below is PyTorch code. Write `port(source)`, which returns the source of the
# same program running on minstn (only import lines may change). *Check*:
# `check_exercise_1(port)` runs your version and asks that `loss` is a minstn Tensor
# with the value minstn computes directly. (To port a program of your own, use
# `interop.load_module(path)`; where it stops, the error names what is missing.)

# %%
SNIPPET = """import torch
import torch.nn.functional as F

x = torch.tensor([[0.5, -1.0, 2.0], [1.5, 0.0, -0.5]])
target = torch.tensor([2, 0])
loss = F.nll_loss(F.log_softmax(x * 2.0, dim=1), target, reduction="sum")
"""


def check_exercise_1(port):
    namespace = {}
    exec(port(SNIPPET), namespace)
    loss = namespace["loss"]
    assert isinstance(loss, mt.Tensor), f"loss is a {type(loss).__module__}.{type(loss).__name__}, not minstn's"
    x = mt.tensor([[0.5, -1.0, 2.0], [1.5, 0.0, -0.5]])
    want = F.nll_loss(F.log_softmax(x * 2.0, dim=1), np.array([2, 0]), reduction="sum")
    assert abs(loss.item() - want.item()) < 1e-6, (loss.item(), want.item())
    print("exercise 1: correct")


# %% [markdown]
# ### Exercise 2
#
# A PyTorch checkpoint names a layer `fc` where your minstn model calls it `head`.
# Write `renamed(state_dict, old, new)`, which returns the state dict with every key
# `old.<rest>` renamed to `new.<rest>` (the values unchanged), so that
# `load_state_dict` accepts it. *Check*: `check_exercise_2(renamed)`.

# %%
def check_exercise_2(renamed):
    rng = np.random.default_rng(0)
    weight, bias = rng.standard_normal((3, 4)).astype(np.float32), rng.standard_normal(3).astype(np.float32)
    model = mt.nn.Module()
    model.head = mt.nn.Linear(4, 3)
    try:
        model.load_state_dict(renamed({"fc.weight": weight, "fc.bias": bias}, "fc", "head"))
    except RuntimeError as err:
        raise AssertionError(f"load_state_dict refused it: {err}") from None
    x = rng.standard_normal((2, 4)).astype(np.float32)
    np.testing.assert_allclose(model.head(mt.tensor(x)).numpy(), x @ weight.T + bias, rtol=1e-6)
    print("exercise 2: correct")
