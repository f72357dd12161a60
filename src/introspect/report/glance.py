"""The report at a glance: index.md's verdict table and the two-line summary a run ends with.

One row per claim: its id, the claim in a few words (its comparisons as the claims YAML writes
them), the verdict, what it rests on (decided, reduced data or rehearsal, with the references of its
data: :mod:`.rests_on`) and the numbers behind it: the **deciding comparison** with its Δ, 90 %
interval and the paper's Δ. The deciding comparison is the one the claim's verdict turns on
(:func:`deciding`): for a not-supported claim its comparison most significantly against (smallest
adjusted p against among those not supported); otherwise, at each line, the comparison whose
support the claim's combine rule needs last (the r-th smallest adjusted p support: the weakest for
``all``, the strongest for ``any``), and of those the weakest over the lines, since every line must hold.
"""
from __future__ import annotations

import math
from collections import Counter
from pathlib import Path

from . import fmt
from .claims_read import METRIC, OPS
from .judge import (DECIDED, INCONCLUSIVE, NOT_APPLICABLE, NOT_RUN, NOT_SUPPORTED, REDUCED, REHEARSAL, SUPPORTED,
                    Line, Test, claim_status, claim_verdict, counted, required, rule_of_lines)
from .rests_on import Bases
from .stats import interval_level
from ..analysis import TOP

SUMMARY = "summary.txt"  # what the workflow prints when it ends (the Snakefile's onsuccess, dvc.yaml's report stage)
VERDICTS = (SUPPORTED, NOT_SUPPORTED, INCONCLUSIVE, NOT_RUN, NOT_APPLICABLE)  # the summary's order
VERDICT_HEADER = ["claim", "in a few words", "verdict", "rests on (data)", "deciding comparison", "Δ [90 % CI]",
                  "paper's Δ"]


def _term(term) -> str:
    return ", ".join(map(str, term)) if isinstance(term, list) else str(term)


def _expression(expr: list) -> str:
    if expr and all(isinstance(e, list) for e in expr) and any(isinstance(x, str) and x in OPS for e in expr for x in e):
        return "; ".join(_expression(e) for e in expr)
    return " ".join(_term(t) for t in expr)


def brief(claim: dict) -> str:
    """The claim in a few words: its comparisons as written (``le > ce, dropout, ls, cp``), with the
    metric where it is not test accuracy (``ece: le_gradcam < ce``); C10's rule for a rank check."""
    if "compare" not in claim:
        return f"known-similar class pairs in each other's top {TOP}"
    metric = claim.get("metric", METRIC)
    return ("" if metric == METRIC else f"{metric}: ") + _expression(claim["compare"])


def _p(x: float) -> float:
    return math.inf if fmt.missing(x) else x


def deciding(lines: list[Line], rule: str = "all") -> tuple[Line, Test] | None:
    """The comparison a claim's verdict turns on under its combine ``rule`` (see the module's
    docstring); None when none ran."""
    ran = [(ln, t) for ln in counted(lines) for t in ln.tests if t.run]
    if not ran:
        return None
    if claim_verdict(lines) == NOT_SUPPORTED:
        against = [(ln, t) for ln, t in ran if t.verdict == NOT_SUPPORTED]
        return min(against, key=lambda lt: _p(lt[1].p_against_adj))
    needed = []
    for line in counted(lines):
        tests = sorted((t for t in line.tests if t.run), key=lambda t: _p(t.p_support_adj))
        if tests:
            needed.append((line, tests[required(rule, len(tests)) - 1]))
    return max(needed, key=lambda lt: _p(lt[1].p_support_adj))


def _digits(claim: dict) -> int:
    return 2 if claim.get("metric", METRIC) == METRIC else 4


def numbers(claim: dict, lines: list[Line]) -> list[str]:
    """The deciding comparison, its Δ with its interval, the paper's Δ; C10's passing pairs instead."""
    found = deciding(lines, rule_of_lines(lines)[0] or "all")
    if found is None:
        checks = [(ln, c) for ln in counted(lines) for c in getattr(ln, "checks", []) if c.ranks is not None]
        if checks:
            passing = sum(c.passes for _, c in checks)
            return [f"{passing} of {len(checks)} pairs pass (a fixed rule, no Δ)", fmt.DASH, fmt.DASH]
        return [fmt.DASH] * 3
    line, t = found
    low, high = t.interval
    digits = _digits(claim)
    interval = "" if fmt.missing(low) else f" [{fmt.signed(low, digits)}, {fmt.signed(high, digits)}]"
    mark = " †" if t.interval_side else ""
    return [f"{line.where}: {t.a} {t.op} {t.b}{mark}", fmt.signed(t.diff, digits) + interval,
            fmt.DASH if t.paper is None else fmt.signed(t.paper, digits)]


