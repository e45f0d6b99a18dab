"""Benchmark: the reading note's 512x512 RGB spatial transformer, minstn vs PyTorch, same source.

    python benchmarks/pytorch_style.py [--batches 2 8] [--repeats 7] [--profile] [--agreement]

``benchmarks/rgb512_stn.py`` is a PyTorch program (4 x [3x3 conv stride 2 + BatchNorm +
ReLU], two 1x1 convs, Linear(32*32, 128) -> ReLU -> Linear(128, 6) at the identity, then
the sampler over the whole image). minstn runs the same file with its imports rewritten
(``minstn.interop.load_module``). Both models get the same weights through the converter;
the script checks that the first losses agree, then times, in the same process and
interleaved (as every benchmark here), the median of ``--repeats``:

* forward: the module on a batch, in eval mode under ``no_grad``;
* step: the program's ``training_step`` in train mode (forward, MSE loss against a shifted
  copy of the batch, backward, SGD with momentum).

Small batches, as the issue asks: at 512x512 one image is 3 MB, and a batch of 64 needs
several GB of im2col buffers. Torch gets as many threads as Numba. ``--profile`` prints
where minstn's step spends its time. ``--agreement`` prints, instead of timings, how far
apart the engines are after one and two training steps from the same weights, for this
module and for the course's STN program (``tutorials/pytorch_stn.py``, eval mode: its
dropout masks would differ), in float32, with both engines' float32 errors against a
float64 run of PyTorch.
"""
import argparse
import cProfile
import io
import os
import pstats

import numpy as np

import minstn as mt
from minstn import interop
from _common import describe_run, interleaved_median_ms

HERE = os.path.dirname(os.path.abspath(__file__))
PROGRAM = os.path.join(HERE, "rgb512_stn.py")
COURSE_PROGRAM = os.path.join(os.path.dirname(HERE), "tutorials", "pytorch_stn.py")


def setup(torch, batch):
    ours, theirs = interop.load_module(PROGRAM), interop.load_module(PROGRAM, "torch")
    mt.manual_seed(0)
    m_model, t_model = ours.LargeImageTransformer(), theirs.LargeImageTransformer()
    t_model.load_state_dict(interop.state_dict_to_torch(m_model))
    m_opt, t_opt = ours.make_optimizer(m_model, lr=1e-3), theirs.make_optimizer(t_model, lr=1e-3)
    x = ours.example_images(batch)
    target = np.roll(x, 9, axis=3).copy()
    mx, mtarget, tx, ttarget = mt.from_numpy(x), mt.from_numpy(target), torch.from_numpy(x), torch.from_numpy(target)

    def forward(model, x, no_grad):
        def run():
            model.eval()
            with no_grad():
                model(x)
        return run

    def step(program, model, opt, x, target):
        def run():
            model.train()
            return program.training_step(model, opt, x, target)
        return run

    return ({"minstn": forward(m_model, mx, mt.no_grad), "torch": forward(t_model, tx, torch.no_grad)},
            {"minstn": step(ours, m_model, m_opt, mx, mtarget), "torch": step(theirs, t_model, t_opt, tx, ttarget)})


def _two_steps(program, model, batch, step, dtype):
    """Losses and gradients (float64 NumPy) of two of the program's training steps."""
    to_tensor = mt.from_numpy if program.torch is mt else program.torch.from_numpy
    model = model.double() if dtype == np.float64 else model
    optimizer = program.make_optimizer(model)
    batch = [to_tensor(b.astype(dtype) if b.dtype.kind == "f" else b) for b in batch]
    out = []
    for _ in range(2):
        loss = getattr(program, step)(model, optimizer, *batch)
        grads = {n: np.asarray(p.grad.numpy() if hasattr(p.grad, "numpy") else p.grad, np.float64)
                 for n, p in model.named_parameters()}
        out.append((loss, grads))
    return out


