"""Claim verdicts on hand-made seed samples: each expected p-value is worked out by hand in the
comments, with the closed forms of Student's t distribution for 1, 2 and 4 degrees of freedom (no
scipy), so the tests do not take the code's word for anything.

The comparisons are paired by seed (the rows of one seed share their data order and initialization):
a side ``paired(d)`` differs from BASE by d + NOISE at each of its 3 seeds, so the differences have
mean d, std s_d = 0.2, SE = 0.2 / sqrt(3) = 0.115470 and df = 2.
"""
import math
from pathlib import Path

import pytest
from scipy.stats import ttest_ind, ttest_rel

from introspect.registry import ConfigError
from introspect.report import claims_read, judge
from introspect.report.results import Stat

REFERENCE = Path(__file__).resolve().parents[1] / "workflow" / "reference"
LEVEL = 0.05
BASE = [90.0, 90.2, 89.8]  # mean 90, variance (0 + 0.04 + 0.04) / 2 = 0.04
NOISE = [0.0, 0.2, -0.2]  # per-seed differences around their mean: variance 0.04
SE = 0.2 / math.sqrt(3)


def paired(d: float) -> list[float]:
    return [v + d + e for v, e in zip(BASE, NOISE)]


def t1_cdf(t: float) -> float:
    """Student's t CDF, 1 degree of freedom (Cauchy): 1/2 + atan(t) / pi."""
    return 0.5 + math.atan(t) / math.pi


def t2_cdf(t: float) -> float:
    """Student's t CDF, 2 degrees of freedom: 1/2 + t / (2 sqrt(2 + t^2))."""
    return 0.5 + t / (2 * math.sqrt(2 + t * t))


def t4_cdf(t: float) -> float:
    """Student's t CDF, 4 degrees of freedom: 1/2 + (3/8) x (1 - t^2 / (12 (1 + t^2/4))), x = t / sqrt(1 + t^2/4)."""
    u = 1 + t * t / 4
    return 0.5 + 0.375 * t / math.sqrt(u) * (1 - t * t / (12 * u))


def comparison(a: list[float], op: str, b: list[float], margin: float | None = None) -> judge.Test:
    return judge.Test("a", op, "b", Stat(tuple(a), len(a)), Stat(tuple(b), len(b)), LEVEL, margin,
                      a_seeds=tuple(range(len(a))), b_seeds=tuple(range(len(b))))


def decided(tests: list[judge.Test], rule: str = "all") -> judge.Line:
    line = judge.Line("X", "cifar10", "synthetic", "resnet8", tests)
    judge.decide([line], rule)
    return line


def test_t_closed_forms_are_right():
    # sanity of the hand formulas: symmetric, and the textbook 5% critical values (6.314 at df 1, 2.920 at df 2,
    # 2.132 at df 4)
    assert t2_cdf(0) == t4_cdf(0) == t1_cdf(0) == 0.5 and t4_cdf(-1.3) == pytest.approx(1 - t4_cdf(1.3))
    assert t1_cdf(6.313752) == pytest.approx(0.95, abs=1e-6)
    assert t2_cdf(2.919986) == pytest.approx(0.95, abs=1e-6) and t4_cdf(2.131847) == pytest.approx(0.95, abs=1e-6)


def test_competitive_is_the_paired_non_inferiority_test():
    # a = paired(-0.1) against BASE, margin 0.5: Δ = -0.1.
    # non-inferiority (Δ > -0.5): t = 0.4 / 0.115470 = 2 sqrt 3, p = 1 - F2(2 sqrt 3) = 0.5 - sqrt(3/14) = 0.037090
    # against (Δ < -0.5): p = F2(2 sqrt 3) = 0.962910
    t = comparison(paired(-0.1), ">=", BASE, margin=0.5)
    support, against = t.pvalues
    assert support == pytest.approx(1 - t2_cdf(0.4 / SE)) == pytest.approx(0.037090, abs=1e-6)
    assert against == pytest.approx(0.962910, abs=1e-6)
    assert support == pytest.approx(ttest_rel([v + 0.5 for v in paired(-0.1)], BASE, alternative="greater").pvalue)
    assert decided([t]).verdict == "supported" and t.verdict == "supported"
    assert t.test == "non-inferiority Δ > −0.5 (paired t on per-seed differences, one-sided)"
    # Welch's unpaired p, a column only: a's variance 0.16, b's 0.04, SE = sqrt(0.2 / 3) = 0.258199,
    # df = (0.2/3)² / ((0.16/3)² / 2 + (0.04/3)² / 2) = 0.004444 / 0.001511 = 2.941176: p = 0.10 or so, not below 0.05
    assert t.welch_pvalues[0] == pytest.approx(
        ttest_ind([v + 0.5 for v in paired(-0.1)], BASE, equal_var=False, alternative="greater").pvalue)
    assert t.welch_pvalues[0] > 0.05


