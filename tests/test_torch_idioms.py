"""The PyTorch idioms of a typical STN program, one by one: values against torch (where it is
installed), float64 gradcheck where differentiable, and the import rewriting."""

import numpy as np
import pytest

import minstn as mt
import minstn.nn.functional as NF
from minstn import interop, nn, optim
from minstn.utils.data import DataLoader, Dataset, TensorDataset, default_collate


def _rand(*shape, seed=0, dtype=np.float64):
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


def _leaf(a):
    return mt.tensor(a, requires_grad=True, dtype=np.float64)


# --- dtypes, size, view ---------------------------------------------------------------


def test_dtype_aliases_are_pytorchs_names():
    assert (mt.float32, mt.float, mt.float64, mt.double) == (np.float32, np.float32, np.float64, np.float64)
    assert (mt.int64, mt.long, mt.int32, mt.int, mt.uint8, mt.bool) == (np.int64, np.int64, np.int32, np.int32,
                                                                          np.uint8, np.bool_)
    assert mt.tensor([1, 0, 0], dtype=mt.float).dtype == mt.float32
    assert mt.tensor([1, 2]).dtype == mt.long
    torch = pytest.importorskip("torch")
    for name in ("float32", "float", "float64", "double", "int64", "long", "int32", "int", "uint8", "bool", "half"):
        assert getattr(mt, name) == np.dtype(str(getattr(torch, name)).removeprefix("torch.")), name


def test_size_and_view_like_pytorch():
    x = mt.tensor(np.arange(24.0).reshape(2, 3, 4))
    assert x.size() == (2, 3, 4) and x.size(0) == 2 and x.size(-1) == 4 and x.numel() == 24
    assert x.view(-1, 12).shape == (2, 12) and x.view(6, -1).shape == (6, 4)
    assert x.view_as(mt.zeros(4, 6)).shape == (4, 6)
    torch = pytest.importorskip("torch")
    t = torch.arange(24.0).reshape(2, 3, 4)
    assert tuple(t.size()) == x.size() and t.size(-1) == x.size(-1)
    np.testing.assert_array_equal(x.view(-1, 12).data, t.view(-1, 12).numpy())


def test_view_and_view_as_gradcheck():
    a = _leaf(_rand(2, 3, 4))
    assert mt.gradcheck(lambda t: t.view(-1, 6) * mt.tensor(_rand(4, 6, seed=1)), [a])
    assert mt.gradcheck(lambda t: t.view_as(mt.zeros(6, 4)).exp(), [a])


def test_clone_is_a_copy_with_a_gradient():
    a = _leaf(_rand(3))
    c = a.clone()
    c.data[0] = 100.0
    assert a.data[0] != 100.0
    assert mt.gradcheck(lambda t: t.clone() * t, [a])


# --- in-place methods -----------------------------------------------------------------


def test_in_place_methods_match_torch():
    torch = pytest.importorskip("torch")
    cases = [("zero_", ()), ("fill_", (2.5,)), ("copy_", (np.full(3, 7.0),)), ("add_", (1.5,)),
             ("sub_", (np.arange(3.0),)), ("mul_", (3.0,)), ("div_", (4.0,)), ("clamp_", (-0.5, 0.5))]
    for name, args in cases:
        a = mt.tensor(_rand(3), dtype=np.float64)
        t = torch.from_numpy(_rand(3))
        assert getattr(a, name)(*args) is a                    # returns self, for chaining
        getattr(t, name)(*(torch.from_numpy(v) if isinstance(v, np.ndarray) else v for v in args))
        np.testing.assert_allclose(a.data, t.numpy(), err_msg=name)
        d = mt.tensor(_rand(3), dtype=np.float64)
        assert getattr(d.data, name)(*args) is d.data           # the same on .data
        np.testing.assert_allclose(d.data, t.numpy(), err_msg=f".data.{name}")
    a = mt.tensor(_rand(3))
    a.add_(mt.tensor([1.0, 1.0, 1.0]), alpha=2)
    t = torch.from_numpy(_rand(3).astype(np.float32)).add_(torch.ones(3), alpha=2)
    np.testing.assert_allclose(a.data, t.numpy())


