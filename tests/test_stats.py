"""report.stats, the one home of the verdicts' statistics: every expected number worked out by hand
(closed forms of Student's t for 1, 2 and 4 degrees of freedom, an integral over the chi-square for
the power), then checked against scipy's own routines (ttest_rel, ttest_ind, their intervals), and the
power checked by simulation. statsmodels is not a dependency: the power is checked against an
integral written here, independent of scipy.stats.nct that the code uses."""
import math

import numpy as np
import pytest
from scipy import integrate
from scipy import stats as sps

from introspect.report import stats

BASE = [90.0, 90.2, 89.8]  # mean 90, variance 0.04: two such samples give SE = 0.163299, df = 4 (Welch)


def t2_cdf(t: float) -> float:
    return 0.5 + t / (2 * math.sqrt(2 + t * t))


def t4_cdf(t: float) -> float:
    u = 1 + t * t / 4
    return 0.5 + 0.375 * t / math.sqrt(u) * (1 - t * t / (12 * u))


def t2_ppf(p: float) -> float:
    """The inverse of t2_cdf: t = (2p − 1) / sqrt(2 p (1 − p))."""
    return (2 * p - 1) / math.sqrt(2 * p * (1 - p))


def test_paired_standard_error_and_df_by_hand_and_against_scipy():
    # x − y = [0, 1, 1, 3]: mean 1.25, variance (1.5625 + 0.0625 + 0.0625 + 3.0625) / 3 = 4.75 / 3,
    # SE = sqrt(4.75 / 3 / 4) = 0.629153, df = 3
    x, y = [1.0, 2.0, 3.0, 5.0], [1.0, 1.0, 2.0, 2.0]
    delta, se, df = stats.paired(x, y)
    assert (delta, se, df) == pytest.approx((1.25, math.sqrt(4.75 / 12), 3.0))
    assert stats.diff_std(x, y) == pytest.approx(math.sqrt(4.75 / 3))
    assert delta / se == pytest.approx(sps.ttest_rel(x, y).statistic)


def test_paired_one_sided_by_hand_and_against_scipy():
    # differences 0.4 + [0, 0.2, −0.2]: mean 0.4, s_d 0.2, SE = 0.2 / sqrt 3 = 0.115470, df 2:
    # t = 2 sqrt 3 = 3.464102, p = 1 − F2(3.464102) = 0.5 − sqrt(3 / 14) = 0.037090
    y = BASE
    x = [v + 0.4 + e for v, e in zip(y, [0.0, 0.2, -0.2])]
    p = stats.paired_one_sided(x, y, "greater")
    assert p == pytest.approx(1 - t2_cdf(2 * math.sqrt(3)), abs=1e-12) == pytest.approx(0.037090, abs=1e-6)
    assert p == pytest.approx(sps.ttest_rel(x, y, alternative="greater").pvalue, rel=1e-12)
    assert stats.paired_one_sided(x, y, "less") == pytest.approx(1 - p)
    # shift m: the non-inferiority test of Δ > −m; Δ = 0.4 − 0.5 = −0.1 against −0.3:
    # t = 0.2 / 0.115470 = sqrt 3, p = 0.5 − sqrt 3 / (2 sqrt 5) = 0.112702
    x2 = [v - 0.5 for v in x]
    assert stats.paired_one_sided(x2, y, "greater", 0.3) == pytest.approx(1 - t2_cdf(math.sqrt(3)), abs=1e-12)
    # no test with one pair, or with the same difference at every seed
    assert math.isnan(stats.paired_one_sided([1.0], [2.0], "greater"))
    assert math.isnan(stats.paired_one_sided([2.0, 3.0], [1.0, 2.0], "greater"))
    # differences equal but for rounding (0.11 − 0.03 = 0.08 and 0.12 − 0.04 = 0.07999999999999999): no spread,
    # where scipy would give t ≈ 1e16 and p ≈ 0
    assert 0.12 - 0.04 != 0.11 - 0.03 and math.isnan(stats.paired_one_sided([0.11, 0.12], [0.03, 0.04], "less"))


def test_the_interval_has_the_level_of_the_one_sided_test():
    # α = 0.05 one-sided <-> a 90 % two-sided interval; t_{0.95, 2} = 0.9 / sqrt(0.095) = 2.919986:
    # Δ = 0.1 ± 2.919986 x 0.115470 = 0.1 ± 0.337171
    assert stats.interval_level(0.05) == pytest.approx(0.90)
    y = BASE
    x = [v + 0.1 + e for v, e in zip(y, [0.0, 0.2, -0.2])]
    low, high = stats.paired_interval(x, y, 0.90)
    half = t2_ppf(0.95) * 0.2 / math.sqrt(3)
    assert t2_ppf(0.95) == pytest.approx(2.919986, abs=1e-6)
    assert (low, high) == pytest.approx((0.1 - half, 0.1 + half), abs=1e-9)
    ci = sps.ttest_rel(x, y).confidence_interval(0.90)
    assert (low, high) == pytest.approx((ci.low, ci.high))
    # the duality on many samples: the lower bound is above 0 exactly when the one-sided p is below α
    rng = np.random.default_rng(1)
    for _ in range(200):
        a, b = rng.normal(0.3, 1, 5), rng.normal(0, 1, 5)
        lower = stats.paired_interval(a, b, stats.interval_level(0.05))[0]
        assert (lower > 0) == (stats.paired_one_sided(a, b, "greater") < 0.05)