def test_non_inferiority_is_never_weaker_than_superiority():
    # Δ = +0.2, margin 0.5: non-inferiority t = 0.7 / 0.115470 = 6.062178, p = 1 - F2(6.062178) = 0.5 - 6.062178 / 12.449900 = 0.013074;
    # superiority at the same Δ: t = 1.732051, p = 1 - F2(sqrt 3) = 0.112702, inconclusive
    t = comparison(paired(0.2), ">=", BASE, margin=0.5)
    assert t.pvalues[0] == pytest.approx(1 - t2_cdf(0.7 / SE), abs=1e-9) == pytest.approx(0.013074, abs=1e-6)
    superiority = comparison(paired(0.2), ">", BASE)
    assert superiority.pvalues[0] == pytest.approx(1 - t2_cdf(math.sqrt(3))) == pytest.approx(0.112702, abs=1e-6)
    assert decided([t]).verdict == "supported" and decided([superiority]).verdict == "inconclusive"


def test_far_worse_is_not_supported():
    # a 10 points below b, margin 0.5: against (Δ < -0.5): t = -9.5 / 0.115470 = -82.27,
    # p = F2(-82.27) = 0.5 - 82.27 / (2 sqrt(2 + 82.27²)) ≈ 7.4e-5 < 0.05; non-inferiority p ≈ 1
    t = comparison(paired(-10), ">=", BASE, margin=0.5)
    support, against = t.pvalues
    assert against == pytest.approx(t2_cdf(-9.5 / SE), rel=1e-6) and against < 1e-4
    assert support > 0.99
    assert decided([t]).verdict == "not supported"
    # the same samples as a "better" claim: p against (Δ < 0) is as small, verdict not supported
    assert decided([comparison(paired(-10), ">", BASE)]).verdict == "not supported"


def test_far_better_is_competitive():
    # Δ = +10: non-inferiority t = 10.5 / 0.115470 = 90.93, p = 1 - F2(90.93) ≈ 6e-5
    t = comparison(paired(10), ">=", BASE, margin=0.5)
    assert t.pvalues[0] == pytest.approx(1 - t2_cdf(10.5 / SE), rel=1e-6)
    assert decided([t]).verdict == "supported"


def test_c6_like_two_seeds_no_difference_is_inconclusive():
    # Two seeds a side: a = [88.4, 88.8], b = [88.7, 89.3]: differences [-0.3, -0.5], mean -0.4,
    # s_d = 0.141421, SE = 0.1, df = 1, margin 0.5.
    # non-inferiority (Δ > -0.5): t = 0.1 / 0.1 = 1, p = 1 - F1(1) = 0.5 - atan(1) / pi = 0.25;
    # against (Δ < -0.5): p = F1(1) = 0.75: neither below 0.05.
    t = comparison([88.4, 88.8], ">=", [88.7, 89.3], margin=0.5)
    support, against = t.pvalues
    assert support == pytest.approx(1 - t1_cdf(1.0)) == pytest.approx(0.25)
    assert against == pytest.approx(0.75)
    assert decided([t]).verdict == "inconclusive"