def test_random_fills_are_seeded_and_in_range():
    w = mt.zeros(1000)
    mt.manual_seed(4)
    w.uniform_(-0.1, 0.1)
    first = w.data.copy()
    mt.manual_seed(4)
    w.data.uniform_(-0.1, 0.1)
    assert np.array_equal(first, w.data) and -0.1 <= first.min() and first.max() <= 0.1
    w.normal_(0, 2)
    assert 1.7 < w.data.std() < 2.3


def test_initialisation_idioms_of_pytorch_programs():
    mt.manual_seed(0)
    fc = nn.Linear(32, 6)
    fc.weight.data.zero_()
    fc.bias.data.copy_(mt.tensor([1, 0, 0, 0, 1, 0], dtype=mt.float))
    assert not fc.weight.data.any() and fc.bias.data.tolist() == [1, 0, 0, 0, 1, 0]
    with mt.no_grad():
        fc.weight.fill_(0.5)
        fc.bias.copy_(mt.tensor([0.0] * 6))
    assert (fc.weight.data == 0.5).all() and fc.weight.requires_grad and fc.weight.is_leaf
    parameter = fc.bias
    opt = optim.SGD(fc.parameters(), lr=0.1)
    fc.bias.data = mt.tensor([1, 0, 0, 0, 1, 0], dtype=mt.float)  # assigning .data keeps the Parameter
    assert fc.bias is parameter and fc.bias.data.tolist() == [1, 0, 0, 0, 1, 0] and fc.bias.dtype == np.float32
    fc(mt.ones(2, 32)).sum().backward()
    opt.step()
    np.testing.assert_allclose(fc.bias.data, np.array([1, 0, 0, 0, 1, 0]) - 0.1 * 2, rtol=1e-6)


def test_hand_written_sgd_with_in_place_operators_equals_optim_sgd():
    mt.manual_seed(0)
    a, b = nn.Linear(4, 3), nn.Linear(4, 3)
    b.load_state_dict(a.state_dict())
    x = mt.tensor(_rand(5, 4, dtype=np.float32))
    for model in (a, b):
        (model(x) * model(x)).mean().backward()
    with mt.no_grad():
        for p in a.parameters():
            p -= 0.1 * p.grad                                  # the PyTorch idiom: updates p itself
    optim.SGD(b.parameters(), lr=0.1).step()
    for p, q in zip(a.parameters(), b.parameters()):
        np.testing.assert_allclose(p.data, q.data, rtol=1e-6)


# --- layers and functional ops ----------------------------------------------------------


def test_relu_inplace_argument_computes_the_same_out_of_place():
    x = _leaf(_rand(2, 3))
    for layer in (nn.ReLU(True), nn.ReLU(inplace=True)):
        out = layer(x)
        np.testing.assert_array_equal(out.data, np.maximum(x.data, 0))
        assert mt.gradcheck(layer, [_leaf(_rand(2, 3) + 0.05)])
    assert repr(nn.ReLU(True)) == "ReLU(inplace=True)" and repr(nn.ReLU()) == "ReLU()"
    torch = pytest.importorskip("torch")
    assert repr(torch.nn.ReLU(True)) == repr(nn.ReLU(True))


