"""Benchmark: one training step of ST-FCN and ST-CNN, minstn vs the identical PyTorch model.

    python benchmarks/train_step.py [--repeats 15] [--models st-fcn st-cnn] [--profile]

One step = forward, cross-entropy loss, zero_grad, backward, SGD update (lr 0.01),
on a batch of 256 RTS-sized images (1 x 42 x 42, float32), as in section 4.1 of the
paper. The PyTorch model is built from minstn's module tree (same layer names, same
shapes) and gets minstn's ``state_dict``, so both compute the same function: the
script checks that the first losses agree before timing.

Both frameworks are timed in the SAME process and INTERLEAVED (one minstn step, one
torch step, ...), so that load from other jobs on a shared machine hits both alike;
the figure is the median of the repeats after two warm-up steps (the first also
triggers Numba's JIT compilation). Torch gets as many threads as Numba.

``--profile`` prints a cProfile summary of the minstn steps (where the time goes).
"""
import argparse
import cProfile
import io
import pstats

import numpy as np

import minstn as mt
import minstn.functional as F
from minstn import nn, optim
from minstn.models import build_model
from _common import describe_run, interleaved_median_ms

BATCH, SIZE, CLASSES = 256, 42, 10


# --------------------------------------------------------------- torch mirror ----
def torch_mirror(torch, module):
    """A torch.nn.Module with the same structure, names and shapes as minstn `module`."""
    tnn = torch.nn
    if isinstance(module, nn.Sequential):
        return tnn.Sequential(*[torch_mirror(torch, m) for m in module])
    if isinstance(module, nn.Linear):
        return tnn.Linear(module.in_features, module.out_features, bias=module.bias is not None)
    if isinstance(module, nn.Conv2d):
        return tnn.Conv2d(module.in_channels, module.out_channels, module.kernel_size,
                          stride=module.stride, padding=module.padding, bias=module.bias is not None)
    if isinstance(module, nn.MaxPool2d):
        return tnn.MaxPool2d(module.kernel_size, module.stride)
    if isinstance(module, nn.ReLU):
        return tnn.ReLU()
    if isinstance(module, nn.Flatten):
        return tnn.Flatten(module.start_dim, module.end_dim)
    if isinstance(module, nn.SpatialTransformer):
        return TorchST(torch, module)
    if type(module).__name__ == "STClassifier":
        return TorchSTClassifier(torch, module)
    raise TypeError(f"no torch mirror for {type(module).__name__}")


def _torch_classes(torch):
    global TorchST, TorchSTClassifier

    class TorchST(torch.nn.Module):
        """Affine spatial transformer: localisation -> regression -> affine_grid -> grid_sample."""

        def __init__(self, torch_, st):
            super().__init__()
            assert st.transform == "affine", "the mirror only knows the affine transform"
            self.localisation = torch_mirror(torch_, st.localisation)
            self.regression = torch_mirror(torch_, st.regression)
            self.out_size, self.align_corners = st.out_size, st.align_corners
            self.padding_mode, self.mode = st.padding_mode, st.mode

        def forward(self, x):
            Fn = torch.nn.functional
            N, C, H, W = x.shape
            Ho, Wo = self.out_size or (H, W)
            theta = self.regression(self.localisation(x).flatten(1)).view(N, 2, 3)
            grid = Fn.affine_grid(theta, (N, C, Ho, Wo), align_corners=self.align_corners)
            return Fn.grid_sample(x, grid, mode=self.mode, padding_mode=self.padding_mode,
                                  align_corners=self.align_corners)

    class TorchSTClassifier(torch.nn.Module):
        def __init__(self, torch_, model):
            super().__init__()
            self.st = torch_mirror(torch_, model.st)
            self.classifier = torch_mirror(torch_, model.classifier)

        def forward(self, x):
            return self.classifier(self.st(x))


