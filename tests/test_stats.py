"""report.stats, the one home of the verdicts' statistics: hand-computed values (closed forms of
Student's t for 4 degrees of freedom, as in test_claims), checked against scipy where scipy has the
same quantity, and the power of the seed counts checked by simulation."""
import math

import numpy as np
import pytest
from scipy import stats as sps

from introspect.report import stats

BASE = [90.0, 90.2, 89.8]  # mean 90, variance 0.04: two such samples give SE = 0.163299, df = 4


def t4_cdf(t: float) -> float:
    u = 1 + t * t / 4
    return 0.5 + 0.375 * t / math.sqrt(u) * (1 - t * t / (12 * u))


def test_welch_standard_error_and_df_by_hand_and_against_scipy():
    # x = [1, 2, 3] (variance 1), y = [1, 3, 5, 7] (variance 20/3): s²/n = 1/3 and 5/3, SE² = 2,
    # df = 2² / ((1/3)² / 2 + (5/3)² / 3) = 4 / (1/18 + 25/27) = 4 / 0.981481 = 4.075472
    x, y = [1.0, 2.0, 3.0], [1.0, 3.0, 5.0, 7.0]
    delta, se, df = stats.welch(x, y)
    assert (delta, se) == pytest.approx((-2.0, math.sqrt(2.0))) and df == pytest.approx(4.075472, abs=1e-6)
    assert df == pytest.approx(sps.ttest_ind(x, y, equal_var=False).df)


def test_non_inferiority_by_hand_and_against_scipy():
    # Δ = +0.2, margin 0.5: t = 0.7 / 0.163299 = 4.286607, p = 1 - F4(4.286607) = 0.006390
    x = [v + 0.2 for v in BASE]
    p = stats.noninferiority(x, BASE, 0.5)
    assert p == pytest.approx(1 - t4_cdf(0.7 / 0.2 / math.sqrt(2 / 3)), abs=1e-12) == pytest.approx(0.006390, abs=1e-6)
    assert p == pytest.approx(sps.ttest_ind(np.add(x, 0.5), BASE, equal_var=False, alternative="greater").pvalue)
    # no test without 2 values a side or without variance
    assert math.isnan(stats.noninferiority([1.0], BASE, 0.5)) and math.isnan(stats.one_sided([1.0, 1.0], [2.0, 2.0], "less"))


def test_welch_interval_by_hand_and_against_scipy():
    # Δ = 0.4, SE 0.163299, df 4, t_{0.975, 4} = 2.776445: 0.4 ± 0.453391
    x = [v + 0.4 for v in BASE]
    low, high = stats.welch_interval(x, BASE)
    assert (low, high) == pytest.approx((0.4 - 0.453391, 0.4 + 0.453391), abs=1e-6)
    ci = sps.ttest_ind(x, BASE, equal_var=False).confidence_interval(0.95)
    assert (low, high) == pytest.approx((ci.low, ci.high))
    assert all(math.isnan(v) for v in stats.welch_interval([1.0], BASE))


def test_holm_by_hand():
    # sorted 0.01, 0.03, 0.04 times 3, 2, 1 = 0.03, 0.06, 0.04; running maximum 0.03, 0.06, 0.06
    assert stats.holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    adjusted = stats.holm([0.01, math.nan, 0.04])  # nan is not counted in m
    assert adjusted[0] == pytest.approx(0.02) and math.isnan(adjusted[1]) and adjusted[2] == pytest.approx(0.04)


def test_pooled_std_by_hand():
    # ((3 - 1) 1 + (4 - 1) 20/3) / (3 + 4 - 2) = 22 / 5
    assert stats.pooled_std([1.0, 2.0, 3.0], [1.0, 3.0, 5.0, 7.0]) == pytest.approx(math.sqrt(22 / 5))


def test_seeds_needed_is_the_smallest_n_with_80_percent_power():
    # d = 1, one-sided α = 0.05: the normal approximation (z_0.95 + z_0.8)² x 2 / d² = 12.37 is a lower
    # bound; the exact t-test needs 14 (power 0.824 at 14, 0.797 at 13)
    assert 2 * (sps.norm.ppf(0.95) + sps.norm.ppf(0.8)) ** 2 == pytest.approx(12.365, abs=1e-3)
    assert stats.seeds_needed(1.0, 1.0, 0.05) == 14
    assert stats.power(14, 1.0, 1.0, 0.05) >= 0.8 > stats.power(13, 1.0, 1.0, 0.05)
    # the scale does not matter, only Δ / σ
    assert stats.seeds_needed(0.3, 0.3, 0.05) == 14 and stats.seeds_needed(2.0, 1.0, 0.05) < 14
    # an effect on the wrong side, no spread, or too many: no count
    assert stats.seeds_needed(-0.1, 1.0, 0.05) is None and stats.seeds_needed(0.0, 1.0, 0.05) is None
    assert stats.seeds_needed(1.0, 0.0, 0.05) is None and stats.seeds_needed(0.001, 1.0, 0.05) is None


def test_the_power_formula_agrees_with_a_simulation():
    # 20,000 experiments of 14 seeds a side, δ = 1, σ = 1: the share that Welch's one-sided test rejects
    rng = np.random.default_rng(0)
    x, y = rng.normal(1.0, 1.0, (20000, 14)), rng.normal(0.0, 1.0, (20000, 14))
    p = sps.ttest_ind(x, y, axis=1, equal_var=False, alternative="greater").pvalue
    assert np.mean(p < 0.05) == pytest.approx(stats.power(14, 1.0, 1.0, 0.05), abs=0.015)
