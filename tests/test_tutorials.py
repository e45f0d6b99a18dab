"""Every tutorial runs top to bottom, in fast mode, and its own checks pass.

Each tutorial is executed as a plain script in a fresh process, as a learner
would run it (``python tutorials/NN_name.py``), with

* ``MINSTN_FAST=1``: smaller data and fewer epochs (the whole course in a few minutes);
* ``MPLBACKEND=Agg``: no display needed;
* ``MINSTN_FIGURES``: a temporary folder, so the repository is not touched;
* one thread for Numba and BLAS unless the caller set them: on a shared or
  small machine, oversubscribed threads make training many times slower.

The tutorials end with assertions about what the reader should have seen, so a
zero exit status means more than "no exception".

Run only these: ``pytest tests/test_tutorials.py`` (or ``-m tutorials``).
"""
from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TUTORIALS = sorted((ROOT / "tutorials").glob("[0-9][0-9]_*.py"))

pytestmark = pytest.mark.tutorials


def test_the_course_is_all_there():
    numbers = [p.name[:2] for p in TUTORIALS]
    assert [n for n in numbers if n != "10"] == [f"{k:02d}" for k in range(1, 10)] + ["11"], numbers


@pytest.mark.parametrize("path", TUTORIALS, ids=[p.stem for p in TUTORIALS])
def test_tutorial_runs_in_fast_mode(path, tmp_path):
    env = dict(os.environ, MINSTN_FAST="1", MPLBACKEND="Agg", MINSTN_FIGURES=str(tmp_path))
    for var in ("NUMBA_NUM_THREADS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        env.setdefault(var, "1")
    start = time.perf_counter()
    result = subprocess.run([sys.executable, str(path)], cwd=ROOT, env=env, capture_output=True,
                            text=True, timeout=600)
    elapsed = time.perf_counter() - start
    assert result.returncode == 0, (
        f"{path.name} failed after {elapsed:.0f} s\n--- stdout (tail) ---\n{result.stdout[-3000:]}"
        f"\n--- stderr (tail) ---\n{result.stderr[-3000:]}")
    assert f"{path.name[:2]}: all checks passed" in result.stdout
    figures = list(tmp_path.glob("*.png"))
    assert figures, f"{path.name} wrote no figure to MINSTN_FIGURES"
    assert all(f.stat().st_size > 2000 for f in figures), [(f.name, f.stat().st_size) for f in figures]
    print(f"{path.name}: {elapsed:.1f} s, {len(figures)} figures")
