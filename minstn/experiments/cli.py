"""The ``minstn`` command line: ``train``, ``evaluate``, ``info``, ``warmup``, ``reproduce``.

    minstn train                                   # the main job: a transformer on RTS digits
    minstn train --model fcn --distortion r --epochs 5 --out runs/fcn-r
    minstn evaluate runs/fcn-r                     # the same test error, recomputed
    minstn info                                    # version, backends, where MNIST is
    minstn warmup                                  # compile the Numba kernels ahead of a class

Each subcommand is one ``add_<name>(subparsers)`` function that declares its flags
and sets ``handler``; a new subcommand is one more such function added to
:data:`SUBCOMMANDS`. Bad arguments (and contradictory ones) are errors with a one-line
message and exit status 2, a failure at run time (missing or broken data or
checkpoint, full disk, a run that diverges) exits with status 1, Ctrl-C with 130 and
SIGTERM with 143 after saving a checkpoint; never a traceback, unless ``--debug``.
"""

from __future__ import annotations

import argparse
import signal
import sys
import traceback
from pathlib import Path

from .console import UsageError, check_data_dir, fraction, non_negative_float, non_negative_int, positive_float, positive_int

__all__ = ["main", "build_parser", "SUBCOMMANDS"]


# --- subcommands ---------------------------------------------------------------------

class _DefaultsHelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Adds "(default: X)" to each flag's help, except where the default is None (the flag
    means "unset", and its help says what that does) and for on/off switches (off unless given)."""

    def _get_help_string(self, action):
        if action.default is None or action.nargs == 0:
            return action.help
        return super()._get_help_string(action)


def add_train(subparsers) -> None:
    from ..backend import BACKENDS
    from ..transforms import TRANSFORMS
    from .loop import OPTIMIZERS, SCHEDULES
    from .train import MODELS, TrainConfig

    d = TrainConfig()
    p = subparsers.add_parser(
        "train", help="train a classifier of section 4.1 on (distorted) digits",
        description="Train FCN / CNN / ST-FCN / ST-CNN (Jaderberg et al. 2015, section 4.1) and write a "
                    "checkpoint, metrics.json and figures to --out. Uses MNIST if found (--data-dir, "
                    "$MINSTN_DATA, ~/.cache/minstn/mnist), else the embedded glyph digits; never downloads "
                    "unless --dataset mnist is given.",
        formatter_class=_DefaultsHelpFormatter)
    _add_data_options(p, d)
    p.add_argument("--model", choices=MODELS, default=d.model, help="classifier of section 4.1")
    p.add_argument("--transform", choices=tuple(TRANSFORMS), default=None,
                   help=f"the ST models' transformation (default: {d.transform})")
    p.add_argument("--epochs", type=positive_int, default=d.epochs, help="passes over the training digits")
    p.add_argument("--batch-size", type=positive_int, default=d.batch_size, help="digits per SGD step")
    p.add_argument("--lr", type=positive_float, default=d.lr, help="learning rate (the peak, with onecycle)")
    p.add_argument("--optimizer", choices=OPTIMIZERS, default=d.optimizer, help="update rule")
    p.add_argument("--momentum", type=non_negative_float, default=None, help=f"SGD momentum (default: {d.momentum})")
    p.add_argument("--schedule", choices=SCHEDULES, default=d.schedule,
                   help="learning-rate schedule over the whole run: constant, step (/10 every --lr-step "
                        "updates), cosine (down to 0), onecycle (warm-up over --warmup of the run, then down)")
    p.add_argument("--warmup", type=fraction, default=None,
                   help=f"onecycle: share of the run warming up (default: {d.warmup})")
    p.add_argument("--lr-step", type=positive_int, default=d.lr_step,
                   help="step: updates between two divisions by 10 (unset: a third of the run)")
    p.add_argument("--loc-lr-scale", type=positive_float, default=None,
                   help=f"the localisation nets learn at lr times this (the paper: 0.1 on SVHN; "
                        f"default: {d.loc_lr_scale})")
    p.add_argument("--clip", type=positive_float, default=d.clip,
                   help="clip the gradients' global norm to this before each update (unset: no clipping)")
    p.add_argument("--weight-decay", type=non_negative_float, default=d.weight_decay,
                   help="weight decay (L2 for sgd and adam, decoupled for adamw)")
    p.add_argument("--guard", action="store_true",
                   help="when the transformer collapses (grid off the canvas or shrunk to a point), restore "
                        "the last healthy weights and lower the localisation lr tenfold")
    p.add_argument("--train-size", type=positive_int, default=d.train_size, help="at most this many training digits")
    p.add_argument("--out", default=d.out, help="output folder (checkpoint, metrics.json, figures)")
    p.add_argument("--backend", choices=BACKENDS, default=None, help="sampler backend; unset: the current one (numba)")
    p.add_argument("--threads", type=positive_int, default=None,
                   help="CPU threads for the layer kernels and the sampler (BLAS then runs on one "
                        "thread inside each); unset: the CPUs this process may use. On a machine "
                        "shared with other jobs, fewer threads than cores leaves them room")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--resume", action="store_true",
                   help="continue the run in --out from its last finished epoch (its own settings)")
    p.add_argument("--overwrite", action="store_true", help="replace the run in --out (default: refuse)")
    p.set_defaults(handler=run_train)


def _add_data_options(p, defaults) -> None:
    """The options that say which test digits a run uses (shared by train and evaluate);
    ``defaults`` None: unset, i.e. the checkpoint's own."""
    from ..data import DATASETS, DISTORTIONS

    d = (lambda name: None) if defaults is None else (lambda name: getattr(defaults, name))
    p.add_argument("--data-dir", default=None, help="folder with MNIST IDX files")
    p.add_argument("--dataset", choices=DATASETS, default=None,
                   help="digits to use; unset: " + ("MNIST if found, else the embedded glyphs" if defaults
                                                    else "the checkpoint's"))
    p.add_argument("--distortion", choices=DISTORTIONS, default=d("distortion"),
                   help="none, or a distortion of section 4.1: rotated, rot+trans+scale (42 px), "
                        "projective, elastic, translated-cluttered (60 px)")
    p.add_argument("--seed", type=non_negative_int, default=d("seed"),
                   help="seed of the weights, the split and the distortions" if defaults is not None else
                   "seed of the split and the test distortions; unset: the checkpoint's")
    p.add_argument("--test-size", type=positive_int, default=d("test_size"), help="at most this many test digits")


