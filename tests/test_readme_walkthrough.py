"""The REPL walkthrough in README.md runs as written.

Every line of the README's walkthrough code block (the one that builds a
``SpatialTransformer``) must run. We execute that block and check what its prose claims.
"""
from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SECTION = ROOT / "README.md"


def _python_blocks(text: str) -> list[str]:
    return re.findall(r"```python\n(.*?)```", text, flags=re.S)


def test_walkthrough_block_runs_and_does_what_it_says():
    blocks = [b for b in _python_blocks(SECTION.read_text()) if "SpatialTransformer" in b]
    assert blocks, "no ```python walkthrough block in README.md"
    namespace: dict = {}
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        exec(compile(blocks[0], str(SECTION), "exec"), namespace)
    out = printed.getvalue()
    # The transformer starts at the identity.
    assert np.allclose(namespace["st"].last_theta, np.tile(np.eye(2, 3), (4, 1, 1)))
    # backward reached the regression layer and theta; the hook saw the gradient.
    assert np.any(namespace["st"].regression.bias.grad != 0)
    theta = namespace["theta"]
    assert theta.grad.shape == (4, 2, 3) and np.any(theta.grad != 0)
    assert namespace["seen"] and np.isclose(namespace["seen"][0], np.abs(theta.grad).max())
    assert namespace["grid"].grad.shape == (4, 28, 28, 2)
    # The graph printed is the one shown in the section.
    for line in ("GridSampleBackward", "AffineGridBackward", "theta  (4, 2, 3) float32 leaf"):
        assert line in out
    assert out.rstrip().endswith("True")


def test_section_links_the_tutorials_and_its_figures_exist():
    text = SECTION.read_text()
    assert "](tutorials/README.md)" in text
    figures = re.findall(r"\]\((docs/figures/[^)]+\.png)\)", text)
    assert {"docs/figures/tutorial_grid_overlay.png", "docs/figures/tutorial_st_evolution.png"} <= set(figures)
    for name in figures:
        path = ROOT / name
        assert path.exists(), path
        assert path.stat().st_size < 150_000, (path, path.stat().st_size)
