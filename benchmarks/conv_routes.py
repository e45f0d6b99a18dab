"""Benchmark: the two CPU routes of Conv2d, im2col and the DFT, on the paper's models' convolutions.

    python benchmarks/conv_routes.py [--batches 64 256] [--repeats 9] [--threads N]

``minstn.nn.functional.conv2d`` takes the DFT route (``minstn.kernels.conv_dft``) where
``conv_dft.dft_is_cheaper`` counts fewer than half the multiply-adds, and im2col
(``minstn.kernels.conv_cpu``) elsewhere. This script checks that choice: for every
convolution of the CNN, ST-CNN and ST-CNN Multi at 28, 42 and 60 pixels (1 channel) and
of MNIST addition's models (42 pixels, 2 channels), it times the forward and the
backward (input and weight gradients) of both routes, interleaved in one process,
median ms of ``--repeats``, and prints which route the cost model takes and the ratio
im2col / DFT (above 1: the DFT route is faster). The shapes are found by running each
model once on zeros.
"""
import argparse

import numpy as np

import minstn as mt
import minstn.nn.functional as NF
from _common import describe_run, interleaved_median_ms
from minstn.kernels import conv_cpu, conv_dft
from minstn.models import build_model

MODELS = [(name, size, channels, classes) for name in ("cnn", "st-cnn", "st-cnn-multi")
          for size, channels, classes in ((28, 1, 10), (42, 1, 10), (60, 1, 10), (42, 2, 19))]


def conv_shapes() -> list:
    """``(x_shape without the batch, w_shape, models)`` of every stride-1 unpadded convolution."""
    seen, original = {}, NF.conv2d

    for name, size, channels, classes in MODELS:
        def spy(x, weight, bias=None, stride=1, padding=0, *rest, **kw):
            if stride in (1, (1, 1)) and padding in (0, (0, 0)):
                seen.setdefault((tuple(x.shape[1:]), tuple(weight.shape)), []).append(f"{name} {size}/{channels}")
            return original(x, weight, bias, stride, padding, *rest, **kw)
        NF.conv2d = spy
        try:
            model = build_model(name, in_size=size, num_classes=classes, in_channels=channels, transform="affine")
            model(mt.tensor(np.zeros((1, channels, size, size), np.float32)))
        finally:
            NF.conv2d = original
    return [(x, w, models) for (x, w), models in seen.items()]


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--batches", type=int, nargs="+", default=[64, 256])
    p.add_argument("--repeats", type=int, default=9)
    p.add_argument("--threads", type=int, default=None)
    args = p.parse_args(argv)
    if args.threads:
        mt.set_num_threads(args.threads)
    import numba
    describe_run(f"numpy {np.__version__}, numba {numba.__version__}, minstn {mt.get_num_threads()} threads")
    print(f"\n{'input':<14}{'weight':<16}{'batch':>6}{'route':>7}{'im2col f+b':>12}{'DFT f+b':>10}{'ratio':>7}"
          f"  (ms, median of {args.repeats}; ratio im2col / DFT)")
    rng = np.random.default_rng(0)
    for x_shape, w_shape, models in conv_shapes():
        for batch in args.batches:
            x = rng.standard_normal((batch, *x_shape)).astype(np.float32)
            w = (0.05 * rng.standard_normal(w_shape)).astype(np.float32)
            b = np.zeros(w_shape[0], np.float32)
            out_shape = (batch, w_shape[0], x_shape[1] - w_shape[2] + 1, x_shape[2] - w_shape[3] + 1)
            g = rng.standard_normal(out_shape).astype(np.float32)

            def im2col():
                conv_cpu.conv2d_forward(x, w, b, (1, 1), (0, 0))
                conv_cpu.conv2d_backward(g, x, w, (1, 1), (0, 0))

            def dft():
                _, saved = conv_dft.conv2d_dft_forward(x, w, b)
                conv_dft.conv2d_dft_backward(g, saved)
            ms = interleaved_median_ms({"im2col": im2col, "dft": dft}, args.repeats)
            route = "DFT" if conv_dft.dft_is_cheaper(x.shape, w_shape, (1, 1), (0, 0)) else "im2col"
            print(f"{str(x_shape):<14}{str(w_shape):<16}{batch:>6}{route:>7}{ms['im2col']:>12.1f}{ms['dft']:>10.1f}"
                  f"{ms['im2col'] / ms['dft']:>7.2f}  {', '.join(models)}", flush=True)


if __name__ == "__main__":
    main()
