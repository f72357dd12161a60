"""Verdicts on the paper's claims (workflow/reference/paper_claims.yaml) from per-seed results.

A claim compares row labels on a paper dataset and model, e.g. ``[le, ">", [ce, dropout, ls, cp]]``.
It is read as a list of pairwise comparisons ``a op b``: a list on either side expands to one
comparison per member, a chain ``a < b < c`` to its adjacent pairs, and a list of such expressions
to all of theirs. Every comparison uses test accuracy (%): "better" is higher accuracy, and a table
reported in test error is compared through accuracy = 100 − error; a claim that names a ``metric``
(one of results.METRICS, e.g. ``ece`` in beyond_claims.yaml) compares that one instead. A sweep row contributes the seeds
of its value chosen on the validation split.

Each comparison is a one-sided question about Δ = mean(a) − mean(b) (``<`` and ``<=`` swap the
sides: ``a < b`` is asked as ``b > a``), answered by Welch's one-sided t-tests
(scipy.stats.ttest_ind, equal_var=False), a sample shifted by the margin where one is used:

- ``>`` (better): p_support tests Δ > 0 (superiority), p_against tests Δ < 0;
- ``>=`` ("competitive": not worse by more than the claim's ``margin`` m, in points of accuracy):
  p_support is the smaller of the equivalence p (TOST: the larger p of Δ > −m and Δ < m) and the
  superiority p (Δ > 0); p_against tests Δ < −m (worse by more than the margin).

The p-values of all the run comparisons of a claim (every dataset and model it names) are corrected
with Holm's step-down method (Holm 1979), p_support and p_against separately. A comparison is
supported when its adjusted p_support < the plan's significance level, not supported when its
adjusted p_against is, inconclusive otherwise, and always inconclusive when no test is possible
(fewer than 2 seeds on a side, or no variance on either side).

The k comparisons of a claim at one (dataset, model) combine by the claim's ``combine`` rule, which
needs r of them: ``all`` (r = k), ``any`` (r = 1) or ``most`` (r = ⌊k/2⌋ + 1). The line is supported
when at least r comparisons are, not supported when more than k − r are not supported (fewer than r
can then hold), inconclusive otherwise; a comparison not run counts as neither. The claim is made
at every dataset and model it names: not supported if any line is, supported if all run lines are,
inconclusive otherwise. A claim whose labels have no row in this config is "not run in this config".
C10 (Figure 2) is a rank check on the averaged class-by-class explanation similarity instead.
"""
from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import numpy as np
import yaml

from . import fmt
from .results import METRICS, Results, Stat
from .tables import row_label
from ..pipeline import Plan, Row, Table
from ..registry import ConfigError

SUPPORTED, NOT_SUPPORTED, INCONCLUSIVE = "supported", "not supported", "inconclusive"
NOT_RUN, NOT_APPLICABLE, MISSING = "not run in this config", "not applicable at this scale", "missing"
OPS = {">": 1, ">=": 1, "<": -1, "<=": -1}  # the sign the difference a − b should have
COMPETITIVE = (">=", "<=")  # "not worse by more than the margin"
COMBINE = ("all", "any", "most")
METRIC = "test_acc"
# C4 and C7's note: "LE means le_gradcam on CIFAR10 and le_grad on MNIST".
ALIASES = {"le": {"cifar10": "le_gradcam", "mnist": "le_grad"}}
# C10's text: the class pairs Figure 2 should put close, per paper dataset.
FIGURE2_PAIRS = {"cifar10": [("truck", "automobile"), ("dog", "cat")],
                 "mnist": [("0", "6"), ("1", "7"), ("3", "5"), ("4", "9")]}
TOP = 3  # C10: a pair passes when each class ranks in the top 3 of the other's row


def read_claims(path: Path) -> list[dict]:
    """The ``claims`` list of a claims YAML, each comparison claim checked (:func:`check_claim`);
    a file that does not parse, or a claim that does not read, is one line naming where."""
    try:
        claims = yaml.safe_load(Path(path).read_text())
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ConfigError(f"{path}: not valid YAML{at}: {getattr(exc, 'problem', None) or exc}") from None
    if not isinstance(claims, dict) or not isinstance(claims.get("claims"), list):
        raise ConfigError(f"{path}: expected a mapping with a list under 'claims'")
    for claim in claims["claims"]:
        if isinstance(claim, dict) and "compare" in claim:
            try:
                check_claim(claim)
            except ValueError as exc:
                raise ConfigError(f"{path}: claim {claim.get('id', '?')}: {exc}") from None
    return claims["claims"]