def test_no_test_possible_is_inconclusive():
    # one seed on a side: one pair, no variance estimate, no test
    t = comparison([90.0], ">=", [90.1, 89.9], margin=0.5)
    assert all(math.isnan(p) for p in t.pvalues) and t.n_pairs == 1
    line = decided([t])
    assert line.verdict == "inconclusive" and "fewer than 2 seeds paired" in line.note
    assert t.plan_text == "no seed count: fewer than 2 seeds paired"
    # the same difference at every seed: the paired t would be ±inf whatever the difference; never supported
    for op, margin in ((">", None), (">=", 0.5)):
        t = comparison([90.0, 90.2], op, [89.0, 89.2], margin)
        assert all(math.isnan(p) for p in t.pvalues)
        line = decided([t])
        assert line.verdict == "inconclusive" and "no variance in the per-seed differences" in line.note
    # a huge spread of the differences: a = [80, 100, 90] against BASE: differences [-10, 9.8, 0.2],
    # mean 0, variance (100 + 96.04 + 0.04) / 2 = 98.04, SE = sqrt(98.04 / 3) = 5.716643; non-inferiority
    # t = 0.5 / 5.716643 = 0.087464, p = 1 - F2(0.087464) = 0.469136: inconclusive
    t = comparison([80.0, 100.0, 90.0], ">=", BASE, margin=0.5)
    assert t.pvalues[0] == pytest.approx(1 - t2_cdf(0.5 / (math.sqrt(98.04 / 3))), abs=1e-6)
    assert decided([t]).verdict == "inconclusive"


def test_one_sided_superiority():
    # Δ = +0.4: t = 0.4 / 0.115470 = 2 sqrt 3, one-sided p = 0.037090 < 0.05: supported, where a
    # two-sided test (p = 0.074180) would not be
    t = comparison(paired(0.4), ">", BASE)
    support, against = t.pvalues
    assert support == pytest.approx(0.037090, abs=1e-6) and against == pytest.approx(0.962910, abs=1e-6)
    assert decided([t]).verdict == "supported"
    # "<" swaps the sides: BASE < paired(0.4) is the same question
    assert comparison(BASE, "<", paired(0.4)).pvalues == pytest.approx((support, against))
    # Δ = +0.1: t = 0.866025, p = 1 - F2(0.866025) = 0.5 - 0.866025 / (2 sqrt 2.75) = 0.238884: inconclusive
    assert comparison(paired(0.1), ">", BASE).pvalues[0] == pytest.approx(0.238884, abs=1e-6)
    assert decided([comparison(paired(0.1), ">", BASE)]).verdict == "inconclusive"


def test_seeds_are_paired_by_name_not_by_position():
    # a has seeds 0, 1, 2; b lost seed 1: the test pairs seeds 0 and 2 only (differences 0.4 and 0.2)
    a = judge.Test("a", ">", "b", Stat((90.4, 90.8, 89.8), 3), Stat((90.0, 89.6), 3), LEVEL, a_seeds=(0, 1, 2),
                   b_seeds=(0, 2))
    assert a.paired[0] == (0, 2) and a.n_pairs == 2 and a.diff == pytest.approx(0.3)
    # differences [0.4, 0.2]: mean 0.3, s_d 0.141421, SE 0.1, df 1: t = 3, p = 0.5 - atan(3) / pi = 0.102416
    assert a.pvalues[0] == pytest.approx(1 - t1_cdf(3.0)) == pytest.approx(0.102416, abs=1e-6)


def test_holm_adjusted_pvalues():
    # p = [0.01, 0.04, 0.03]: sorted 0.01, 0.03, 0.04 times 3, 2, 1 = 0.03, 0.06, 0.04; running maximum
    # 0.03, 0.06, 0.06; back in the given order: [0.03, 0.06, 0.06]
    from introspect.report.stats import holm

    assert holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    # nan (no test) is left out of the count: [0.01, 0.04] times 2, 1 = 0.02, 0.04
    adjusted = holm([0.01, math.nan, 0.04])
    assert adjusted[0] == pytest.approx(0.02) and math.isnan(adjusted[1]) and adjusted[2] == pytest.approx(0.04)
    # capped at 1: 0.5 * 2 = 1.0, then max(1.0, 0.6) = 1.0
    assert holm([0.6, 0.5]) == pytest.approx([1.0, 1.0])
    assert holm([]) == []


def three() -> list[judge.Test]:
    return [comparison(paired(1.0), ">", BASE), comparison(paired(0.4), ">", BASE), comparison(paired(0.4), ">", BASE)]


