"""Verdicts on the paper's claims (workflow/reference/paper_claims.yaml) from per-seed results.

A claim compares row labels on a paper dataset and model, e.g. ``[le, ">", [ce, dropout, ls, cp]]``.
It is read as a list of pairwise comparisons ``a op b``: a list on either side expands to one
comparison per member, a chain ``a < b < c`` to its adjacent pairs, and a list of such expressions
to all of theirs. Every comparison uses test accuracy (%): "better" is higher accuracy, and a table
reported in test error is compared through accuracy = 100 − error. A sweep row contributes the seeds
of its value chosen on the validation split. Each comparison gets both means, the difference,
Welch's two-sided t-test (scipy.stats.ttest_ind, equal_var=False) and a verdict at the plan's
significance level:

- ``>`` / ``<``: supported when the difference is in the claimed direction and p < level, not
  supported when it is in the opposite direction and p < level, inconclusive otherwise (also when p
  is nan: fewer than 2 seeds on a side, or no variance at all);
- ``>=`` / ``<=`` ("competitive"): not supported when significantly worse, inconclusive when p is
  nan, supported otherwise.

The comparisons at one (dataset, model) combine: not supported if any is, supported if all are,
inconclusive otherwise (including when some of them were not run). A claim whose labels have no row
in this config is "not run in this config". C10 (Figure 2) is a rank check on the averaged
class-by-class explanation similarity instead.
"""
from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import yaml

from . import fmt
from .results import Results, Stat
from .tables import row_label
from ..pipeline import Plan, Row, Table
from ..registry import ConfigError

SUPPORTED, NOT_SUPPORTED, INCONCLUSIVE = "supported", "not supported", "inconclusive"
NOT_RUN, NOT_APPLICABLE, MISSING = "not run in this config", "not applicable at this scale", "missing"
OPS = {">": 1, ">=": 1, "<": -1, "<=": -1}  # the sign the difference a − b should have
METRIC = "test_acc"
# C4 and C7's note: "LE means le_gradcam on CIFAR10 and le_grad on MNIST".
ALIASES = {"le": {"cifar10": "le_gradcam", "mnist": "le_grad"}}
# C10's text: the class pairs Figure 2 should put close, per paper dataset.
FIGURE2_PAIRS = {"cifar10": [("truck", "automobile"), ("dog", "cat")],
                 "mnist": [("0", "6"), ("1", "7"), ("3", "5"), ("4", "9")]}
TOP = 3  # C10: a pair passes when each class ranks in the top 3 of the other's row


def read_claims(path: Path) -> list[dict]:
    """The ``claims`` list of paper_claims.yaml; a file that does not parse is one line naming where."""
    try:
        claims = yaml.safe_load(Path(path).read_text())
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ConfigError(f"{path}: not valid YAML{at}: {getattr(exc, 'problem', None) or exc}") from None
    if not isinstance(claims, dict) or not isinstance(claims.get("claims"), list):
        raise ConfigError(f"{path}: expected a mapping with a list under 'claims'")
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


def places(where: dict) -> list[tuple[str, str]]:
    """``where`` -> [(paper dataset, model)]: {dataset: d, models: [...]} or {d1: [...], d2: [...]}."""
    if "dataset" in where:
        return [(where["dataset"], m) for m in where.get("models", [])]
    return [(d, m) for d, models in where.items() for m in models]


def welch(a, b) -> float:
    """Two-sided p of Welch's t-test; nan with fewer than 2 values on a side (or no variance at all)."""
    if len(a) < 2 or len(b) < 2:
        return math.nan
    from scipy.stats import ttest_ind

    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        return float(ttest_ind(a, b, equal_var=False).pvalue)


def verdict(diff: float, p: float, op: str, level: float) -> str:
    if fmt.missing(p) or fmt.missing(diff):
        return INCONCLUSIVE
    toward = OPS[op] * diff
    if op in (">", "<"):
        return INCONCLUSIVE if p >= level else SUPPORTED if toward > 0 else NOT_SUPPORTED
    return NOT_SUPPORTED if p < level and toward < 0 else SUPPORTED