def test_dropout2d_zeroes_whole_channels_and_scales_the_rest():
    mt.manual_seed(0)
    layer = nn.Dropout2d(0.3)
    out = layer(mt.ones(60, 50, 3, 4)).data
    per_map = out.reshape(60, 50, -1)
    assert (per_map.min(-1) == per_map.max(-1)).all()                 # each map all kept or all dropped
    assert np.allclose(np.unique(out), [0.0, 1 / 0.7])
    dropped = (per_map[..., 0] == 0).mean()
    assert abs(dropped - 0.3) < 5 * np.sqrt(0.3 * 0.7 / 3000)         # binomial: 5 sigma
    layer.eval()
    x = mt.tensor(_rand(2, 3, 4, 4))
    assert layer(x) is x                                              # identity in eval mode
    assert NF.dropout2d(x, 0.0) is x and not NF.dropout2d(x, 1.0).data.any()
    with pytest.raises(ValueError, match="between 0 and 1"):          # PyTorch's message
        nn.Dropout2d(1.5)


def test_dropout2d_matches_torchs_structure():
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    theirs = torch.nn.functional.dropout2d(torch.ones(60, 50, 3, 4), 0.3, training=True).numpy()
    ours = NF.dropout2d(mt.ones(60, 50, 3, 4), 0.3, training=True).data
    for out in (theirs, ours):  # the same law: channels dropped with p, the rest scaled by 1/(1-p)
        maps = out.reshape(60, 50, -1)
        assert (maps.min(-1) == maps.max(-1)).all() and np.allclose(np.unique(out), [0, 1 / 0.7])
    assert abs((ours == 0).mean() - (theirs == 0).mean()) < 0.05


def test_dropout_and_dropout2d_gradcheck_with_a_fixed_mask():
    x = _leaf(_rand(2, 3, 4, 4))

    def fixed(op):
        def f(t):
            mt.manual_seed(11)  # the same mask on every call
            return op(t)
        return f

    assert mt.gradcheck(fixed(lambda t: NF.dropout2d(t, 0.4)), [x])
    assert mt.gradcheck(fixed(lambda t: NF.dropout(t, 0.4, training=True)), [x])
    assert mt.gradcheck(fixed(nn.Dropout2d(0.5)), [x])


def test_functional_dropout_follows_the_training_flag():
    class Net(nn.Module):
        def forward(self, x):
            return NF.dropout(x, training=self.training)

    net, x = Net(), mt.ones(1000)
    assert NF.dropout(x, training=False) is x
    assert net.eval()(x) is x and not net.training
    out = net.train()(x).data
    assert net.training and set(np.unique(out)) == {0.0, 2.0}  # p = 0.5 by default: kept ones scaled by 2


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_nll_loss_and_cross_entropy_reductions_match_torch_and_gradcheck(reduction):
    logits = _rand(5, 4)
    target = np.array([0, 3, 1, 1, 2])
    lp = _leaf(logits)
    for loss_fn in (lambda t: NF.nll_loss(NF.log_softmax(t, dim=1), target, reduction=reduction),
                    lambda t: NF.cross_entropy(t, target, reduction=reduction)):
        assert mt.gradcheck(loss_fn, [lp])
    expected = -(logits - np.log(np.exp(logits).sum(1, keepdims=True)))[np.arange(5), target]
    expected = {"mean": expected.mean(), "sum": expected.sum(), "none": expected}[reduction]
    np.testing.assert_allclose(NF.cross_entropy(lp, target, reduction=reduction).data, expected, rtol=1e-12)
    torch = pytest.importorskip("torch")
    tl = torch.from_numpy(logits).requires_grad_()
    theirs = torch.nn.functional.nll_loss(torch.log_softmax(tl, dim=1), torch.from_numpy(target),
                                          reduction=reduction)
    ours = NF.nll_loss(NF.log_softmax(_leaf(logits), dim=1), target, reduction=reduction)
    np.testing.assert_allclose(ours.data, theirs.detach().numpy(), rtol=1e-12)
    upstream = np.ones(theirs.shape) if reduction != "none" else _rand(5, seed=3)
    theirs.backward(torch.from_numpy(np.asarray(upstream)))
    x = _leaf(logits)
    NF.nll_loss(NF.log_softmax(x, dim=1), target, reduction=reduction).backward(np.asarray(upstream))
    np.testing.assert_allclose(x.grad, tl.grad.numpy(), rtol=1e-10)


