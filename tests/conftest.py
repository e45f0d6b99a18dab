"""Shared test setup.

* Every kernel call waits for its compiled Numba kernel: minstn answers a first call whose
  kernel is not compiled yet with the kernel's NumPy twin (``minstn/kernels/warm.py``);
  the suite tests the compiled kernels themselves, with a fresh Numba cache in CI, so it
  waits for them (the environment variable is inherited by the tutorials and commands
  the tests start); ``tests/test_first_use.py`` tests the twins in processes of its own.
* The course website, built once per test session in fast mode (tests/test_tutorials.py
  and tests/test_course_site.py read it), so that CI runs every tutorial once, as a
  notebook. ``MINSTN_COURSE_SITE=DIR`` reuses a site built earlier with
  ``python tutorials/build_site.py DIR --fast`` (to iterate on the browser test).
  Without the ``course`` extra (jupytext, nbclient, ipykernel) the fixture is None and
  the tutorials run as plain scripts instead.
"""
from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

os.environ.setdefault("MINSTN_WAIT_FOR_JIT", "1")

ROOT = Path(__file__).resolve().parents[1]
COURSE_TOOLS = ("jupytext", "nbclient", "nbformat", "nbconvert", "ipykernel")


def course_tools_missing() -> list[str]:
    return [m for m in COURSE_TOOLS if importlib.util.find_spec(m) is None]


@pytest.fixture(scope="session")
def course_site(tmp_path_factory):
    """``(folder, build.json as a dict, the build's output)``, or None without the course extra."""
    if course_tools_missing():
        return None
    if os.environ.get("MINSTN_COURSE_SITE"):
        folder = Path(os.environ["MINSTN_COURSE_SITE"])
        return folder, json.loads((folder / "build.json").read_text()), "(reused)"
    folder = tmp_path_factory.mktemp("course-site")
    env = dict(os.environ, MPLBACKEND="Agg")
    # One thread for Numba and BLAS unless the caller set them: on a shared or small
    # machine, oversubscribed threads make training many times slower.
    for var in ("NUMBA_NUM_THREADS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        env.setdefault(var, "1")
    result = subprocess.run([sys.executable, str(ROOT / "tutorials" / "build_site.py"), str(folder), "--fast"],
                            cwd=ROOT, env=env, capture_output=True, text=True, timeout=3000)
    manifest = folder / "build.json"
    assert manifest.exists(), f"the site build crashed\n{result.stdout[-4000:]}\n{result.stderr[-4000:]}"
    return folder, json.loads(manifest.read_text()), result.stdout + result.stderr
