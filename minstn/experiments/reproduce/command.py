"""``minstn reproduce``: the distorted-MNIST experiments of Jaderberg et al. (2015) in one command.

    minstn reproduce table1 --budget small           # Table 1: 8 models x R, RTS, P, E
    minstn reproduce table1 --distortions r,rts,p,e,tc
    minstn reproduce addition --budget small         # MNIST addition (appendix): FCN, CNN, ST-CNN Multi, 2xST-FCN

``run_table1`` and ``run_addition`` train (or read back) every cell of their table
(:mod:`.cells`), with ``jobs > 1`` first in child processes (:mod:`.children`), then
write ``<out>/table1.md`` (or ``addition.md``: test errors in percent, the paper's
number beside each cell, each ST model's lead over its baseline with its standard error
(:mod:`.significance`), the ordering check, and per transformer its mean |theta - I|
and the share of its grid off the canvas), ``<out>/table1.json`` (every cell's
settings, seeds, timings and history) and ``<out>/figures/`` (the right panel of the
paper's Table 1) through :mod:`.report`. Budgets: :mod:`.budgets`; the command's help
text (``HELP``) describes each.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from ...checkpoint import CheckpointError
from ...kernels.warm import wait_for_compiled
from ..console import check_data_dir, non_negative_int, positive_float, positive_int, say
from .budgets import BUDGETS, Budget, Overrides, cell_settings
from .cells import column_data, load_budget_digits, run_cell
from .children import cells_in_children, check_jobs
from .paper import (ADDITION_ROWS, DISTORTION_LABEL, PAPER_ADDITION, PAPER_TABLE1, Cell, parse_distortions,
                    parse_models)
from .curves import learning_curves_figure
from .report import addition_figure, figure_cell, write_figure, write_report
from .significance import family_leads, leads_text

__all__ = ["run_table1", "run_addition", "add_reproduce_parser", "run_reproduce", "HELP"]


def cell_result(cell: Cell, column: str, task: str, children: dict, budget: Budget, seed: int, data: dict,
                 source: str, runs: Path, announce, progress: bool) -> dict:
    """One cell's metrics: from ``children`` if a child process of this invocation trained
    it, else trained here (or read back, if already finished)."""
    if (cell.key, column) in children:
        return dict(children[(cell.key, column)], resumed=False)
    settings = cell_settings(budget, cell, column, seed, task, source)
    return run_cell(cell, budget, column, data, settings, runs, announce, progress)


def _draw(figure, folder: Path, *args, announce) -> bool:
    """Draw a cell's figure from its checkpoint; a checkpoint that cannot be read (a
    truncated or missing file) costs the figure only, with a warning, never the table."""
    try:
        figure(folder, *args)
        return True
    except (OSError, CheckpointError) as err:   # a missing file, or one that cannot be read
        announce(f"warning: no figure for {folder.name}: its checkpoint cannot be read ({err}); "
                 f"delete {folder} to train the cell again")
        return False


def _curves(results, cells, columns, path: Path, title: str, figure_paths: dict, **kw) -> None:
    """The learning-curve figure, when the budget tested after every epoch."""
    if learning_curves_figure(results, cells, columns, path, title, **kw) is not None:
        figure_paths["learning_curves"] = str(path)


@wait_for_compiled()  # the same bytes from an empty and a warm Numba cache (see kernels/warm.py)
def run_table1(budget: str | Budget = "small", data_dir=None, out=None, distortions=None, models=None,
               seed: int = 0, dataset: str | None = None, figures: bool = True, announce=say,
               progress: bool = False, command: str = "", jobs: int = 1, tables: bool = True,
               max_updates: int | None = None, epochs: int | None = None,
               loc_lr_scale: float | None = None, guard: bool = False) -> dict:
    """Train (or read back) every (model, distortion) cell of Table 1; write the table,
    the JSON and the figures. Returns the JSON document as a dict.

    ``jobs > 1`` (named budgets only): first train the unfinished cells in up to ``jobs``
    single-threaded child processes at a time, longest first, then read every cell back
    as a resumed run does. ``tables=False``: train the cells only, write no table, JSON
    or figure (what those child processes run). ``max_updates``: stop every cell after
    that many updates (a slice of a long budget, e.g. to exercise ``full``). ``epochs``:
    train every model, both families, for that many epochs, the budget's schedule
    stretched over them (e.g. the learning curves of ``medium`` to its end).
    ``loc_lr_scale``: the localisation nets learn at the lr times this (the budget's own
    otherwise). ``guard``: a transformer that collapses goes back to its last healthy
    epoch with its localisation lr lowered (:mod:`minstn.experiments.guard`)."""
    t0 = time.perf_counter()
    budget = BUDGETS[budget] if isinstance(budget, str) else budget
    check_jobs(budget, jobs)
    overrides = Overrides(epochs=epochs, max_updates=max_updates, loc_lr_scale=loc_lr_scale, guard=guard)
    budget = overrides.apply(budget)
    cells = models if models and isinstance(models[0], Cell) else parse_models(",".join(models) if models else None)
    columns = distortions if isinstance(distortions, list) else parse_distortions(distortions)
    out = Path(out or f"runs/reproduce-{budget.name}")
    runs = out / "runs"
    digits = load_budget_digits(budget, data_dir, seed, dataset, announce if tables else lambda s: None)
    if tables:
        announce(f"Table 1, budget {budget.name}: {len(cells)} models x {len(columns)} distortions on "
                 f"{len(digits.x_train)} train / {len(digits.x_test)} test digits ({digits.source}); "
                 f"writing to {out}")
    children = {}
    if jobs > 1:
        children = cells_in_children("table1", budget, [(c, d) for d in columns for c in cells], digits.source,
                                     runs, out, data_dir, dataset, seed, progress, jobs, announce, overrides)
    results, figure_paths, test_data = {}, {}, {}
    for d in columns:
        data = column_data(digits, d, budget, seed)
        test_data[d] = data["x_test"], data["y_test"]
        for cell in cells:
            results[(cell.key, d)] = cell_result(cell, d, "table1", children, budget, seed, data, digits.source,
                                                  runs, announce, progress)
        if figures and tables:
            fc = figure_cell(cells, d, results)
            if fc is not None:
                path = out / "figures" / f"table1_{d}.png"
                if _draw(write_figure, runs / f"{fc.key}-{d}", data["x_test"], data["y_test"], path,
                         f"{DISTORTION_LABEL[d]}: {fc.label} ({overrides.label(budget)})", announce=announce):
                    figure_paths[d] = str(path)
    if figures and tables:
        _curves(results, cells, columns, out / "figures" / "table1_learning_curves.png",
                f"Table 1, {overrides.label(budget)}, seed {seed}: test error after each epoch", figure_paths)
    leads = family_leads(results, cells, columns, runs, test_data) if tables else []
    return write_report("table1", "Table 1: distorted MNIST, test error (%)", out, budget, seed, digits.source, cells,
                        columns, results, PAPER_TABLE1, t0, figure_paths, command, jobs, tables, announce,
                        note=leads_text(leads, {c.key: c.label for c in cells}, DISTORTION_LABEL),
                        extra={"leads": leads})


@wait_for_compiled()
def run_addition(budget: str | Budget = "small", data_dir=None, out=None, models=None, seed: int = 0,
                 dataset: str | None = None, figures: bool = True, announce=say, progress: bool = False,
                 command: str = "", jobs: int = 1, tables: bool = True, max_updates: int | None = None,
                 epochs: int | None = None, loc_lr_scale: float | None = None, guard: bool = False) -> dict:
    """MNIST addition (paper appendix): two RTS-distorted digits on two channels of a
    42x42 input, 19 classes (their sum). FCN and CNN baselines vs ST-CNN Multi and 2xST-FCN.
    ``jobs``, ``tables``, ``max_updates``, ``epochs``, ``loc_lr_scale`` and ``guard``: as in
    :func:`run_table1`."""
    t0 = time.perf_counter()
    budget = BUDGETS[budget] if isinstance(budget, str) else budget
    check_jobs(budget, jobs)
    overrides = Overrides(epochs=epochs, max_updates=max_updates, loc_lr_scale=loc_lr_scale, guard=guard)
    budget = overrides.apply(budget.for_task("addition"))
    cells = models if models and isinstance(models[0], Cell) else parse_models(
        ",".join(models) if models else None, ADDITION_ROWS)
    out = Path(out or f"runs/reproduce-{budget.name}")
    runs = out / "runs"
    digits = load_budget_digits(budget, data_dir, seed, dataset, announce if tables else lambda s: None)
    data = column_data(digits, "addition", budget, seed)
    if tables:
        announce(f"MNIST addition, budget {budget.name}: {len(cells)} models, {budget.train_size} train pairs "
                 f"per epoch from {len(digits.x_train)} digits, {budget.test_size} test pairs; writing to {out}")
    children = {}
    if jobs > 1:
        children = cells_in_children("addition", budget, [(c, "addition") for c in cells], digits.source, runs,
                                     out, data_dir, dataset, seed, progress, jobs, announce, overrides)
    results, figure_paths = {}, {}
    for cell in cells:
        m = results[(cell.key, "addition")] = cell_result(cell, "addition", "addition", children, budget, seed,
                                                           data, digits.source, runs, announce, progress)
        if figures and tables and cell.family and m.get("status") == "done":
            path = out / "figures" / f"addition_{cell.key}.png"
            if _draw(addition_figure, runs / f"{cell.key}-addition", data["x_test"], data["y_test"], path,
                     f"MNIST addition: {cell.label} ({overrides.label(budget)})", announce=announce):
                figure_paths[cell.key] = str(path)
    if figures and tables:
        _curves(results, cells, ["addition"], out / "figures" / "addition_learning_curves.png",
                f"MNIST addition, {overrides.label(budget)}, seed {seed}: test error after each epoch", figure_paths,
                column_label={"addition": "addition"})
    note = ("\nPaper numbers for addition are quoted from memory and unverified; the paper's ST model "
            "there is 2xST-CNN.\n")
    # the paper's claim here is a margin (2xST-FCN beats the FCN): each lead with its standard error
    leads = family_leads(results, cells, ["addition"], runs, {"addition": (data["x_test"], data["y_test"])}) \
        if tables else []
    note = leads_text(leads, {c.key: c.label for c in cells}, {"addition": "addition"}) + note
    return write_report("addition", "MNIST addition: test error (%), 19 classes", out, budget, seed, digits.source,
                   cells, ["addition"], results, {k: {"addition": v} for k, v in PAPER_ADDITION.items()}, t0,
                   figure_paths, command, jobs, tables, announce, column_label={"addition": "addition"},
                   note=note, extra={"leads": leads})


# --- command line --------------------------------------------------------------------

HELP = """Reproduce the distorted-MNIST experiments of Jaderberg et al. (2015).

  table1    Table 1: FCN, CNN, ST-FCN and ST-CNN (Aff, Proj, TPS) on the R, RTS, P and E
            distortions (add tc with --distortions). Writes OUT/table1.md (test error in percent,
            paper's number beside each cell; each ST model's lead over its baseline with its
            standard error; each transformer's |theta - I| and share of its grid off the
            canvas), OUT/table1.json (settings, seeds, results of every run) and
            OUT/figures/table1_<distortion>.png (inputs, predicted grids T_theta(G),
            transformer outputs).
  addition  MNIST addition (paper appendix): FCN, CNN, ST-CNN Multi and 2xST-FCN on pairs
            of RTS digits (2 channels, 19 classes). Writes OUT/addition.md/.json/figures.