def combine(verdicts: list[str]) -> str:
    if NOT_SUPPORTED in verdicts:
        return NOT_SUPPORTED
    return SUPPORTED if verdicts and all(v == SUPPORTED for v in verdicts) else INCONCLUSIVE


@dataclass(frozen=True)
class Test:
    """One comparison ``a op b`` at one (dataset, model); labels name the chosen sweep value."""

    a: str
    op: str
    b: str
    a_stat: Stat | None  # None: the label has no row in this config
    b_stat: Stat | None
    level: float

    @property
    def run(self) -> bool:
        return self.a_stat is not None and self.b_stat is not None

    @property
    def diff(self) -> float:
        return self.a_stat.mean - self.b_stat.mean if self.run and self.a_stat.n and self.b_stat.n else math.nan

    @property
    def p(self) -> float:
        return welch(self.a_stat.values, self.b_stat.values) if self.run else math.nan

    @property
    def verdict(self) -> str:
        return verdict(self.diff, self.p, self.op, self.level) if self.run else NOT_RUN


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


def _side(plan: Plan, results: Results, paper_dataset: str, model: str, label: str) -> tuple[str, Stat | None]:
    found = locate(plan, paper_dataset, model, label)
    if found is None:
        return label, None
    table, row = found
    choice = results.choose(table.dataset, model, row)
    name = row_label(row, {model: choice}) if row.sweep_key else row.label
    return name, results.stat(table.dataset, model, choice.variant, METRIC)


def _competitive_note(tests: list[Test]) -> str:
    """C6's note: LE's rank among the compared methods and its gap to the best of the others."""
    ran = [t for t in tests if t.run and t.op in (">=", "<=") and t.a_stat.n and t.b_stat.n]
    if not ran or len({t.a for t in ran}) != 1:
        return ""
    means = {ran[0].a: ran[0].a_stat.mean, **{t.b: t.b_stat.mean for t in ran}}
    rank = 1 + sum(m > means[ran[0].a] for m in means.values())
    best = min(ran, key=lambda t: t.diff)
    return f"{ran[0].a} ranks {rank} of {len(means)}; {ran[0].a} − the best other: {fmt.signed(best.diff)} ({best.b})"


def evaluate(claim: dict, plan: Plan, results: Results) -> list[Line]:
    """A comparison claim, one line per (paper dataset, model) it names."""
    comparisons = parse(claim["compare"])
    lines = []
    for paper_dataset, model in places(claim.get("where", {})):
        line = Line(claim["id"], paper_dataset, run_dataset(plan, paper_dataset), model)
        for a, op, b in comparisons:
            (a_name, a_stat), (b_name, b_stat) = (_side(plan, results, paper_dataset, model, x) for x in (a, b))
            line.tests.append(Test(a_name, op, b_name, a_stat, b_stat, plan.significance))
        ran = [t for t in line.tests if t.run]
        if ran:
            verdicts = [t.verdict for t in line.tests]
            line.verdict = combine(verdicts)
            notes = [_competitive_note(line.tests)]
            unrun = sorted({x for t in line.tests if not t.run for x, s in ((t.a, t.a_stat), (t.b, t.b_stat)) if s is None})
            if unrun:
                notes.append(f"not run in this config: {', '.join(unrun)}")
            if any(t.a_stat.n < 2 or t.b_stat.n < 2 for t in ran):
                notes.append("fewer than 2 seeds on a side")
            line.note = "; ".join(n for n in notes if n)
        lines.append(line)
    return lines


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


CSV_COLUMNS = ("claim", "source", "claim_verdict", "paper_dataset", "dataset", "model", "line_verdict",
               "comparison", "mean_a", "mean_b", "diff", "p_value", "n_a", "n_b", "verdict", "note")


