"""The ``minstn`` command line: ``minstn train``, ``minstn evaluate``, ``minstn info``.

    minstn train                                   # ST-CNN on RTS digits, 3 epochs
    minstn train --model fcn --distortion r --epochs 5 --out runs/fcn-r
    minstn evaluate runs/fcn-r                     # the same test error, recomputed
    minstn info                                    # version, backends, where MNIST is
    minstn warmup                                  # compile the Numba kernels ahead of a class

Each subcommand is one ``add_<name>(subparsers)`` function that declares its flags
and sets ``handler``; a new subcommand (e.g. ``reproduce``) is one more such function
added to :data:`SUBCOMMANDS`. Bad arguments are argparse errors (usage + message,
exit status 2), never tracebacks; a run that diverges exits with status 1, Ctrl-C
with 130 after saving a checkpoint.
"""

from __future__ import annotations

import argparse
import sys

from .console import non_negative_float, non_negative_int, positive_float, positive_int

__all__ = ["main", "build_parser", "SUBCOMMANDS"]


# --- subcommands ---------------------------------------------------------------------

def add_train(subparsers) -> None:
    from ..backend import BACKENDS
    from ..data import DISTORTIONS
    from ..transforms import TRANSFORMS
    from .loop import OPTIMIZERS
    from .train import MODELS, TrainConfig

    d = TrainConfig()
    p = subparsers.add_parser(
        "train", help="train a classifier of section 4.1 on (distorted) digits",
        description="Train FCN / CNN / ST-FCN / ST-CNN (Jaderberg et al. 2015, section 4.1) and write a "
                    "checkpoint, metrics.json and figures to --out. Uses MNIST if found (--data-dir, "
                    "$MINSTN_DATA, ~/.cache/minstn/mnist), else the embedded glyph digits; never downloads "
                    "unless --dataset mnist is given.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--data-dir", default=None, help="folder with MNIST IDX files")
    p.add_argument("--dataset", choices=("mnist", "glyphs"), default=None,
                   help="digits to use; unset: MNIST if found, else the embedded glyphs")
    p.add_argument("--distortion", choices=DISTORTIONS, default=d.distortion,
                   help="none, or a distortion of section 4.1: rotated, rot+trans+scale (42 px), "
                        "projective, elastic, translated-cluttered (60 px)")
    p.add_argument("--model", choices=MODELS, default=d.model, help="classifier of section 4.1")
    p.add_argument("--transform", choices=tuple(TRANSFORMS), default=d.transform,
                   help="the ST models' transformation")
    p.add_argument("--epochs", type=positive_int, default=d.epochs, help="passes over the training digits")
    p.add_argument("--batch-size", type=positive_int, default=d.batch_size, help="digits per SGD step")
    p.add_argument("--lr", type=positive_float, default=d.lr, help="learning rate")
    p.add_argument("--optimizer", choices=OPTIMIZERS, default=d.optimizer, help="update rule")
    p.add_argument("--momentum", type=non_negative_float, default=d.momentum, help="SGD momentum")
    p.add_argument("--seed", type=non_negative_int, default=d.seed, help="seed of weights, split, distortions")
    p.add_argument("--train-size", type=positive_int, default=d.train_size, help="at most this many training digits")
    p.add_argument("--test-size", type=positive_int, default=d.test_size, help="at most this many test digits")
    p.add_argument("--out", default=d.out, help="output folder (checkpoint, metrics.json, figures)")
    p.add_argument("--backend", choices=BACKENDS, default=None, help="sampler backend; unset: the current one (numba)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(handler=run_train)


def run_train(args) -> int:
    from .train import TrainConfig, train

    config = TrainConfig(
        data_dir=args.data_dir, dataset=args.dataset, distortion=args.distortion, model=args.model,
        transform=args.transform, epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
        optimizer=args.optimizer, momentum=args.momentum, seed=args.seed, train_size=args.train_size,
        test_size=args.test_size, out=args.out, backend=args.backend, progress=not args.no_progress)
    metrics = train(config)
    if metrics["status"] != "done":
        return 1
    print(f"test error {100 * metrics['test_error']:.2f}% ({metrics['test_size']} digits); wrote {args.out}")
    return 0


def add_evaluate(subparsers) -> None:
    p = subparsers.add_parser("evaluate", help="recompute the test error of a checkpoint",
                              description="Rebuild the model and test set of a checkpoint folder written by "
                                          "`minstn train` and print its test error.")
    p.add_argument("checkpoint", help="folder holding model.npz and config.json")
    p.add_argument("--data-dir", default=None, help="folder with MNIST IDX files")
    p.set_defaults(handler=run_evaluate)


def run_evaluate(args) -> int:
    from .train import evaluate

    result = evaluate(args.checkpoint, data_dir=args.data_dir)
    print(f"test error {100 * result['test_error']:.2f}% ({result['test_size']} digits, "
          f"{result['model']}, distortion {result['distortion']})")
    return 0


def add_info(subparsers) -> None:
    p = subparsers.add_parser("info", help="version, sampler backends, and whether MNIST was found")
    p.add_argument("--data-dir", default=None, help="also look for MNIST here")
    p.set_defaults(handler=run_info)


def run_info(args) -> int:
    import numba
    import numpy

    from .. import __version__
    from ..backend import BACKENDS, get_backend
    from ..data.mnist import find_mnist, search_dirs

    print(f"minstn {__version__} (numpy {numpy.__version__}, numba {numba.__version__}, "
          f"python {sys.version.split()[0]})")
    print(f"sampler backends: {', '.join(BACKENDS)} (current: {get_backend()})")
    for split in ("train", "test"):
        folder = find_mnist(args.data_dir, split)
        print(f"MNIST {split}: {folder if folder else 'not found'}")
    print("searched: " + ", ".join(str(d) for d in search_dirs(args.data_dir)))
    return 0


# A new subcommand is one ``add_<name>(subparsers)`` function appended here.
def add_reproduce(subparsers) -> None:
    from .reproduce import add_reproduce_parser

    add_reproduce_parser(subparsers)


def add_warmup(subparsers) -> None:
    p = subparsers.add_parser(
        "warmup", help="compile every Numba kernel into the disk cache (run once before a class)",
        description="Compile every Numba kernel minstn runs on the CPU (sampler and layers; float32 and "
                    "float64; serial and parallel) into Numba's on-disk cache ($NUMBA_CACHE_DIR, or "
                    "__pycache__ next to the sources), so that later processes load them in a fraction "
                    "of a second instead of answering first calls with the NumPy twins meanwhile.")
    p.set_defaults(handler=run_warmup)


def run_warmup(args) -> int:
    from ..kernels.warm import warm_up

    seconds = warm_up(report=print)
    print(f"compiled or loaded every kernel in {seconds:.1f} s")
    return 0


SUBCOMMANDS = [add_train, add_evaluate, add_info, add_reproduce, add_warmup]


def build_parser() -> argparse.ArgumentParser:
    from .. import __version__

    parser = argparse.ArgumentParser(
        prog="minstn", description="Spatial Transformer Networks from scratch on NumPy and Numba.")
    parser.add_argument("--version", action="version", version=f"minstn {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for add in SUBCOMMANDS:
        add(subparsers)
    return parser


def main(argv=None) -> int:
    """Entry point of the ``minstn`` console script; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "handler", None) is None:
        parser.print_help()
        return 0
    try:
        return args.handler(args)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except (FileNotFoundError, ValueError, RuntimeError, ImportError) as err:
        # missing data / checkpoint, a checkpoint that does not fit its model (shape
        # mismatch: ValueError, missing keys: RuntimeError), a backend that cannot load:
        # a message, not a traceback
        print(f"minstn {args.command}: error: {err}", file=sys.stderr)
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
