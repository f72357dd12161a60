"""Verdicts on the paper's claims (workflow/reference/paper_claims.yaml) from per-seed results.

A claim compares row labels on a paper dataset and model, e.g. ``[le, ">", [ce, dropout, ls, cp]]``.
It is read as a list of pairwise comparisons ``a op b``: a list on either side expands to one
comparison per member, a chain ``a < b < c`` to its adjacent pairs, and a list of such expressions
to all of theirs. Every comparison uses test accuracy (%): "better" is higher accuracy, and a table
reported in test error is compared through accuracy = 100 − error; a claim that names a ``metric``
(one of results.METRICS, e.g. ``ece`` in beyond_claims.yaml) compares that one instead. A sweep row contributes the seeds
of its value chosen on the validation split.

Each comparison is a one-sided question about Δ = mean(a) − mean(b) (``<`` and ``<=`` swap the
sides: ``a < b`` is asked as ``b > a``), answered by Welch's one-sided t-tests (:mod:`.stats`):

- ``>`` (better): p_support tests Δ > 0 (superiority), p_against tests Δ < 0;
- ``>=`` ("competitive": not worse by more than the claim's ``margin`` m, in points of accuracy):
  p_support is the non-inferiority test of Δ > −m, p_against tests Δ < −m (worse by more than m).

Multiplicity. A claim holds only if every one of its lines does, and a ``combine: all`` line only if
every comparison does: on the support side such a claim is an intersection-union test (Berger 1982),
at level α when each comparison is tested at α, with no correction. The support side of an ``any``
or ``most`` claim, and the against side of every claim (one comparison significantly the wrong way
suffices to reject), are Holm-corrected (Holm 1979) over all the run comparisons of the claim. A
comparison is supported when its (adjusted) p_support < the plan's significance level, not supported
when its adjusted p_against is, inconclusive otherwise, and always inconclusive when no test is
possible (fewer than 2 seeds on a side, or no variance on either side).

The k comparisons of a claim at one (dataset, model) combine by the claim's ``combine`` rule, which
needs r of them: ``all`` (r = k), ``any`` (r = 1) or ``most`` (r = ⌊k/2⌋ + 1). The line is supported
when at least r comparisons are, not supported when more than k − r are not supported (fewer than r
can then hold), inconclusive otherwise; a comparison not run counts as neither. The claim is made
at every dataset and model it names: not supported if any line is, supported if all run lines are,
inconclusive otherwise. A claim whose labels have no row in this config is "not run in this config".
C10 (Figure 2) is a rank check on the class-by-class explanation similarity instead, averaged over the
test set and over the explained row's seeds (:func:`evaluate_figure2`).

Evidence. Every comparison carries the Welch 95 % confidence interval of Δ and, when inconclusive,
the seeds per side that would give its test 80 % power at the observed Δ and pooled std (and, for a
claim on test accuracy, at the paper's own Δ and std: workflow/reference/paper_tables.csv), with what
the missing seeds would cost (:func:`introspect.plan.seconds_per_run`). A line is *decided* only when
its runs are on the paper's dataset or real images of it, with at least MIN_SEEDS seeds on every side,
trained with the paper's recipe for (paper dataset, model family) (epochs, batch size, optimizer:
:func:`introspect.config.recipe`); otherwise it is a *rehearsal* (it exercises the pipeline), and its
verdict says so. C10 needs MIN_SEEDS seeds of explanation data (one explanations.pt per seed) to be decided.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import numpy as np
import yaml

from . import fmt, stats
from .results import METRICS, Results, Stat
from .stats import holm, one_sided  # noqa: F401  (the verdicts' tests, importable from here)
from .tables import Paper, row_label
from ..analysis import FIGURE2_PAIRS, TOP, PairCheck, check_pairs
from ..config import recipe, resolve
from ..data import DATASETS
from ..pipeline import Plan, Row, Run, Table
from ..registry import ConfigError

SUPPORTED, NOT_SUPPORTED, INCONCLUSIVE = "supported", "not supported", "inconclusive"
NOT_RUN, NOT_APPLICABLE, MISSING = "not run in this config", "not applicable at this scale", "missing"
DECIDED, REHEARSAL = "decided", "rehearsal"
OPS = {">": 1, ">=": 1, "<": -1, "<=": -1}  # the sign the difference a − b should have
COMPETITIVE = (">=", "<=")  # "not worse by more than the margin"
COMBINE = ("all", "any", "most")
METRIC = "test_acc"
MIN_SEEDS = 3  # seeds per side (and of explanation data, for C10) a decided verdict needs
CONFIDENCE = 0.95  # of the interval of Δ
# C4 and C7's note: "LE means le_gradcam on CIFAR10 and le_grad on MNIST".
ALIASES = {"le": {"cifar10": "le_gradcam", "mnist": "le_grad"}}


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


def pvalues_of(x, y, competitive: bool, margin: float | None) -> tuple[float, float]:
    """``(p_support, p_against)`` of "x better than y" (``>``: Δ > 0 against Δ < 0) or "x competitive
    with y" (``>=``: non-inferiority Δ > −m against Δ < −m)."""
    if not competitive:
        return one_sided(x, y, "greater"), one_sided(x, y, "less")
    return stats.noninferiority(x, y, margin), one_sided(x, y, "less", margin)


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
        return f"non-inferiority Δ > −{margin:g} (Welch, one-sided)"
    return "superiority (Welch, one-sided)"


