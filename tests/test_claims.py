"""Claim verdicts on hand-made seed samples: each expected p-value is worked out by hand in the
comments, with the closed forms of Student's t distribution for 2 and 4 degrees of freedom (no
scipy), so the tests do not take the code's word for anything.

Samples of 3 seeds with sample variance 0.04 on each side give Welch's standard error
SE = sqrt(0.04/3 + 0.04/3) = 0.2 * sqrt(2/3) = 0.163299 and df = 4 (equal variances and sizes:
df = 2 (n - 1)); samples of 2 seeds with variance 0.08 give SE = sqrt(0.04 + 0.04) = 0.282843, df = 2.
"""
import math
from pathlib import Path

import pytest

from introspect.registry import ConfigError
from introspect.report import claims as claims_mod
from introspect.report.results import Stat

REFERENCE = Path(__file__).resolve().parents[1] / "workflow" / "reference"
LEVEL = 0.05
BASE = [90.0, 90.2, 89.8]  # mean 90, variance (0 + 0.04 + 0.04) / 2 = 0.04


def shifted(d: float, values=BASE) -> list[float]:
    return [v + d for v in values]


def t2_cdf(t: float) -> float:
    """Student's t CDF, 2 degrees of freedom: 1/2 + t / (2 sqrt(2 + t^2))."""
    return 0.5 + t / (2 * math.sqrt(2 + t * t))


def t4_cdf(t: float) -> float:
    """Student's t CDF, 4 degrees of freedom: 1/2 + (3/8) x (1 - t^2 / (12 (1 + t^2/4))), x = t / sqrt(1 + t^2/4)."""
    u = 1 + t * t / 4
    return 0.5 + 0.375 * t / math.sqrt(u) * (1 - t * t / (12 * u))


def comparison(a: list[float], op: str, b: list[float], margin: float | None = None) -> claims_mod.Test:
    return claims_mod.Test("a", op, "b", Stat(tuple(a), len(a)), Stat(tuple(b), len(b)), LEVEL, margin)


def decided(tests: list[claims_mod.Test], rule: str = "all") -> claims_mod.Line:
    line = claims_mod.Line("X", "cifar10", "synthetic", "resnet8", tests)
    claims_mod.decide([line], rule)
    return line


def test_t_closed_forms_are_right():
    # sanity of the hand formulas: symmetric, and the textbook 5% critical values (2.920 at df 2, 2.132 at df 4)
    assert t2_cdf(0) == t4_cdf(0) == 0.5 and t4_cdf(-1.3) == pytest.approx(1 - t4_cdf(1.3))
    assert t2_cdf(2.919986) == pytest.approx(0.95, abs=1e-6) and t4_cdf(2.131847) == pytest.approx(0.95, abs=1e-6)


def test_competitive_is_the_non_inferiority_test():
    # a = BASE, b = BASE + 0.1: Δ = -0.1, margin 0.5.
    # non-inferiority (Δ > -0.5): t = 0.4 / 0.163299 = sqrt(6) = 2.449490, p = 1 - F4(2.449490) = 0.035242
    # against (Δ < -0.5): t = sqrt(6), p = F4(sqrt 6) = 0.964758
    t = comparison(BASE, ">=", shifted(0.1), margin=0.5)
    support, against = t.pvalues
    assert support == pytest.approx(1 - t4_cdf(math.sqrt(6))) == pytest.approx(0.035242, abs=1e-6)
    assert against == pytest.approx(0.964758, abs=1e-6)
    assert decided([t]).verdict == "supported" and t.verdict == "supported"
    assert t.test == "non-inferiority Δ > −0.5 (Welch, one-sided)"


def test_non_inferiority_is_never_weaker_than_the_old_tost_or_superiority_rule():
    # The review's case, Δ = +0.2, margin 0.5, BASE's spread: non-inferiority t = 0.7 / 0.163299 = 4.286607,
    # p = 1 - F4(4.286607) = 0.006390. The old p support, min(TOST, superiority): TOST's upper test
    # (Δ < 0.5) t = -0.3 / 0.163299 = -1.837117, p = F4(-1.837117) = 0.070035 (its lower one is the
    # non-inferiority p), so TOST = 0.070035; superiority t = 1.224745, p = 0.143842: the old rule gave
    # 0.070035 (inconclusive), the question's own test gives 0.006390 (supported).
    t = comparison(shifted(0.2), ">=", BASE, margin=0.5)
    assert t.pvalues[0] == pytest.approx(1 - t4_cdf(0.7 / 0.2 / math.sqrt(2 / 3)), abs=1e-9)
    assert t.pvalues[0] == pytest.approx(0.006390, abs=1e-6)
    old = min(max(1 - t4_cdf(0.7 / 0.163299), t4_cdf(-0.3 / 0.163299)), 1 - t4_cdf(0.2 / 0.163299))
    assert old == pytest.approx(0.070035, abs=1e-5) and t.pvalues[0] < old
    assert decided([t]).verdict == "supported"