def csv_rows(evaluated: list[tuple[dict, list[Line]]]) -> list[dict]:
    """One row per comparison (or class pair); lines with none get one row."""
    rows = []
    for claim, lines in evaluated:
        overall = claim_verdict(lines)
        if all(ln.verdict == NOT_RUN for ln in lines):
            rows.append({k: None for k in CSV_COLUMNS} | {"claim": claim["id"], "source": claim.get("source", ""),
                                                          "claim_verdict": overall, "verdict": overall})
            continue
        for line in lines:
            base = {"claim": claim["id"], "source": claim.get("source", ""), "claim_verdict": overall,
                    "paper_dataset": line.paper_dataset, "dataset": line.dataset or "", "model": line.model,
                    "line_verdict": line.verdict, "note": line.note}
            items = []
            for t in line.tests if line.verdict != NOT_RUN else []:
                ok = t.run
                items.append({"comparison": f"{t.a} {t.op} {t.b}",
                              "mean_a": t.a_stat.mean if ok else None, "mean_b": t.b_stat.mean if ok else None,
                              "diff": t.diff if ok else None, "p_value": t.p if ok else None,
                              "n_a": t.a_stat.n if ok else None, "n_b": t.b_stat.n if ok else None,
                              "verdict": t.verdict})
            for c in getattr(line, "checks", []):
                items.append({"comparison": f"pair ({c.pair[0]}, {c.pair[1]})",
                              "verdict": NOT_APPLICABLE if c.ranks is None else SUPPORTED if c.passes else NOT_SUPPORTED,
                              "note": "" if c.ranks is None else f"ranks {c.ranks[0]} and {c.ranks[1]} (top {TOP} passes)"})
            rows += [{k: None for k in CSV_COLUMNS} | base | item for item in items or [{"verdict": line.verdict}]]
    return [{k: ("" if fmt.missing(r[k]) else r[k]) for k in CSV_COLUMNS} for r in rows]


def markdown(evaluated: list[tuple[dict, list[Line]]], plan: Plan) -> str:
    level = plan.significance
    mapping = ", ".join(f"{d} → {run_dataset(plan, d)}" for d in sorted({t.paper_dataset for t in plan.tables}))
    aliases = "; ".join(f"`{k}` means " + " and ".join(f"{v} on {d}" for d, v in m.items()) for k, m in ALIASES.items())
    out = ["# Claims\n",
           f"Scale {plan.scale}; paper dataset → dataset run: {mapping}. Each comparison uses per-seed test accuracy "
           f"(%): higher is better; a table reported in test error is compared through accuracy = 100 − error. "
           f"p: Welch's two-sided t-test; verdicts at significance {level:g}: supported (claimed direction, "
           f"p < {level:g}), not supported (opposite direction, p < {level:g}), inconclusive (otherwise, or p is "
           f"nan: fewer than 2 seeds on a side). Sweep rows use the value chosen on the validation split. {aliases}.\n",
           "## Summary\n",
           fmt.markdown(["claim", "source", "verdict", "claim text"],
                        [[c["id"], c.get("source", ""), claim_verdict(ls), c.get("text", "")] for c, ls in evaluated])]
    for claim, lines in evaluated:
        out.append(f"## {claim['id']} ({claim.get('source', '')}): {claim_verdict(lines)}\n\n{claim.get('text', '')}\n")
        if all(ln.verdict == NOT_RUN for ln in lines):
            out.append(f"{NOT_RUN.capitalize()}.\n")
            continue
        rows = []
        for line in lines:
            where = [line.paper_dataset, line.dataset or fmt.DASH, line.model]
            for t in line.tests:
                if t.run:
                    rows.append([*where, f"{t.a} {t.op} {t.b}", fmt.num(t.a_stat.mean), fmt.num(t.b_stat.mean),
                                 fmt.signed(t.diff), fmt.pvalue(t.p), f"{t.a_stat.n}, {t.b_stat.n}", t.verdict])
            for c in getattr(line, "checks", []):
                ranks = fmt.DASH if c.ranks is None else f"{c.ranks[0]}, {c.ranks[1]}"
                rows.append([*where, f"pair ({c.pair[0]}, {c.pair[1]}), ranks {ranks}", "", "", "", "", "",
                             NOT_APPLICABLE if c.ranks is None else SUPPORTED if c.passes else NOT_SUPPORTED])
            rows.append([*where, "**at this dataset and model**", "", "", "", "", "", f"**{line.verdict}**"
                         + (f" ({line.note})" if line.note else "")])
        out.append(fmt.markdown(["paper dataset", "ours on", "model", "comparison", "mean a", "mean b",
                                 "a − b", "p", "n", "verdict"], rows))
    return "\n".join(out)