def real_data(dataset: str, paper_dataset: str) -> bool:
    """Whether ``dataset`` is the paper's dataset or real images of it (mnist5k for mnist)."""
    return dataset == paper_dataset or DATASETS.get(dataset).real_subset_of == paper_dataset


IUT, HOLM = "none (intersection-union)", "Holm"


@dataclass
class Test:
    """One comparison ``a op b`` at one (dataset, model); labels name the chosen sweep value.

    ``p_support_adj`` and ``p_against_adj`` are set once the claim's family is known (:func:`decide`);
    ``runs``, ``paper`` and ``seconds`` by :func:`evaluate` (the decided check and the seeds' cost).
    """

    a: str
    op: str
    b: str
    a_stat: Stat | None  # None: the label has no row in this config
    b_stat: Stat | None
    level: float
    margin: float | None = None  # points of accuracy; >= and <= only
    p_support_adj: float = math.nan
    p_against_adj: float = math.nan
    support_correction: str = HOLM
    runs: tuple[Run, ...] = ()  # every planned run of both sides (their chosen sweep values)
    paper: tuple[float, float] | None = None  # the paper's (mean a − mean b, pooled std), same units
    seconds: tuple[float | None, float | None] = (None, None)  # one seed of a, of b, at this scale

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
        return verdict(self.p_support_adj, self.p_against_adj, self.level) if self.run else NOT_RUN

    @cached_property
    def interval(self) -> tuple[float, float]:
        """The Welch 95 % confidence interval of mean(a) − mean(b) (nan when no test is possible)."""
        return stats.welch_interval(self.a_stat.values, self.b_stat.values, CONFIDENCE) if self.run else (math.nan, math.nan)

    def effect(self, delta: float) -> float:
        """How far a − b = ``delta`` lies on the support side of the null: Δ for ``>``, Δ + m for ``>=``
        (the signs swapped for ``<`` and ``<=``)."""
        return OPS[self.op] * delta + (self.margin or 0.0)

    @property
    def std(self) -> float:
        return stats.pooled_std(self.a_stat.values, self.b_stat.values) if self.run else math.nan

    @property
    def other_way(self) -> bool:
        """An inconclusive comparison whose observed Δ lies on the against side of its null."""
        return self.verdict == INCONCLUSIVE and not fmt.missing(self.diff) and self.effect(self.diff) <= 0

    @property
    def seeds_needed(self) -> int | None:
        """Seeds per side for 80 % power at the observed Δ and pooled std (inconclusive comparisons only)."""
        if self.verdict != INCONCLUSIVE or self.other_way or fmt.missing(self.std):
            return None
        return stats.seeds_needed(self.effect(self.diff), self.std, self.level)

    @property
    def seeds_needed_paper(self) -> int | None:
        """The same at the paper's Δ and pooled std (inconclusive comparisons of the paper's claims)."""
        if self.verdict != INCONCLUSIVE or self.paper is None:
            return None
        return stats.seeds_needed(self.effect(self.paper[0]), self.paper[1], self.level)

    def extra_seconds(self, n: int | None) -> float | None:
        """What training ``n`` seeds per side would add, seeds already run aside (None: not estimated)."""
        if n is None or not self.run:
            return None
        extra = [(max(0, n - st.n), sec) for st, sec in zip((self.a_stat, self.b_stat), self.seconds)]
        if any(k and sec is None for k, sec in extra):
            return None
        return float(sum(k * sec for k, sec in extra if k))

    @property
    def power_note(self) -> str:
        if self.verdict != INCONCLUSIVE:
            return ""
        if self.other_way:
            return "the observed Δ points the other way: more seeds would not be expected to support it"
        if fmt.missing(self.std):
            return "no seed count: " + ("fewer than 2 seeds on a side" if min(self.a_stat.n, self.b_stat.n) < 2
                                        else "no variance on either side")
        if self.seeds_needed is None:
            return f"more than {stats.MAX_SEEDS} seeds per side"
        return ""

    def _cost(self, n: int) -> str:
        """" (+1.2 h)": what n seeds per side would add; "" when no seed is missing."""
        if n <= min(self.a_stat.n, self.b_stat.n):
            return ""
        cost = self.extra_seconds(n)
        return " (cost not estimated: no step time in the bench file)" if cost is None else f" (+{hours(cost)})"

    @property
    def plan_text(self) -> str:
        """To decide it: seeds per side (80 % power) and their cost, or why there is no count."""
        if self.verdict != INCONCLUSIVE:
            return ""
        parts = []
        if self.power_note:
            parts.append(self.power_note)
        else:
            parts.append(f"{self.seeds_needed} seeds per side{self._cost(self.seeds_needed)}")
        if self.paper is not None:
            n = self.seeds_needed_paper
            ran = min(self.a_stat.n, self.b_stat.n)
            parts.append(f"at the paper's Δ {fmt.signed(self.paper[0])}: "
                         + (f"{n} per side (we ran {ran}: 80 % power at the paper's Δ and std already)"
                            if n and n <= ran else f"{n} per side{self._cost(n)}" if n
                            else "its Δ points the other way" if self.effect(self.paper[0]) <= 0
                            else f"more than {stats.MAX_SEEDS}" if self.paper[1] > 0 else "no std to plan with"))
        return "; ".join(parts)


