"""``benchmarks/p_ink.py``: the P column's errors by the share of ink the distortion kept.

It re-creates a finished cell's test digits and predictions, so its bins must add up to
the cell's stored test error; and the ink share itself is checked on images whose sums
are known.
"""

import json
import re

import numpy as np
import pytest
from benchmark_script import load_benchmark
from test_reproduce import DATA, HAVE_MNIST, MNIST_DIR, _parse

from minstn.experiments import reproduce as R


def _p_ink():
    return load_benchmark("p_ink")


def test_ink_kept_is_the_ratio_of_the_sums():
    p_ink = _p_ink()
    original = np.zeros((2, 4, 4), np.uint8)
    original[:, 1:3, 1:3] = 255                       # 4 pixels of ink each
    distorted = np.zeros((2, 1, 4, 4), np.float32)
    distorted[0, 0, 1:3, 1:3] = 1.0                   # all of it
    distorted[1, 0, 1, 1] = 1.0                       # a quarter
    assert p_ink.ink_kept(original, distorted) == pytest.approx([1.0, 0.25])


@pytest.mark.skipif(not HAVE_MNIST, reason="needs the MNIST IDX files in ../shared/data/mnist (or $MINSTN_DATA)")
def test_bins_add_up_to_the_cells_test_error(tmp_path, capsys):
    out = tmp_path / "p"
    assert R.run_reproduce(_parse(["reproduce", "table1", "--budget", "tiny", "--out", str(out), "--distortions",
                                   "p", "--models", "fcn", "--no-figures", *DATA])) == 0
    folder = out / "runs" / "fcn-p"
    stored = json.loads((folder / "metrics.json").read_text())
    capsys.readouterr()
    bins = _p_ink().report(folder, MNIST_DIR, figure=tmp_path / "least.png")
    text = capsys.readouterr().out
    test_size = stored["settings"]["test_size"]
    assert sum(b["digits"] for b in bins) == test_size
    assert sum(b["errors"] for b in bins) == round(stored["test_error"] * test_size)
    assert f"test error {100 * stored['test_error']:.2f}%" in text
    for b in bins:                                      # each bin printed as returned
        assert re.search(rf"^  {re.escape(b['bin'])}\s+{b['digits']}\s.*\s{b['errors']}\s", text, re.M), b
    assert (tmp_path / "least.png").stat().st_size > 5_000
