"""Every tutorial runs top to bottom in fast mode, its own checks pass, its exercises' checks
accept the solution and reject a wrong answer, and its notebook shows every figure it writes.

Where the ``course`` extra is installed (CI installs it), each step runs once, as the
notebook of the course website (the ``course_site`` fixture of conftest.py builds the site
in fast mode: tutorial cells, then its solutions, in one fresh Jupyter kernel), and the
tests read the executed notebooks. Without it, each step runs as a plain script followed
by its solutions (``python tutorials/solutions NN``), in a fresh process. Step 01 also runs
as a plain script in every case, so the script path (figures written, not shown) is tested.

The tutorials end with assertions about what the reader should have seen, so "passed"
means more than "no exception"; the solutions end with ``NN solutions: all checks passed``.

Run only these: ``pytest tests/test_tutorials.py`` (or ``-m tutorials``).
"""
from __future__ import annotations

import base64
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TUTORIALS = sorted((ROOT / "tutorials").glob("[0-9][0-9]_*.py"))
SOLUTIONS = ROOT / "tutorials" / "solutions"

pytestmark = pytest.mark.tutorials


def exercises_of(path: Path) -> list[int]:
    return [int(k) for k in re.findall(r"^# #{2,3} Exercise (\d+)", path.read_text(), re.M)]


def test_the_course_is_all_there():
    numbers = [p.name[:2] for p in TUTORIALS]
    assert numbers == [f"{k:02d}" for k in range(1, len(TUTORIALS) + 1)], numbers
    assert len(TUTORIALS) >= 9


def run_as_script(number: str, figures: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, MINSTN_FAST="1", MPLBACKEND="Agg", MINSTN_FIGURES=str(figures))
    for var in ("NUMBA_NUM_THREADS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        env.setdefault(var, "1")       # as in conftest.py: no oversubscribed threads
    return subprocess.run([sys.executable, str(SOLUTIONS), number], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=1200)


def notebook_images(nb: dict) -> list[bytes]:
    return [base64.b64decode(o["data"]["image/png"]) for c in nb["cells"] if c["cell_type"] == "code"
            for o in c.get("outputs", []) if "image/png" in o.get("data", {})]


@pytest.mark.parametrize("path", TUTORIALS, ids=[p.stem for p in TUTORIALS])
def test_tutorial_and_its_solutions_run_in_fast_mode(path, course_site, tmp_path):
    number = path.name[:2]
    if course_site is None:                                  # no course extra: plain scripts
        result = run_as_script(number, tmp_path)
        assert result.returncode == 0, f"{path.name}\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
        assert f"{number}: all checks passed" in result.stdout
        assert not exercises_of(path) or f"{number} solutions: all checks passed" in result.stdout
        figures = list(tmp_path.glob("*.png"))
        assert figures and all(f.stat().st_size > 2000 for f in figures), figures
        return
    folder, manifest, log = course_site
    record = next((r for r in manifest["steps"] if r["name"] == path.stem), None)
    assert record is not None, f"{path.name} is not in the built site\n{log[-3000:]}"
    assert record["error"] is None, record["error"][-4000:]
    assert record["passed"], f"{path.name}: no '{number}: all checks passed'"
    assert record["exercises"] == exercises_of(path)
    assert not record["exercises"] or record["solutions_passed"], f"{path.name}: the solutions did not all pass"
    figures = sorted((folder / "_figures" / path.stem).glob("*.png"))
    assert figures, f"{path.name} wrote no figure"
    assert all(f.stat().st_size > 2000 for f in figures), [(f.name, f.stat().st_size) for f in figures]
    # Every figure the script writes is shown in the notebook: the very same PNG bytes.
    nb = json.loads((folder / "executed" / f"{path.stem}.ipynb").read_text())
    shown = notebook_images(nb)
    assert len(shown) >= len(figures)
    missing = [f.name for f in figures if f.read_bytes() not in shown]
    assert not missing, f"{path.name}: figures written but not shown in the notebook: {missing}"
    # No stray output: every cell prints what it means to (no echoed Module, no PosixPath).
    stray = ["".join(c["source"])[-80:] for c in nb["cells"] if c["cell_type"] == "code"
             for o in c.get("outputs", []) if o["output_type"] == "execute_result"]
    assert not stray, f"{path.name}: cells that echo a value: {stray}"
    assert "PosixPath" not in json.dumps(nb)


def test_a_tutorial_runs_as_a_plain_script(tmp_path):
    """The script path: figures written to MINSTN_FIGURES and named on stdout, solutions after it."""
    result = run_as_script("01", tmp_path)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "01: all checks passed" in result.stdout and "01 solutions: all checks passed" in result.stdout
    written = sorted(tmp_path.glob("*.png"))
    assert written and all(f"figure written: {f}" in result.stdout for f in written)


@pytest.mark.parametrize("path", TUTORIALS, ids=[p.stem for p in TUTORIALS])
def test_every_exercise_has_a_check_and_a_solution(path):
    """Each exercise K defines check_exercise_K; its solution calls it on the right answer
    and, through _course.rejects, on a plausible wrong one (both run in the test above)."""
    numbers = exercises_of(path)
    assert numbers, f"{path.name} has no exercise"
    source = path.read_text()
    solution = SOLUTIONS / path.name
    assert solution.exists(), f"no solutions file {solution.relative_to(ROOT)}"
    solved = solution.read_text()
    for k in numbers:
        assert f"def check_exercise_{k}(" in source, f"{path.name}: exercise {k} has no check"
        assert re.search(rf"^# #{{2,3}} Exercise {k}\b", solved, re.M), f"{solution.name}: no solution to {k}"
        assert re.search(rf"(?<!rejects\()check_exercise_{k}\(", solved), f"{solution.name}: {k} not checked"
        assert f"rejects(check_exercise_{k}," in solved, f"{solution.name}: no wrong answer for {k}"
    assert f'print("{path.name[:2]} solutions: all checks passed")' in solved


@pytest.mark.parametrize("path", TUTORIALS, ids=[p.stem for p in TUTORIALS])
def test_each_step_says_how_long_and_what_it_needs(path):
    """The line under the title, which the teacher's page and the site's table read."""
    header = path.read_text().split("\n# %%")[0]
    assert re.search(r"\*\*Study time\*\* about \d+ min", header), path.name
    assert re.search(r"\*\*Prerequisites\*\* ", header), path.name
    teacher = (ROOT / "tutorials" / "README.md").read_text()
    assert f"[`{path.name}`]({path.name})" in teacher, f"tutorials/README.md does not list {path.name}"