def _members(term) -> list[str]:
    return list(term) if isinstance(term, list) else [term]


def parse(expr: list) -> list[tuple[str, str, str]]:
    """``compare`` -> pairwise comparisons ``(a, op, b)``, in order."""
    if expr and all(isinstance(e, list) for e in expr) and any(isinstance(x, str) and x in OPS for e in expr for x in e):
        return [c for e in expr for c in parse(e)]
    terms, ops = expr[0::2], expr[1::2]
    if not ops or len(terms) != len(ops) + 1 or any(not isinstance(op, str) or op not in OPS for op in ops):
        raise ValueError(f"compare: cannot read {expr!r}; expected a op b [op c ...] with op one of {', '.join(OPS)}")
    return [(a, op, b) for left, op, right in zip(terms, ops, terms[1:])
            for a in _members(left) for b in _members(right)]


def check_claim(claim: dict) -> tuple[str, float | None]:
    """A comparison claim's ``(combine rule, margin)``, or ValueError saying what is wrong.

    ``combine`` is required when the claim makes more than one comparison at a place (it defaults to
    ``all`` for one); ``margin`` (points of accuracy, > 0) is required exactly when some comparison
    is ``>=`` / ``<=``.
    """
    comparisons = parse(claim["compare"])
    rule = claim.get("combine")
    if rule is None and len(comparisons) > 1:
        raise ValueError(f"{len(comparisons)} comparisons need a combine rule, one of {', '.join(COMBINE)}")
    if rule is not None and rule not in COMBINE:
        raise ValueError(f"combine: {rule!r} is not one of {', '.join(COMBINE)}")
    competitive = any(op in COMPETITIVE for _, op, _ in comparisons)
    margin = claim.get("margin")
    if competitive and (isinstance(margin, bool) or not isinstance(margin, (int, float)) or not margin > 0):
        raise ValueError(f"a >= or <= comparison needs margin: a number > 0 (points of accuracy), not {margin!r}")
    if not competitive and margin is not None:
        raise ValueError("margin applies to >= and <= comparisons only")
    metric = claim.get("metric", METRIC)
    if metric not in METRICS:
        raise ValueError(f"metric: {metric!r} is not one of {', '.join(METRICS)}")
    return rule or "all", float(margin) if competitive else None


def places(where: dict) -> list[tuple[str, str]]:
    """``where`` -> [(paper dataset, model)]: {dataset: d, models: [...]} or {d1: [...], d2: [...]}."""
    if "dataset" in where:
        return [(where["dataset"], m) for m in where.get("models", [])]
    return [(d, m) for d, models in where.items() for m in models]


def one_sided(x, y, alternative: str, shift: float = 0.0) -> float:
    """p of Welch's one-sided t-test of mean(x) + shift − mean(y) > 0 (``greater``) or < 0 (``less``).

    nan when no test is possible: fewer than 2 values on a side, or no variance on either side (the
    t statistic would be infinite or undefined, whatever the difference).
    """
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if len(x) < 2 or len(y) < 2 or (np.ptp(x) == 0 and np.ptp(y) == 0):
        return math.nan
    from scipy.stats import ttest_ind

    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        return float(ttest_ind(x + shift, y, equal_var=False, alternative=alternative).pvalue)


def tost(x, y, margin: float) -> float:
    """p of the two one-sided tests (TOST) that −margin < mean(x) − mean(y) < margin: the larger p."""
    return max(one_sided(x, y, "greater", margin), one_sided(x, y, "less", -margin))


def pvalues_of(x, y, competitive: bool, margin: float | None) -> tuple[float, float]:
    """``(p_support, p_against)`` of "x better than y" (``>``) or "x competitive with y" (``>=``)."""
    superiority = one_sided(x, y, "greater")
    if not competitive:
        return superiority, one_sided(x, y, "less")
    return min(tost(x, y, margin), superiority), one_sided(x, y, "less", margin)


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