def test_far_worse_is_not_supported():
    # a 10 points below b, margin 0.5: against (Δ < -0.5): t = (-10 + 0.5) / 0.163299 = -58.17,
    # p = F4(-58.17) = 1 - F4(58.17) ≈ 2.6e-7 < 0.05; non-inferiority p ≈ 1
    t = comparison(shifted(-10), ">=", BASE, margin=0.5)
    support, against = t.pvalues
    assert against == pytest.approx(1 - t4_cdf(9.5 / 0.2 / math.sqrt(2 / 3)), rel=1e-3) and against < 1e-6
    assert support > 0.99
    assert decided([t]).verdict == "not supported"
    # the same samples as a "better" claim: p against (Δ < 0) is as small, verdict not supported
    assert decided([comparison(shifted(-10), ">", BASE)]).verdict == "not supported"


def test_far_better_is_competitive():
    # Δ = +10: non-inferiority t = 10.5 / 0.163299 = 64.30, p = 1 - F4(64.30) ≈ 1.7e-7
    t = comparison(shifted(10), ">=", BASE, margin=0.5)
    assert t.pvalues[0] == pytest.approx(1 - t4_cdf(10.5 / 0.2 / math.sqrt(2 / 3)), rel=1e-3)
    assert decided([t]).verdict == "supported"


def test_c6_like_two_seeds_no_difference_is_inconclusive():
    # Two seeds a side, as quick runs C6: a = [88.4, 88.8] (mean 88.6), b = [88.7, 89.1] (mean 88.9),
    # variances 0.08, SE = 0.282843, df = 2, Δ = -0.3, margin 0.5.
    # The old rule (two-sided Welch, supported unless significantly worse): t = -1.060660,
    # p = 2 (1 - F2(1.060660)) = 2 (1 - (0.5 + 1.060660 / 3.535534)) = 2 (0.2) = 0.4 -> "supported".
    # Now: non-inferiority (Δ > -0.5): t = 0.2 / 0.282843 = 0.707107, p = 1 - F2(0.707107)
    #   = 0.5 - 0.707107 / (2 sqrt 2.5) = 0.5 - 0.223607 = 0.276393;
    # against (Δ < -0.5): p = F2(0.707107) = 0.723607: neither below 0.05.
    a, b = [88.4, 88.8], [88.7, 89.1]
    t = comparison(a, ">=", b, margin=0.5)
    support, against = t.pvalues
    assert 2 * (1 - t2_cdf(0.3 / math.sqrt(0.08))) == pytest.approx(0.4)  # what used to read "supported"
    assert support == pytest.approx(0.276393, abs=1e-6) and against == pytest.approx(0.723607, abs=1e-6)
    assert decided([t]).verdict == "inconclusive"


def test_no_test_possible_is_inconclusive():
    # one seed on a side: no variance estimate, no test
    t = comparison([90.0], ">=", [90.1, 89.9], margin=0.5)
    assert all(math.isnan(p) for p in t.pvalues)
    line = decided([t])
    assert line.verdict == "inconclusive" and "fewer than 2 seeds" in line.note
    # no variance on either side: scipy's t would be ±inf (p 0 or 1) whatever the difference; never supported
    for op, margin in ((">", None), (">=", 0.5)):
        t = comparison([90.0, 90.0], op, [89.0, 89.0], margin)
        assert all(math.isnan(p) for p in t.pvalues)
        line = decided([t])
        assert line.verdict == "inconclusive" and "no variance" in line.note
    # the same means (90 vs 90.1) under a huge variance on one side: a = [80, 100, 90], variance 100,
    # SE = sqrt(100/3 + 0.04/3) = 5.7747; non-inferiority t = 0.4 / 5.7747 = 0.069, p ≈ 0.47: inconclusive
    t = comparison([80.0, 100.0, 90.0], ">=", shifted(0.1), margin=0.5)
    assert 0.4 < t.pvalues[0] < 0.5 and 0.5 < t.pvalues[1] < 0.6
    assert decided([t]).verdict == "inconclusive"


