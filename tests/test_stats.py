"""Intervals and paired tests behind every accuracy comparison the notebooks draw."""
import numpy as np
import pytest

from tinyml_helpers import stats


def test_wilson_matches_the_issue_scale():
    # 384 test clips at ~93 %: a 95 % interval about +-2.5 points wide, one clip = 0.26 points
    lo, hi = stats.wilson_interval(357, 384)
    assert 0.035 < hi - lo < 0.06
    assert lo < 357 / 384 < hi


def test_wilson_edges_and_errors():
    assert stats.wilson_interval(0, 0) == (0.0, 1.0)
    lo, hi = stats.wilson_interval(3, 3)
    assert hi == 1.0 and lo < 0.5          # 3 of 3 says little
    with pytest.raises(ValueError):
        stats.wilson_interval(4, 3)


def test_paired_difference_sees_consistent_gains_that_unpaired_intervals_miss():
    rng = np.random.default_rng(0)
    a = rng.random(384) < 0.9
    b = a.copy()
    flip = np.flatnonzero(a)[:12]           # B loses 12 clips A gets, and gains none
    b[flip] = False
    d = stats.paired_difference(a, b, "A", "B")
    assert d.only_a == 12 and d.only_b == 0 and d.measurable and d.p_value < 0.001
    # the two separate Wilson intervals overlap, although the paired test is clear
    la, ha = stats.wilson_interval(int(a.sum()), a.size)
    lb, hb = stats.wilson_interval(int(b.sum()), b.size)
    assert lb < ha and la < hb
    assert "measurably better" in d.line()


def test_paired_difference_says_no_measurable_difference_on_a_few_swaps():
    a = np.array([1] * 300 + [0] * 84, bool)
    b = a.copy()
    b[:3] = False
    b[300:302] = True                       # 3 lost, 2 gained
    d = stats.paired_difference(a, b, "int8", "fp32")
    assert not d.measurable and d.low < 0 < d.high
    assert "no measurable difference" in stats.describe_difference(d)


def test_mcnemar_is_symmetric_and_bounded():
    assert stats.mcnemar_exact_p(7, 2) == stats.mcnemar_exact_p(2, 7)
    assert stats.mcnemar_exact_p(0, 0) == 1.0
    assert 0 < stats.mcnemar_exact_p(20, 0) < 1e-5


def test_a_few_discordant_clips_are_not_evidence():
    # 0 against 4 clips: the bootstrap interval may exclude 0, McNemar (p = 0.125) does not
    a = np.ones(384, bool)
    b = a.copy()
    b[:4] = False
    d = stats.paired_difference(a, b)
    assert d.p_value == pytest.approx(0.125) and not d.measurable