def verdict_rows(evaluated: list[tuple[dict, list[Line]]], bases: Bases, under_other: dict[str, str] | None = None,
                 other_protocol: str = "the other epoch protocol") -> list[list[str]]:
    """One row per claim; a verdict that differs under the other epoch protocol is flagged (⚠) with it."""
    under_other = under_other or {}
    rows = []
    for claim, lines in evaluated:
        verdict, status = claim_verdict(lines), claim_status(lines)
        other = under_other.get(claim["id"], verdict)
        flag = "" if other == verdict else f" (⚠ {other} under {other_protocol})"
        rests = f"{status} ({bases.refs(lines)})" if status else fmt.DASH
        rows.append([claim["id"], brief(claim), verdict + flag, rests, *numbers(claim, lines)])
    return rows


def verdict_table(evaluated: list[tuple[dict, list[Line]]], bases: Bases, level: float,
                  under_other: dict[str, str] | None = None, other_protocol: str = "the other epoch protocol") -> str:
    header = [h.replace("90 %", f"{100 * interval_level(level):g} %") for h in VERDICT_HEADER]
    return fmt.markdown(header, verdict_rows(evaluated, bases, under_other, other_protocol))


LEGEND = ("Δ: the claim's deciding comparison's mean per-seed difference a − b with its paired {level} interval "
          "(for a not-supported claim its comparison most significantly against; otherwise the one its combine "
          "rule needs last, at its weakest line), and the paper's Δ from its own tables; † an interval that "
          "excludes the null while the Holm-adjusted p does not. Every comparison, its p-values and the seeds "
          "that would decide it: [claims.md](claims.md) ([CSV](claims.csv)); calibration and explanation "
          "quality: [beyond.md](beyond.md). The data refs (D1, ...) are in *What the verdicts rest on* below.\n")


def legend(level: float) -> str:
    return LEGEND.format(level=f"{100 * interval_level(level):g} %")


def counts(evaluated: list[tuple[dict, list[Line]]]) -> str:
    """"22 claims: 3 supported, 15 inconclusive, 4 not run in this config; 0 decided, 0 on reduced data, 18 rehearsals"."""
    verdicts = Counter(claim_verdict(ls) for _, ls in evaluated)
    statuses = Counter(claim_status(ls) for _, ls in evaluated)
    by_verdict = ", ".join(f"{verdicts[v]} {v}" for v in VERDICTS if verdicts[v])
    by_status = (f"{statuses[DECIDED]} decided, {statuses[REDUCED]} on reduced data, "
                 f"{statuses[REHEARSAL]} rehearsal{'s' * (statuses[REHEARSAL] != 1)}")
    return f"{len(evaluated)} claims: {by_verdict}; {by_status}"


def runs_text(planned: int, current: int, missing: int, stale: int, explanations: int) -> str:
    if current == planned and not explanations:
        return f"all {planned} planned runs present and current"
    parts = [f"{n} {what}" for n, what in ((missing, "missing"), (stale, "stale"),
                                          (explanations, "explanation files missing or stale")) if n]
    return f"INCOMPLETE: {current} of {planned} planned runs present and current ({', '.join(parts)})"


def declared(plan, paper_csv: Path) -> dict[str, list[str]]:
    """What the report job writes beyond the paper's tables and figures, as the workflow declares it
    (workflow/rules/report.smk): the summary the run ends with, the verdicts' forest plot and the
    figures of ours against the paper's, as paths under reports/."""
    from . import forest, paper_figure

    stems = [forest.STEM, *paper_figure.stems(plan, paper_csv)]
    return {"summary": [f"reports/{SUMMARY}"],
            "figures": [f"reports/{stem}.{ext}" for stem in stems for ext in ("png", "pdf")]}


def summary(out: Path, scale: str, runs: str, evaluated: list[tuple[dict, list[Line]]]) -> str:
    """The two lines a run ends with: where the report is, and what it found."""
    index, figure = Path(out) / "index.md", Path(out) / "figures" / "verdicts.png"
    return (f"Report: {index} (the verdicts in one picture: {figure})\n"
            f"Scale {scale}: {runs}; {counts(evaluated)}.\n")

