"""Benchmark: one training step of CNN, ST-CNN and ST-FCN, minstn vs the same model in PyTorch.

    python benchmarks/train_step.py [--models cnn st-cnn st-fcn] [--batches 64 256]
                                    [--repeats 9] [--threads 2] [--profile]

One step = forward, cross-entropy loss, zero_grad, backward, SGD update (lr 0.01), on a
batch of RTS-sized images (1 x 42 x 42, float32), as in section 4.1 of the paper.

Each framework runs in its OWN worker process (so that neither's threads or memory
disturb the other, and each peak RSS is its own); the driver asks them for one step in
turn (interleaved), so load from other jobs hits both alike, and reports the median
of the repeats after two warm-up steps. The torch model is built from a plain
description of minstn's module tree (same layer names and shapes) and loads minstn's
weights; the driver checks that the first losses agree before timing.

Printed per model and batch: ms per step, the ratio minstn/torch, GFLOP/s (the step's
multiply-adds counted from the layer shapes: forward, weight gradient, and input
gradient where one is needed), and peak RSS of each worker (VmHWM, including its
imports; "base" is the RSS before the first step). The machine's peak is printed as an
estimate (cores x clock x 32 float32 FLOP per cycle for AVX2 with two FMA units) and as
measured by a large float32 matmul. ``--profile`` prints the wall time of each minstn Function (forward, backward) per step.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np

SIZE, CLASSES, LR = 42, 10, 0.01
HERE = os.path.dirname(os.path.abspath(__file__))


# ------------------------------------------------------------ model description ----
def describe(module):
    """minstn module tree -> nested dicts that a torch worker can rebuild without minstn."""
    from minstn import nn
    kind = type(module).__name__
    if isinstance(module, nn.Sequential):
        return {"kind": "Sequential", "children": [describe(m) for m in module]}
    if isinstance(module, nn.Linear):
        return {"kind": kind, "args": [module.in_features, module.out_features], "bias": module.bias is not None}
    if isinstance(module, nn.Conv2d):
        return {"kind": kind, "args": [module.in_channels, module.out_channels, list(module.kernel_size)],
                "stride": list(module.stride), "padding": list(module.padding), "bias": module.bias is not None}
    if isinstance(module, nn.MaxPool2d):
        return {"kind": kind, "args": [module.kernel_size, module.stride]}
    if isinstance(module, (nn.ReLU,)):
        return {"kind": kind}
    if isinstance(module, nn.Flatten):
        return {"kind": kind, "args": [module.start_dim, module.end_dim]}
    if isinstance(module, nn.SpatialTransformer):
        assert module.transform == "affine", "the torch model only knows the affine transform"
        return {"kind": "ST", "localisation": describe(module.localisation),
                "regression": describe(module.regression), "out_size": list(module.out_size),
                "align_corners": module.align_corners, "padding_mode": module.padding_mode, "mode": module.mode}
    if kind == "STClassifier":
        return {"kind": kind, "st": describe(module.st), "classifier": describe(module.classifier)}
    raise TypeError(f"no torch description for {kind}")


def torch_build(torch, d):
    tnn, Fn = torch.nn, torch.nn.functional
    kind = d["kind"]
    if kind == "Sequential":
        return tnn.Sequential(*[torch_build(torch, c) for c in d["children"]])
    if kind == "Linear":
        return tnn.Linear(*d["args"], bias=d["bias"])
    if kind == "Conv2d":
        return tnn.Conv2d(*d["args"], stride=d["stride"], padding=d["padding"], bias=d["bias"])
    if kind == "MaxPool2d":
        return tnn.MaxPool2d(*d["args"])
    if kind == "ReLU":
        return tnn.ReLU()
    if kind == "Flatten":
        return tnn.Flatten(*d["args"])

    class ST(tnn.Module):
        def __init__(self):
            super().__init__()
            self.localisation = torch_build(torch, d["localisation"])
            self.regression = torch_build(torch, d["regression"])

        def forward(self, x):
            N, C = x.shape[:2]
            theta = self.regression(self.localisation(x).flatten(1)).view(N, 2, 3)
            grid = Fn.affine_grid(theta, (N, C, *d["out_size"]), align_corners=d["align_corners"])
            return Fn.grid_sample(x, grid, mode=d["mode"], padding_mode=d["padding_mode"],
                                  align_corners=d["align_corners"])

    class STClassifier(tnn.Module):
        def __init__(self):
            super().__init__()
            self.st = torch_build(torch, d["st"])
            self.classifier = torch_build(torch, d["classifier"])

        def forward(self, x):
            return self.classifier(self.st(x))

    return {"ST": ST, "STClassifier": STClassifier}[kind]()


def build_torch_model(torch, spec, state_dict):
    """The torch model of ``describe``'s ``spec``, holding the weights of ``state_dict`` (arrays)."""
    model = torch_build(torch, spec)
    model.load_state_dict({k: torch.from_numpy(np.array(getattr(v, "data", v))) for k, v in state_dict.items()},
                          strict=True)
    return model


