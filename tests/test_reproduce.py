"""``minstn reproduce``: end to end on the tiny budget, resuming, and the table's shape.

Real MNIST digits when ``../shared/data/mnist`` (or ``$MINSTN_DATA``) has them, else
the embedded glyph digits, so the test runs offline and on any machine.
"""

import argparse
import dataclasses
import json
import os
import re
from pathlib import Path

import numpy as np
import pytest

from minstn.experiments import reproduce as R
from minstn.experiments.guard import GUARD_RETRIES
from minstn.experiments.loop import predict
from minstn.experiments.reproduce.cells import column_data, load_budget_digits
from minstn.experiments.reproduce.significance import family_leads

MNIST_DIR = Path(os.environ.get("MINSTN_DATA", Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist"))
HAVE_MNIST = (MNIST_DIR / "t10k-images-idx3-ubyte.gz").is_file() or (MNIST_DIR / "t10k-images-idx3-ubyte").is_file()
DATA = ["--data-dir", str(MNIST_DIR)] if HAVE_MNIST else ["--dataset", "glyphs"]
CELL = re.compile(r"^(\d+\.\d+|–)( \(paper \d+(\.\d+)?\))?$")


def _parse(argv):
    parser = argparse.ArgumentParser(prog="minstn")
    R.add_reproduce_parser(parser.add_subparsers())
    return parser.parse_args(argv)


def _table_rows(md: str) -> list[list[str]]:
    lines = [line for line in md.splitlines() if line.startswith("|")]
    return [[c.strip() for c in line.strip("|").split("|")] for line in lines]


def _first_table(md: str) -> list[list[str]]:
    """The rows of the first Markdown table of ``md`` (the results table)."""
    return _table_after(md, "")


def _table_after(md: str, heading: str) -> list[list[str]]:
    """The rows of the first Markdown table after the first line that starts with ``heading``."""
    lines = md.splitlines()
    first = next(i for i, line in enumerate(lines) if line.startswith(heading))
    start = next(i for i in range(first, len(lines)) if lines[i].startswith("|"))
    end = next((i for i in range(start, len(lines)) if not lines[i].startswith("|")), len(lines))
    return _table_rows("\n".join(lines[start:end]))


def _tiny_test_data(columns) -> dict:
    """``{column: (x_test, y_test)}`` as the tiny budget's seed-0 run tests them."""
    budget = R.BUDGETS["tiny"]
    digits = load_budget_digits(budget, DATA[1] if HAVE_MNIST else None, 0, None if HAVE_MNIST else "glyphs",
                                lambda s: None)
    out = {}
    for column in columns:
        data = column_data(digits, column, budget, 0)
        out[column] = data["x_test"], data["y_test"]
    return out


def _check_leads(doc: dict, out: Path, test_data: dict) -> None:
    """Each lead is the difference of the two cells' errors, and the test examples a cell
    stored as wrong are those its checkpoint gets wrong when rebuilt; without the stored
    examples (a cell from before they were stored), the leads come out the same."""
    cells = {(c["model"], c["column"]): c for c in doc["cells"]}
    for lead in doc["leads"]:
        st, base = cells[(lead["model"], lead["column"])], cells[(lead["baseline"], lead["column"])]
        assert lead["lead"] == pytest.approx(base["test_error"] - st["test_error"], abs=1e-12)
        assert (lead["st_only"] - lead["base_only"]) / lead["n"] == pytest.approx(lead["lead"], abs=1e-12)
    results = {}
    for (key, column) in cells:
        metrics = json.loads((out / "runs" / f"{key}-{column}" / "metrics.json").read_text())
        model, _ = R.load_cell_model(out / "runs" / f"{key}-{column}")
        x, y = test_data[column]
        assert metrics["test_wrong"] == np.flatnonzero(predict(model, x) != y).tolist()
        assert len(metrics["test_wrong"]) == round(metrics["test_error"] * len(y))
        results[(key, column)] = {k: v for k, v in metrics.items() if k != "test_wrong"}
    rows = [R.parse_cell(k) for k in dict.fromkeys(k for k, _ in cells)]
    columns = list(dict.fromkeys(c for _, c in cells))
    assert family_leads(results, rows, columns, out / "runs", test_data) == doc["leads"]
    # stored examples that disagree with the cell's error (out of range, or too few) are not
    # trusted: the cell is re-predicted, and the leads are again the same
    for k, (key, column) in enumerate(results):
        results[(key, column)]["test_wrong"] = [10 ** 6] if k % 2 else []
    assert family_leads(results, rows, columns, out / "runs", test_data) == doc["leads"]


def test_table1_tiny_end_to_end_and_resume(tmp_path, capsys):
    out = tmp_path / "repro"
    argv = ["reproduce", "table1", "--budget", "tiny", "--out", str(out), "--distortions", "r,e",
            "--models", "fcn,st-fcn-aff,st-fcn-tps", *DATA]
    args = _parse(argv)
    assert args.handler is R.run_reproduce
    assert R.run_reproduce(args) == 0
    printed = capsys.readouterr().out
    assert "| model | R | E |" in printed

    # every cell stored with its settings and a checkpoint
    for key in ("fcn", "st-fcn-aff", "st-fcn-tps"):
        for d in ("r", "e"):
            folder = out / "runs" / f"{key}-{d}"
            m = json.loads((folder / "metrics.json").read_text())
            assert m["status"] == "done" and 0 <= m["test_error"] <= 1
            assert m["settings"]["name"] == "tiny"
            assert m["settings"]["seeds"]["test_distortion"] == 1
            assert (folder / "model.npz").is_file()
    mtimes = {p: p.stat().st_mtime_ns for p in out.glob("runs/*/*")}

    # the Markdown table: header, separator, one row per model, "ours (paper p)" cells
    md = (out / "table1.md").read_text()
    rows = _first_table(md)
    assert rows[0] == ["model", "R", "E"]
    assert all(set(c) <= set("-:") for c in rows[1][1:])
    assert [r[0] for r in rows[2:]] == ["FCN", "ST-FCN Aff", "ST-FCN TPS"]
    for r in rows[2:]:
        assert len(r) == 3 and all(CELL.match(c) for c in r[1:]), r
    assert "(paper 2.1)" in rows[2][1] and "(paper 2.4)" in rows[4][2]

    # JSON: every run's settings, seeds and results
    doc = json.loads((out / "table1.json").read_text())
    assert len(doc["cells"]) == 6 and doc["budget"]["name"] == "tiny"
    assert all(c["settings"]["seed"] == 0 and c["test_error_percent"] is not None for c in doc["cells"])
    # each ST model's lead over the FCN in each column, with its standard error, in the JSON and the table
    assert [(r["model"], r["column"]) for r in doc["leads"]] == [
        (m, d) for d in ("r", "e") for m in ("st-fcn-aff", "st-fcn-tps")]
    _check_leads(doc, out, _tiny_test_data(("r", "e")))
    lead_rows = [r for r in _table_rows(md) if r[1:2] == ["FCN"]]
    assert [r[:3] for r in lead_rows] == [["ST-FCN Aff", "FCN", "R"], ["ST-FCN TPS", "FCN", "R"],
                                          ["ST-FCN Aff", "FCN", "E"], ["ST-FCN TPS", "FCN", "E"]]
    assert [r[3] for r in lead_rows] == [f"{100 * r['lead']:+.2f}" for r in doc["leads"]]

    # the Table 1 right panel figures
    for d in ("r", "e"):
        png = out / "figures" / f"table1_{d}.png"
        assert png.is_file() and 0 < png.stat().st_size < 200_000

    # resume: a second invocation trains nothing and gives the same table
    assert R.run_reproduce(_parse(argv)) == 0
    assert {p: p.stat().st_mtime_ns for p in out.glob("runs/*/*")} == mtimes
    doc2 = json.loads((out / "table1.json").read_text())
    assert all(c["resumed"] for c in doc2["cells"])
    assert [c["test_error"] for c in doc2["cells"]] == [c["test_error"] for c in doc["cells"]]
    assert "(0 cells trained, 6 read back)" in (out / "table1.md").read_text()


def test_changed_settings_retrain_only_that_cell(tmp_path):
    out = tmp_path / "r"
    kw = dict(budget="tiny", out=out, distortions="r", models=["fcn"], announce=lambda s: None, figures=False)
    kw.update(data_dir=str(MNIST_DIR)) if HAVE_MNIST else kw.update(dataset="glyphs")
    R.run_table1(**kw)
    doc = R.run_table1(**dict(kw, seed=1))  # a new seed is a new experiment
    assert [c["resumed"] for c in doc["cells"]] == [False]
    # an interrupted cell (status "running") is retrained, not read back
    path = out / "runs" / "fcn-r" / "metrics.json"
    m = json.loads(path.read_text())
    path.write_text(json.dumps(dict(m, status="running")))
    doc = R.run_table1(**dict(kw, seed=1))
    assert [c["resumed"] for c in doc["cells"]] == [False]


def test_addition_tiny(tmp_path):
    out = tmp_path / "add"
    args = _parse(["reproduce", "addition", "--budget", "tiny", "--out", str(out), "--models",
                   "fcn,2xst-fcn-aff", *DATA])
    assert R.run_reproduce(args) == 0
    rows = _table_rows((out / "addition.md").read_text())
    assert rows[0] == ["model", "addition"]
    assert [r[0] for r in rows[2:4]] == ["FCN", "2xST-FCN Aff"]
    doc = json.loads((out / "addition.json").read_text())
    assert {c["settings"]["task"] for c in doc["cells"]} == {"addition"}
    assert (out / "figures" / "addition_2xst-fcn-aff.png").is_file()
    # |theta - I| of both of 2xST-FCN's transformers, in the JSON and in the table
    two = next(c for c in doc["cells"] if c["model"] == "2xst-fcn-aff")
    assert len(two["theta_shifts"]) == 2 and two["theta_shifts"][0] == two["theta_shift"]
    md = (out / "addition.md").read_text()
    theta_rows = _table_after(md, "Mean |theta - identity|")
    assert theta_rows[2] == ["2xST-FCN Aff", " / ".join(f"{v:.3f}" for v in two["theta_shifts"])]
    # the share of each grid off the canvas: what shows a collapsed transformer in the table
    assert len(two["off_canvas_each"]) == 2 and two["off_canvas_each"][0] == two["off_canvas"]
    off_rows = _table_after(md, "Sampling points off the canvas")
    assert off_rows[2] == ["2xST-FCN Aff", " / ".join(f"{100 * v:.0f}%" for v in two["off_canvas_each"])]
    # the lead over the FCN on the same test pairs, from the pairs each cell got wrong
    (lead,) = doc["leads"]
    assert (lead["model"], lead["baseline"], lead["n"]) == ("2xst-fcn-aff", "fcn", R.BUDGETS["tiny"].test_size)
    _check_leads(doc, out, _tiny_test_data(("addition",)))
    lead_row = next(r for r in rows if r[:2] == ["2xST-FCN Aff", "FCN"])
    assert lead_row[3] == f"{100 * lead['lead']:+.2f}"


def test_model_and_distortion_names():
    cells = R.parse_models(None)
    assert [c.label for c in cells] == ["FCN", "CNN", "ST-FCN Aff", "ST-FCN Proj", "ST-FCN TPS",
                                        "ST-CNN Aff", "ST-CNN Proj", "ST-CNN TPS"]
    assert R.parse_cell("st-cnn-multi-projective").key == "st-cnn-multi-proj"
    assert R.parse_cell("st_fcn").key == "st-fcn-aff"
    assert R.parse_distortions("R, rts,tc") == ["r", "rts", "tc"]
    with pytest.raises(ValueError):
        R.parse_cell("resnet")
    with pytest.raises(ValueError):
        R.parse_distortions("r,x")
    # the paper's Table 1 is complete for the main columns
    assert all(set(R.PAPER_TABLE1[k]) >= {"r", "rts", "p", "e"} for k in R.TABLE1_ROWS)


def test_ordering_check():
    done = lambda e: {"status": "done", "test_error": e}
    cells = R.parse_models("fcn,cnn,st-fcn-aff,st-cnn-aff")
    results = {("fcn", "r"): done(0.10), ("st-fcn-aff", "r"): done(0.10),
               ("cnn", "r"): done(0.05), ("st-cnn-aff", "r"): done(0.05)}
    bad = R.ordering_violations(results, cells, ["r"])
    assert len(bad) == 1 and bad[0].startswith("ST-FCN Aff on R")  # ST-FCN must be strictly better


def test_help_documents_budgets():
    parser = argparse.ArgumentParser(prog="minstn")
    R.add_reproduce_parser(parser.add_subparsers())
    text = parser._subparsers._group_actions[0].choices["reproduce"].format_help()
    for word in ("tiny", "small", "medium", "one-cycle", "full", "150k", "8,000", "--distortions", "--models",
                 "Resum"):
        assert word in text, word


def test_medium_gives_the_conv_family_at_least_the_fc_familys_updates():
    """The medium budget: a decaying schedule, a learning curve per cell (the test error
    after every epoch), and no fewer updates for the conv family than for the FC family;
    its recipe is part of every cell's settings, so it never mixes with small's cells."""
    medium = R.BUDGETS["medium"]
    fc, conv = R.parse_cell("st-fcn-aff"), R.parse_cell("st-cnn-aff")
    assert medium.epochs_for(conv) >= medium.epochs_for(fc) > R.BUDGETS["small"].epochs_for(conv)
    assert medium.schedule == "onecycle" and medium.eval_every_epoch and medium.train_size == 8000
    s = R.cell_settings(medium, conv, "rts", 0, "table1", "x")
    assert s["schedule"] == "onecycle" and s["lr"] == medium.lr
    assert s != R.cell_settings(R.BUDGETS["small"], conv, "rts", 0, "table1", "x")


def test_addition_trains_longer_with_slower_localisers_at_medium():
    """MNIST addition's own medium budget (:meth:`Budget.for_task`): more epochs than Table
    1, the same for both families, localisers at lr / 10; Table 1 and the other budgets
    are untouched, and its cells' settings are those of the same overrides given by hand
    (so a run of ``--epochs N --loc-lr-scale 0.1`` is read back, not retrained)."""
    medium = R.BUDGETS["medium"]
    addition = medium.for_task("addition")
    fc, conv = R.parse_cell("2xst-fcn-aff"), R.parse_cell("st-cnn-multi-aff")
    assert medium.for_task("table1") is medium and addition.addition_changes is None
    assert addition.epochs_for(conv) == addition.epochs_for(fc) > medium.epochs_for(fc)
    assert addition.loc_lr_scale == 0.1 and medium.loc_lr_scale == 1.0
    assert f"{addition.epochs} epochs" in addition.description and "lr / 10" in addition.description
    for name in ("tiny", "small", "full"):
        assert R.BUDGETS[name].for_task("addition") is R.BUDGETS[name]
    by_hand = R.Overrides(epochs=addition.epochs, loc_lr_scale=0.1).apply(medium)
    for cell in (fc, conv, R.parse_cell("fcn")):
        assert (R.cell_settings(addition, cell, "addition", 0, "addition", "x")
                == R.cell_settings(by_hand, cell, "addition", 0, "addition", "x"))
    assert "addition_changes" not in R.cell_settings(medium, conv, "rts", 0, "table1", "x")
    assert hash(medium) == hash(dataclasses.replace(medium))      # a budget can still be hashed


def test_family_epochs_and_per_cell_settings():
    """``small`` trains each family for its own epoch count; a cell's stored settings hold
    only what it trains with, so one family's schedule change retrains only that family."""
    small = R.BUDGETS["small"]
    fc = [R.parse_cell(k) for k in ("fcn", "st-fcn-aff", "st-fcn-tps", "2xst-fcn-aff")]
    conv = [R.parse_cell(k) for k in ("cnn", "st-cnn-aff", "st-cnn-tps", "st-cnn-multi-aff")]
    assert {small.epochs_for(c) for c in fc} == {small.epochs}
    assert {small.epochs_for(c) for c in conv} == {small.conv_epochs}
    assert small.conv_epochs < small.epochs
    tiny = R.BUDGETS["tiny"]
    assert {tiny.epochs_for(c) for c in fc + conv} == {tiny.epochs}
    s = R.cell_settings(small, R.parse_cell("cnn"), "r", 0, "table1", "x")
    assert s["epochs"] == small.conv_epochs and "loc_lr_scale" not in s and "conv_epochs" not in s
    s = R.cell_settings(small, R.parse_cell("st-fcn-tps"), "r", 0, "table1", "x")
    assert s["epochs"] == small.epochs and s["loc_lr_scale"] == small.loc_lr_scale
    # ST-FCN / ST-CNN cells record the paired initialisation of minstn.models (cells
    # stored before it retrain); the baselines' initialisation did not change
    assert s["init"] == "paired" and "init" not in R.cell_settings(small, R.parse_cell("cnn"), "r", 0, "table1", "x")
    # one family's epochs changed: the other family's settings are unchanged
    longer = dataclasses.replace(small, conv_epochs=small.conv_epochs + 1)
    assert R.cell_settings(longer, fc[1], "r", 0, "table1", "x") == R.cell_settings(small, fc[1], "r", 0, "table1", "x")
    assert R.cell_settings(longer, conv[1], "r", 0, "table1", "x") != R.cell_settings(small, conv[1], "r", 0, "table1", "x")


# --- --jobs N: cells in single-threaded child processes ----------------------------------

def _pin_threads(monkeypatch):
    for name, value in R.SINGLE_THREAD_ENV.items():
        monkeypatch.setenv(name, value)


def test_jobs_matches_jobs_1_and_resumes(tmp_path, monkeypatch, capsys):
    """``--jobs 2`` trains the cells in child processes and gives the same test errors,
    bit for bit, as ``--jobs 1``; run again, it reads every cell back."""
    import subprocess
    import sys

    _pin_threads(monkeypatch)  # both runs single-threaded: same BLAS summation order
    common = ["reproduce", "table1", "--budget", "tiny", "--distortions", "r", "--models", "fcn,st-fcn-aff",
              "--no-figures", *DATA]
    # --jobs 1 as its own process, so the pinned thread counts apply to it too
    ref = tmp_path / "one"
    subprocess.run([sys.executable, "-m", "minstn", *common, "--out", str(ref), "--jobs", "1"], check=True,
                   capture_output=True, text=True)
    out = tmp_path / "two"
    argv = [*common, "--out", str(out), "--jobs", "2"]
    assert R.run_reproduce(_parse(argv)) == 0
    err = capsys.readouterr().err
    assert "training 2 cells in up to 2 single-threaded child processes" in err
    assert err.count("FCN              R ") == 1 and err.count("ST-FCN Aff       R ") == 1  # forwarded once

    one, two = (json.loads((d / "table1.json").read_text()) for d in (ref, out))
    assert one["jobs"] == 1 and two["jobs"] == 2 and two["command"].endswith("--jobs 2")
    errors = lambda doc: {c["model"]: c["test_error"] for c in doc["cells"]}
    assert errors(two) == errors(one) and len(errors(two)) == 2
    assert not any(c["resumed"] for c in two["cells"])
    assert two["seconds"] >= max(c["seconds"] for c in two["cells"])  # the whole invocation
    assert "(2 cells trained, 0 read back; 2 worker processes)" in (out / "table1.md").read_text()

    # again: nothing left to train, no child process, every cell read back
    mtimes = {p: p.stat().st_mtime_ns for p in out.glob("runs/*/*")}
    assert R.run_reproduce(_parse(argv)) == 0
    assert "child processes" not in capsys.readouterr().err
    assert {p: p.stat().st_mtime_ns for p in out.glob("runs/*/*")} == mtimes
    again = json.loads((out / "table1.json").read_text())
    assert all(c["resumed"] for c in again["cells"]) and errors(again) == errors(two)


def test_epochs_override_reaches_the_children_and_the_settings(tmp_path, capsys):
    """``--epochs N`` trains every model for N epochs (both families, the schedule stretched),
    in ``--jobs`` children too; it is part of the cells' settings, so the budget's own cells
    are not read back for it; it does not apply to a budget that counts iterations."""
    out = tmp_path / "r"
    common = ["reproduce", "table1", "--budget", "tiny", "--distortions", "r", "--models", "fcn,cnn",
              "--no-figures", "--out", str(out), *DATA]
    assert R.run_reproduce(_parse([*common, "--jobs", "1"])) == 0
    assert R.run_reproduce(_parse([*common, "--jobs", "2", "--epochs", "2"])) == 0
    assert "training 2 cells in up to 2 single-threaded child processes" in capsys.readouterr().err
    doc = json.loads((out / "table1.json").read_text())
    assert doc["command"].endswith("--jobs 2 --epochs 2") and "here 2 epochs" in doc["budget"]["description"]
    tiny = R.BUDGETS["tiny"]
    for cell in doc["cells"]:   # 256 digits, batch 64: 4 updates an epoch
        assert cell["settings"]["epochs"] == 2 and cell["iterations"] == 2 * tiny.train_size // tiny.batch_size
        assert not cell["resumed"]
    with pytest.raises(ValueError, match="does not apply to the 'full' budget"):
        R.Overrides(epochs=3).apply(R.BUDGETS["full"])
    assert R.Overrides(max_updates=300).apply(R.BUDGETS["full"]).iterations == 300
    assert R.Overrides().apply(tiny) == tiny
    assert R.Overrides().label(tiny) == "tiny budget"                          # figure titles
    assert R.Overrides(epochs=45).label(R.BUDGETS["medium"]) == "medium budget, 45 epochs"
    every = R.Overrides(epochs=45, max_updates=1200, loc_lr_scale=0.1)
    assert every.label(tiny) == "tiny budget, 45 epochs, 1,200 updates, localisers at lr x 0.1"
    assert every.argv() == ["--epochs", "45", "--max-updates", "1200", "--loc-lr-scale", "0.1"]
    assert _parse(["reproduce", "table1", *every.argv()]).epochs == 45     # the parser reads them back
    # --loc-lr-scale: in the ST cells' settings only, and passed on to the children
    slow_loc = R.Overrides(loc_lr_scale=0.1)
    assert slow_loc.apply(tiny).loc_lr_scale == 0.1 and slow_loc.argv() == ["--loc-lr-scale", "0.1"]
    st, fcn = R.parse_cell("st-fcn-aff"), R.parse_cell("fcn")
    assert R.cell_settings(slow_loc.apply(tiny), st, "r", 0, "table1", "x")["loc_lr_scale"] == 0.1
    assert R.cell_settings(slow_loc.apply(tiny), fcn, "r", 0, "table1", "x") == R.cell_settings(
        tiny, fcn, "r", 0, "table1", "x")
    assert _parse(["reproduce", "addition", "--loc-lr-scale", "0.1"]).loc_lr_scale == 0.1
    with pytest.raises(SystemExit):
        _parse(["reproduce", "addition", "--loc-lr-scale", "0"])


def test_guard_override_reaches_the_children_and_the_st_settings():
    """``--guard``: a flag without a value for the ``--jobs`` children, in the figure titles,
    in the ST cells' settings only; cells trained without it keep their settings (no key)."""
    tiny, guarded = R.BUDGETS["tiny"], R.Overrides(guard=True)
    assert guarded.apply(tiny).guard and not tiny.guard
    assert guarded.argv() == ["--guard"] and guarded.label(tiny) == "tiny budget, guarded"
    assert R.Overrides(guard=False).argv() == [] and R.Overrides(guard=False).apply(tiny) == tiny
    assert _parse(["reproduce", "table1", *guarded.argv()]).guard
    assert not _parse(["reproduce", "table1"]).guard
    st, fcn = R.parse_cell("st-fcn-aff"), R.parse_cell("fcn")
    assert R.cell_settings(guarded.apply(tiny), st, "r", 0, "table1", "x")["guard"] is True
    assert "guard" not in R.cell_settings(tiny, st, "r", 0, "table1", "x")
    assert R.cell_settings(guarded.apply(tiny), fcn, "r", 0, "table1", "x") == R.cell_settings(
        tiny, fcn, "r", 0, "table1", "x")


def test_guard_sends_a_collapsed_cell_back_to_its_last_healthy_epoch(tmp_path):
    """Localisers at 300 x the lr drive the transformer off the canvas within an epoch.
    Without the guard the cell trains on (the collapse recorded); with it, the cell goes
    back to its last healthy state with the localisers' lr a tenth each time, and it ends
    done (healthy) or, when that did not help, ``collapsed``."""
    kw = dict(budget="tiny", distortions="r", models=["st-fcn-aff"], epochs=3, loc_lr_scale=300.0,
              figures=False)
    kw.update(data_dir=str(MNIST_DIR)) if HAVE_MNIST else kw.update(dataset="glyphs")
    plain = R.run_table1(out=tmp_path / "plain", announce=lambda s: None, **kw)["cells"][0]
    assert plain["status"] == "done" and plain["collapses"] and "guard" not in plain["settings"]
    said = []
    cell = R.run_table1(out=tmp_path / "guarded", announce=said.append, guard=True, **kw)["cells"][0]
    restores = [m for m in said if "guard: restored the last healthy weights" in m]
    assert restores and cell["settings"]["guard"] is True
    scales = [float(m.split(" x its schedule")[0].rsplit("(", 1)[1]) for m in restores]
    assert scales == pytest.approx([0.1 ** k for k in range(1, len(restores) + 1)])   # whichever epochs they fall in
    if cell["status"] == "done":
        assert cell["guard_restores"] == len(restores) and cell["off_canvas"] < 0.9
    else:
        assert cell["status"] == "collapsed" and len(restores) == GUARD_RETRIES


def test_jobs_child_failure_names_the_cell(tmp_path, monkeypatch):
    """A failing child: no new child starts, and the error names the cell and shows its stderr."""
    import sys

    calls = tmp_path / "calls"
    fake = tmp_path / "fake-python"
    fake.write_text(f"#!/bin/sh\necho called >> {calls}\necho 'Traceback: boom' >&2\nexit 3\n")
    fake.chmod(0o755)
    monkeypatch.setattr(sys, "executable", str(fake))
    kw = dict(budget="tiny", out=tmp_path / "r", distortions="r,rts", models=["fcn", "cnn"], jobs=2,
              announce=lambda s: None)
    kw.update(data_dir=str(MNIST_DIR)) if HAVE_MNIST else kw.update(dataset="glyphs")
    with pytest.raises(RuntimeError, match=r"(?s)CNN on RTS \(cnn-rts\) failed with exit status 3.*boom"):
        R.run_table1(**kw)  # the costliest cell (cnn-rts) starts first
    assert len(calls.read_text().splitlines()) <= 2  # 4 cells, 2 workers: the failure stops the rest
    assert not (tmp_path / "r" / "table1.json").exists()


def test_jobs_validation(tmp_path):
    with pytest.raises(SystemExit):
        _parse(["reproduce", "table1", "--jobs", "0"])
    with pytest.raises(SystemExit):
        _parse(["reproduce", "addition", "--jobs", "x"])
    assert _parse(["reproduce", "addition", "--jobs", "3"]).jobs == 3
    assert _parse(["reproduce", "table1"]).jobs == (os.cpu_count() or 1)   # the number of cores by default
    custom = dataclasses.replace(R.BUDGETS["tiny"], epochs=2)
    with pytest.raises(ValueError, match="named budgets"):
        R.run_table1(budget=custom, jobs=2, out=tmp_path)
    with pytest.raises(ValueError, match="named budgets"):
        R.run_addition(budget=custom, jobs=2, out=tmp_path)
    with pytest.raises(ValueError, match="at least 1"):
        R.run_table1(budget="tiny", jobs=0, out=tmp_path)


def test_cell_cost_puts_long_cells_first():
    small = R.BUDGETS["small"]
    cost = lambda key, d: R.cell_cost(R.parse_cell(key), small, d)
    # measured (small, seed 0): ST-CNN RTS ~126 s > CNN RTS ~113 s > ST-CNN R ~30 s >
    # CNN R ~26 s > ST-FCN RTS ~20 s > ST-FCN R ~11 s > FCN RTS ~10 s > FCN R ~5 s
    order = [("st-cnn-aff", "rts"), ("cnn", "rts"), ("st-cnn-tps", "r"), ("cnn", "r"), ("st-fcn-aff", "rts"),
             ("st-fcn-aff", "r"), ("fcn", "rts"), ("fcn", "r")]
    costs = [cost(*c) for c in order]
    assert costs == sorted(costs, reverse=True)
    assert cost("cnn", "tc") > cost("cnn", "rts") and cost("st-cnn-multi-aff", "addition") > cost("cnn", "addition")
