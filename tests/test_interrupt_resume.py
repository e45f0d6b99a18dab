"""``benchmarks/interrupt_resume.py``: interrupt a reproduce run once, resume it, compare.

Wherever the interrupt lands (while Python starts, while a worker trains a cell, after
the cells are done), the resumed run must hold the cells of an uninterrupted run, byte
for byte; and the comparison must notice a cell that differs (negative control: another
seed).
"""

import sys
from pathlib import Path

from benchmark_script import load_benchmark
from test_reproduce import DATA


def _command(out: Path, *more: str) -> list:
    return [sys.executable, "-m", "minstn", "reproduce", "table1", "--budget", "tiny", "--distortions", "r",
            "--models", "fcn,st-fcn-aff", "--no-figures", "--jobs", "2", "--out", str(out), *DATA, *more]


def test_an_interrupted_run_resumes_to_the_uninterrupted_cells(tmp_path, capsys):
    script = load_benchmark("interrupt_resume")
    reference, resumed, other_seed = tmp_path / "reference", tmp_path / "resumed", tmp_path / "seed1"
    script.interrupt_then_resume(_command(reference), after=600)        # runs to the end
    assert "finished before the interrupt" in capsys.readouterr().out
    script.interrupt_then_resume(_command(resumed), after=4)
    assert script.compare_runs(reference, resumed) == 0
    said = capsys.readouterr().out
    assert said.count("identical") == 2
    script.interrupt_then_resume(_command(other_seed, "--seed", "1"), after=600)
    assert script.compare_runs(reference, other_seed) == 2              # the comparison can fail
    assert "model.npz differs" in capsys.readouterr().out
