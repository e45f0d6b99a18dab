"""A/B of one training step: this checkout's engine against another commit's, in ONE process.

    python benchmarks/ab_step.py REV [--models st-fcn st-cnn cnn st-cnn-multi chain] [--repeats 15]
                                     [--batches 64 256] [--in-channels 1] [--threads N]

Copies the ``minstn`` package of git revision REV (e.g. ``HEAD~1``) into a temporary
folder as the package ``minstn_<rev>`` (minstn imports itself relatively, so the copy is
self-contained, except that the backend registry names ``minstn.kernels.*``: both sides
run this checkout's sampler kernels, and the comparison is of the engine around them:
Tensor, Function, backward, layers, optimisers). Builds the same model in both (same
seed, same weights), checks that the first losses agree, then times the step of
``benchmarks/train_step.py`` (forward, cross-entropy, zero_grad, backward, SGD) interleaved,
median of ``--repeats``, at each of ``--batches`` (64 is ``minstn train``'s default). The
inputs are 42 x 42 with ``--in-channels`` channels (2: MNIST addition's two digits).
Prints old / new: above 1 means this checkout is faster.
The model ``chain`` is the engine's overhead alone: 500 times ``y = y * 1.0001 + 0.5`` on
8 numbers, then backward (1,000 recorded ops); its time is printed per op.
"""
import argparse
import importlib
import os
import shutil
import subprocess
import sys
import tempfile

import numpy as np

from _common import describe_run, interleaved_median_ms
from train_step import CLASSES, SIZE, make_batch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def import_minstn_of(rev: str, folder: str):
    """The ``minstn`` package of git revision ``rev``, imported as ``minstn_<rev>``."""
    name = "minstn_" + "".join(ch if ch.isalnum() else "_" for ch in rev)
    archive = subprocess.run(["git", "-C", ROOT, "archive", rev, "minstn"], check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", folder], input=archive, check=True)
    shutil.move(os.path.join(folder, "minstn"), os.path.join(folder, name))
    sys.path.insert(0, folder)
    return importlib.import_module(name)


CHAIN_OPS = 1000


def chain_of(package):
    w = package.tensor(np.ones(8), requires_grad=True)

    def run():
        y = w
        for _ in range(CHAIN_OPS // 2):
            y = y * 1.0001 + 0.5
        loss = y.sum()
        loss.backward()
        return loss.item()

    return run


def inputs(batch: int, channels: int):
    """``make_batch``'s images, one independent draw per channel, and their labels."""
    draws = [make_batch(batch, seed=c) for c in range(channels)]
    return np.concatenate([x for x, _ in draws], axis=1), draws[0][1]


def step_of(package, name: str, x, y):
    if name == "chain":
        return chain_of(package)
    package.manual_seed(0)
    model = importlib.import_module(package.__name__ + ".models").build_model(
        name, in_size=SIZE, num_classes=CLASSES, in_channels=x.shape[1])
    optim = importlib.import_module(package.__name__ + ".optim")
    F = importlib.import_module(package.__name__ + ".functional")
    opt = optim.SGD(model.parameters(), lr=0.01)
    model.train()

    def step():
        loss = F.cross_entropy(model(package.Tensor(x)), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        return loss.item()

    return step


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("rev")
    p.add_argument("--models", nargs="+", default=["st-fcn", "st-cnn"])
    p.add_argument("--repeats", type=int, default=15)
    p.add_argument("--batches", type=int, nargs="+", default=[64, 256])
    p.add_argument("--in-channels", type=int, default=1)
    p.add_argument("--threads", type=int, default=None, help="threads of both engines (default: minstn's)")
    args = p.parse_args(argv)
    import numba

    import minstn
    if args.threads:
        minstn.set_num_threads(args.threads)

    describe_run(f"numpy {np.__version__}, numba {numba.__version__} ({numba.get_num_threads()} threads); "
                 f"this checkout vs {args.rev}")
    print(f"inputs {args.in_channels} x {SIZE} x {SIZE}, SGD lr 0.01; median of {args.repeats} interleaved steps\n")
    print(f"{'model':<14}{'batch':>6}{args.rev + ' ms':>14}{'this ms':>10}{'old/new':>9}")
    with tempfile.TemporaryDirectory() as folder:
        old = import_minstn_of(args.rev, folder)
        old.set_num_threads(minstn.get_num_threads())
        for name in args.models:
            for batch in ([args.batches[0]] if name == "chain" else args.batches):
                x, y = inputs(batch, args.in_channels)
                steps = {"old": step_of(old, name, x, y), "new": step_of(minstn, name, x, y)}
                first = {k: fn() for k, fn in steps.items()}
                if abs(first["old"] - first["new"]) > 1e-6 * max(1.0, abs(first["new"])):
                    raise SystemExit(f"{name}: first losses differ: {first}")
                ms = interleaved_median_ms(steps, args.repeats)
                unit = "us/op" if name == "chain" else ""
                if name == "chain":
                    ms = {k: 1e3 * v / CHAIN_OPS for k, v in ms.items()}
                print(f"{name:<14}{batch:>6}{ms['old']:>14.1f}{ms['new']:>10.1f}{ms['old'] / ms['new']:>9.3f}  {unit}",
                      flush=True)


if __name__ == "__main__":
    main()