def test_loss_reduction_is_validated_and_mse_has_it_too():
    with pytest.raises(ValueError, match="reduction"):
        NF.nll_loss(mt.zeros(2, 3), np.array([0, 1]), reduction="avg")
    a, b = _rand(3, 2), _rand(3, 2, seed=1)
    np.testing.assert_allclose(NF.mse_loss(a, b, reduction="sum").data, ((a - b) ** 2).sum())
    np.testing.assert_allclose(NF.mse_loss(a, b, reduction="none").data, (a - b) ** 2)
    assert mt.gradcheck(lambda t: NF.mse_loss(t, b, reduction="none"), [_leaf(a)])


def test_log_softmax_along_either_dim_matches_torch():
    x = _rand(3, 5)
    assert mt.gradcheck(lambda t: NF.log_softmax(t, dim=0), [_leaf(x)])
    torch = pytest.importorskip("torch")
    for dim in (0, 1, -1):
        np.testing.assert_allclose(NF.log_softmax(x, dim=dim).data,
                                   torch.log_softmax(torch.from_numpy(x), dim=dim).numpy(), rtol=1e-12)


def test_minstn_nn_functional_has_the_sampler_as_torch_nn_functional_does():
    import minstn.functional as F

    assert NF.affine_grid is F.affine_grid and NF.grid_sample is F.grid_sample
    assert NF.max_pool2d is F.max_pool2d and NF.dropout2d is F.dropout2d


# --- predictions: argmax, max, comparisons, item --------------------------------------------


def test_argmax_eq_view_as_sum_item_count_correct_predictions_like_torch():
    logits = _rand(8, 10, seed=5)
    target = np.random.default_rng(6).integers(0, 10, 8)
    output, labels = mt.tensor(logits), mt.tensor(target)
    pred = output.argmax(dim=1, keepdim=True)
    correct = pred.eq(labels.view_as(pred)).sum().item()
    assert pred.shape == (8, 1) and isinstance(correct, int)
    assert correct == int((logits.argmax(1) == target).sum())
    torch = pytest.importorskip("torch")
    tp = torch.from_numpy(logits).argmax(dim=1, keepdim=True)
    assert correct == tp.eq(torch.from_numpy(target).view_as(tp)).sum().item()
    np.testing.assert_array_equal(pred.data, tp.numpy())


def test_max_along_a_dim_returns_values_and_indices_like_torch():
    x = _rand(4, 6, seed=2)
    values, indices = mt.tensor(x).max(1, keepdim=True)
    assert values.shape == (4, 1) and indices.dtype == np.int64
    assert mt.tensor(x).max().item() == x.max() and mt.tensor(x).amax(dim=(0, 1)).item() == x.max()
    assert mt.gradcheck(lambda t: t.max(dim=0).values, [_leaf(x)])
    torch = pytest.importorskip("torch")
    tv, ti = torch.from_numpy(x).max(1, keepdim=True)
    np.testing.assert_array_equal(values.data, tv.numpy())
    np.testing.assert_array_equal(mt.tensor(x).max(1, keepdim=True)[1].data, ti.numpy())  # output.max(1)[1]


def test_comparisons_match_torch_and_equality_stays_identity():
    a, b = _rand(5), _rand(5, seed=1)
    ta, tb = mt.tensor(a), mt.tensor(b)
    results = {"eq": ta.eq(ta), "ne": ta.ne(tb), "lt": ta < tb, "le": ta.le(tb), "gt": ta > 0, "ge": ta.ge(tb)}
    assert all(r.dtype == np.bool_ for r in results.values())
    assert (ta == mt.tensor(a)) is False and ta in [ta]       # == compares identity (documented)
    torch = pytest.importorskip("torch")
    A, B = torch.from_numpy(a), torch.from_numpy(b)
    theirs = {"eq": A.eq(A), "ne": A.ne(B), "lt": A < B, "le": A.le(B), "gt": A > 0, "ge": A.ge(B)}
    for name, r in results.items():
        np.testing.assert_array_equal(r.data, theirs[name].numpy(), err_msg=name)


