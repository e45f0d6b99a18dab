"""The calls of ``tests/test_first_use.py``: every sampler option, transform and layer, forward
and backward through the public API, on fixed random inputs.

    python tests/first_use_cases.py OUT.npz     # saves every result, prints which path ran

The test runs this file in a fresh process with an empty Numba cache (the first calls are
answered by the NumPy twins) and calls ``cases()`` itself on the compiled kernels.
"""
import json
import sys

import numpy as np

import minstn as mt
import minstn.functional as F
from minstn import nn
from minstn.kernels import warm
from minstn.models import build_model
from minstn.transforms import TRANSFORMS

MODES = ("bilinear", "nearest")
PADDINGS = ("zeros", "border", "reflection")


def _sampler(rng, u, theta_or_params, make_grid, **options):
    """Forward, then backward of a random linear loss: the output and every gradient."""
    u = mt.tensor(u, requires_grad=True)
    p = mt.tensor(theta_or_params, requires_grad=True)
    out = F.grid_sample(u, make_grid(p), **options)
    (out * mt.tensor(rng.standard_normal(out.shape).astype(out.dtype))).sum().backward()
    return {"output": out.data, "grad_input": u.grad, "grad_params": p.grad}


def cases() -> dict:
    """{case name: {result name: array}}, the same arrays on every run."""
    rng = np.random.default_rng(0)
    results = {}
    size = (2, 3, 4, 7)
    u64 = rng.standard_normal((2, 3, 5, 6))
    theta64 = np.tile(np.array([[1.1, 0.2, 0.1], [-0.3, 0.9, -0.2]]), (2, 1, 1)) + 0.2 * rng.standard_normal((2, 2, 3))
    for mode in MODES:
        for padding in PADDINGS:
            for ac in (False, True):
                results[f"{mode}-{padding}-align{ac}"] = _sampler(
                    rng, u64, theta64, lambda t, ac=ac: F.affine_grid(t, size, align_corners=ac),
                    mode=mode, padding_mode=padding, align_corners=ac)
    # float32 and large enough for the parallel kernels (as in a training step)
    u32 = rng.standard_normal((64, 1, 28, 28)).astype(np.float32)
    theta32 = np.tile(np.array([[0.9, -0.1, 0.05], [0.1, 0.9, -0.05]], np.float32), (64, 1, 1))
    results["float32-64x28x28"] = _sampler(rng, u32, theta32, lambda t: F.affine_grid(t, u32.shape))
    for name in ("attention", "projective", "tps"):
        spec = TRANSFORMS[name]
        params = spec.identity_params(np.float64)[None].repeat(2, 0) + 0.05 * rng.standard_normal((2, spec.n_params))
        results[f"transform-{name}"] = _sampler(rng, u64, params, lambda p, s=spec: s.make_grid(p, size, False))
    # max pooling with overlapping windows: a pixel wins several windows (the backward adds)
    x = mt.tensor(rng.standard_normal((2, 3, 9, 9)), requires_grad=True)
    y = nn.MaxPool2d(3, stride=2)(x)
    (y * mt.tensor(rng.standard_normal(y.shape))).sum().backward()
    results["max-pool-3-stride-2"] = {"output": y.data, "grad_input": x.grad}
    # one ST-CNN training step: every layer kind, the sampler and max pooling together
    mt.manual_seed(0)
    model = build_model("st-cnn", in_size=28)
    loss = F.cross_entropy(model(mt.tensor(u32[:8])), rng.integers(0, 10, 8))
    loss.backward()
    results["st-cnn-step"] = {"loss": loss.data, **{f"grad {k}": p.grad for k, p in model.named_parameters()}}
    return results


if __name__ == "__main__":
    flat = {f"{case}/{key}": value for case, found in cases().items() for key, value in found.items()}
    np.savez(sys.argv[1], **flat)
    print(json.dumps({f"{host} {path}": n for (host, path), n in warm.calls.items()}))
