"""The paired lead of an ST model over its baseline (minstn.experiments.reproduce.significance)."""
import math

import numpy as np
import pytest

from minstn.experiments.reproduce.significance import leads_text, paired_lead


def test_paired_lead_by_hand():
    # 10 examples: both right on 5, only the ST model on 3, only the baseline on 1, both wrong on 1
    st = np.array([1, 1, 1, 1, 1, 1, 1, 1, 0, 0], bool)
    base = np.array([1, 1, 1, 1, 1, 0, 0, 0, 1, 0], bool)
    r = paired_lead(st, base)
    assert (r["st_only"], r["base_only"], r["n"]) == (3, 1, 10)
    assert r["lead"] == pytest.approx((3 - 1) / 10)            # baseline error 0.4 - ST error 0.2
    # d is +1 three times, -1 once, 0 six times: var = 4/10 - 0.2**2
    assert r["paired_se"] == pytest.approx(math.sqrt(4 / 10 - 0.2 ** 2) / math.sqrt(10))
    assert r["unpaired_se"] == pytest.approx(math.sqrt((0.8 * 0.2 + 0.6 * 0.4) / 10))


def test_pairing_is_what_shrinks_the_standard_error():
    """Negative control: the same two models with the baseline's examples shuffled (no
    longer paired with the ST model's) keep both error rates, and so the unpaired SE, but
    the paired SE of strongly correlated models is far smaller than of shuffled ones."""
    rng = np.random.default_rng(0)
    base = rng.random(2000) < 0.85
    st = base | (rng.random(2000) < 0.1)          # right wherever the baseline is, and a few more
    paired, shuffled = paired_lead(st, base), paired_lead(st, rng.permutation(base))
    assert paired["base_only"] == 0 and paired["lead"] == pytest.approx(shuffled["lead"])
    assert paired["unpaired_se"] == pytest.approx(shuffled["unpaired_se"])
    assert paired["paired_se"] < 0.5 * shuffled["paired_se"]
    same = paired_lead(base, base)
    assert same["lead"] == 0 and same["paired_se"] == 0 and same["st_only"] == same["base_only"] == 0


def test_bad_input_and_the_table():
    with pytest.raises(ValueError, match="equal-length"):
        paired_lead(np.ones(3, bool), np.ones(4, bool))
    with pytest.raises(ValueError, match="at least 2"):
        paired_lead(np.ones(1, bool), np.ones(1, bool))
    assert leads_text([], {}, {}) == ""
    r = {"model": "2xst-fcn-aff", "baseline": "fcn", "column": "addition",
         **paired_lead(np.array([1, 1, 0, 1], bool), np.array([0, 1, 0, 1], bool))}
    text = leads_text([r], {"2xst-fcn-aff": "2xST-FCN Aff"}, {})
    assert "| 2xST-FCN Aff | FCN | addition | +25.00 |" in text and "| 1 / 0 |" in text
    same = {"model": "2xst-fcn-aff", "baseline": "fcn", "column": "r",
            **paired_lead(np.array([1, 0], bool), np.array([1, 0], bool))}
    assert "| +0.00 | 0.00 / 50.00 | – | 0 / 0 |" in leads_text([same], {"2xst-fcn-aff": "2xST-FCN Aff"}, {})
