"""Is an ST model's lead over its baseline larger than the test set's noise?

Both models of a pair (2xST-FCN and the FCN, ST-CNN Multi and the CNN) are tested on the
same test examples, so their difference is measured *paired*: with ``right_st`` and
``right_base`` the per-example correctness (1 right, 0 wrong) and ``d = right_st -
right_base``, the lead is ``mean(d)`` (the baseline's error minus the ST model's) and its
standard error ``std(d) / sqrt(n)``. Only the examples one model gets right and the
other wrong move ``d``, so this is smaller than the standard error of two independent
binomials, ``sqrt(p_st (1 - p_st) / n + p_base (1 - p_base) / n)``, which is reported
beside it. The paper's addition claim ("2xST-FCN beats the FCN") needs the lead to be
larger than its standard error.

:func:`paired_lead` does the arithmetic; :func:`family_leads` pairs every finished ST
cell with its baseline, from the test examples each got wrong (stored with the cell, or
re-created from its checkpoint); :func:`leads_text` writes them as a Markdown table.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from ..loop import predict
from .cells import load_cell_model
from .paper import Cell, finished_pairs

__all__ = ["family_leads", "leads_text", "paired_lead"]


def paired_lead(right_st: np.ndarray, right_base: np.ndarray) -> dict:
    """The ST model's lead over its baseline on the same test examples (fractions, not
    percent): ``lead`` (baseline error - ST error), ``paired_se``, ``unpaired_se``,
    ``st_only`` / ``base_only`` (examples only that model gets right) and ``n``."""
    right_st, right_base = np.asarray(right_st, bool), np.asarray(right_base, bool)
    if right_st.shape != right_base.shape or right_st.ndim != 1 or len(right_st) < 2:
        raise ValueError(f"need two equal-length 1-D arrays of at least 2 examples, got shapes "
                         f"{right_st.shape} and {right_base.shape}")
    n = len(right_st)
    d = right_st.astype(np.float64) - right_base
    p_st, p_base = right_st.mean(), right_base.mean()
    return {"lead": float(d.mean()), "paired_se": float(d.std() / math.sqrt(n)),
            "unpaired_se": math.sqrt((p_st * (1 - p_st) + p_base * (1 - p_base)) / n),
            "st_only": int((right_st & ~right_base).sum()), "base_only": int((right_base & ~right_st).sum()),
            "n": n}


def family_leads(results: dict, cells: list[Cell], columns: list[str], runs: Path, test_data: dict) -> list[dict]:
    """Every finished ST cell against its finished baseline of the same column.

    ``test_data[column]`` is ``(x_test, y_test)``. A cell's per-example correctness is
    read from its metrics (``test_wrong``, the test examples it got wrong, stored by
    :func:`.cells.train_cell`); a cell stored before that key existed, or whose list does
    not agree with its test error, is rebuilt from ``runs/<key>-<column>/`` and predicts
    the test data again. Returns one dict per pair:
    ``model``, ``baseline``, ``column`` and the numbers of :func:`paired_lead`."""
    right = {}

    def correct(key: str, column: str, metrics: dict) -> np.ndarray:
        if (key, column) not in right:
            x, y = test_data[column]
            wrong = _stored_wrong(metrics, len(y))
            if wrong is not None:
                ok = np.ones(len(y), bool)
                ok[wrong] = False
            else:
                model, _ = load_cell_model(runs / f"{key}-{column}")
                ok = predict(model, x) == y
            right[(key, column)] = ok
        return right[(key, column)]

    return [{"model": cell.key, "baseline": cell.family, "column": column,
             **paired_lead(correct(cell.key, column, mine), correct(cell.family, column, base))}
            for column, cell, mine, base in finished_pairs(results, cells, columns)]


def _stored_wrong(metrics: dict, n: int) -> np.ndarray | None:
    """The stored indices of the test examples a cell got wrong, when they are there and
    agree with its test error on ``n`` examples (distinct, in range); else None."""
    wrong, error = metrics.get("test_wrong"), metrics.get("test_error")
    if not isinstance(wrong, list) or not isinstance(error, float) or not all(isinstance(i, int) for i in wrong):
        return None
    wrong = np.asarray(wrong, np.int64)
    in_range = len(wrong) == 0 or (wrong.min() >= 0 and wrong.max() < n)
    consistent = in_range and len(np.unique(wrong)) == len(wrong) == round(error * n)
    return wrong if consistent else None


def leads_text(leads: list[dict], labels: dict, column_label: dict) -> str:
    """The leads as Markdown, in points (percent of the test examples)."""
    if not leads:
        return ""
    rows = []
    for r in leads:
        # no example on which the two differ: the lead is 0 with no spread, and its ratio undefined
        ratio = f"{r['lead'] / r['paired_se']:+.1f}" if r["paired_se"] > 0 else "–"
        rows.append(f"| {labels[r['model']]} | {r['baseline'].upper()} | {column_label.get(r['column'], r['column'])} "
                    f"| {100 * r['lead']:+.2f} | {100 * r['paired_se']:.2f} / {100 * r['unpaired_se']:.2f} "
                    f"| {ratio} | {r['st_only']} / {r['base_only']} |")
    return ("\nLead of each ST model over its baseline on the same test examples (points: the baseline's "
            "error minus the ST model's; positive = the ST model is better), its standard error (paired / "
            "as two independent binomials), the lead in paired standard errors, and the examples only one "
            "of the two gets right:\n\n"
            "| model | baseline | column | lead | standard error | lead / SE | only ST right / only baseline right |\n"
            "| --- | --- | --- | ---: | ---: | ---: | ---: |\n" + "\n".join(rows) + "\n")