def agreement(torch):
    """Print how far apart minstn and torch are after each of two steps (float32), and how
    far each engine's float32 run is from torch's float64 run."""
    from minstn.data import distort, load_glyphs, load_mnist

    try:
        digits, labels = load_mnist("test", download=False)
    except (FileNotFoundError, ValueError):
        digits, labels = load_glyphs("test", n=16, seed=0)
    rgb = interop.load_module(PROGRAM)
    x = rgb.example_images(2)
    cases = [("pytorch_stn.py", COURSE_PROGRAM, "STNet", "train_step", "eval", None,
              (distort(digits[:16], "rts", seed=0), labels[:16].astype(np.int64)))]
    for mode in ("eval", "train"):
        cases.append(("rgb512_stn.py", PROGRAM, "LargeImageTransformer", "training_step", mode,
                      rgb.NEAR_IDENTITY, (x, np.roll(x, 9, axis=3).copy())))
    print("float32; gradient differences as a fraction of the largest gradient of the step\n")
    print(f"{'program':<15}{'mode':<6}{'step':>4}{'loss rel':>10}{'grads':>10}{'minstn-f64':>12}{'torch-f64':>11}")
    for name, path, cls, step, mode, bias, batch in cases:
        ours, theirs = interop.load_module(path), interop.load_module(path, "torch")
        mt.manual_seed(0)
        model = getattr(ours, cls)()
        if bias is not None:  # just off the identity (rgb512_stn.NEAR_IDENTITY)
            model.regressor[2].bias.data.copy_(np.array(bias))
        state = interop.state_dict_to_torch(model)
        runs = []
        for program, dtype in ((ours, np.float32), (theirs, np.float32), (theirs, np.float64)):
            m = model if program is ours else getattr(theirs, cls)()
            if program is theirs:
                m.load_state_dict(state)
            runs.append(_two_steps(program, m.train(mode == "train"), batch, step, dtype))
        for k, ((l_mt, g_mt), (l_t, g_t), (_, g_64)) in enumerate(zip(*runs), start=1):
            largest = max(np.abs(g).max() for g in g_64.values())
            gap = {key: max(np.abs(a[n] - b[n]).max() for n in g_64) / largest
                   for key, (a, b) in {"mt-t": (g_mt, g_t), "mt-64": (g_mt, g_64), "t-64": (g_t, g_64)}.items()}
            print(f"{name:<15}{mode:<6}{k:>4}{abs(l_mt - l_t) / abs(l_t):>10.1e}{gap['mt-t']:>10.1e}"
                  f"{gap['mt-64']:>12.1e}{gap['t-64']:>11.1e}")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--batches", type=int, nargs="+", default=[2, 8])
    p.add_argument("--repeats", type=int, default=7)
    p.add_argument("--profile", action="store_true")
    p.add_argument("--agreement", action="store_true", help="print the engines' agreement instead of timings")
    args = p.parse_args(argv)
    import numba
    import torch

    torch.set_num_threads(numba.get_num_threads())
    describe_run(f"numpy {np.__version__}, numba {numba.__version__} ({numba.get_num_threads()} threads), "
                 f"torch {torch.__version__} ({torch.get_num_threads()} threads); sampler backend "
                 f"{mt.get_backend()}")
    if args.agreement:
        return agreement(torch)
    print(f"benchmarks/rgb512_stn.py, 3 x 512 x 512 float32; median of {args.repeats} interleaved calls "
          "after a warm-up call\n")
    print(f"{'batch':>5}  {'what':<8}{'minstn ms':>11}{'torch ms':>10}{'minstn/torch':>14}"
          "   first losses (minstn, torch)")
    for batch in args.batches:
        forwards, steps = setup(torch, batch)
        losses = {k: fn() for k, fn in steps.items()}  # warm-up (JIT) and the agreement check
        if abs(losses["minstn"] - losses["torch"]) > 1e-4 * abs(losses["torch"]):
            raise SystemExit(f"batch {batch}: first losses differ: {losses}")
        for what, fns in (("forward", forwards), ("step", steps)):
            ms = interleaved_median_ms(fns, args.repeats)
            extra = f"   ({losses['minstn']:.6f}, {losses['torch']:.6f})" if what == "step" else ""
            print(f"{batch:>5}  {what:<8}{ms['minstn']:>11.0f}{ms['torch']:>10.0f}"
                  f"{ms['minstn'] / ms['torch']:>14.2f}{extra}")
        if args.profile:
            profile = cProfile.Profile()
            profile.enable()
            for _ in range(3):
                steps["minstn"]()
            profile.disable()
            out = io.StringIO()
            pstats.Stats(profile, stream=out).sort_stats("tottime").print_stats(12)
            print("\n".join(line for line in out.getvalue().splitlines()[4:] if line.strip()))


if __name__ == "__main__":
    main()
