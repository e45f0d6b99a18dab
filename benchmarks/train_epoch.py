"""Benchmark: one `minstn train` epoch end to end, minstn vs the same loop in PyTorch.

    python benchmarks/train_epoch.py [--model st-cnn] [--epochs 2] [--threads 2]
                                     [--train-size 10000] [--batch-size 64]

An epoch is what ``minstn train`` times per epoch (``metrics.json`` "seconds"): fresh
distortions of every training digit (RTS, 42x42, the numpy code of ``minstn.data``),
the shuffled mini-batch steps (Adam, lr 1e-3, batch 64 by default: ``minstn train``'s
defaults), and the test error on the distorted test digits. Both frameworks run the
same data code on the same digits (the real MNIST test set split 8,000 / 2,000, or the
glyphs when MNIST is not found), the same batches and the same initial weights; only
the model, loss and optimiser differ (minstn's vs torch's). Each framework runs in its own
worker process; epochs are interleaved (minstn epoch 1, torch epoch 1, minstn epoch 2,
...), so load from other jobs hits both alike. Printed: seconds per epoch, the ratio,
the training steps' GFLOP/s (forward + backward multiply-adds of the Conv2d / Linear
layers; evaluation and data not counted), the test error after each epoch, peak RSS.
"""
import argparse
import json
import os
import subprocess
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_DATA = os.path.join(HERE, "..", "..", "shared", "data", "mnist")
sys.path.insert(0, HERE)
from train_step import build_torch_model, describe, peak_rss_mb, step_flops  # noqa: E402


def config_of(args):
    from minstn.experiments import TrainConfig
    return TrainConfig(data_dir=args.data_dir, model=args.model, epochs=args.epochs, train_size=args.train_size,
                       batch_size=args.batch_size, seed=args.seed, progress=False, threads=args.threads)


def worker(args):
    import minstn as mt
    from minstn.data import batches, distortion_seed, prepare_images
    from minstn.experiments import error_rate, make_optimizer, train_epoch
    from minstn.experiments.train import make_model, prepare_data
    config = config_of(args)
    mt.set_num_threads(args.threads)
    data, x_test, _ = prepare_data(config, announce=lambda s: None)
    mt.manual_seed(config.seed)
    model = make_model(config, x_test.shape[-1])
    if args.worker == "minstn":
        opt = make_optimizer(model, config.optimizer, config.lr)

        def epoch(e):
            x = prepare_images(data.x_train, config.distortion, distortion_seed(config.seed, "train"), e)
            stats = train_epoch(model, opt, x, data.y_train, batch_size=config.batch_size, seed=config.seed, epoch=e)
            return stats["train_loss"], error_rate(model, x_test, data.y_test)
    else:
        import torch
        torch.set_num_threads(args.threads)
        tmodel = build_torch_model(torch, describe(model), model.state_dict())
        opt = torch.optim.Adam(tmodel.parameters(), lr=config.lr)
        ytest = torch.from_numpy(data.y_test)

        def epoch(e):
            x = prepare_images(data.x_train, config.distortion, distortion_seed(config.seed, "train"), e)
            tmodel.train()
            total, seen = 0.0, 0
            for xb, yb in batches(x, data.y_train, config.batch_size, seed=config.seed, epoch=e):  # train_epoch's
                loss = torch.nn.functional.cross_entropy(tmodel(torch.from_numpy(xb)), torch.from_numpy(yb))
                opt.zero_grad()
                loss.backward()
                opt.step()
                total, seen = total + loss.item() * len(yb), seen + len(yb)
            tmodel.eval()
            with torch.no_grad():
                pred = torch.cat([tmodel(torch.from_numpy(x_test[i:i + 500])).argmax(1)
                                  for i in range(0, len(x_test), 500)])
            return total / seen, float((pred != ytest).float().mean())

    print("ready", flush=True)
    for line in sys.stdin:
        cmd = line.split()
        if cmd[0] == "epoch":
            t0 = time.perf_counter()
            loss, err = epoch(int(cmd[1]))
            print(json.dumps({"s": time.perf_counter() - t0, "loss": loss, "error": err}), flush=True)
        else:
            print(json.dumps({"peak_mb": peak_rss_mb()}), flush=True)
            return


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="st-cnn")
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--train-size", type=int, default=10_000)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--data-dir", default=os.environ.get("MINSTN_DATA", DEFAULT_DATA if os.path.isdir(DEFAULT_DATA) else None),
                   help="MNIST folder (default: $MINSTN_DATA, else ../shared/data/mnist beside the repository)")
    p.add_argument("--worker", choices=["minstn", "torch"], help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker:
        return worker(args)
    import numba
    import torch
    from _common import describe_run
    from minstn.experiments.train import make_model, prepare_data
    describe_run(f"numpy {np.__version__}, numba {numba.__version__}, torch {torch.__version__}; "
                 f"{args.threads} threads each")
    config = config_of(args)
    data, x_test, dataset = prepare_data(config, announce=lambda s: None)
    model = make_model(config, x_test.shape[-1])
    flops = step_flops(model, 1, size=x_test.shape[-1]) * len(data.x_train)  # linear in the batch
    print(f"{args.model}, {len(data.x_train)} training digits ({data.source}), {len(x_test)} test digits, "
          f"batch {args.batch_size}, Adam lr {config.lr}; training steps: {flops / 1e9:.0f} GFLOP per epoch\n")
    base = [a for a in sys.argv[1:]]
    workers = {}
    for kind in ("minstn", "torch"):
        proc = subprocess.Popen([sys.executable, os.path.abspath(__file__), *base, "--worker", kind],
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1)
        if proc.stdout.readline().strip() != "ready":
            raise SystemExit(f"{kind} worker failed to start")
        workers[kind] = proc

    def ask(kind, cmd):
        workers[kind].stdin.write(cmd + "\n")
        workers[kind].stdin.flush()
        return json.loads(workers[kind].stdout.readline())

    print(f"{'epoch':>5}{'minstn s':>10}{'torch s':>9}{'ratio':>7}{'mt GF/s':>9}{'th GF/s':>9}"
          f"   test error minstn / torch")
    times = {"minstn": [], "torch": []}
    for e in range(1, args.epochs + 1):
        r = {k: ask(k, f"epoch {e}") for k in workers}
        for k in workers:
            times[k].append(r[k]["s"])
        m, t = r["minstn"]["s"], r["torch"]["s"]
        print(f"{e:>5}{m:>10.1f}{t:>9.1f}{m / t:>7.2f}{flops / m / 1e9:>9.0f}{flops / t / 1e9:>9.0f}"
              f"   {100 * r['minstn']['error']:.2f}% / {100 * r['torch']['error']:.2f}%", flush=True)
    rss = {k: ask(k, "done")["peak_mb"] for k in workers}
    m, t = float(np.median(times["minstn"])), float(np.median(times["torch"]))
    print(f"\nmedian epoch: minstn {m:.1f} s, torch {t:.1f} s, minstn/torch {m / t:.2f}; "
          f"peak RSS minstn {rss['minstn']:.0f} MB, torch {rss['torch']:.0f} MB")
    print(f"load average at the end: {' '.join(f'{v:.2f}' for v in os.getloadavg())}")


if __name__ == "__main__":
    main()