def hours(seconds: float) -> str:
    if seconds >= 3600:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 60:.0f} min" if seconds >= 30 else "< 1 min"


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
    decided: bool = False  # see :func:`judge`
    evidence: str = ""

    @property
    def status(self) -> str:
        return DECIDED if self.decided else REHEARSAL

    @property
    def where(self) -> str:
        return f"{self.paper_dataset}/{self.model}" if self.model else self.paper_dataset


def locate(plan: Plan, paper_dataset: str, model: str, label: str) -> tuple[Table, Row] | None:
    label = ALIASES.get(label, {}).get(paper_dataset, label)
    return next(((t, r) for t in plan.tables if t.paper_dataset == paper_dataset and model in t.models
                 for r in t.rows if r.label == label), None)


def run_dataset(plan: Plan, paper_dataset: str) -> str | None:
    return next((t.dataset for t in plan.tables if t.paper_dataset == paper_dataset), None)


@dataclass
class Side:
    name: str  # the row label shown (with its chosen sweep value)
    stat: Stat | None
    runs: tuple[Run, ...] = ()
    paper: tuple[float, float | None] | None = None  # the paper's (accuracy, std)
    seconds: float | None = None  # one seed's training at this scale


def seconds_per_seed(plan: Plan, table: Table, model: str, row: Row) -> float | None:
    """One seed of a table row on a model at the plan's scale (:func:`introspect.plan.seconds_per_run`,
    the shipped CPU bench), None where it gives none."""
    try:
        from ..plan import seconds_per_run
    except ImportError:  # an introspect.plan without it: the cost is left out
        return None
    try:
        return seconds_per_run(plan, table.name, model, row.label)
    except Exception:  # an estimate, never a reason to fail the report
        return None


def paper_value(paper: Paper | None, table: Table, model: str, label: str) -> tuple[float, float | None] | None:
    """The paper's test accuracy (mean, std) of a row, from its own table first, then any table."""
    if not paper:
        return None
    keys = [(t, d, m, meth, metric) for (t, d, m, meth, metric) in paper
            if d == table.paper_dataset and m == model and meth == label and metric in ("test_acc", "test_err")]
    keys.sort(key=lambda k: k[0] != str(table.paper_table))
    if not keys:
        return None
    ref = paper[keys[0]]
    return (ref.mean if keys[0][4] == "test_acc" else 100.0 - ref.mean), ref.std


def _side(plan: Plan, results: Results, paper_dataset: str, model: str, label: str,
          metric: str = METRIC, paper: Paper | None = None) -> Side:
    found = locate(plan, paper_dataset, model, label)
    if found is None:
        return Side(label, None)
    table, row = found
    choice = results.choose(table.dataset, model, row)
    name = row_label(row, {model: choice}) if row.sweep_key else row.label
    ids = results._ids(table.dataset, model, choice.variant) if choice.variant else []
    return Side(name, results.stat(table.dataset, model, choice.variant, metric),
                tuple(plan.runs[i] for i in ids if i in plan.runs),
                paper_value(paper, table, model, row.label) if metric == METRIC else None,
                seconds_per_seed(plan, table, model, row))