def test_manual_seed_repeats_weights_and_dropout():
    def draw():
        mt.manual_seed(42)
        return nn.Linear(5, 3).weight.data.copy(), NF.dropout(mt.ones(20)).data.copy()

    (w1, d1), (w2, d2) = draw(), draw()
    assert np.array_equal(w1, w2) and np.array_equal(d1, d2)


# --- datasets and the loader --------------------------------------------------------------


def test_tensor_dataset_and_loader_batches_like_torch():
    x = np.arange(10 * 2, dtype=np.float32).reshape(10, 2)
    y = np.arange(10)
    ours = DataLoader(TensorDataset(mt.from_numpy(x), mt.from_numpy(y)), batch_size=4)
    assert len(ours) == 3 and len(ours.dataset) == 10
    batches = list(ours)
    assert [b[0].shape for b in batches] == [(4, 2), (4, 2), (2, 2)] and batches[0][1].dtype == np.int64
    assert len(DataLoader(ours.dataset, batch_size=4, drop_last=True)) == 2
    assert len(list(DataLoader(ours.dataset, batch_size=4, drop_last=True))) == 2
    sample = ours.dataset[3]
    assert np.array_equal(sample[0].data, x[3]) and sample[1].item() == 3
    torch = pytest.importorskip("torch")
    theirs = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(torch.from_numpy(x), torch.from_numpy(y)),
                                         batch_size=4)
    assert len(theirs) == len(ours)
    for (a, b), (c, d) in zip(batches, theirs):
        np.testing.assert_array_equal(a.data, c.numpy())
        np.testing.assert_array_equal(b.data, d.numpy())


def test_shuffle_is_a_new_seeded_permutation_every_epoch():
    data = TensorDataset(mt.tensor(np.arange(50)))
    loader = DataLoader(data, batch_size=7, shuffle=True)
    mt.manual_seed(1)
    first, second = (np.concatenate([b[0].data for b in loader]) for _ in range(2))
    assert sorted(first) == list(range(50)) and sorted(second) == list(range(50))
    assert not np.array_equal(first, second)
    mt.manual_seed(1)
    assert np.array_equal(np.concatenate([b[0].data for b in loader]), first)
    mine = DataLoader(data, batch_size=50, shuffle=True, generator=np.random.default_rng(3))
    assert np.array_equal(next(iter(mine))[0].data, np.random.default_rng(3).permutation(50))


def test_default_collate_follows_torch_for_generic_datasets():
    class Pairs(Dataset):
        def __len__(self):
            return 5

        def __getitem__(self, i):
            return np.full((2, 2), i, np.float32), i, float(i) / 2, {"id": i}

    image, label, weight, extra = next(iter(DataLoader(Pairs(), batch_size=3)))
    assert image.shape == (3, 2, 2) and image.dtype == np.float32
    assert label.dtype == np.int64 and weight.dtype == np.float64 and extra["id"].data.tolist() == [0, 1, 2]
    assert [s[1] for s in DataLoader(Pairs(), batch_size=None)] == [0, 1, 2, 3, 4]
    torch = pytest.importorskip("torch")
    from torch.utils.data import default_collate as torch_collate

    samples = [Pairs()[i] for i in range(3)]
    for ours, theirs in zip(default_collate(samples), torch_collate(samples)):
        if isinstance(ours, dict):
            ours, theirs = ours["id"], theirs["id"]
        assert str(theirs.dtype).removeprefix("torch.") == ours.dtype.name
        np.testing.assert_array_equal(ours.data, theirs.numpy())