def make_batch(seed=0):
    """RTS-like inputs: non-negative images in [0, 1], a few bright strokes, and labels."""
    rng = np.random.default_rng(seed)
    x = np.clip(rng.standard_normal((BATCH, 1, SIZE, SIZE)), 0, None).astype(np.float32)
    x /= x.max()
    y = rng.integers(0, CLASSES, BATCH)
    return x, y


def setup(name, torch, seed=0):
    """(minstn step fn, torch step fn, first minstn loss, first torch loss)."""
    mt_model = build_model(name, in_size=SIZE, num_classes=CLASSES)
    # A non-identity localiser, so that the sampler works on a real transform.
    rng = np.random.default_rng(seed + 1)
    reg = mt_model.st.regression
    reg.weight.data[...] = (0.01 * rng.standard_normal(reg.weight.shape)).astype(np.float32)
    t_model = torch_mirror(torch, mt_model)
    sd = {k: torch.from_numpy(np.array(v.data if hasattr(v, "data") else v))
          for k, v in mt_model.state_dict().items()}
    t_model.load_state_dict(sd, strict=True)
    mt_opt = optim.SGD(mt_model.parameters(), lr=0.01)
    t_opt = torch.optim.SGD(t_model.parameters(), lr=0.01)
    x, y = make_batch(seed)
    tx, ty = torch.from_numpy(x), torch.from_numpy(y)
    mt_model.train()
    t_model.train()

    def mt_step():
        logits = mt_model(mt.Tensor(x))
        loss = F.cross_entropy(logits, y)
        mt_opt.zero_grad()
        loss.backward()
        mt_opt.step()
        return loss.item()

    def t_step():
        logits = t_model(tx)
        loss = torch.nn.functional.cross_entropy(logits, ty)
        t_opt.zero_grad()
        loss.backward()
        t_opt.step()
        return loss.item()

    return mt_step, t_step


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=15)
    p.add_argument("--models", nargs="+", default=["st-fcn", "st-cnn"])
    p.add_argument("--profile", action="store_true", help="cProfile the minstn steps")
    args = p.parse_args(argv)
    import numba
    import torch
    _torch_classes(torch)
    torch.set_num_threads(numba.get_num_threads())
    describe_run(f"numpy {np.__version__}, numba {numba.__version__} ({numba.get_num_threads()} threads), "
                 f"torch {torch.__version__} ({torch.get_num_threads()} threads); sampler backend "
                 f"{mt.get_backend()}")
    print(f"batch {BATCH} x 1 x {SIZE} x {SIZE}, float32, SGD lr 0.01; median of {args.repeats} "
          f"interleaved steps after 2 warm-up steps\n")
    print(f"{'model':<8}{'minstn ms':>11}{'torch ms':>10}{'minstn/torch':>14}   first losses (minstn, torch)")
    for name in args.models:
        mt_step, t_step = setup(name, torch)
        l_mt, l_t = mt_step(), t_step()           # warm-up 1 (JIT) + loss agreement check
        if not abs(l_mt - l_t) <= 1e-4 * max(1.0, abs(l_t)):
            raise SystemExit(f"{name}: first losses differ: minstn {l_mt} vs torch {l_t}")
        ms = interleaved_median_ms({"minstn": mt_step, "torch": t_step}, args.repeats)   # warm-up 2 inside
        m, t = ms["minstn"], ms["torch"]
        print(f"{name:<8}{m:>11.1f}{t:>10.1f}{m / t:>14.2f}   ({l_mt:.6f}, {l_t:.6f})")
        if args.profile:
            pr = cProfile.Profile()
            pr.enable()
            for _ in range(5):
                mt_step()
            pr.disable()
            s = io.StringIO()
            pstats.Stats(pr, stream=s).sort_stats("tottime").print_stats(14)
            print("\n".join(line for line in s.getvalue().splitlines()[4:] if line.strip()))
            print()


if __name__ == "__main__":
    main()