def test_welch_standard_error_and_df_by_hand_and_against_scipy():
    # x = [1, 2, 3] (variance 1), y = [1, 3, 5, 7] (variance 20/3): s²/n = 1/3 and 5/3, SE² = 2,
    # df = 2² / ((1/3)² / 2 + (5/3)² / 3) = 4 / (1/18 + 25/27) = 4 / 0.981481 = 4.075472
    x, y = [1.0, 2.0, 3.0], [1.0, 3.0, 5.0, 7.0]
    delta, se, df = stats.welch(x, y)
    assert (delta, se) == pytest.approx((-2.0, math.sqrt(2.0))) and df == pytest.approx(4.075472, abs=1e-6)
    assert df == pytest.approx(sps.ttest_ind(x, y, equal_var=False).df)


def test_welch_non_inferiority_by_hand_and_against_scipy():
    # Δ = +0.2, margin 0.5: t = 0.7 / 0.163299 = 4.286607, p = 1 - F4(4.286607) = 0.006390
    x = [v + 0.2 for v in BASE]
    p = stats.welch_one_sided(x, BASE, "greater", 0.5)
    assert p == pytest.approx(1 - t4_cdf(0.7 / 0.2 / math.sqrt(2 / 3)), abs=1e-12) == pytest.approx(0.006390, abs=1e-6)
    assert p == pytest.approx(sps.ttest_ind(np.add(x, 0.5), BASE, equal_var=False, alternative="greater").pvalue)
    # no test without 2 values a side or without variance
    assert math.isnan(stats.welch_one_sided([1.0], BASE, "greater", 0.5))
    assert math.isnan(stats.welch_one_sided([1.0, 1.0], [2.0, 2.0], "less"))


def test_holm_by_hand():
    # sorted 0.01, 0.03, 0.04 times 3, 2, 1 = 0.03, 0.06, 0.04; running maximum 0.03, 0.06, 0.06
    assert stats.holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    adjusted = stats.holm([0.01, math.nan, 0.04])  # nan is not counted in m
    assert adjusted[0] == pytest.approx(0.02) and math.isnan(adjusted[1]) and adjusted[2] == pytest.approx(0.04)


def power_by_integral(n: int, effect: float, std: float, alpha: float) -> float:
    """The paired test's power written out: T = (Z + λ) / sqrt(V / df), Z ~ N(0, 1), V ~ χ²(df),
    λ = effect sqrt(n) / std, df = n − 1; P(T > c) = ∫ P(Z > c sqrt(v / df) − λ) f_χ²(v) dv."""
    df, lam = n - 1, effect * math.sqrt(n) / std
    c = sps.t.ppf(1 - alpha, df)
    return integrate.quad(lambda v: sps.norm.sf(c * math.sqrt(v / df) - lam) * sps.chi2.pdf(v, df), 0, math.inf)[0]


def test_the_paired_power_is_the_noncentral_t_written_out():
    for n, effect, std in ((3, 0.4, 0.2), (8, 1.0, 1.0), (27, 0.1, 0.2), (5, 0.29, 0.25)):
        assert stats.power(n, effect, std, 0.05) == pytest.approx(power_by_integral(n, effect, std, 0.05), abs=1e-9)


def test_seeds_needed_is_the_smallest_n_with_80_percent_power():
    # d = δ / σ_d = 1, one-sided α = 0.05: the normal approximation (z_0.95 + z_0.8)² / d² = 6.18 is a
    # lower bound; the exact paired t-test needs 8 (power 0.815 at 8, 0.754 at 7)
    assert (sps.norm.ppf(0.95) + sps.norm.ppf(0.8)) ** 2 == pytest.approx(6.183, abs=1e-3)
    assert stats.seeds_needed(1.0, 1.0, 0.05) == 8
    assert power_by_integral(8, 1.0, 1.0, 0.05) >= 0.8 > power_by_integral(7, 1.0, 1.0, 0.05)
    # d = 0.5: 27 (0.812 at 27, 0.798 at 26); only Δ / σ matters
    assert stats.seeds_needed(0.1, 0.2, 0.05) == 27
    assert power_by_integral(27, 0.5, 1.0, 0.05) >= 0.8 > power_by_integral(26, 0.5, 1.0, 0.05)
    # an effect on the wrong side, no spread, or too many: no count
    assert stats.seeds_needed(-0.1, 1.0, 0.05) is None and stats.seeds_needed(0.0, 1.0, 0.05) is None
    assert stats.seeds_needed(1.0, 0.0, 0.05) is None and stats.seeds_needed(0.001, 1.0, 0.05) is None


def test_the_power_formula_agrees_with_a_simulation():
    # 20,000 experiments of 8 paired seeds, mean difference 1, std of the differences 1: the share that
    # the one-sided paired test rejects (a shared per-seed part cancels in the differences)
    rng = np.random.default_rng(0)
    shared = rng.normal(0.0, 3.0, (20000, 8))
    y = shared + rng.normal(0.0, math.sqrt(0.5), (20000, 8))
    x = shared + 1.0 + rng.normal(0.0, math.sqrt(0.5), (20000, 8))
    p = sps.ttest_rel(x, y, axis=1, alternative="greater").pvalue
    assert np.mean(p < 0.05) == pytest.approx(stats.power(8, 1.0, 1.0, 0.05), abs=0.015)