def test_dataset_and_loader_arguments_are_checked():
    with pytest.raises(ValueError, match="same first dimension"):
        TensorDataset(mt.zeros(3, 2), mt.zeros(4))
    with pytest.raises(ValueError, match="batch_size"):
        DataLoader(TensorDataset(mt.zeros(3)), batch_size=0)


# --- the import lines -------------------------------------------------------------------


def test_every_way_to_reach_lr_scheduler_runs_after_the_rewrite():
    """``torch.optim.lr_scheduler`` as a module attribute, imported from ``torch.optim``,
    imported as a module, or its names imported: each works once the imports are rewritten."""
    source = (
        "import torch\n"
        "import torch.optim.lr_scheduler as sched\n"
        "from torch.optim import lr_scheduler\n"
        "from torch.optim.lr_scheduler import StepLR\n"
        "w = torch.nn.Parameter(torch.zeros(1))\n"
        "opt = torch.optim.SGD([w], lr=1.0)\n"
        "found = [torch.optim.lr_scheduler.StepLR, sched.StepLR, lr_scheduler.StepLR, StepLR]\n"
        "s = lr_scheduler.StepLR(opt, step_size=1, gamma=0.5)\n"
        "opt.step(); s.step()\n"
        "lr = opt.param_groups[0]['lr']\n"
    )
    namespace = {}
    exec(compile(interop.minstn_imports(source), "<program>", "exec"), namespace)
    assert len(set(namespace["found"])) == 1 and namespace["lr"] == 0.5


def test_minstn_imports_rewrites_torch_imports_only_and_keeps_lines():
    source = (
        "import os, torch\n"
        "import torch.nn as nn\n"
        "import torch.nn.functional as F\n"
        "from torch import optim\n"
        "from torch.utils.data import (DataLoader,\n"
        "                              TensorDataset)\n"
        "import torch.optim.lr_scheduler as sched\n"
        "import torch.nn\n"
        "import numpy as np  # torch is not here\n"
        "x = torch.tensor([1.0])  # import torch in a comment stays\n"
    )
    out = interop.minstn_imports(source)
    lines = out.splitlines()
    assert len(lines) == len(source.splitlines())
    assert lines[:5] == ["import os, minstn as torch", "import minstn.nn as nn", "import minstn.nn.functional as F",
                         "from minstn import optim", "from minstn.utils.data import DataLoader, TensorDataset"]
    assert lines[5] == "" and lines[6] == "import minstn.optim as sched"
    assert lines[7] == "import minstn.nn, minstn as torch" and lines[8:] == source.splitlines()[8:]
    namespace = {}
    exec(out, namespace)
    assert namespace["torch"] is mt and namespace["nn"] is mt.nn and namespace["sched"].StepLR is optim.StepLR


def test_minstn_imports_refuses_what_has_no_counterpart_naming_the_line():
    with pytest.raises(ImportError, match=r"line 2: .*'torch\.cuda'"):
        interop.minstn_imports("import numpy\nimport torch.cuda as cuda\n")
    with pytest.raises(ImportError, match="torch.autograd"):
        interop.minstn_imports("from torch.autograd import Function\n")


def test_load_module_keeps_the_files_line_numbers_in_tracebacks(tmp_path):
    path = tmp_path / "prog.py"
    path.write_text("import torch\nfrom torch import (nn,\n    optim)\n\ndef boom():\n    raise ValueError('x')\n")
    program = interop.load_module(path)
    assert program.torch is mt and program.__file__ == str(path)
    with pytest.raises(ValueError) as error:
        program.boom()
    assert error.traceback[-1].lineno + 1 == 6 and str(error.traceback[-1].path) == str(path)


def test_mt_nn_optim_utils_are_reachable_after_import_minstn():
    import minstn

    assert minstn.nn.Linear is nn.Linear and minstn.optim.SGD is optim.SGD
    assert minstn.utils.data.DataLoader is DataLoader
    with pytest.raises(AttributeError):
        minstn.cuda  # noqa: B018
