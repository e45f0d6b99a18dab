"""Benchmark: the ST-CNN's convolution and pooling layers and the ST-FCN's largest Linear
layers, minstn vs PyTorch, fwd and bwd.

    python benchmarks/layers.py [--repeats 5] [--batch 256] [names ...]

The layers of ``build_model("st-cnn", 42)``, float32, at batch 256 by default
(``--batch 64`` is ``minstn train``'s default): ``conv1`` (1 -> 64, 9x9 on 42x42),
``pool1`` (2x2 max on 64 x 34x34), ``conv2`` (64 -> 64, 7x7 on 17x17, which takes the
DFT route of ``minstn.kernels.conv_dft``), ``pool2``, and the localisation net's ``lconv2``
(20 -> 20, 5x5 on 10x10); and of ``build_model("st-fcn", 42)`` the classifier's ``fc1``
(1764 -> 175) and the localisation net's ``lfc1`` (1764 -> 32). Each layer's forward and backward (with gradients for the
input and every parameter, as in training) is timed in ONE process, minstn and torch
interleaved, median of the repeats; torch gets as many threads as Numba. The script
also prints the largest relative difference of the outputs and gradients.
"""
import argparse
import statistics
import time

import numpy as np
import numba

import minstn as mt
import minstn.nn.functional as NF
from _common import describe_run


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--batch", type=int, default=256)
    p.add_argument("names", nargs="*")
    args = p.parse_args(argv)
    import torch
    torch.set_num_threads(numba.get_num_threads())
    tf = torch.nn.functional
    describe_run(f"numpy {np.__version__}, numba {numba.__version__} ({numba.get_num_threads()} threads), "
                 f"torch {torch.__version__} ({torch.get_num_threads()} threads)\n")
    rng = np.random.default_rng(0)
    n = args.batch

    def arr(shape, scale=1.0):
        return (rng.standard_normal(shape) * scale).astype(np.float32)

    conv = (lambda x, w, b: NF.conv2d(x, w, b), lambda x, w, b: tf.conv2d(x, w, b))
    pool = (lambda x: NF.max_pool2d(x, 2), lambda x: tf.max_pool2d(x, 2))
    linear = (lambda x, w, b: NF.linear(x, w, b), lambda x, w, b: tf.linear(x, w, b))
    cases = {
        "conv1": conv + ([arr((n, 1, 42, 42)), arr((64, 1, 9, 9), 0.1), np.zeros(64, np.float32)],),
        "pool1": pool + ([arr((n, 64, 34, 34))],),
        "conv2": conv + ([arr((n, 64, 17, 17)), arr((64, 64, 7, 7), 0.02), np.zeros(64, np.float32)],),
        "pool2": pool + ([arr((n, 64, 11, 11))],),
        "lconv2": conv + ([arr((n, 20, 10, 10)), arr((20, 20, 5, 5), 0.05), np.zeros(20, np.float32)],),
        "fc1": linear + ([arr((n, 1764)), arr((175, 1764), 0.02), np.zeros(175, np.float32)],),
        "lfc1": linear + ([arr((n, 1764)), arr((32, 1764), 0.02), np.zeros(32, np.float32)],),
    }

    def run_minstn(op, *arrays):
        ts = [mt.tensor(a, requires_grad=True) for a in arrays]
        t0 = time.perf_counter()
        y = op(*ts)
        t1 = time.perf_counter()
        y.backward(np.ones(y.shape, np.float32))
        t2 = time.perf_counter()
        return t1 - t0, t2 - t1, [y.data] + [t.grad for t in ts]

    def run_torch(op, *arrays):
        ts = [torch.tensor(a, requires_grad=True) for a in arrays]
        t0 = time.perf_counter()
        y = op(*ts)
        t1 = time.perf_counter()
        y.backward(torch.ones_like(y))
        t2 = time.perf_counter()
        return t1 - t0, t2 - t1, [y.detach().numpy()] + [t.grad.numpy() for t in ts]

    print(f"{'layer':8s}{'minstn fwd':>12s}{'bwd':>9s}{'torch fwd':>12s}{'bwd':>9s}"
          f"{'minstn/torch f+b':>18s}{'max rel diff':>14s}   (ms)")
    total = [0.0, 0.0]
    for name in args.names or cases:
        op, top, arrays = cases[name]
        a, b = run_minstn(op, *arrays), run_torch(top, *arrays)   # warm-up (JIT)
        diff = max(float(np.max(np.abs(u - v)) / (np.max(np.abs(v)) + 1e-30)) for u, v in zip(a[2], b[2]))
        M, T = [], []
        for _ in range(args.repeats):
            M.append(run_minstn(op, *arrays)[:2])
            T.append(run_torch(top, *arrays)[:2])
        mf, mb = (statistics.median(m[i] for m in M) * 1e3 for i in (0, 1))
        tf_, tb = (statistics.median(t[i] for t in T) * 1e3 for i in (0, 1))
        total[0] += mf + mb
        total[1] += tf_ + tb
        print(f"{name:8s}{mf:12.1f}{mb:9.1f}{tf_:12.1f}{tb:9.1f}{(mf + mb) / (tf_ + tb):18.2f}{diff:14.1e}",
              flush=True)
    print(f"{'sum':8s}{'':12s}{total[0]:9.0f}{'':12s}{total[1]:9.0f}{total[0] / total[1]:18.2f}")


if __name__ == "__main__":
    main()