def _train_config(args):
    """The TrainConfig of ``minstn train``'s flags, refusing flags that would be ignored."""
    import dataclasses

    from ..models import is_st_model
    from .train import TrainConfig

    given = {k: v for k, v in vars(args).items() if v is not None}
    contradictions = [
        ("transform" in given and not is_st_model(args.model), f"--transform: {args.model} has no spatial transformer"),
        ("loc_lr_scale" in given and not is_st_model(args.model),
         f"--loc-lr-scale: {args.model} has no localisation net"),
        (args.guard and not is_st_model(args.model), f"--guard: {args.model} has no spatial transformer to guard"),
        ("momentum" in given and args.optimizer != "sgd", f"--momentum: --optimizer {args.optimizer} has no momentum"),
        ("warmup" in given and args.schedule != "onecycle", f"--warmup goes with --schedule onecycle, "
                                                              f"not {args.schedule}"),
        ("lr_step" in given and args.schedule != "step", f"--lr-step goes with --schedule step, not {args.schedule}"),
    ]
    for bad, message in contradictions:
        if bad:
            raise UsageError(message)
    check_data_dir(args.data_dir, args.dataset)
    names = {f.name for f in dataclasses.fields(TrainConfig)}
    return TrainConfig(**{k: v for k, v in given.items() if k in names}, progress=not args.no_progress)