def _competitive_note(tests: list[Test]) -> str:
    """C6's note: LE's rank among the compared methods and its gap to the best of the others."""
    ran = [t for t in tests if t.run and t.op in COMPETITIVE and t.a_stat.n and t.b_stat.n]
    if not ran or len({t.a for t in ran}) != 1:
        return ""
    means = {ran[0].a: ran[0].a_stat.mean, **{t.b: t.b_stat.mean for t in ran}}
    rank = 1 + sum(m > means[ran[0].a] for m in means.values())
    best = min(ran, key=lambda t: t.diff)
    return f"{ran[0].a} ranks {rank} of {len(means)}; {ran[0].a} − the best other: {fmt.signed(best.diff)} ({best.b})"


def adjust(tests: list[Test], rule: str = "all") -> None:
    """The claim's adjusted p-values: on the support side none for an ``all`` claim (an
    intersection-union test: each comparison at α), Holm for ``any`` and ``most``; Holm on the
    against side, over all the claim's run comparisons."""
    ran = [t for t in tests if t.run]
    raw = [t.pvalues for t in ran]
    support = [s for s, _ in raw] if rule == "all" else holm([s for s, _ in raw])
    for t, s, against in zip(ran, support, holm([a for _, a in raw])):
        t.p_support_adj, t.p_against_adj = s, against
        t.support_correction = IUT if rule == "all" else HOLM


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


def resolved(run: Run) -> dict:
    return resolve(run.config)


def recipe_gaps(runs, paper_dataset: str, model: str) -> list[str]:
    """How the runs' training differs from the paper's recipe for (paper dataset, model family):
    epochs, batch size and every optimizer setting the recipe gives (:func:`introspect.config.recipe`)."""
    try:
        want = recipe(paper_dataset, model)
    except (ConfigError, KeyError, StopIteration):  # no recipe to compare with: never the paper's
        return [f"no recipe of {paper_dataset} for {model} to compare with"]
    gaps = []
    for run in runs:
        got = resolved(run)
        pairs = [("epochs", got["epochs"], want["epochs"]), ("batch_size", got["batch_size"], want["batch_size"]),
                 *((f"optim.{k}", got["optim"][k], v) for k, v in want.get("optim", {}).items())]
        gaps += [f"{k} {g} (paper {w})" for k, g, w in pairs if g != w and f"{k} {g} (paper {w})" not in gaps]
    return gaps


def judge(line: Line, runs, seeds: int) -> None:
    """Whether ``line`` is decided (see the module's docstring), and its evidence in words:
    ``runs`` are the runs behind it, ``seeds`` the fewest seeds on a side."""
    real = line.dataset is not None and real_data(line.dataset, line.paper_dataset)
    data = (line.dataset if line.dataset == line.paper_dataset else f"real {line.paper_dataset} images ({line.dataset})"
            ) if real else f"{line.dataset} stands in for {line.paper_dataset}"
    gaps = recipe_gaps(runs, line.paper_dataset, line.model)
    first = resolved(next(iter(runs))) if runs else None
    training = ("not the paper's recipe: " + ", ".join(gaps) if gaps else
                f"the paper's recipe ({first['epochs']} epochs, batch {first['batch_size']})" if first else "no run")
    line.decided = real and seeds >= MIN_SEEDS and bool(runs) and not gaps
    line.evidence = f"{data}; {seeds} seed{'s' * (seeds != 1)} a side" + (
        f" (a decided verdict needs {MIN_SEEDS})" if seeds < MIN_SEEDS else "") + f"; {training}"


