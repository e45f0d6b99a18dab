"""``--jobs N``: unfinished cells trained in single-threaded child processes, longest first.

On a few cores, two single-threaded processes side by side train faster than one
process whose BLAS and Numba thread pools contend for the cores. Each child is
``python -m minstn reproduce ... --models M --distortions D --cells-only``: it trains
its cell into the shared ``runs/`` folder and writes no table; the parent then reads
every cell back as a resumed run does.
"""

from __future__ import annotations

import collections
import os
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from .budgets import BUDGETS, Budget, Overrides, cell_cost, cell_settings
from .cells import UNFINISHED_RESULTS, stored_cell
from .paper import DISTORTION_LABEL, Cell

__all__ = ["SINGLE_THREAD_ENV", "check_jobs", "cells_in_children"]


#: every thread pool a worker process could start (OpenBLAS, OpenMP, MKL, Numba), pinned
#: to one thread: on a few cores, small matmuls in one 2-thread process run 2-3x slower
#: than in a 1-thread process, while two 1-thread processes side by side run at full speed
SINGLE_THREAD_ENV = {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
                     "NUMBA_NUM_THREADS": "1"}


def check_jobs(budget: Budget, jobs: int) -> None:
    """``jobs`` >= 1, and > 1 only with a named budget (children are started by its name)."""
    if jobs < 1:
        raise ValueError(f"jobs must be at least 1, not {jobs}")
    if jobs > 1 and BUDGETS.get(budget.name) != budget:
        raise ValueError(f"jobs={jobs} runs each cell in a `minstn reproduce --budget NAME` child process, "
                         f"so it needs one of the named budgets ({', '.join(BUDGETS)}); the custom budget "
                         f"{budget.name!r} can only run with jobs=1")


def _child_command(task: str, budget: Budget, cell: Cell, column: str, out: Path, seed: int, data_dir, dataset,
                   progress: bool, overrides: Overrides) -> list:
    """The command line of the child process that trains one cell (and writes no table)."""
    argv = [sys.executable, "-m", "minstn", "reproduce", task, "--budget", budget.name, "--out", str(out),
            "--seed", str(seed), "--models", cell.key, "--no-figures", "--jobs", "1", "--cells-only"]
    if task == "table1":
        argv += ["--distortions", column]
    if data_dir is not None:
        argv += ["--data-dir", str(data_dir)]
    if dataset is not None:
        argv += ["--dataset", dataset]
    if progress:
        argv.append("--progress")
    return argv + overrides.argv()


def _run_children(task: str, budget: Budget, pending: list, out: Path, data_dir, dataset, seed: int,
                  progress: bool, jobs: int, announce, overrides: Overrides) -> dict:
    """Train the ``pending`` ``(cell, column, settings)`` cells, longest first (:func:`cell_cost`),
    each in a single-threaded ``python -m minstn reproduce`` child process, at most ``jobs``
    at a time. Forwards the children's lines to ``announce`` (whole lines, one at a time);
    returns ``{(cell.key, column): metrics}``. When a child fails, no new child starts, the
    running ones finish, and a RuntimeError names the cell and shows the end of its stderr."""
    pending = sorted(pending, key=lambda p: -cell_cost(p[0], budget, p[1]))
    lock, failed = threading.Lock(), threading.Event()
    results, failures, running = {}, [], set()
    env = dict(os.environ, **SINGLE_THREAD_ENV)

    def say(line: str) -> None:
        with lock:
            announce(line)

    def one(index: int, cell: Cell, column: str, settings: dict) -> None:
        if failed.is_set():
            return
        argv = _child_command(task, budget, cell, column, out, seed, data_dir, dataset, progress, overrides)
        folder = out / "runs" / f"{cell.key}-{column}"
        tail = collections.deque(maxlen=20)
        started = time.time()
        try:
            with lock:
                if failed.is_set():
                    return
                proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                        stderr=subprocess.PIPE, text=True, errors="replace", env=env)
                running.add(proc)
            with proc:
                for line in proc.stderr:
                    line = line.rstrip("\n")
                    tail.append(line)
                    say(line)
                rc = proc.wait()
            with lock:
                running.discard(proc)
        except OSError as exc:
            rc = None
            tail.append(f"{type(exc).__name__}: {exc}")
        # done, or diverged / collapsed (exit status 1: a result, as in a sequential run), written by this child
        m = stored_cell(folder, settings, ("done", *UNFINISHED_RESULTS))
        fresh = m is not None and (folder / "metrics.json").stat().st_mtime >= started - 1
        if fresh and (rc == 0 or (rc == 1 and m["status"] in UNFINISHED_RESULTS)):
            with lock:
                results[(cell.key, column)] = m
            return
        failed.set()
        with lock:
            failures.append((index, cell, column, rc, list(tail), argv))

    with ThreadPoolExecutor(max_workers=jobs) as pool:
        try:
            for future in [pool.submit(one, i, *p) for i, p in enumerate(pending)]:
                future.result()
        except BaseException:  # Ctrl-C: start nothing more, stop the running children
            with lock:
                failed.set()
                for proc in running:
                    proc.terminate()
            raise
    if failures:
        _, cell, column, rc, tail, argv = min(failures, key=lambda f: f[0])  # the first started
        where = f"{cell.label} on {DISTORTION_LABEL.get(column, column)}" if task == "table1" else cell.label
        more = f" ({len(failures) - 1} more cells failed too)" if len(failures) > 1 else ""
        raise RuntimeError(f"the child process training {where} ({cell.key}-{column}) failed with exit status "
                           f"{rc}{more}; no new cells were started. Command: {' '.join(argv)}\n"
                           f"Last lines of its stderr:\n" + "\n".join(f"  {t}" for t in tail))
    return results


def cells_in_children(task: str, budget: Budget, grid: list, source: str, runs: Path, out: Path, data_dir,
                      dataset, seed: int, progress: bool, jobs: int, announce,
                      overrides: Overrides = Overrides()) -> dict:
    """``--jobs N``: the cells of ``grid`` (``(cell, column)`` pairs) not finished yet, trained in
    child processes; ``{}`` when all are finished (they are read back as usual)."""
    pending = []
    for cell, column in grid:
        settings = cell_settings(budget, cell, column, seed, task, source)
        if stored_cell(runs / f"{cell.key}-{column}", settings) is None:
            pending.append((cell, column, settings))
    if not pending:
        return {}
    announce(f"training {len(pending)} cells in up to {jobs} single-threaded child processes, longest first")
    return _run_children(task, budget, pending, out, data_dir, dataset, seed, progress, jobs, announce, overrides)