def test_all_is_an_intersection_union_test_and_any_most_are_holm_corrected():
    # Three "better" comparisons at one model, raw support p (hand values above):
    # Δ = 1: t = 1 / 0.115470 = 8.660254, p = 0.5 - 8.660254 / (2 sqrt 77) = 0.006536;
    # Δ = 0.4 twice: p = 0.037090 each.
    tests = three()
    assert tests[0].pvalues[0] == pytest.approx(1 - t2_cdf(1 / SE)) == pytest.approx(0.006536, abs=1e-6)
    # all: the claim holds only if all three do (intersection-union): each at 0.05, no correction -> supported
    line = decided(tests, "all")
    assert [t.p_support_adj for t in tests] == pytest.approx([0.006536, 0.037090, 0.037090], abs=1e-6)
    assert {t.support_correction for t in tests} == {judge.IUT}
    assert [t.verdict for t in tests] == ["supported"] * 3 and line.verdict == "supported"
    # most and any: Holm gives 0.006536 * 3 = 0.019608, 0.037090 * 2 = 0.074180, max(0.074180, 0.037090)
    fresh = three()
    assert decided(fresh, "most").verdict == "inconclusive"  # most: 2 of 3 needed, 1 holds
    assert [t.p_support_adj for t in fresh] == pytest.approx([0.019608, 0.074180, 0.074180], abs=1e-6)
    assert {t.support_correction for t in fresh} == {judge.HOLM}
    assert decided(three(), "any").verdict == "supported"  # any: 1 of 3 is enough
    # one comparison significantly the other way: all cannot hold -> not supported (Holm on the against
    # side: 7.4e-5 * 2, still far below 0.05)
    mixed = [comparison(paired(1.0), ">", BASE), comparison(paired(-10), ">", BASE)]
    assert decided(mixed, "all").verdict == "not supported"
    # ... while "any" still holds through the first (Holm: 0.006536 * 2 = 0.013072)
    mixed = [comparison(paired(1.0), ">", BASE), comparison(paired(-10), ">", BASE)]
    assert decided(mixed, "any").verdict == "supported"


def test_the_against_side_is_holm_corrected_over_every_model_of_a_claim():
    # Δ = +0.4 at two models: support p 0.037090 each, an intersection-union test: both supported
    lines = [judge.Line("X", "cifar10", "synthetic", m, [comparison(paired(0.4), ">", BASE)])
             for m in ("resnet8", "resnet14")]
    judge.decide(lines, "all")
    assert [ln.tests[0].p_support_adj for ln in lines] == pytest.approx([0.037090] * 2, abs=1e-6)
    assert judge.claim_verdict(lines) == "supported"
    # Δ = -0.4 at two models: against p 0.037090 each, Holm 0.074180 each -> both inconclusive
    lines = [judge.Line("X", "cifar10", "synthetic", m, [comparison(paired(-0.4), ">", BASE)])
             for m in ("resnet8", "resnet14")]
    judge.decide(lines, "all")
    assert [ln.tests[0].p_against_adj for ln in lines] == pytest.approx([0.074180] * 2, abs=1e-6)
    assert [ln.verdict for ln in lines] == ["inconclusive"] * 2 and judge.claim_verdict(lines) == "inconclusive"