def make_batch(batch, seed=0, size=SIZE):
    """RTS-like inputs: non-negative images in [0, 1], a few bright strokes, and labels."""
    rng = np.random.default_rng(seed)
    x = np.clip(rng.standard_normal((batch, 1, size, size)), 0, None).astype(np.float32)
    x /= x.max()
    return x, rng.integers(0, CLASSES, batch)


def build_minstn(name, seed=0):
    import minstn as mt
    from minstn.models import build_model
    mt.manual_seed(seed)
    model = build_model(name, in_size=SIZE, num_classes=CLASSES)
    if hasattr(model, "st"):  # a non-identity localiser, so that the sampler works on a real transform
        reg = model.st.regression
        reg.weight.data[...] = (0.01 * np.random.default_rng(seed + 1).standard_normal(reg.weight.shape)).astype(np.float32)
    return model


def step_flops(model, batch, size=SIZE):
    """Multiply-adds x 2 of one training step, from the shapes each Conv2d / Linear sees."""
    import minstn as mt
    from minstn import nn
    total = []

    def counting(module, layer_flops):
        forward = module.forward

        def wrapped(x):
            out = forward(x)
            f = layer_flops(x.shape, out.shape)
            total.append(f * (3 if x.requires_grad else 2))   # fwd + grad_w (+ grad_x)
            return out
        module.forward = wrapped
        return forward

    saved = []
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            k = int(np.prod(m.kernel_size)) * m.in_channels
            saved.append((m, counting(m, lambda xs, os_, k=k: 2 * k * int(np.prod(os_)))))
        elif isinstance(m, nn.Linear):
            saved.append((m, counting(m, lambda xs, os_, m=m: 2 * m.in_features * int(np.prod(os_)))))
    x, _ = make_batch(batch, size=size)
    model(mt.Tensor(x))
    for m, forward in saved:
        m.forward = forward
    return sum(total)


# ------------------------------------------------------------------------- workers ----
def peak_rss_mb():
    """This process's peak resident memory (VmHWM). Not ru_maxrss: after fork + exec that
    still holds the parent's peak."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


def worker(args):
    """Build the model, then answer 'step' with the step's seconds, 'done' with the RSS."""
    x, y = make_batch(args.batch)
    if args.worker == "minstn":
        import minstn as mt
        import minstn.functional as F
        from minstn import optim
        if hasattr(mt, "set_num_threads"):
            mt.set_num_threads(args.threads)
        else:  # the code before the thread policy (for before/after runs)
            import numba
            numba.set_num_threads(args.threads)
        model = build_minstn(args.model)
        model.load_state_dict(dict(np.load(args.weights)))
        opt = optim.SGD(model.parameters(), lr=LR)
        model.train()

        def step():
            loss = F.cross_entropy(model(mt.Tensor(x)), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            return loss.item()
    else:
        import torch
        torch.set_num_threads(args.threads)
        with open(args.spec) as f:
            model = build_torch_model(torch, json.load(f), dict(np.load(args.weights)))
        opt = torch.optim.SGD(model.parameters(), lr=LR)
        model.train()
        tx, ty = torch.from_numpy(x), torch.from_numpy(y)

        def step():
            loss = torch.nn.functional.cross_entropy(model(tx), ty)
            opt.zero_grad()
            loss.backward()
            opt.step()
            return loss.item()

    base = peak_rss_mb()
    print("ready", flush=True)
    for line in sys.stdin:
        cmd = line.strip()
        if cmd == "step":
            t0 = time.perf_counter()
            loss = step()
            print(json.dumps({"s": time.perf_counter() - t0, "loss": loss}), flush=True)
        elif cmd == "profile":
            print(json.dumps({"profile": profile_functions(step)}), flush=True)
        elif cmd == "done":
            print(json.dumps({"base_mb": base, "peak_mb": peak_rss_mb()}), flush=True)
            return


def profile_functions(step, steps=3):
    """Wall time of each Function's forward and backward over ``steps`` steps (ms per
    step). Wall time in the calling thread, so work done by the kernel threads counts."""
    from minstn.autograd import Function
    totals, saved = {}, []

    def timed(cls, which, fn):
        def wrapper(ctx, *a):
            t0 = time.perf_counter()
            try:
                return fn(ctx, *a)
            finally:
                key = (cls.__name__, which)
                totals[key] = totals.get(key, 0.0) + time.perf_counter() - t0
        return staticmethod(wrapper)

    todo = list(Function.__subclasses__())
    while todo:
        cls = todo.pop()
        todo.extend(cls.__subclasses__())
        for which in ("forward", "backward"):
            if which in cls.__dict__:
                saved.append((cls, which, cls.__dict__[which]))
                setattr(cls, which, timed(cls, which, cls.__dict__[which].__func__))
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    total = time.perf_counter() - t0
    for cls, which, original in saved:
        setattr(cls, which, original)
    rows = sorted(totals.items(), key=lambda kv: -kv[1])
    lines = [f"    {name + '.' + which:<28}{1e3 * t / steps:9.1f} ms" for (name, which), t in rows if t * 1e3 / steps >= 0.05]
    lines.append(f"    {'rest (graph, optimiser, ...)':<28}{1e3 * (total - sum(totals.values())) / steps:9.1f} ms")
    lines.append(f"    {'step':<28}{1e3 * total / steps:9.1f} ms")
    return "\n".join(lines)


class Worker:
    def __init__(self, kind, model, batch, threads, spec, weights):
        cmd = [sys.executable, os.path.abspath(__file__), "--worker", kind, "--model", model,
               "--batch", str(batch), "--threads", str(threads), "--spec", spec, "--weights", weights]
        self.p = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1)
        if self.p.stdout.readline().strip() != "ready":
            raise SystemExit(f"{kind} worker failed to start")

    def ask(self, cmd):
        self.p.stdin.write(cmd + "\n")
        self.p.stdin.flush()
        return json.loads(self.p.stdout.readline())

    def close(self):
        out = self.ask("done")
        self.p.wait()
        return out


