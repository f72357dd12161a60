"""The statistics of every verdict, in one place: tests, corrections, intervals and power.

Every comparison is about Δ, a − b over seeds. The rows of one seed share their data order (the
loader's generator is seeded with the seed alone) and, for rows trained without a teacher, their
initialization (:func:`introspect.train.init_seed`): the design is paired by seed, so the test that
fits is the **paired t-test** on the per-seed differences d_i = a_i − b_i (Student 1908; scipy.stats.
ttest_rel), over the n seeds both sides have. With d̄ their mean and s_d their std (ddof = 1):

    SE = s_d / sqrt(n),   df = n − 1,   t = (d̄ + shift) / SE.

- :func:`paired_one_sided`: p of the one-sided paired test of Δ + shift > 0 (``greater``) or < 0
  (``less``); with shift m it is the non-inferiority test of Δ > −m (Wellek 2010, ch. 5).
- :func:`paired_interval`: the two-sided ``confidence`` interval d̄ ± t_{(1+c)/2, df} · SE. At
  :func:`interval_level` (1 − 2α, 90 % for α = 0.05) its lower (upper) bound lies above (below) a
  value exactly when the one-sided test at α rejects it: the interval and the test agree.
- :func:`welch` and :func:`welch_one_sided`: the unpaired Welch test (Welch 1947; scipy.stats.
  ttest_ind, equal_var=False), SE = sqrt(s_a²/n_a + s_b²/n_b) with the Welch–Satterthwaite df, kept
  beside the paired one for a reader who ignores the pairing.
- :func:`holm`: Holm's (1979) step-down adjusted p-values.
- :func:`power` and :func:`seeds_needed`: the power of the one-sided paired test at level α with n
  pairs, a true mean difference δ and a std of the differences σ_d: noncentrality λ = δ sqrt(n) / σ_d,
  power = 1 − F_{nct}(t_{1−α, n−1}; n − 1, λ) (scipy.stats.nct), and the smallest n with 80 %.

No test is possible (nan) with fewer than 2 pairs (2 values a side for Welch), or with no variance
(in the differences; on both sides for Welch): the t statistic would be infinite or undefined.
"""
from __future__ import annotations

import math
import warnings

import numpy as np

POWER = 0.8  # the power :func:`seeds_needed` plans for
MAX_SEEDS = 1000  # seeds_needed gives up above this many pairs


def _arrays(x, y) -> tuple[np.ndarray, np.ndarray]:
    return np.asarray(x, dtype=float), np.asarray(y, dtype=float)


def interval_level(alpha: float) -> float:
    """The two-sided confidence level whose interval matches one-sided tests at ``alpha``: 1 − 2α."""
    return 1 - 2 * alpha


SAME = 1e-9  # differences closer than this share of the values' size are the same (rounding, not spread)


def paired_testable(x, y) -> bool:
    """Whether a paired test of x against y (equal lengths) is possible: 2 pairs, some variance in x − y
    beyond rounding (0.11 − 0.03 and 0.12 − 0.04 differ in the last bits: that is no spread)."""
    x, y = _arrays(x, y)
    if len(x) < 2:
        return False
    scale = max(float(np.abs(x).max()), float(np.abs(y).max()))
    return float(np.ptp(x - y)) > SAME * scale


def paired(x, y) -> tuple[float, float, float]:
    """``(Δ, SE, df)`` of the paired test: mean of x − y, s_d / sqrt(n), n − 1 (nan where no test)."""
    x, y = _arrays(x, y)
    delta = float((x - y).mean()) if len(x) else math.nan
    if not paired_testable(x, y):
        return delta, math.nan, math.nan
    return delta, float((x - y).std(ddof=1)) / math.sqrt(len(x)), float(len(x) - 1)


def diff_std(x, y) -> float:
    """The std (ddof = 1) of the per-seed differences x − y; nan with fewer than 2 pairs."""
    x, y = _arrays(x, y)
    return float((x - y).std(ddof=1)) if len(x) >= 2 else math.nan


def _quiet(test):
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        return float(test().pvalue)


def paired_one_sided(x, y, alternative: str, shift: float = 0.0) -> float:
    """p of the one-sided paired t-test of mean(x + shift − y) > 0 (``greater``) or < 0 (``less``)."""
    x, y = _arrays(x, y)
    if not paired_testable(x, y):
        return math.nan
    from scipy.stats import ttest_rel

    return _quiet(lambda: ttest_rel(x + shift, y, alternative=alternative))


