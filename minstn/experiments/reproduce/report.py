"""What a reproduction writes: the Markdown table, the ordering check, the JSON, the figures.

``markdown_table`` puts the paper's number beside each cell (``2.90 (paper 2.1)``);
``ordering_violations`` checks the paper's claim cell by cell (every ST-FCN below the
FCN, every ST-CNN at or below the CNN); ``write_report`` writes ``<task>.md`` and
``<task>.json``; ``write_figure`` draws the right panel of Table 1 (inputs with the
predicted grids T_theta(G), above the transformer's outputs).
"""

from __future__ import annotations

import dataclasses
import os
import platform
import time
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from ...autograd import Tensor, no_grad
from ...checkpoint import write_json
from ...models import transformers_of
from ...viz.geometry import to_pixels
from ...viz.training import plot_transformer
from .budgets import Budget
from .cells import load_cell_model, off_canvas_text, theta_shift_text
from .paper import DISTORTION_LABEL, FIGURE_TRANSFORM, Cell, finished_pairs

__all__ = ["markdown_table", "ordering_violations", "write_report", "figure_cell", "write_figure",
           "addition_figure"]

def markdown_table(results: dict, cells: list[Cell], columns: list[str], paper: dict | None = None,
                   column_label=DISTORTION_LABEL) -> str:
    """``| model | R | RTS | ... |`` with ``ours (paper p)`` cells, errors in percent.

    ``results[(cell.key, column)]`` is a metrics dict (or missing); ``paper[cell.key][column]``.
    """
    lines = ["| model | " + " | ".join(column_label.get(c, c) for c in columns) + " |",
             "| --- | " + " | ".join("---:" for _ in columns) + " |"]
    for cell in cells:
        row = []
        for c in columns:
            m = results.get((cell.key, c))
            ours = None if not m or m.get("status") != "done" else 100 * m["test_error"]
            text = "–" if ours is None else f"{ours:.2f}"  # 2,000 test digits: steps of 0.05
            p = (paper or {}).get(cell.key, {}).get(c) if paper else None
            if p is not None:
                text += f" (paper {p})"
            row.append(text)
        lines.append(f"| {cell.label} | " + " | ".join(row) + " |")
    return "\n".join(lines)


def ordering_violations(results: dict, cells: list[Cell], columns: list[str]) -> list[str]:
    """Where an ST model does not beat its baseline: ST-FCN must be < FCN, ST-CNN <= CNN."""
    out = []
    for column, cell, mine, base in finished_pairs(results, cells, columns):
        st_error, base_error = mine["test_error"], base["test_error"]
        if not (st_error < base_error if cell.family == "fcn" else st_error <= base_error):
            out.append(f"{cell.label} on {DISTORTION_LABEL.get(column, column)}: {100 * st_error:.2f}% vs "
                       f"{cell.family.upper()} {100 * base_error:.2f}%")
    return out


def _machine() -> str:
    return f"{platform.machine()} {platform.processor() or ''} {os.cpu_count()} cores, Python {platform.python_version()}".replace("  ", " ")


# --- figures -------------------------------------------------------------------------

def figure_cell(cells: list[Cell], distortion: str, results: dict) -> Cell | None:
    """The ST model drawn for a distortion: ST-CNN with the distortion's own transform if
    it was trained, else any trained ST model."""
    want = FIGURE_TRANSFORM.get(distortion, "aff")
    prefs = [Cell("st-cnn", want), Cell("st-fcn", want), Cell("st-cnn", "aff"), Cell("st-fcn", "aff")]
    prefs += [c for c in cells if c.base != "fcn" and c.base != "cnn"]
    for c in prefs:
        m = results.get((c.key, distortion))
        if c in cells and m and m.get("status") == "done":
            return c
    return None


def write_figure(folder: Path, x: np.ndarray, y: np.ndarray, path: Path, title: str, n: int = 8) -> Path:
    """Paper Table 1 (right): inputs with T_theta(G), and the transformer's outputs."""
    model, _ = load_cell_model(folder)
    fig = plot_transformer(model, x[:n], labels=y[:n])
    fig.suptitle(title, fontsize=9)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=72)
    return path


def _header(title: str, budget: Budget, seed: int, source: str, command: str, seconds: float,
            trained: int, stored: int, jobs: int = 1) -> str:
    return (f"# {title}\n\n"
            f"- command: `{command}`\n"
            f"- budget `{budget.name}`: {budget.description}\n"
            f"- data: {source}; seed {seed} (split, initial weights; distortions: train stream "
            f"(2*seed, epoch), test 2*seed+1)\n"
            f"- machine: {_machine()}\n"
            f"- wall time of this invocation: {seconds:.0f} s ({trained} cells trained, {stored} read back"
            + (f"; {jobs} worker processes" if jobs > 1 and trained else "") + ")\n")


def write_report(task: str, title: str, out: Path, budget: Budget, seed: int, source: str, cells: list, columns: list,
            results: dict, paper: dict, t0: float, figure_paths: dict, command: str, jobs: int, tables: bool,
            announce, column_label=DISTORTION_LABEL, note: str = "", extra: dict | None = None) -> dict:
    """The JSON document of a run; unless ``tables`` is False, also write OUT/<task>.json and
    OUT/<task>.md (header, table with the paper's numbers, ``note``, the ordering check
    and the table of |theta - identity|). ``extra``: more top-level keys of the JSON.
    Returns the document."""
    seconds = time.perf_counter() - t0
    trained = sum(1 for m in results.values() if not m.get("resumed"))
    doc = _document(task, budget, seed, source, cells, columns, results, paper, seconds, figure_paths, command,
                    jobs)
    doc.update(extra or {})
    if not tables:
        return doc
    write_json(out / f"{task}.json", doc)
    text = _header(title, budget, seed, source, command or f"minstn reproduce {task} --budget {budget.name}",
                   seconds, trained, len(results) - trained, jobs)
    text += "\n" + markdown_table(results, cells, columns, paper, column_label) + "\n" + note
    text += _ordering_text(results, cells, columns)
    text += _transformer_tables(results, cells, columns)
    (out / f"{task}.md").write_text(text)
    announce(f"wrote {out / f'{task}.md'}, {out / f'{task}.json'}"
             + (f" and {len(figure_paths)} figures" if figure_paths else ""))
    return doc