def machine_peak(threads):
    """(estimate from the clock, measured by a 2048^3 float32 matmul) in GFLOP/s."""
    mhz = 0.0
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("cpu MHz"):
                mhz = max(mhz, float(line.split(":")[1]))
    estimate = threads * mhz * 1e-3 * 32
    a = np.ones((2048, 2048), np.float32)
    a @ a
    best = min(_timed(lambda: a @ a) for _ in range(3))
    return estimate, 2 * 2048**3 / best / 1e9


def _timed(fn):
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", nargs="+", default=["cnn", "st-cnn", "st-fcn"])
    p.add_argument("--batches", nargs="+", type=int, default=[64, 256])
    p.add_argument("--repeats", type=int, default=9)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--profile", action="store_true", help="time each minstn Function over 3 steps per case")
    p.add_argument("--worker", choices=["minstn", "torch"], help=argparse.SUPPRESS)
    p.add_argument("--model", help=argparse.SUPPRESS)
    p.add_argument("--batch", type=int, help=argparse.SUPPRESS)
    p.add_argument("--spec", help=argparse.SUPPRESS)
    p.add_argument("--weights", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker:
        return worker(args)

    sys.path.insert(0, HERE)
    import numba
    import torch
    from _common import describe_run
    describe_run(f"numpy {np.__version__}, numba {numba.__version__}, torch {torch.__version__}; "
                 f"{args.threads} threads each")
    est, measured = machine_peak(args.threads)
    print(f"machine peak (float32, {args.threads} cores): estimate {est:.0f} GFLOP/s; "
          f"measured by a 2048^3 matmul here {measured:.0f} GFLOP/s")
    print(f"1 x {SIZE} x {SIZE} float32 inputs, SGD lr {LR}; median of {args.repeats} interleaved "
          f"steps after 2 warm-up steps, each framework in its own process\n")
    print(f"{'model':<8}{'batch':>6}{'minstn ms':>11}{'torch ms':>10}{'ratio':>7}{'GFLOP':>7}"
          f"{'mt GF/s':>8}{'th GF/s':>8}   peak RSS MB minstn (base) / torch (base)")
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.models:
            for batch in args.batches:
                model = build_minstn(name)
                flops = step_flops(model, batch)
                spec, weights = os.path.join(tmp, "spec.json"), os.path.join(tmp, "w.npz")
                with open(spec, "w") as f:
                    json.dump(describe(model), f)
                np.savez(weights, **{k: np.asarray(getattr(v, "data", v)) for k, v in model.state_dict().items()})
                workers = {k: Worker(k, name, batch, args.threads, spec, weights) for k in ("minstn", "torch")}
                first = {k: w.ask("step")["loss"] for k, w in workers.items()}
                if not abs(first["minstn"] - first["torch"]) <= 1e-4 * max(1.0, abs(first["torch"])):
                    raise SystemExit(f"{name}: first losses differ: {first}")
                for w in workers.values():
                    w.ask("step")
                times = {k: [] for k in workers}
                for _ in range(args.repeats):
                    for k, w in workers.items():
                        times[k].append(w.ask("step")["s"])
                prof = workers["minstn"].ask("profile")["profile"] if args.profile else None
                rss = {k: w.close() for k, w in workers.items()}
                m, t = (1e3 * statistics.median(times[k]) for k in ("minstn", "torch"))
                print(f"{name:<8}{batch:>6}{m:>11.1f}{t:>10.1f}{m / t:>7.2f}{flops / 1e9:>7.1f}"
                      f"{flops / m / 1e6:>8.0f}{flops / t / 1e6:>8.0f}   "
                      f"{rss['minstn']['peak_mb']:.0f} ({rss['minstn']['base_mb']:.0f}) / "
                      f"{rss['torch']['peak_mb']:.0f} ({rss['torch']['base_mb']:.0f})", flush=True)
                if prof:
                    print(prof + "\n")
    print(f"\nload average at the end: {' '.join(f'{v:.2f}' for v in os.getloadavg())}")


if __name__ == "__main__":
    main()