def test_one_sided_superiority():
    # Δ = +0.4 over BASE: t = 0.4 / 0.163299 = sqrt(6), one-sided p = 1 - F4(sqrt 6) = 0.035242 < 0.05:
    # supported, where a two-sided test (p = 0.070484) would not be
    t = comparison(shifted(0.4), ">", BASE)
    support, against = t.pvalues
    assert support == pytest.approx(0.035242, abs=1e-6) and against == pytest.approx(0.964758, abs=1e-6)
    assert decided([t]).verdict == "supported"
    # "<" swaps the sides: BASE < BASE + 0.4 is the same question
    assert comparison(BASE, "<", shifted(0.4)).pvalues == pytest.approx((support, against))
    # Δ = +0.1: t = 0.612372, p = 1 - F4(0.612372) = 0.286696: inconclusive
    assert comparison(shifted(0.1), ">", BASE).pvalues[0] == pytest.approx(1 - t4_cdf(0.1 / 0.163299), abs=1e-5)
    assert decided([comparison(shifted(0.1), ">", BASE)]).verdict == "inconclusive"


def test_holm_adjusted_pvalues():
    # p = [0.01, 0.04, 0.03]: sorted 0.01, 0.03, 0.04 times 3, 2, 1 = 0.03, 0.06, 0.04; running maximum
    # 0.03, 0.06, 0.06; back in the given order: [0.03, 0.06, 0.06]
    assert claims_mod.holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    # nan (no test) is left out of the count: [0.01, 0.04] times 2, 1 = 0.02, 0.04
    adjusted = claims_mod.holm([0.01, math.nan, 0.04])
    assert adjusted[0] == pytest.approx(0.02) and math.isnan(adjusted[1]) and adjusted[2] == pytest.approx(0.04)
    # capped at 1: 0.5 * 2 = 1.0, then max(1.0, 0.6) = 1.0
    assert claims_mod.holm([0.6, 0.5]) == pytest.approx([1.0, 1.0])
    assert claims_mod.holm([]) == []


def three() -> list[claims_mod.Test]:
    return [comparison(shifted(1.0), ">", BASE), comparison(shifted(0.4), ">", BASE), comparison(shifted(0.4), ">", BASE)]


def test_all_is_an_intersection_union_test_and_any_most_are_holm_corrected():
    # Three "better" comparisons at one model, raw support p (hand values above):
    # Δ = 1: t = 1 / 0.163299 = sqrt(37.5) = 6.123724, p = 1 - F4(6.123724) = 0.001801;
    # Δ = 0.4 twice: p = 0.035242 each.
    tests = three()
    assert tests[0].pvalues[0] == pytest.approx(1 - t4_cdf(math.sqrt(37.5))) == pytest.approx(0.001801, abs=1e-6)
    # all: the claim holds only if all three do (intersection-union): each at 0.05, no correction -> supported
    line = decided(tests, "all")
    assert [t.p_support_adj for t in tests] == pytest.approx([0.001801, 0.035242, 0.035242], abs=1e-6)
    assert {t.support_correction for t in tests} == {claims_mod.IUT}
    assert [t.verdict for t in tests] == ["supported"] * 3 and line.verdict == "supported"
    # most and any: Holm gives 0.001801 * 3 = 0.005403, 0.035242 * 2 = 0.070484, max(0.070484, 0.035242)
    fresh = three()
    assert decided(fresh, "most").verdict == "inconclusive"  # most: 2 of 3 needed, 1 holds
    assert [t.p_support_adj for t in fresh] == pytest.approx([0.005403, 0.070484, 0.070484], abs=1e-6)
    assert {t.support_correction for t in fresh} == {claims_mod.HOLM}
    assert decided(three(), "any").verdict == "supported"  # any: 1 of 3 is enough
    # one comparison significantly the other way: all cannot hold -> not supported (Holm on the against
    # side: 2.6e-7 * 2, still far below 0.05)
    mixed = [comparison(shifted(1.0), ">", BASE), comparison(shifted(-10), ">", BASE)]
    assert decided(mixed, "all").verdict == "not supported"
    # ... while "any" still holds through the first (Holm: 0.001801 * 2 = 0.003602)
    mixed = [comparison(shifted(1.0), ">", BASE), comparison(shifted(-10), ">", BASE)]
    assert decided(mixed, "any").verdict == "supported"


def test_the_against_side_is_holm_corrected_over_every_model_of_a_claim():
    # Δ = +0.4 at two models: support p 0.035242 each, an intersection-union test: both supported
    lines = [claims_mod.Line("X", "cifar10", "synthetic", m, [comparison(shifted(0.4), ">", BASE)])
             for m in ("resnet8", "resnet14")]
    claims_mod.decide(lines, "all")
    assert [ln.tests[0].p_support_adj for ln in lines] == pytest.approx([0.035242] * 2, abs=1e-6)
    assert claims_mod.claim_verdict(lines) == "supported"
    # Δ = -0.4 at two models: against p 0.035242 each, Holm 0.070484 each -> both inconclusive
    lines = [claims_mod.Line("X", "cifar10", "synthetic", m, [comparison(shifted(-0.4), ">", BASE)])
             for m in ("resnet8", "resnet14")]
    claims_mod.decide(lines, "all")
    assert [ln.tests[0].p_against_adj for ln in lines] == pytest.approx([0.070484] * 2, abs=1e-6)
    assert [ln.verdict for ln in lines] == ["inconclusive"] * 2 and claims_mod.claim_verdict(lines) == "inconclusive"