def addition_figure(folder: Path, x: np.ndarray, y: np.ndarray, path: Path, title: str, n: int = 6) -> Path:
    """For each transformer of the model: both input channels overlaid (max) with its grid."""
    model, _ = load_cell_model(folder)
    sts = transformers_of(model)[:2]
    x = x[:n]
    model.eval()
    with no_grad():
        if hasattr(model, "sts"):
            outs = [st(Tensor(x)).data for st in model.sts]
        else:
            outs = [model.st(Tensor(x)).data]
            sts = sts[:1]
        pred = model(Tensor(x)).data.argmax(axis=1)
    fig = Figure(figsize=(1.3 * n + 0.6, 1.3 * (1 + len(outs))), layout="constrained")
    axes = fig.subplots(1 + len(outs), n, squeeze=False)
    colors = ["tab:orange", "tab:cyan"]
    H, W = x.shape[-2:]
    for i in range(n):
        ax = axes[0, i]
        ax.imshow(x[i].max(axis=0), cmap="gray", vmin=0, vmax=1)
        for k, (st, v) in enumerate(zip(sts, outs)):
            st(Tensor(x[i:i + 1]))
            ix, iy = to_pixels(st.last_grid[0], H, W, False)
            border = np.concatenate([np.stack([ix[0], iy[0]], -1), np.stack([ix[:, -1], iy[:, -1]], -1),
                                     np.stack([ix[-1, ::-1], iy[-1, ::-1]], -1),
                                     np.stack([ix[::-1, 0], iy[::-1, 0]], -1)])
            ax.plot(border[:, 0], border[:, 1], color=colors[k], linewidth=1.2)
            axes[1 + k, i].imshow(v[i].max(axis=0), cmap="gray", vmin=0, vmax=1)
        ax.set_xlim(-0.5, W - 0.5)
        ax.set_ylim(H - 0.5, -0.5)
        ax.set_title(f"{pred[i]} (true {y[i]})", fontsize=8)
        for a in axes[:, i]:
            a.set_xticks([])
            a.set_yticks([])
    axes[0, 0].set_ylabel("input (2 ch.)", fontsize=8)
    for k in range(len(outs)):
        axes[1 + k, 0].set_ylabel(f"ST {k + 1} output", fontsize=8)
    fig.suptitle(title, fontsize=9)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=72)
    return path


def _ordering_text(results, cells, columns) -> str:
    bad = ordering_violations(results, cells, columns)
    if not bad:
        return ("\nPaper's ordering (every ST-FCN < FCN, every ST-CNN <= CNN): holds in every cell "
                "trained here.\n")
    return "\nPaper's ordering does NOT hold in:\n\n" + "\n".join(f"- {b}" for b in bad) + "\n"


def _transformer_tables(results, cells, columns) -> str:
    """Two tables of the transformers' state after training: how far theta moved from the
    identity, and the share of the sampling grid that falls off the input (a transformer
    that collapsed shows 90-100% there, and its classifier saw blank images)."""
    return (_transformer_table("Mean |theta - identity| on test digits (0 = never moved from its identity "
                               "initialisation; first / second transformer for a model with two)",
                               theta_shift_text, results, cells, columns)
            + _transformer_table("Sampling points off the canvas on test digits (the share of the grid "
                                 "T_theta(G) outside the input; the health monitor calls 90% or more a "
                                 "collapse)",
                                 off_canvas_text, results, cells, columns))


def _transformer_table(title, cell_text, results, cells, columns) -> str:
    """One row per model with a transformer, one column per distortion: ``cell_text(metrics)``."""
    rows = [f"| {cell.label} | " + " | ".join(cell_text(results.get((cell.key, c), {})) for c in columns) + " |"
            for cell in cells if cell.family]
    if not rows:
        return ""
    return (f"\n{title}:\n\n| model | " + " | ".join(DISTORTION_LABEL.get(c, c) for c in columns)
            + " |\n| --- | " + " | ".join("---:" for _ in columns) + " |\n" + "\n".join(rows) + "\n")


def _document(task, budget, seed, source, cells, columns, results, paper, seconds, figures, command,
              jobs: int = 1) -> dict:
    cells_doc = []
    for cell in cells:
        for c in columns:
            m = results.get((cell.key, c))
            if m is None:
                continue
            # the examples a cell got wrong stay in its own metrics.json (the leads summarise them)
            cells_doc.append({"model": cell.key, "label": cell.label, "column": c,
                              "test_error_percent": None if m.get("status") != "done" else 100 * m["test_error"],
                              "paper_percent": paper.get(cell.key, {}).get(c),
                              **{k: v for k, v in m.items() if k != "test_wrong"}})
    # run_addition passes the budget with addition's changes applied (Budget.for_task); the
    # field holding them is left out, so Table 1's JSON has the same budget keys as before
    budget_doc = {k: v for k, v in dataclasses.asdict(budget).items() if k != "addition_changes"}
    return {"task": task, "command": command, "budget": budget_doc, "seed": seed, "data": source,
            "machine": _machine(), "seconds": round(seconds, 1), "jobs": jobs, "figures": figures,
            "ordering_violations": ordering_violations(results, cells, columns), "cells": cells_doc}
