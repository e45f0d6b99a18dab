"""Small helpers shared by the tutorials (not part of the library).

* ``FAST``: True when ``MINSTN_FAST=1``; each tutorial then shrinks its data and
  epochs so that the whole course runs in a few minutes (this is what the test
  suite and the course website's CI build do).
* ``savefig(fig, name)``: writes ``name.png`` to ``$MINSTN_FIGURES`` or, by
  default, ``tutorials/figures/``; in a notebook (Jupyter, VS Code) it also shows
  that PNG below the cell. Returns nothing, so a cell that ends with it prints nothing.
* ``digits(n, split)``: real MNIST digits when a copy is found (``$MINSTN_DATA``,
  or the project's shared data folder ``../shared/data/mnist``), otherwise the
  digits that minstn draws itself from fonts. Never downloads anything.
  ``MINSTN_DIGITS=glyphs`` forces the drawn digits (to try the offline path).
* ``rejects(check, *answer)``: the negative control of an exercise check: the check
  must raise ``AssertionError`` on this (wrong) answer. The solutions use it.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
FAST = os.environ.get("MINSTN_FAST", "0") not in ("", "0", "false", "False")


def figures_dir() -> Path:
    folder = Path(os.environ.get("MINSTN_FIGURES") or HERE / "figures")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _in_notebook() -> bool:
    """True inside a Jupyter kernel (a terminal IPython cannot show images)."""
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and getattr(shell, "kernel", None) is not None


def savefig(fig, name: str, dpi: int = 110) -> None:
    path = figures_dir() / f"{name}.png"
    fig.savefig(path, dpi=dpi)
    if _in_notebook():
        from IPython.display import Image, display

        display(Image(data=path.read_bytes(), format="png"))  # the very PNG the script writes
    else:
        print(f"figure written: {path}")


def _mnist_dirs():
    if os.environ.get("MINSTN_DATA"):
        yield Path(os.environ["MINSTN_DATA"])
    yield HERE.parent.parent / "shared" / "data" / "mnist"   # the course's shared copy


def digits(n: int, split: str = "test", seed: int = 0):
    """``(images uint8 (n, 28, 28), labels int64 (n,), source)`` with source 'MNIST' or 'glyphs'."""
    from minstn.data.mnist import load_mnist

    folders = [] if os.environ.get("MINSTN_DIGITS") == "glyphs" else _mnist_dirs()
    for folder in folders:
        for s in (split, "test"):          # the shared copy only has the test split
            try:
                images, labels = load_mnist(s, data_dir=folder, download=False)
            except (FileNotFoundError, ValueError):
                continue
            pick = np.random.default_rng(seed).permutation(len(images))[:n]
            return images[pick], labels[pick], "MNIST"
    from minstn.data.glyphs import load_glyphs

    images, labels = load_glyphs(split, n=n, seed=seed)
    return images, labels, "glyphs"


def rejects(check, *answer) -> None:
    """Run an exercise check on a wrong answer: it must raise AssertionError (its message is printed)."""
    try:
        check(*answer)
    except AssertionError as error:
        print(f"{check.__name__} rejects it, as it should: {error}")
        return
    raise AssertionError(f"{check.__name__} accepted a wrong answer: the check cannot fail")