def test_each_comparison_has_its_interval_and_an_inconclusive_one_its_seeds():
    # Δ = +0.1 over BASE: inconclusive (p = 0.286696). Interval: 0.1 ± t_{0.975, 4} SE = 0.1 ± 2.776445 x 0.163299
    # = [-0.353391, 0.553391]. Seeds for 80 % power at Δ 0.1, pooled std 0.2 (d = 0.5): stats.seeds_needed (test_stats)
    t = comparison(shifted(0.1), ">", BASE)
    decided([t])
    assert t.verdict == "inconclusive"
    assert t.interval == pytest.approx((0.1 - 2.776445 * 0.163299, 0.1 + 2.776445 * 0.163299), abs=1e-5)
    from introspect.report import stats
    assert t.seeds_needed == stats.seeds_needed(0.1, 0.2, LEVEL) == 51
    t.seconds = (10.0, 20.0)  # 48 more seeds of each side: 48 x 30 s
    assert t.extra_seconds(t.seeds_needed) == pytest.approx(48 * 30.0)
    assert t.plan_text.startswith("51 seeds per side (+24 min)")
    # a comparison whose Δ points the other way gets no seed count
    w = comparison(shifted(-0.1), ">", BASE)
    decided([w])
    assert w.verdict == "inconclusive" and w.seeds_needed is None and w.other_way
    assert "points the other way" in w.plan_text
    # the paper's Δ (+0.5, pooled std 0.3) plans too: d = 1.67
    t.paper = (0.5, 0.3)
    assert t.seeds_needed_paper == stats.seeds_needed(0.5, 0.3, LEVEL) and "at the paper's Δ +0.50:" in t.plan_text


def test_combine_rule_counts():
    s, n, i = "supported", "not supported", "inconclusive"
    assert claims_mod.combine([s, s, s], "all") == s and claims_mod.combine([s, s, i], "all") == i
    assert claims_mod.combine([s, i, n], "all") == n
    assert claims_mod.combine([n, n, i], "any") == i and claims_mod.combine([n, n, n], "any") == n
    # most of 5 needs 3: 3 supported holds; 3 not supported leaves at most 2, so it cannot hold
    assert claims_mod.combine([s, s, s, n, n], "most") == s and claims_mod.combine([s, s, n, n, n], "most") == n
    assert claims_mod.combine([s, s, i, n, n], "most") == i


def test_claim_rules_are_declared():
    ok = {"compare": ["a", ">=", ["b", "c"]], "combine": "all", "margin": 0.5}
    assert claims_mod.check_claim(ok) == ("all", 0.5)
    assert claims_mod.check_claim({"compare": ["a", ">", "b"]}) == ("all", None)  # one comparison: all
    with pytest.raises(ValueError, match="margin"):
        claims_mod.check_claim({"compare": ["a", ">=", "b"]})
    with pytest.raises(ValueError, match="margin"):
        claims_mod.check_claim({"compare": ["a", ">=", "b"], "margin": -1})
    with pytest.raises(ValueError, match=">= and <= comparisons only"):
        claims_mod.check_claim({"compare": ["a", ">", "b"], "margin": 0.5})
    with pytest.raises(ValueError, match="combine rule"):
        claims_mod.check_claim({"compare": ["a", ">", ["b", "c"]]})
    with pytest.raises(ValueError, match="not one of"):
        claims_mod.check_claim({"compare": ["a", ">", ["b", "c"]], "combine": "some"})


def test_reference_claims_declare_their_rules(tmp_path):
    claims = claims_mod.read_claims(REFERENCE / "paper_claims.yaml") + claims_mod.read_claims(REFERENCE / "method_claims.yaml")
    compared = {c["id"]: claims_mod.check_claim(c) for c in claims if "compare" in c}
    assert compared["C6"] == ("all", 0.5) and all(rule == "all" for rule, _ in compared.values())
    assert [i for i, (_, margin) in compared.items() if margin is not None] == ["C6"]
    bad = tmp_path / "claims.yaml"
    bad.write_text("claims:\n  - {id: Z, compare: [a, '>=', b], where: {dataset: d, models: [m]}}\n")
    with pytest.raises(ConfigError, match="claim Z: a >= or <= comparison needs margin"):
        claims_mod.read_claims(bad)