Budgets:
  tiny   256 train / 128 test digits, 1 epoch (CI smoke test; seconds per cell).
  small  8,000 train / 2,000 test real MNIST digits (a seeded disjoint split of the 10k
         test set when the train split is absent), Adam lr 1e-3 (localisation nets
         too), batch 64, freshly distorted digits each epoch, test
         error after the last epoch. Each family has its own epoch count (the paper's
         ordering compares ST-FCN with FCN and ST-CNN with CNN only): FCN / ST-FCN 10
         epochs (1,250 updates), CNN / ST-CNN 3 epochs (375 updates). 18-21
         minutes of cell time on one core, 9-10 minutes of wall time with --jobs 2
         on 2 cores; run it with --jobs 2 (two single-threaded worker processes, each training one
         cell at a time, use the cores better than one 2-threaded process).
  medium the same 8,000 / 2,000 digits to the end of a decaying schedule: Adam with a one-cycle
         schedule (peak lr 2e-3, warm-up 30% of the updates, then annealed to ~0), the
         test error after every epoch (OUT/figures/<task>_learning_curves.png). table1:
         25 epochs (3,125 updates) for every model, 57 minutes of wall time with --jobs 2
         on 2 cores (30 on a newer 2-core VM, 27-29 on an Intel AVX-512 one). addition: 90 epochs (11,250 updates) for every model, the localisation
         nets at lr / 10 (at the lr, 2xST-FCN's transformers drift off the canvas), 59
         minutes with --jobs 2 on 2 cores (docs/results.md, "Table 1, medium budget").
  full   the paper's schedule: SGD lr 0.01 divided by 10 every 50k iterations, batch
         256, 150k iterations, on the 60k MNIST training set (weeks on a 2-core CPU:
         tens of CPU-hours per conv cell; docs/results.md).

Extra rows: --models st-cnn-multi-aff (a transformer before each conv layer, the second
on feature maps; minstn/models.py). Extra column: --distortions r,rts,p,e,tc.
Full results and discussion (small and medium budgets): docs/results.md.

Parallel cells: --jobs N trains the unfinished cells in up to N child processes at
once (python -m minstn reproduce ... --models M --distortions D --jobs 1
--cells-only --no-figures), each with
OPENBLAS/OMP/MKL/NUMBA_NUM_THREADS=1, longest first (conv family and 42x42 / 60x60
inputs first), then reads every cell back and writes the table, JSON and figures as
with --jobs 1 (named budgets only).

Resuming: each finished cell is stored in OUT/runs/<model>-<distortion>/metrics.json
with its settings; running the same command again reads it back instead of
retraining (change the budget, seed or data and the cell is retrained).
"""


def add_reproduce_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser("reproduce", help="reproduce the paper's distorted-MNIST tables (Table 1, addition)",
                              description=HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("what", choices=("table1", "addition"), help="which experiment")
    p.add_argument("--budget", choices=tuple(BUDGETS), default="small", help="training budget (default: small)")
    p.add_argument("--data-dir", default=None,
                   help="folder with MNIST IDX files (default: $MINSTN_DATA, then ~/.cache/minstn/mnist)")
    p.add_argument("--dataset", choices=("mnist", "glyphs"), default=None,
                   help="force a data set (default: MNIST if found, else the embedded glyph digits)")
    p.add_argument("--out", default=None, help="output folder (default: runs/reproduce-<budget>)")
    p.add_argument("--distortions", default=None,
                   help="comma-separated subset of r,rts,p,e,tc (table1; default r,rts,p,e)")
    p.add_argument("--models", default=None,
                   help="comma-separated models: fcn, cnn, st-fcn-aff, st-fcn-proj, st-fcn-tps, st-cnn-aff, "
                        "st-cnn-proj, st-cnn-tps, st-cnn-multi-aff, 2xst-fcn-aff (default: the 8 rows of "
                        "Table 1; for addition fcn,cnn,st-cnn-multi-aff,2xst-fcn-aff)")
    p.add_argument("--seed", type=non_negative_int, default=0, help="seed of the data split, distortions and weights")
    p.add_argument("--no-figures", action="store_true", help="skip the figures")
    p.add_argument("--progress", action="store_true", help="print every epoch")
    p.add_argument("--jobs", type=positive_int, default=os.cpu_count() or 1, metavar="N",
                   help="train up to N cells at once, each in its own single-threaded process, longest "
                        "first, then read them all back and write the table (default: the number of cores; "
                        "1: one process, the cells in order)")
    p.add_argument("--epochs", type=positive_int, default=None, metavar="N",
                   help="train every model (both families) for N epochs, the budget's schedule stretched "
                        "over them (recorded in each cell's settings; e.g. --budget medium --epochs 45 for "
                        "learning curves that run until they flatten)")
    p.add_argument("--loc-lr-scale", type=positive_float, default=None, metavar="S",
                   help="the localisation nets learn at lr times S (default: the budget's, 1; the paper uses "
                        "0.1 on SVHN; recorded in the ST cells' settings)")
    p.add_argument("--guard", action="store_true",
                   help="when a transformer collapses (its grid off the canvas or shrunk to a point), go back "
                        "to the end of its last healthy epoch and lower the localisation lr tenfold (recorded "
                        "in the ST cells' settings)")
    p.add_argument("--max-updates", type=positive_int, default=None, metavar="N",
                   help="stop every cell after N updates (a slice of a long budget; recorded in each cell's "
                        "settings)")
    # internal: what a --jobs child runs (train its cells, write no table, JSON or figure)
    p.add_argument("--cells-only", action="store_true", help=argparse.SUPPRESS)
    p.set_defaults(handler=run_reproduce)
    return p


def run_reproduce(args) -> int:
    command = f"minstn reproduce {args.what} --budget {args.budget}"
    for flag in ("data_dir", "dataset", "out", "distortions", "models"):
        if getattr(args, flag) is not None:
            command += f" --{flag.replace('_', '-')} {getattr(args, flag)}"
    command += f" --seed {args.seed}" if args.seed else ""
    jobs = getattr(args, "jobs", 1)
    command += f" --jobs {jobs}"
    overrides = Overrides(epochs=args.epochs, max_updates=args.max_updates, loc_lr_scale=args.loc_lr_scale,
                          guard=args.guard)
    command += "".join(f" {flag}" for flag in overrides.argv())
    tables = not getattr(args, "cells_only", False)
    check_data_dir(args.data_dir, args.dataset)
    try:
        kwargs = dict(budget=args.budget, data_dir=args.data_dir, out=args.out, seed=args.seed,
                      dataset=args.dataset, figures=not args.no_figures, progress=args.progress,
                      command=command, jobs=jobs, tables=tables, max_updates=args.max_updates,
                      epochs=args.epochs, loc_lr_scale=args.loc_lr_scale, guard=args.guard)
        if args.what == "table1":
            doc = run_table1(distortions=args.distortions, models=parse_models(args.models), **kwargs)
        else:
            doc = run_addition(models=parse_models(args.models, ADDITION_ROWS), **kwargs)
        if tables:
            name = "table1.md" if args.what == "table1" else "addition.md"
            print((Path(args.out or f"runs/reproduce-{args.budget}") / name).read_text())
    except ValueError as exc:
        print(f"minstn reproduce: error: {exc}", file=sys.stderr)
        return 2
    return 1 if any(c.get("status") != "done" for c in doc["cells"]) else 0