def evaluate(claim: dict, plan: Plan, results: Results, paper: Paper | None = None) -> list[Line]:
    """A comparison claim, one line per (paper dataset, model) it names."""
    rule, margin = check_claim(claim)
    comparisons = parse(claim["compare"])
    lines = []
    for paper_dataset, model in places(claim.get("where", {})):
        line = Line(claim["id"], paper_dataset, run_dataset(plan, paper_dataset), model)
        for a, op, b in comparisons:
            sa, sb = (_side(plan, results, paper_dataset, model, x, claim.get("metric", METRIC), paper) for x in (a, b))
            ref = None
            if sa.paper and sb.paper and sa.paper[1] is not None and sb.paper[1] is not None:
                ref = (sa.paper[0] - sb.paper[0], math.sqrt((sa.paper[1] ** 2 + sb.paper[1] ** 2) / 2))
            line.tests.append(Test(sa.name, op, sb.name, sa.stat, sb.stat, plan.significance,
                                   margin if op in COMPETITIVE else None, runs=sa.runs + sb.runs, paper=ref,
                                   seconds=(sa.seconds, sb.seconds)))
        lines.append(line)
    decide(lines, rule)
    for line in lines:
        ran = [t for t in line.tests if t.run]
        if ran:
            judge(line, [r for t in ran for r in t.runs], min(min(t.a_stat.n, t.b_stat.n) for t in ran))
    return lines


def decide(lines: list[Line], rule: str) -> None:
    """Verdicts of a claim's lines: the claim's adjusted p-values (:func:`adjust`), then ``rule`` at each line."""
    adjust([t for line in lines for t in line.tests], rule)
    for line in lines:
        if any(t.run for t in line.tests):
            line.verdict = combine([t.verdict for t in line.tests], rule)
            line.note = _line_note(line)


@dataclass
class PairLine(Line):
    checks: list[PairCheck] = field(default_factory=list)  # on the mean over seeds
    seeds: list[int] = field(default_factory=list)  # the seeds whose explanations were averaged
    passing: dict[tuple[str, str], int] = field(default_factory=dict)  # pair -> how many of those seeds pass it alone

    def pair_text(self, c: PairCheck) -> str:
        """``ranks 1 and 2 on the mean of 3 seeds; passes in 3 of 3 seeds``."""
        if c.ranks is None:
            return "not among this dataset's classes"
        n = len(self.seeds)
        return (f"ranks {c.ranks[0]} and {c.ranks[1]} on the mean of {n} seed{'s' * (n != 1)} (top {TOP} passes); "
                f"passes in {self.passing.get(c.pair, 0)} of {n} seed{'s' * (n != 1)}")


def mean_over_seeds(explained: dict[int, dict | None]) -> dict | None:
    """Figure 2 over seeds. ``explained`` maps each seed to its run's explanations.pt (None: missing or
    stale). Returns the first present seed's data with ``similarity`` the element-wise mean of the
    present seeds' matrices (each already a test-set mean), ``seeds`` the seeds averaged and ``missing``
    the others; None when no seed has data. A seed whose classes differ from the first present one's is
    not averaged (it is listed in ``missing``)."""
    present = {s: d for s, d in sorted(explained.items()) if d is not None}
    if not present:
        return None
    first = next(iter(present.values()))
    classes = [str(c) for c in first["classes"]]
    used = [s for s, d in present.items() if [str(c) for c in d["classes"]] == classes]
    sim = np.mean([np.asarray(_matrix(present[s]["similarity"]), dtype=float) for s in used], axis=0)
    return {**first, "similarity": sim, "seeds": used, "missing": sorted(set(explained) - set(used))}


def _matrix(x):
    return x.detach().cpu().numpy() if hasattr(x, "detach") else x


