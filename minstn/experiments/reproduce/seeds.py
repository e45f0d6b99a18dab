"""Table 1 over several seeds: the mean table, the spread table, the checks per seed.

    python -m minstn.experiments.reproduce.seeds runs/medium-seed0/table1.json runs/medium-seed1/table1.json ...

reads the ``table1.json`` of runs that differ only in ``--seed`` and prints Markdown:
the mean test error of every cell beside the paper's (``1.23 (paper 1.2)``), the spread
(``min-max`` over the seeds and the standard deviation), how many cells are more than
3x the paper's error, the paper's ordering checked seed by seed (every ST-FCN below the
FCN, every ST-CNN at or below the CNN: :func:`.report.ordering_violations`), the mean
|theta - identity| of each ST cell, per transformer (0: the transformer never moved), and
(for runs that recorded them) each ST model's lead over its baseline with its standard
error (:mod:`.significance`).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

from .cells import theta_shift_text
from .paper import DISTORTION_LABEL

__all__ = ["load_runs", "seed_tables"]


def load_runs(paths) -> list[dict]:
    """The JSON documents of the runs, checked to be the same task, budget and data."""
    docs = [json.loads(Path(p).read_text()) for p in paths]
    if not docs:
        raise ValueError("no runs given")
    for key in ("task", "budget", "data"):
        values = {json.dumps(d[key], sort_keys=True) for d in docs}
        if len(values) > 1:
            raise ValueError(f"the runs differ in {key}: {sorted(values)}")
    seeds = [d["seed"] for d in docs]
    if len(set(seeds)) != len(seeds):
        raise ValueError(f"a seed appears twice: {seeds}")
    return docs


def _cells(docs) -> tuple[list[tuple[str, str]], list[str], dict]:
    """Row order (model key, label), column order, and {(model, column): [cell per seed]}."""
    rows, columns, by_cell = [], [], {}
    for doc in docs:
        for c in doc["cells"]:
            if (c["model"], c["label"]) not in rows:
                rows.append((c["model"], c["label"]))
            if c["column"] not in columns:
                columns.append(c["column"])
            by_cell.setdefault((c["model"], c["column"]), []).append(c)
    return rows, columns, by_cell


def _errors(cells) -> list[float] | None:
    """The test errors (%) of a cell over the seeds; None unless every seed finished it."""
    values = [c.get("test_error_percent") for c in cells]
    return None if any(v is None for v in values) else values


def seed_tables(docs: list[dict]) -> str:
    """The Markdown tables described in the module docstring."""
    rows, columns, by_cell = _cells(docs)
    n = len(docs)
    head = "| model | " + " | ".join(DISTORTION_LABEL.get(c, c) for c in columns) + " |\n"
    rule = "| --- | " + " | ".join("---:" for _ in columns) + " |\n"
    mean_t, spread_t, theta_t = head + rule, head + rule, head + rule
    ratios = []
    for key, label in rows:
        means, spreads, thetas = [], [], []
        for column in columns:
            cells = by_cell.get((key, column), [])
            errors = _errors(cells) if len(cells) == n else None
            if errors is None:
                means.append("–")
                spreads.append("–")
            else:
                paper = cells[0].get("paper_percent")
                mean = float(np.mean(errors))
                means.append(f"{mean:.2f}" + ("" if paper is None else f" (paper {paper})"))
                spreads.append(f"{min(errors):.2f}–{max(errors):.2f} (sd {np.std(errors, ddof=1) if n > 1 else 0:.2f})")
                if paper:
                    ratios.append((mean / paper, label, column))
            thetas.append(_mean_theta_shift(cells))
        mean_t += f"| {label} | " + " | ".join(means) + " |\n"
        spread_t += f"| {label} | " + " | ".join(spreads) + " |\n"
        if any(t != "–" for t in thetas):
            theta_t += f"| {label} | " + " | ".join(thetas) + " |\n"
    seeds = ", ".join(str(d["seed"]) for d in docs)
    text = f"Mean test error (%) over seeds {seeds}, the paper's beside it:\n\n{mean_t}\n"
    text += f"Spread over the seeds: min–max (sample standard deviation):\n\n{spread_t}\n"
    over = sorted(ratios, reverse=True)
    far = [r for r in over if r[0] > 3]
    text += (f"Cells more than 3x the paper's error (mean over the seeds): {len(far)} of {len(ratios)}"
             + ("" if not far else ": " + ", ".join(f"{lab} {DISTORTION_LABEL.get(c, c)} {r:.1f}x" for r, lab, c in far))
             + (f"; the largest ratio is {over[0][0]:.1f}x ({over[0][1]} {DISTORTION_LABEL.get(over[0][2], over[0][2])})"
                if over else "") + ".\n\n")
    for doc in docs:
        bad = doc.get("ordering_violations", [])
        text += (f"- seed {doc['seed']}: the paper's ordering "
                 + ("holds in every cell" if not bad else f"fails in {len(bad)} cell(s): " + "; ".join(bad))
                 + f" (wall time {doc['seconds'] / 60:.0f} min, {doc.get('jobs', 1)} worker processes)\n")
    text += ("\nMean |theta - identity| on test digits, over the seeds (first / second transformer for "
             f"a model with two):\n\n{theta_t}")
    return text + _leads_table(docs, rows, columns)


def _leads_table(docs: list[dict], rows, columns) -> str:
    """Each ST model's lead over its baseline (:mod:`.significance`), over the seeds: the
    mean lead in points, its standard error (the seeds' paired standard errors combined
    as independent: ``sqrt(sum se^2) / n``), and at how many seeds the lead exceeded its
    own paired standard error. Empty unless every run recorded its leads."""
    if any(d.get("leads") is None for d in docs):
        return ""
    by_pair = {}
    for doc in docs:
        for r in doc["leads"]:
            by_pair.setdefault((r["model"], r["column"]), []).append(r)
    n, lines = len(docs), []
    for key, label in rows:
        texts = []
        for column in columns:
            leads = by_pair.get((key, column), [])
            if len(leads) != n:
                texts.append("–")
                continue
            mean = float(np.mean([r["lead"] for r in leads]))
            se = float(np.sqrt(np.sum([r["paired_se"] ** 2 for r in leads]))) / n
            beyond = sum(r["lead"] > r["paired_se"] for r in leads)
            texts.append(f"{100 * mean:+.2f} (SE {100 * se:.2f}; {beyond}/{n})")
        if any(t != "–" for t in texts):
            lines.append(f"| {label} | " + " | ".join(texts) + " |")
    if not lines:
        return ""
    return ("\nLead of each ST model over its baseline (points: the baseline's error minus the ST "
            "model's), mean over the seeds, its standard error (paired on the same test digits, the seeds "
            "combined), and at how many seeds the lead was larger than its own paired standard error:\n\n"
            "| model | " + " | ".join(DISTORTION_LABEL.get(c, c) for c in columns) + " |\n| --- | "
            + " | ".join("---:" for _ in columns) + " |\n" + "\n".join(lines) + "\n")


def _mean_theta_shift(cells: list[dict]) -> str:
    """The seeds' mean |theta - identity| of each transformer of one cell, as
    :func:`.cells.theta_shift_text` writes one seed's; "–" when a seed has none."""
    shifts = [c.get("theta_shifts") or [c.get("theta_shift")] for c in cells]
    if not shifts or any(s[0] is None for s in shifts) or len({len(s) for s in shifts}) > 1:
        return "–"
    return theta_shift_text({"theta_shifts": list(np.mean(shifts, axis=0))})


USAGE = "usage: python -m minstn.experiments.reproduce.seeds RUN/table1.json [RUN/table1.json ...]"


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv:
        print(USAGE, file=sys.stderr)
        return 2
    print(seed_tables(load_runs(argv)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