def verdict(p_support: float, p_against: float, level: float) -> str:
    """One comparison from its (adjusted) p-values: supported / not supported below ``level``."""
    if not fmt.missing(p_support) and p_support < level:
        return SUPPORTED
    if not fmt.missing(p_against) and p_against < level:
        return NOT_SUPPORTED
    return INCONCLUSIVE


def required(rule: str, k: int) -> int:
    """How many of k comparisons must hold under ``rule``."""
    return {"all": k, "any": 1, "most": k // 2 + 1}[rule] if k else 0


def combine(verdicts: list[str], rule: str = "all") -> str:
    """Verdicts of k comparisons under ``rule`` (r of them must hold): supported when at least r are,
    not supported when more than k − r are not supported, inconclusive otherwise."""
    k = len(verdicts)
    r = required(rule, k)
    if k and verdicts.count(SUPPORTED) >= r:
        return SUPPORTED
    if k and verdicts.count(NOT_SUPPORTED) > k - r:
        return NOT_SUPPORTED
    return INCONCLUSIVE


def describe_test(op: str, margin: float | None) -> str:
    if op in COMPETITIVE:
        return f"TOST ±{margin:g} or superiority (Welch, one-sided)"
    return "superiority (Welch, one-sided)"


@dataclass
class Test:
    """One comparison ``a op b`` at one (dataset, model); labels name the chosen sweep value.

    ``p_support_holm`` and ``p_against_holm`` are set once the claim's family is known (:func:`evaluate`).
    """

    a: str
    op: str
    b: str
    a_stat: Stat | None  # None: the label has no row in this config
    b_stat: Stat | None
    level: float
    margin: float | None = None  # points of accuracy; >= and <= only
    p_support_holm: float = math.nan
    p_against_holm: float = math.nan

    @property
    def run(self) -> bool:
        return self.a_stat is not None and self.b_stat is not None

    @property
    def diff(self) -> float:
        return self.a_stat.mean - self.b_stat.mean if self.run and self.a_stat.n and self.b_stat.n else math.nan

    @property
    def test(self) -> str:
        return describe_test(self.op, self.margin)

    @cached_property
    def pvalues(self) -> tuple[float, float]:
        """Raw ``(p_support, p_against)``; the sides swap for ``<`` and ``<=``."""
        if not self.run:
            return math.nan, math.nan
        x, y = (self.a_stat.values, self.b_stat.values)[::OPS[self.op]]
        return pvalues_of(x, y, self.op in COMPETITIVE, self.margin)

    @property
    def verdict(self) -> str:
        return verdict(self.p_support_holm, self.p_against_holm, self.level) if self.run else NOT_RUN


@dataclass
class Line:
    """A claim at one (paper dataset, model): its comparisons and their combined verdict."""

    claim: str
    paper_dataset: str
    dataset: str | None
    model: str
    tests: list[Test] = field(default_factory=list)
    verdict: str = NOT_RUN
    note: str = ""


def locate(plan: Plan, paper_dataset: str, model: str, label: str) -> tuple[Table, Row] | None:
    label = ALIASES.get(label, {}).get(paper_dataset, label)
    return next(((t, r) for t in plan.tables if t.paper_dataset == paper_dataset and model in t.models
                 for r in t.rows if r.label == label), None)


def run_dataset(plan: Plan, paper_dataset: str) -> str | None:
    return next((t.dataset for t in plan.tables if t.paper_dataset == paper_dataset), None)


def _side(plan: Plan, results: Results, paper_dataset: str, model: str, label: str,
          metric: str = METRIC) -> tuple[str, Stat | None]:
    found = locate(plan, paper_dataset, model, label)
    if found is None:
        return label, None
    table, row = found
    choice = results.choose(table.dataset, model, row)
    name = row_label(row, {model: choice}) if row.sweep_key else row.label
    return name, results.stat(table.dataset, model, choice.variant, metric)


def _competitive_note(tests: list[Test]) -> str:
    """C6's note: LE's rank among the compared methods and its gap to the best of the others."""
    ran = [t for t in tests if t.run and t.op in COMPETITIVE and t.a_stat.n and t.b_stat.n]
    if not ran or len({t.a for t in ran}) != 1:
        return ""
    means = {ran[0].a: ran[0].a_stat.mean, **{t.b: t.b_stat.mean for t in ran}}
    rank = 1 + sum(m > means[ran[0].a] for m in means.values())
    best = min(ran, key=lambda t: t.diff)
    return f"{ran[0].a} ranks {rank} of {len(means)}; {ran[0].a} − the best other: {fmt.signed(best.diff)} ({best.b})"


def adjust(tests: list[Test]) -> None:
    """Holm over a claim's run comparisons, p_support and p_against separately."""
    ran = [t for t in tests if t.run]
    raw = [t.pvalues for t in ran]
    for t, support, against in zip(ran, holm([s for s, _ in raw]), holm([a for _, a in raw])):
        t.p_support_holm, t.p_against_holm = support, against


def _line_note(line: Line) -> str:
    ran = [t for t in line.tests if t.run]
    notes = [_competitive_note(line.tests)]
    unrun = sorted({x for t in line.tests if not t.run for x, s in ((t.a, t.a_stat), (t.b, t.b_stat)) if s is None})
    if unrun:
        notes.append(f"not run in this config: {', '.join(unrun)}")
    if any(t.a_stat.n < 2 or t.b_stat.n < 2 for t in ran):
        notes.append("fewer than 2 seeds on a side")
    elif any(np.ptp(t.a_stat.values) == 0 and np.ptp(t.b_stat.values) == 0 for t in ran):
        notes.append("no variance on either side of a comparison")
    return "; ".join(n for n in notes if n)


def evaluate(claim: dict, plan: Plan, results: Results) -> list[Line]:
    """A comparison claim, one line per (paper dataset, model) it names."""
    rule, margin = check_claim(claim)
    comparisons = parse(claim["compare"])
    lines = []
    for paper_dataset, model in places(claim.get("where", {})):
        line = Line(claim["id"], paper_dataset, run_dataset(plan, paper_dataset), model)
        for a, op, b in comparisons:
            (a_name, a_stat), (b_name, b_stat) = (_side(plan, results, paper_dataset, model, x, claim.get("metric", METRIC))
                                                  for x in (a, b))
            line.tests.append(Test(a_name, op, b_name, a_stat, b_stat, plan.significance,
                                   margin if op in COMPETITIVE else None))
        lines.append(line)
    decide(lines, rule)
    return lines


def decide(lines: list[Line], rule: str) -> None:
    """Verdicts of a claim's lines: Holm over all their comparisons, then ``rule`` at each line."""
    adjust([t for line in lines for t in line.tests])
    for line in lines:
        if any(t.run for t in line.tests):
            line.verdict = combine([t.verdict for t in line.tests], rule)
            line.note = _line_note(line)


def rank_in_row(sim: np.ndarray, i: int, j: int) -> int:
    """Rank (1 = most similar) of class j in class i's row, the diagonal left out."""
    return 1 + sum(1 for k in range(len(sim)) if k not in (i, j) and sim[i, k] > sim[i, j])


@dataclass(frozen=True)
class PairCheck:
    pair: tuple[str, str]
    ranks: tuple[int, int] | None  # (rank of b in a's row, rank of a in b's row); None if not applicable

    @property
    def passes(self) -> bool:
        return self.ranks is not None and max(self.ranks) <= TOP


def check_pairs(similarity, classes: list[str], pairs: list[tuple[str, str]]) -> list[PairCheck]:
    sim = np.asarray(similarity, dtype=float)
    index = {str(c): k for k, c in enumerate(classes)}
    out = []
    for a, b in pairs:
        if a in index and b in index:
            i, j = index[a], index[b]
            out.append(PairCheck((a, b), (rank_in_row(sim, i, j), rank_in_row(sim, j, i))))
        else:
            out.append(PairCheck((a, b), None))
    return out


def pair_scores(similarity, classes: list[str], pairs: dict[str, list[tuple[str, str]]] = FIGURE2_PAIRS) -> dict:
    """Figure 2's structure in one similarity matrix, over every known-similar pair (of any paper
    dataset) whose two classes it has: ``pair_rank``, the mean of the pair's two ranks
    (:func:`check_pairs`; 1 is closest), and ``pairs_close``, the share (%) of pairs that pass C10's
    top-3 check. Both None when no pair applies."""
    checks = [c for c in check_pairs(similarity, [str(c) for c in classes], [p for ps in pairs.values() for p in ps])
              if c.ranks is not None]
    if not checks:
        return {"pair_rank": None, "pairs_close": None}
    return {"pair_rank": float(np.mean([sum(c.ranks) / 2 for c in checks])),
            "pairs_close": 100.0 * sum(c.passes for c in checks) / len(checks)}


@dataclass
class PairLine(Line):
    checks: list[PairCheck] = field(default_factory=list)


def evaluate_figure2(claim: dict, plan: Plan, explanations: dict[str, dict | None],
                     pairs: dict[str, list[tuple[str, str]]] = FIGURE2_PAIRS) -> list[Line]:
    """C10: per paper dataset, do the named pairs rank in each other's top 3 (see :func:`check_pairs`)?"""
    lines = []
    for paper_dataset in sorted(pairs):
        run = plan.explanations.get(paper_dataset)
        line = PairLine(claim["id"], paper_dataset, run.dataset if run else None, run.model if run else "")
        data = explanations.get(paper_dataset)
        if run is None:
            line.verdict = NOT_RUN
        elif data is None:
            line.verdict, line.note = INCONCLUSIVE, f"explanations of {run.id} are {MISSING}"
        else:
            line.checks = check_pairs(data["similarity"], [str(c) for c in data["classes"]], pairs[paper_dataset])
            checked = [c for c in line.checks if c.ranks is not None]
            if not checked:
                line.verdict = NOT_APPLICABLE
                line.note = f"{run.dataset} has classes {', '.join(map(str, data['classes']))}"
            else:
                line.verdict = SUPPORTED if all(c.passes for c in checked) else NOT_SUPPORTED
                line.note = f"explainer {data.get('explainer', '?')}, run {run.id}"
        lines.append(line)
    return lines


def claim_verdict(lines: list[Line]) -> str:
    decided = [ln.verdict for ln in lines if ln.verdict not in (NOT_RUN, NOT_APPLICABLE)]
    if not decided:
        return NOT_APPLICABLE if any(ln.verdict == NOT_APPLICABLE for ln in lines) else NOT_RUN
    return combine(decided)


def evaluate_all(claims: list[dict], plan: Plan, results: Results,
                 explanations: dict[str, dict | None]) -> list[tuple[dict, list[Line]]]:
    return [(c, evaluate(c, plan, results) if "compare" in c else evaluate_figure2(c, plan, explanations))
            for c in claims]


CSV_COLUMNS = ("claim", "source", "combine", "margin", "claim_verdict", "paper_dataset", "dataset", "model",
               "line_verdict", "comparison", "test", "mean_a", "mean_b", "diff", "n_a", "n_b", "p_support",
               "p_support_holm", "p_against", "p_against_holm", "verdict", "note")


def _rule(claim: dict) -> tuple[str, float | None]:
    """``(combine, margin)`` of a comparison claim; ``("", None)`` for a check such as C10's."""
    return check_claim(claim) if "compare" in claim else ("", None)


def _test_cells(t: Test) -> dict:
    if not t.run:
        return {"comparison": f"{t.a} {t.op} {t.b}", "verdict": t.verdict}
    (support, against) = t.pvalues
    return {"comparison": f"{t.a} {t.op} {t.b}", "test": t.test, "mean_a": t.a_stat.mean, "mean_b": t.b_stat.mean,
            "diff": t.diff, "n_a": t.a_stat.n, "n_b": t.b_stat.n, "p_support": support,
            "p_support_holm": t.p_support_holm, "p_against": against, "p_against_holm": t.p_against_holm,
            "verdict": t.verdict}


def csv_rows(evaluated: list[tuple[dict, list[Line]]]) -> list[dict]:
    """One row per comparison (or class pair); lines with none get one row."""
    rows = []
    for claim, lines in evaluated:
        rule, margin = _rule(claim)
        head = {"claim": claim["id"], "source": claim.get("source", ""), "combine": rule, "margin": margin,
                "claim_verdict": claim_verdict(lines)}
        if all(ln.verdict == NOT_RUN for ln in lines):
            rows.append({k: None for k in CSV_COLUMNS} | head | {"verdict": head["claim_verdict"]})
            continue
        for line in (ln for ln in lines if ln.verdict != NOT_RUN):  # models this config does not run: left out
            base = head | {"paper_dataset": line.paper_dataset, "dataset": line.dataset or "", "model": line.model,
                           "line_verdict": line.verdict, "note": line.note}
            items = [_test_cells(t) for t in (line.tests if line.verdict != NOT_RUN else [])]
            for c in getattr(line, "checks", []):
                items.append({"comparison": f"pair ({c.pair[0]}, {c.pair[1]})",
                              "verdict": NOT_APPLICABLE if c.ranks is None else SUPPORTED if c.passes else NOT_SUPPORTED,
                              "note": "" if c.ranks is None else f"ranks {c.ranks[0]} and {c.ranks[1]} (top {TOP} passes)"})
            rows += [{k: None for k in CSV_COLUMNS} | base | item for item in items or [{"verdict": line.verdict}]]
    return [{k: ("" if fmt.missing(r[k]) else r[k]) for k in CSV_COLUMNS} for r in rows]


RULE_TEXT = {"all": "every comparison at a dataset and model must hold",
             "any": "at least one comparison at a dataset and model must hold",
             "most": "more than half of the comparisons at a dataset and model must hold"}


def legend(plan: Plan) -> str:
    """What every verdict of claims.md means, at the plan's significance level."""
    a = f"{plan.significance:g}"
    return "\n".join([
        "How to read the verdicts (α = " + a + ", the plan's `significance`):\n",
        "- Each comparison `a op b` is a one-sided question about Δ = mean(a) − mean(b) over seeds; `<` and "
        "`<=` swap the sides (`a < b` is asked as `b > a`). Tests: Welch's one-sided t-tests "
        "(scipy.stats.ttest_ind, equal_var=False), a sample shifted by the margin where one is used.",
        "- `>` (better): **p support** tests Δ > 0 (superiority); **p against** tests Δ < 0.",
        "- `>=` (competitive: not worse by more than the claim's margin m, in points of accuracy, declared "
        "with the claim in the claims YAML): **p support** is the smaller of the equivalence p (TOST: the "
        "larger p of the two tests Δ > −m and Δ < m) and the superiority p (Δ > 0); **p against** tests "
        "Δ < −m (worse by more than the margin).",
        "- Multiplicity: within a claim, Holm's step-down correction over all its run comparisons (every "
        "dataset and model it names), p support and p against separately. Tables show raw p (Holm-adjusted p).",
        f"- A comparison is **supported** when its Holm-adjusted p support < {a}; **not supported** when its "
        f"Holm-adjusted p against < {a}; **inconclusive** otherwise, and always when no test is possible "
        "(fewer than 2 seeds on a side, or no variance on either side: p is shown as —).",
        "- At one dataset and model, a claim's k comparisons combine by its rule (`combine`), which needs r "
        "of them: `all` r = k, `any` r = 1, `most` r = ⌊k/2⌋ + 1. The line is **supported** when at least r "
        "comparisons are supported, **not supported** when more than k − r are not supported (fewer than r "
        "can then hold), **inconclusive** otherwise; a comparison not run counts as neither.",
        "- A claim holds at every dataset and model it names: **not supported** if any line is, **supported** "
        "if every run line is, **inconclusive** otherwise; **not run in this config** when no line was run.",
        f"- C10 (Figure 2) is a rank check instead: a pair passes when each class ranks in the top {TOP} of "
        "the other's row of the averaged explanation similarity; supported when every applicable pair passes.\n"])


def _rule_line(claim: dict) -> str:
    rule, margin = _rule(claim)
    if not rule:
        return ""
    k = len(parse(claim["compare"]))
    text = f"Combine: `{rule}` ({RULE_TEXT[rule]}; {k} comparison{'s' if k > 1 else ''} at each)"
    if claim.get("metric", METRIC) != METRIC:
        text = f"Metric: `{claim['metric']}` per seed. " + text
    return text + (f"; margin {margin:g} points of accuracy.\n" if margin is not None else ".\n")


def _pcell(raw: float, adjusted: float) -> str:
    return f"{fmt.pvalue(raw)} ({fmt.pvalue(adjusted)})"


def protocol_cell(verdict: str, other: str) -> str:
    return other if other == verdict else f"⚠ {other}"


def markdown(evaluated: list[tuple[dict, list[Line]]], plan: Plan, other: dict[str, str] | None = None,
             other_protocol: str = "") -> str:
    """claims.md; ``other``: each claim's verdict under the other epoch protocol, shown beside it and
    flagged where it differs."""
    mapping = ", ".join(f"{d} → {run_dataset(plan, d)}" for d in sorted({t.paper_dataset for t in plan.tables}))
    aliases = "; ".join(f"`{k}` means " + " and ".join(f"{v} on {d}" for d, v in m.items()) for k, m in ALIASES.items())
    out = ["# Claims\n",
           f"Scale {plan.scale}; paper dataset → dataset run: {mapping}. Each comparison uses per-seed test accuracy "
           f"(%): higher is better; a table reported in test error is compared through accuracy = 100 − error "
           f"(a claim that names another `metric`, such as the beyond-accuracy questions, compares that one). "
           f"Sweep rows use the value chosen on the validation split. {aliases}.\n",
           legend(plan),
           "## Summary\n",
           f"Verdicts use the test accuracy of the **{plan.protocol}** epoch protocol"
           + (f"; the column beside gives each verdict under `{other_protocol}` and flags (⚠) a verdict that differs."
              if other is not None else ".") + "\n",
           fmt.markdown(["claim", "source", "combine", "verdict", *([f"under {other_protocol}"] if other is not None else []),
                         "claim text"],
                        [[c["id"], c.get("source", ""), _rule(c)[0] or fmt.DASH, claim_verdict(ls),
                          *([protocol_cell(claim_verdict(ls), other[c["id"]])] if other is not None else []),
                          c.get("text", "")] for c, ls in evaluated])]
    for claim, lines in evaluated:
        out.append(f"## {claim['id']} ({claim.get('source', '')}): {claim_verdict(lines)}\n\n{claim.get('text', '')}\n")
        out += [x for x in [_rule_line(claim)] if x]
        if all(ln.verdict == NOT_RUN for ln in lines):
            out.append(f"{NOT_RUN.capitalize()}.\n")
            continue
        rows = []
        for line in (ln for ln in lines if ln.verdict != NOT_RUN):  # models this config does not run: left out
            where = [line.paper_dataset, line.dataset or fmt.DASH, line.model]
            for t in line.tests:
                if t.run:
                    rows.append([*where, f"{t.a} {t.op} {t.b}", t.test, fmt.num(t.a_stat.mean), fmt.num(t.b_stat.mean),
                                 fmt.signed(t.diff), f"{t.a_stat.n}, {t.b_stat.n}",
                                 _pcell(t.pvalues[0], t.p_support_holm), _pcell(t.pvalues[1], t.p_against_holm), t.verdict])
            for c in getattr(line, "checks", []):
                ranks = fmt.DASH if c.ranks is None else f"{c.ranks[0]}, {c.ranks[1]}"
                rows.append([*where, f"pair ({c.pair[0]}, {c.pair[1]}), ranks {ranks}", "", "", "", "", "", "", "",
                             NOT_APPLICABLE if c.ranks is None else SUPPORTED if c.passes else NOT_SUPPORTED])
            rows.append([*where, "**at this dataset and model**", "", "", "", "", "", "", "", f"**{line.verdict}**"
                         + (f" ({line.note})" if line.note else "")])
        out.append(fmt.markdown(["paper dataset", "ours on", "model", "comparison", "test", "mean a", "mean b",
                                 "a − b", "n", "p support (Holm)", "p against (Holm)", "verdict"], rows))
    return "\n".join(out)