def evaluate_figure2(claim: dict, plan: Plan, explanations: dict[str, dict[int, dict | None]],
                     pairs: dict[str, list[tuple[str, str]]] = FIGURE2_PAIRS) -> list[Line]:
    """C10: per paper dataset, do the named pairs rank in each other's top 3 (see :func:`check_pairs`)
    in the class-by-class similarity averaged over the explained row's seeds (:func:`mean_over_seeds`;
    ``explanations``: paper dataset -> seed -> that run's explanations.pt or None)? Each pair also
    counts the seeds it passes in alone. Decided needs MIN_SEEDS seeds of explanation data (and real
    data, the paper's recipe: :func:`judge`)."""
    lines = []
    explained = plan.explained_runs()
    for paper_dataset in sorted(pairs):
        runs = explained.get(paper_dataset) or []
        run = runs[0] if runs else None
        line = PairLine(claim["id"], paper_dataset, run.dataset if run else None, run.model if run else "")
        per_seed = {r.seed: (explanations.get(paper_dataset) or {}).get(r.seed) for r in runs}
        data = mean_over_seeds(per_seed)
        if run is None:
            line.verdict = NOT_RUN
        elif data is None:
            line.verdict = INCONCLUSIVE
            line.note = f"explanations of {', '.join(r.id for r in runs)} are {MISSING} (or stale)"
        else:
            classes = [str(c) for c in data["classes"]]
            line.seeds = data["seeds"]
            line.checks = check_pairs(data["similarity"], classes, pairs[paper_dataset])
            for s in line.seeds:
                for c in check_pairs(per_seed[s]["similarity"], classes, pairs[paper_dataset]):
                    line.passing[c.pair] = line.passing.get(c.pair, 0) + c.passes
            checked = [c for c in line.checks if c.ranks is not None]
            if not checked:
                line.verdict = NOT_APPLICABLE
                line.note = f"{run.dataset} has classes {', '.join(classes)}"
            else:
                line.verdict = SUPPORTED if all(c.passes for c in checked) else NOT_SUPPORTED
                seeds = ", ".join(map(str, line.seeds))
                line.note = (f"explainer {data.get('explainer', '?')}, {run.dataset}/{run.model}/{run.variant}: "
                             f"the mean of seed{'s' * (len(line.seeds) != 1)} {seeds}")
                if data["missing"]:
                    line.note += f"; seed{'s' * (len(data['missing']) != 1)} {', '.join(map(str, data['missing']))} " \
                                 f"{MISSING} (or stale)"
        if run is not None:
            n = len(line.seeds)
            judge(line, [r for r in runs if r.seed in line.seeds] or runs, n)
            line.evidence = line.evidence.replace(f"{n} seed{'s' * (n != 1)} a side",
                                                  f"{n} seed{'s' * (n != 1)} of explanation data")
        lines.append(line)
    return lines


def counted(lines: list[Line]) -> list[Line]:
    """The lines that give the claim its verdict (run and applicable)."""
    return [ln for ln in lines if ln.verdict not in (NOT_RUN, NOT_APPLICABLE)]


def claim_verdict(lines: list[Line]) -> str:
    decided = [ln.verdict for ln in counted(lines)]
    if not decided:
        return NOT_APPLICABLE if any(ln.verdict == NOT_APPLICABLE for ln in lines) else NOT_RUN
    return combine(decided)


def claim_status(lines: list[Line]) -> str:
    """decided when every line that gives the verdict is; rehearsal otherwise; "" when none runs."""
    ran = counted(lines)
    return "" if not ran else DECIDED if all(ln.decided for ln in ran) else REHEARSAL


def shown(verdict: str, status: str) -> str:
    """A verdict as a table shows it: "not supported (rehearsal)" where it is not decided."""
    return f"{verdict} ({REHEARSAL})" if status == REHEARSAL and verdict in (SUPPORTED, NOT_SUPPORTED, INCONCLUSIVE) else verdict


def claim_cell(lines: list[Line]) -> str:
    return shown(claim_verdict(lines), claim_status(lines))


def lines_text(lines: list[Line]) -> str:
    """Which lines of a claim ran, decided or rehearsed, and which did not: "mnist/mlp1024 decided;
    not run: cifar10/resnet14, cifar10/resnet8"."""
    parts = [f"{ln.where} {ln.status}" for ln in counted(lines)]
    parts += [f"{ln.where} not applicable" for ln in lines if ln.verdict == NOT_APPLICABLE]
    unrun = [ln.where for ln in lines if ln.verdict == NOT_RUN]
    return "; ".join(parts + ([f"not run: {', '.join(unrun)}"] if unrun else [])) or fmt.DASH


def evidence_text(lines: list[Line]) -> str:
    """Each counted line's evidence, "where: evidence", one per line joined by " | "."""
    return " · ".join(f"{ln.where}: {ln.evidence}" for ln in counted(lines) if ln.evidence) or fmt.DASH


def to_decide(lines: list[Line]) -> list[str]:
    """What would decide each inconclusive comparison of a claim: "mnist/mlp1024 le_grad > ls: 12 seeds
    per side (+1.3 h); at the paper's Δ +0.15: 4 per side"."""
    open_ = [(ln, t) for ln in counted(lines) for t in ln.tests if t.run and t.verdict == INCONCLUSIVE]
    items = [f"{ln.where} {t.a} {t.op} {t.b} (Δ {fmt.signed(t.diff)}): {t.plan_text}"
             for ln, t in open_ if min(t.a_stat.n, t.b_stat.n) >= 2]
    untested = [f"{ln.where} {t.a} {t.op} {t.b} ({t.a_stat.n}, {t.b_stat.n})"
                for ln, t in open_ if min(t.a_stat.n, t.b_stat.n) < 2]
    if untested:
        items.append(f"fewer than 2 seeds on a side, no test yet: {', '.join(untested)}")
    return items