def test_each_comparison_has_its_interval_at_the_tests_level_and_an_inconclusive_one_its_seeds():
    # Δ = +0.1 (p = 0.238884): inconclusive. The interval is two-sided at 1 - 2α = 90 %, the level of the
    # one-sided test: 0.1 ± t_{0.95, 2} SE = 0.1 ± 2.919986 x 0.115470 = [-0.237171, 0.437171]
    t = comparison(paired(0.1), ">", BASE)
    decided([t])
    assert t.verdict == "inconclusive" and t.confidence == pytest.approx(0.90)
    assert t.interval == pytest.approx((0.1 - 2.919986 * SE, 0.1 + 2.919986 * SE), abs=1e-5)
    ci = ttest_rel(paired(0.1), BASE).confidence_interval(0.90)
    assert t.interval == pytest.approx((ci.low, ci.high))
    # a supported comparison's interval lies above 0: Δ = 0.4, lower bound 0.4 - 0.337171 = 0.062829
    s = comparison(paired(0.4), ">", BASE)
    decided([s])
    assert s.verdict == "supported" and s.interval[0] == pytest.approx(0.4 - 2.919986 * SE, abs=1e-5) and s.interval[0] > 0
    # Seeds for 80 % power at Δ 0.1 with our std of the differences 0.2 (d = 0.5): 27 (test_stats)
    from introspect.report import stats
    assert t.std == pytest.approx(0.2) and t.seeds_needed == stats.seeds_needed(0.1, 0.2, LEVEL) == 27
    t.seconds = (10.0, 20.0)  # 24 more seeds of each side: 24 x 30 s
    assert t.extra_seconds(t.seeds_needed) == pytest.approx(24 * 30.0)
    assert t.plan_text.startswith("27 seeds per side (+12 min)")
    # a comparison whose Δ points the other way gets no seed count
    w = comparison(paired(-0.1), ">", BASE)
    decided([w])
    assert w.verdict == "inconclusive" and w.seeds_needed is None and w.other_way
    assert "points the other way" in w.plan_text
    # the paper's Δ plans with OUR std of the differences (0.2), not the paper's: Δ 0.29, d = 1.45
    t.paper = 0.29
    assert t.seeds_needed_paper == stats.seeds_needed(0.29, 0.2, LEVEL) == 5
    assert "at the paper's Δ +0.29 with our std of the differences 0.20: 5 per side (+1 min); our 3 have power " \
           f"{stats.power(3, 0.29, 0.2, LEVEL):.2f}" in t.plan_text


def test_combine_rule_counts():
    s, n, i = "supported", "not supported", "inconclusive"
    assert judge.combine([s, s, s], "all") == s and judge.combine([s, s, i], "all") == i
    assert judge.combine([s, i, n], "all") == n
    assert judge.combine([n, n, i], "any") == i and judge.combine([n, n, n], "any") == n
    # most of 5 needs 3: 3 supported holds; 3 not supported leaves at most 2, so it cannot hold
    assert judge.combine([s, s, s, n, n], "most") == s and judge.combine([s, s, n, n, n], "most") == n
    assert judge.combine([s, s, i, n, n], "most") == i


def test_claim_rules_are_declared():
    ok = {"compare": ["a", ">=", ["b", "c"]], "combine": "all", "margin": 0.5}
    assert claims_read.check_claim(ok) == ("all", 0.5)
    assert claims_read.check_claim({"compare": ["a", ">", "b"]}) == ("all", None)  # one comparison: all
    with pytest.raises(ValueError, match="margin"):
        claims_read.check_claim({"compare": ["a", ">=", "b"]})
    with pytest.raises(ValueError, match="margin"):
        claims_read.check_claim({"compare": ["a", ">=", "b"], "margin": -1})
    with pytest.raises(ValueError, match=">= and <= comparisons only"):
        claims_read.check_claim({"compare": ["a", ">", "b"], "margin": 0.5})
    with pytest.raises(ValueError, match="combine rule"):
        claims_read.check_claim({"compare": ["a", ">", ["b", "c"]]})
    with pytest.raises(ValueError, match="not one of"):
        claims_read.check_claim({"compare": ["a", ">", ["b", "c"]], "combine": "some"})


def test_reference_claims_declare_their_rules(tmp_path):
    claims = claims_read.read_claims(REFERENCE / "paper_claims.yaml") + claims_read.read_claims(REFERENCE / "method_claims.yaml")
    compared = {c["id"]: claims_read.check_claim(c) for c in claims if "compare" in c}
    assert compared["C6"] == ("all", 0.06) and all(rule == "all" for rule, _ in compared.values())
    assert [i for i, (_, margin) in compared.items() if margin is not None] == ["C6"]
    bad = tmp_path / "claims.yaml"
    bad.write_text("claims:\n  - {id: Z, compare: [a, '>=', b], where: {dataset: d, models: [m]}}\n")
    with pytest.raises(ConfigError, match="claim Z: a >= or <= comparison needs margin"):
        claims_read.read_claims(bad)
