"""Same bytes? This checkout's Linear kernels against another commit's, on every shape the models use.

    python benchmarks/linear_bytes.py REV [--batches 1 7 64 100 256 500] [--threads 1 2]

Collects the (in, out) features of every ``nn.Linear`` in the Table 1 models (FCN, CNN,
ST-FCN and ST-CNN with each transform, on 28x28 and 42x42 inputs) and MNIST addition's
four models, then runs ``kernels/linear_cpu.py`` of git revision REV (imported as in
``ab_step.py``) and of this checkout on the same random float32 operands at each batch
size and thread count, and compares the forward, the input gradient and the weight
gradient byte for byte. A change in how the products are cut into tasks keeps trained
networks identical only if this prints no difference; BLAS sums a dot product in an
order that can depend on the shape of the call, so this is measured, not assumed.
"""
import argparse
import importlib

import numpy as np

from _common import describe_run
from ab_step import import_minstn_of

MODELS = [(name, size, 1, 10, transform) for size in (28, 42)
          for name in ("fcn", "cnn", "st-fcn", "st-cnn") for transform in ("affine", "projective", "tps")]
MODELS += [(name, 42, 2, 19, "affine") for name in ("fcn", "cnn", "2xst-fcn", "st-cnn-multi")]


def linear_shapes() -> list:
    """Sorted ``(in_features, out_features)`` of every Linear layer in MODELS."""
    from minstn import nn
    from minstn.models import build_model
    shapes = set()
    for name, size, channels, classes, transform in MODELS:
        model = build_model(name, in_size=size, num_classes=classes, transform=transform, in_channels=channels)
        shapes |= {(m.in_features, m.out_features) for m in model.modules() if isinstance(m, nn.Linear)}
    return sorted(shapes)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("rev")
    p.add_argument("--batches", type=int, nargs="+", default=[1, 7, 64, 100, 256, 500])
    p.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    args = p.parse_args(argv)
    import tempfile

    import minstn
    from minstn.kernels import linear_cpu as new, threads
    describe_run(f"numpy {np.__version__}; this checkout vs {args.rev}")
    folder = tempfile.mkdtemp()
    old_package = import_minstn_of(args.rev, folder)
    old = importlib.import_module(old_package.__name__ + ".kernels.linear_cpu")
    old_threads = importlib.import_module(old_package.__name__ + ".kernels.threads")
    shapes = linear_shapes()
    print(f"{len(shapes)} Linear shapes (in, out): {shapes}")
    rng = np.random.default_rng(0)
    compared = differ = 0
    for n in args.threads:
        threads.set_num_threads(n)
        old_threads.set_num_threads(n)
        for batch in args.batches:
            for k, o in shapes:
                x, w = rng.standard_normal((batch, k), np.float32), rng.standard_normal((o, k), np.float32)
                b, g = rng.standard_normal(o, np.float32), rng.standard_normal((batch, o), np.float32)
                before = (old.linear_forward(x, w, b), *old.linear_backward(g, x, w))
                after = (new.linear_forward(x, w, b), *new.linear_backward(g, x, w))
                same = [u.tobytes() == v.tobytes() for u, v in zip(before, after)]
                compared += 1
                if not all(same):
                    differ += 1
                    print(f"DIFFERENT: threads {n}, batch {batch}, {k} -> {o}: forward / grad input / grad weight "
                          f"the same: {same}")
    print(f"{compared} shape x batch x thread cases, {differ} with different bytes (minstn {minstn.__file__})")
    return 1 if differ else 0


if __name__ == "__main__":
    raise SystemExit(main())