def evaluate_all(claims: list[dict], plan: Plan, results: Results,
                 explanations: dict[str, dict | None], paper: Paper | None = None) -> list[tuple[dict, list[Line]]]:
    return [(c, evaluate(c, plan, results, paper) if "compare" in c else evaluate_figure2(c, plan, explanations))
            for c in claims]


CSV_COLUMNS = ("claim", "source", "combine", "margin", "claim_verdict", "claim_status", "paper_dataset", "dataset",
               "model", "line_verdict", "status", "evidence", "comparison", "test", "mean_a", "mean_b", "diff",
               "ci_low", "ci_high", "n_a", "n_b", "p_support", "p_support_adjusted", "support_correction",
               "p_against", "p_against_adjusted", "verdict", "seeds_needed", "extra_seconds", "paper_diff",
               "seeds_needed_paper", "power_note", "note")


def _rule(claim: dict) -> tuple[str, float | None]:
    """``(combine, margin)`` of a comparison claim; ``("", None)`` for a check such as C10's."""
    return check_claim(claim) if "compare" in claim else ("", None)


def _test_cells(t: Test) -> dict:
    if not t.run:
        return {"comparison": f"{t.a} {t.op} {t.b}", "verdict": t.verdict}
    (support, against), (low, high) = t.pvalues, t.interval
    return {"comparison": f"{t.a} {t.op} {t.b}", "test": t.test, "mean_a": t.a_stat.mean, "mean_b": t.b_stat.mean,
            "diff": t.diff, "ci_low": low, "ci_high": high, "n_a": t.a_stat.n, "n_b": t.b_stat.n,
            "p_support": support, "p_support_adjusted": t.p_support_adj, "support_correction": t.support_correction,
            "p_against": against, "p_against_adjusted": t.p_against_adj, "verdict": t.verdict,
            "seeds_needed": t.seeds_needed, "extra_seconds": t.extra_seconds(t.seeds_needed),
            "paper_diff": round(t.paper[0], 6) if t.paper else None, "seeds_needed_paper": t.seeds_needed_paper,
            "power_note": t.power_note}


def csv_rows(evaluated: list[tuple[dict, list[Line]]]) -> list[dict]:
    """One row per comparison (or class pair); lines with none get one row."""
    rows = []
    for claim, lines in evaluated:
        rule, margin = _rule(claim)
        head = {"claim": claim["id"], "source": claim.get("source", ""), "combine": rule, "margin": margin,
                "claim_verdict": claim_verdict(lines), "claim_status": claim_status(lines)}
        if all(ln.verdict == NOT_RUN for ln in lines):
            rows.append({k: None for k in CSV_COLUMNS} | head | {"verdict": head["claim_verdict"]})
            continue
        for line in (ln for ln in lines if ln.verdict != NOT_RUN):  # models this config does not run: left out
            base = head | {"paper_dataset": line.paper_dataset, "dataset": line.dataset or "", "model": line.model,
                           "line_verdict": line.verdict, "status": line.status, "evidence": line.evidence,
                           "note": line.note}
            items = [_test_cells(t) for t in line.tests]
            for c in getattr(line, "checks", []):
                items.append({"comparison": f"pair ({c.pair[0]}, {c.pair[1]})",
                              "verdict": NOT_APPLICABLE if c.ranks is None else SUPPORTED if c.passes else NOT_SUPPORTED,
                              "note": "" if c.ranks is None else line.pair_text(c)})
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
        f"- **Decided or rehearsal.** A verdict is *decided* only where its runs are on the paper's dataset or "
        f"real images of it, with at least {MIN_SEEDS} seeds on every side, trained with the paper's recipe for "
        "that dataset and model family (epochs, batch size, optimizer); every other verdict is a *rehearsal*: it "
        "exercises the pipeline and is marked \"(rehearsal)\" in its cell. The `evidence` says why. C10 needs "
        f"{MIN_SEEDS} seeds of explanation data (one explained run per seed) to be decided.",
        "- Each comparison `a op b` is a one-sided question about Δ = mean(a) − mean(b) over seeds; `<` and "
        "`<=` swap the sides (`a < b` is asked as `b > a`). Tests: Welch's one-sided t-tests "
        "(scipy.stats.ttest_ind, equal_var=False).",
        "- `>` (better): **p support** tests Δ > 0 (superiority); **p against** tests Δ < 0.",
        "- `>=` (competitive: not worse by more than the claim's margin m, in points of accuracy, declared "
        "with the claim in the claims YAML): **p support** is the one-sided non-inferiority test of Δ > −m; "
        "**p against** tests Δ < −m (worse by more than the margin).",
        "- Multiplicity: a `combine: all` claim holds only if every comparison at every dataset and model "
        "does, an intersection-union test: on the support side each comparison is tested at α with no "
        "correction. The support side of an `any` or `most` claim, and the against side of every claim, are "
        "Holm-corrected (step-down) over all the claim's run comparisons. Tables show raw p (adjusted p).",
        f"- A comparison is **supported** when its adjusted p support < {a}; **not supported** when its "
        f"adjusted p against < {a}; **inconclusive** otherwise, and always when no test is possible "
        "(fewer than 2 seeds on a side, or no variance on either side: p is shown as —).",
        "- Each comparison shows the Welch 95 % confidence interval of Δ. An inconclusive one shows the seeds "
        "per side that would give its test 80 % power at α (scipy's noncentral t) at the observed Δ and "
        "pooled std, with what training the missing seeds would add by `introspect plan`'s estimate (the "
        "shipped one-thread CPU bench unless it is given another), and, for the paper's claims, at the "
        "paper's own Δ and std; where the observed Δ points the other way it says so instead.",
        "- At one dataset and model, a claim's k comparisons combine by its rule (`combine`), which needs r "
        "of them: `all` r = k, `any` r = 1, `most` r = ⌊k/2⌋ + 1. The line is **supported** when at least r "
        "comparisons are supported, **not supported** when more than k − r are not supported (fewer than r "
        "can then hold), **inconclusive** otherwise; a comparison not run counts as neither.",
        "- A claim holds at every dataset and model it names: **not supported** if any line is, **supported** "
        "if every run line is, **inconclusive** otherwise; **not run in this config** when no line was run; "
        "it is decided only when every line that gives its verdict is.",
        f"- C10 (Figure 2) is a rank check instead: a pair passes when each class ranks in the top {TOP} of "
        "the other's row of the class-by-class explanation similarity averaged over the test set and over the "
        "explained row's seeds (the mean of one matrix per seed, as Figure 2 draws it); supported when every "
        "applicable pair passes on that mean. Each pair also says in how many of the seeds it passes alone.\n"])


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


