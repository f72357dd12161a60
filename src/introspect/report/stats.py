"""The statistics of every verdict, in one place: tests, corrections, intervals and power.

Every comparison is about Δ = mean(x) − mean(y) over seeds, x and y independent samples with
possibly different variances (Welch). With s² the sample variances (ddof = 1) and n the sizes:

    SE = sqrt(s_x²/n_x + s_y²/n_y),
    df = SE⁴ / ((s_x²/n_x)² / (n_x − 1) + (s_y²/n_y)² / (n_y − 1))     (Welch–Satterthwaite),
    t  = (Δ + shift) / SE.

- :func:`one_sided`: p of Welch's one-sided t-test of Δ + shift > 0 or < 0 (scipy.stats.ttest_ind,
  equal_var=False); :func:`noninferiority`: the one-sided test of Δ > −m (Wellek 2010, ch. 6; the
  "competitive, not worse by more than m" question), i.e. :func:`one_sided` with shift m.
- :func:`holm`: Holm's (1979) step-down adjusted p-values.
- :func:`welch_interval`: the two-sided (1 − α) confidence interval of Δ, Δ ± t_{1−α/2, df} · SE.
- :func:`seeds_needed`: the smallest number of seeds per side for which the one-sided t-test at
  level α has the asked power (80 %) at a true effect δ (> 0) and a common std σ: with n per side,
  df = 2n − 2, noncentrality λ = δ / (σ sqrt(2/n)), power = 1 − F_{nct}(t_{1−α, df}; df, λ) (the exact
  power of the equal-variance t-test, scipy.stats.nct; Welch's test at equal n and σ is the same
  test to within its df).

No test is possible (nan) with fewer than 2 values on a side, or with no variance on either side
(the t statistic would be infinite or undefined, whatever Δ).
"""
from __future__ import annotations

import math
import warnings

import numpy as np

POWER = 0.8  # the power :func:`seeds_needed` plans for
MAX_SEEDS = 1000  # seeds_needed gives up above this many per side


def _arrays(x, y) -> tuple[np.ndarray, np.ndarray]:
    return np.asarray(x, dtype=float), np.asarray(y, dtype=float)


def testable(x, y) -> bool:
    """Whether a Welch test of x against y is possible: 2 values a side, some variance on one."""
    x, y = _arrays(x, y)
    return len(x) >= 2 and len(y) >= 2 and not (np.ptp(x) == 0 and np.ptp(y) == 0)


def welch(x, y) -> tuple[float, float, float]:
    """``(Δ, SE, df)`` of Welch's test (nan where no test is possible)."""
    x, y = _arrays(x, y)
    if not testable(x, y):
        return (float(x.mean() - y.mean()) if len(x) and len(y) else math.nan), math.nan, math.nan
    vx, vy = x.var(ddof=1) / len(x), y.var(ddof=1) / len(y)
    se = math.sqrt(vx + vy)
    df = (vx + vy) ** 2 / (vx ** 2 / (len(x) - 1) + vy ** 2 / (len(y) - 1))
    return float(x.mean() - y.mean()), se, df


def one_sided(x, y, alternative: str, shift: float = 0.0) -> float:
    """p of Welch's one-sided t-test of mean(x) + shift − mean(y) > 0 (``greater``) or < 0 (``less``)."""
    x, y = _arrays(x, y)
    if not testable(x, y):
        return math.nan
    from scipy.stats import ttest_ind

    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        return float(ttest_ind(x + shift, y, equal_var=False, alternative=alternative).pvalue)


def noninferiority(x, y, margin: float) -> float:
    """p of the one-sided non-inferiority test of Δ > −margin (x not worse than y by margin or more)."""
    return one_sided(x, y, "greater", margin)


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


def welch_interval(x, y, confidence: float = 0.95) -> tuple[float, float]:
    """The two-sided ``confidence`` interval of Δ = mean(x) − mean(y): Δ ± t_{(1+c)/2, df} · SE."""
    delta, se, df = welch(x, y)
    if math.isnan(se):
        return math.nan, math.nan
    from scipy.stats import t

    half = float(t.ppf((1 + confidence) / 2, df)) * se
    return delta - half, delta + half


def pooled_std(x, y) -> float:
    """sqrt(((n_x − 1) s_x² + (n_y − 1) s_y²) / (n_x + n_y − 2)); nan with fewer than 2 values a side."""
    x, y = _arrays(x, y)
    if len(x) < 2 or len(y) < 2:
        return math.nan
    return math.sqrt(((len(x) - 1) * x.var(ddof=1) + (len(y) - 1) * y.var(ddof=1)) / (len(x) + len(y) - 2))


def power(n: int, effect: float, std: float, alpha: float) -> float:
    """Power of the one-sided two-sample t-test at level ``alpha`` with ``n`` per side, a true
    effect ``effect`` (in the alternative's direction) and common std ``std``."""
    from scipy.stats import nct, t

    df = 2 * n - 2
    return float(nct.sf(t.ppf(1 - alpha, df), df, effect / (std * math.sqrt(2 / n))))


def seeds_needed(effect: float, std: float, alpha: float, target: float = POWER) -> int | None:
    """Seeds per side for ``target`` power (see :func:`power`); None when ``effect`` <= 0 (the test
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