def run_train(args) -> int:
    from ..checkpoint import load_config
    from .train import TrainConfig, train

    if args.resume:
        if args.overwrite:
            raise UsageError("--resume and --overwrite contradict each other: continue the run, or replace it")
        if not Path(args.out, "config.json").is_file():
            raise UsageError(f"--resume: {args.out} holds no run to resume")
        # the stored settings, so that the run continues as it was configured
        stored = load_config(args.out)
        config = TrainConfig(**{k: v for k, v in stored.items() if k in TrainConfig.__dataclass_fields__})
        config.out, config.progress = args.out, not args.no_progress
    else:
        config = _train_config(args)
    metrics = train(config, resume=args.resume, overwrite=args.overwrite)
    if metrics["status"] != "done":
        return 1
    print(f"test error {100 * metrics['test_error']:.2f}% ({metrics['test_size']} digits); wrote {args.out}")
    return 0


def add_evaluate(subparsers) -> None:
    p = subparsers.add_parser("evaluate", help="recompute the test error of a checkpoint",
                              description="Rebuild the model and test set of a checkpoint folder written by "
                                          "`minstn train` and print its test error and the health of its "
                                          "transformer. The data options evaluate on another test set.")
    p.add_argument("checkpoint", help="folder holding model.npz and config.json")
    _add_data_options(p, None)
    p.add_argument("--allow-unfinished", action="store_true",
                   help="evaluate a run that did not finish (diverged, collapsed, interrupted)")
    p.set_defaults(handler=run_evaluate)


def run_evaluate(args) -> int:
    from .train import evaluate

    if args.data_dir is not None and not Path(args.data_dir).is_dir():
        raise UsageError(f"--data-dir {args.data_dir} is not a folder")
    result = evaluate(args.checkpoint, data_dir=args.data_dir, dataset=args.dataset, distortion=args.distortion,
                      seed=args.seed, test_size=args.test_size, allow_unfinished=args.allow_unfinished)
    print(f"test error {100 * result['test_error']:.2f}% ({result['test_size']} digits, "
          f"{result['model']}, distortion {result['distortion']})")
    health = result["health"]
    if health is not None:
        extra = "" if "scale" not in health else (f", scale {health['scale']:.2f}, "
                                                  f"rotation {health['rotation']:+.1f} deg")
        print(f"transformer: theta shift {health['theta_shift']:.3f}, {100 * health['off_canvas']:.1f}% of the "
              f"sampling points off the canvas, grid spread {health['spread']:.2f}{extra}")
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
    parser.add_argument("--debug", action="store_true", help="show the traceback of an error")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for add in SUBCOMMANDS:
        add(subparsers)
    return parser


class Terminated(KeyboardInterrupt):
    """SIGTERM, handled like Ctrl-C (the run saves its checkpoint and says "interrupted")."""


def _terminate(signum, frame):
    raise Terminated()


def main(argv=None) -> int:
    """Entry point of the ``minstn`` console script; returns the exit status.

    After Ctrl-C or SIGTERM, further ones are ignored: they would only cut the exit short.
    Called with ``argv`` (from Python, e.g. a test), the signal handlers are restored on
    return; as the console script (``argv`` None) they stay ignored until the process has
    exited, since a Ctrl-C arriving after the restore would kill it without its exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "handler", None) is None:
        parser.print_help()
        return 0
    previous = signal.getsignal(signal.SIGINT), signal.signal(signal.SIGTERM, _terminate)
    exiting = False
    try:
        return args.handler(args)
    except KeyboardInterrupt as err:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        exiting = argv is None
        print("terminated" if isinstance(err, Terminated) else "interrupted", file=sys.stderr)
        return 143 if isinstance(err, Terminated) else 130
    except Exception as err:  # noqa: BLE001 - the CLI promises a message, not a traceback
        if args.debug:
            traceback.print_exc()
        usage = isinstance(err, UsageError)
        if isinstance(err, MemoryError):
            message = f"not enough memory: {err or 'an allocation failed'}; try smaller sizes"
        elif usage or isinstance(err, (ValueError, OSError, RuntimeError)):
            message = str(err)
        else:
            message = f"{type(err).__name__}: {err}"
        print(f"minstn {args.command}: error: {message}", file=sys.stderr)
        return 2 if usage else 1
    finally:
        if not exiting:
            signal.signal(signal.SIGINT, previous[0])
            signal.signal(signal.SIGTERM, previous[1])


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