def diff_cell(t: Test, digits: int = 2) -> str:
    """``+1.58 [+1.20, +1.96]``: a − b and its Welch 95 % interval."""
    low, high = t.interval
    return fmt.signed(t.diff, digits) + ("" if fmt.missing(low) else f" [{fmt.signed(low, digits)}, {fmt.signed(high, digits)}]")


def protocol_cell(verdict: str, other: str, status: str = "") -> str:
    """The verdict under the other epoch protocol (the same runs: the same status), flagged ⚠ where it differs."""
    return shown(other, status) if other == verdict else f"⚠ {shown(other, status)}"


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
                         "lines", "claim text"],
                        [[c["id"], c.get("source", ""), _rule(c)[0] or fmt.DASH, claim_cell(ls),
                          *([protocol_cell(claim_verdict(ls), other[c["id"]], claim_status(ls))] if other is not None else []),
                          lines_text(ls), c.get("text", "")] for c, ls in evaluated])]
    for claim, lines in evaluated:
        out.append(f"## {claim['id']} ({claim.get('source', '')}): {claim_cell(lines)}\n\n{claim.get('text', '')}\n")
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
                                 diff_cell(t), f"{t.a_stat.n}, {t.b_stat.n}",
                                 _pcell(t.pvalues[0], t.p_support_adj), _pcell(t.pvalues[1], t.p_against_adj),
                                 shown(t.verdict, line.status), t.plan_text])
            for c in getattr(line, "checks", []):
                rows.append([*where, f"pair ({c.pair[0]}, {c.pair[1]}): {line.pair_text(c)}", "", "", "", "", "",
                             "", "", shown(NOT_APPLICABLE if c.ranks is None else SUPPORTED if c.passes else NOT_SUPPORTED,
                                          line.status), ""])
            rows.append([*where, "**at this dataset and model**", "", "", "", "", "", "", "",
                         f"**{shown(line.verdict, line.status)}**" + (f" ({line.note})" if line.note else ""),
                         f"evidence: {line.evidence}" if line.evidence else ""])
        out.append(fmt.markdown(["paper dataset", "ours on", "model", "comparison", "test", "mean a", "mean b",
                                 "a − b [95 % CI]", "n", "p support (adjusted)", "p against (Holm)", "verdict",
                                 "to decide (80 % power) / evidence"], rows))
    return "\n".join(out)