def paired_interval(x, y, confidence: float) -> tuple[float, float]:
    """The two-sided ``confidence`` interval of the mean difference: Δ ± t_{(1+c)/2, n−1} · SE."""
    delta, se, df = paired(x, y)
    if math.isnan(se):
        return math.nan, math.nan
    from scipy.stats import t

    half = float(t.ppf((1 + confidence) / 2, df)) * se
    return delta - half, delta + half


def welch_testable(x, y) -> bool:
    """Whether a Welch test of x against y is possible: 2 values a side, some variance on one."""
    x, y = _arrays(x, y)
    return len(x) >= 2 and len(y) >= 2 and not (np.ptp(x) == 0 and np.ptp(y) == 0)


def welch(x, y) -> tuple[float, float, float]:
    """``(Δ, SE, df)`` of Welch's test (nan where no test is possible)."""
    x, y = _arrays(x, y)
    if not welch_testable(x, y):
        return (float(x.mean() - y.mean()) if len(x) and len(y) else math.nan), math.nan, math.nan
    vx, vy = x.var(ddof=1) / len(x), y.var(ddof=1) / len(y)
    se = math.sqrt(vx + vy)
    df = (vx + vy) ** 2 / (vx ** 2 / (len(x) - 1) + vy ** 2 / (len(y) - 1))
    return float(x.mean() - y.mean()), se, df


def welch_one_sided(x, y, alternative: str, shift: float = 0.0) -> float:
    """p of Welch's one-sided t-test of mean(x) + shift − mean(y) > 0 (``greater``) or < 0 (``less``)."""
    x, y = _arrays(x, y)
    if not welch_testable(x, y):
        return math.nan
    from scipy.stats import ttest_ind

    return _quiet(lambda: ttest_ind(x + shift, y, equal_var=False, alternative=alternative))


def holm(pvalues) -> list[float]:
    """Holm's step-down adjusted p-values (Holm 1979), in the given order.

    The i-th smallest of the m p-values becomes max over j <= i of min(1, (m − j + 1) · p_(j)). nan
    (no test possible) stays nan and is not counted in m: such a hypothesis is never rejected.
    """
    p = np.asarray(pvalues, dtype=float)
    adjusted = np.full(p.shape, math.nan)
    tested = np.flatnonzero(~np.isnan(p))
    running = 0.0
    for rank, i in enumerate(tested[np.argsort(p[tested], kind="stable")]):
        running = max(running, min(1.0, (len(tested) - rank) * p[i]))
        adjusted[i] = running
    return adjusted.tolist()


def power(n: int, effect: float, std: float, alpha: float) -> float:
    """Power of the one-sided paired t-test at level ``alpha`` with ``n`` pairs, a true mean
    difference ``effect`` (in the alternative's direction) and a std of the differences ``std``."""
    from scipy.stats import nct, t

    df = n - 1
    return float(nct.sf(t.ppf(1 - alpha, df), df, effect * math.sqrt(n) / std))


def seeds_needed(effect: float, std: float, alpha: float, target: float = POWER) -> int | None:
    """Pairs of seeds for ``target`` power (see :func:`power`); None when ``effect`` <= 0 (the test
    cannot be expected to reject: the effect points the other way), when ``std`` is not a positive
    number, or when more than MAX_SEEDS would be needed."""
    if not (effect > 0 and std > 0) or any(map(math.isnan, (effect, std))):
        return None
    lo, hi = 2, 2
    while power(hi, effect, std, alpha) < target:  # power grows with n: double, then bisect
        lo, hi = hi, hi * 2
        if hi > MAX_SEEDS:
            return None if power(MAX_SEEDS, effect, std, alpha) < target else _bisect(lo, MAX_SEEDS, effect, std, alpha, target)
    return hi if hi == 2 else _bisect(lo, hi, effect, std, alpha, target)


def _bisect(lo: int, hi: int, effect: float, std: float, alpha: float, target: float) -> int:
    """The smallest n in (lo, hi] with power >= target, power(lo) < target <= power(hi)."""
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (lo, mid) if power(mid, effect, std, alpha) >= target else (mid, hi)
    return hi
