"""Judging comparisons: one comparison's tests (:class:`Test`), a claim at one place (:class:`Line`),
the claim's multiplicity correction and its combine rule.

Each comparison ``a op b`` is a one-sided question about Δ = a − b over seeds (``<`` and ``<=`` swap
the sides: ``a < b`` is asked as ``b > a``). The rows of one seed share their data order (and, without
a teacher, their initialization), so the test is **paired** on the per-seed differences over the
seeds both sides have (:mod:`.stats`); the unpaired Welch p-values are kept beside it:

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
possible (fewer than 2 seeds paired, or no variance in the differences).

The k comparisons of a claim at one (dataset, model) combine by the claim's ``combine`` rule, which
needs r of them: ``all`` (r = k), ``any`` (r = 1) or ``most`` (r = ⌊k/2⌋ + 1). The line is supported
when at least r comparisons are, not supported when more than k − r are not supported (fewer than r
can then hold), inconclusive otherwise; a comparison not run counts as neither. The claim is made
at every dataset and model it names: not supported if any line is, supported if all run lines are,
inconclusive otherwise.

Every comparison carries the interval of Δ at the level of its test (1 − 2α two-sided) and, when
inconclusive, the seeds per side that would give its test 80 % power at the observed Δ and, for a
claim on test accuracy, at the paper's own Δ (workflow/reference/paper_tables.csv), both with our
std of the per-seed differences, and what the missing seeds would cost.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

from . import fmt, stats
from .claims_read import COMPETITIVE, OPS
from .results import Stat
from ..pipeline import Run

SUPPORTED, NOT_SUPPORTED, INCONCLUSIVE = "supported", "not supported", "inconclusive"
NOT_RUN, NOT_APPLICABLE, MISSING = "not run in this config", "not applicable at this scale", "missing"
# What a verdict rests on (:mod:`.evidence`): the paper's full dataset and recipe, a real subset of the
# paper's dataset at the paper's recipe, or anything else (it exercises the pipeline).
DECIDED, REDUCED, REHEARSAL = "decided", "reduced data", "rehearsal"
IUT, HOLM = "none (intersection-union)", "Holm"
NULL_TOLERANCE = 1e-9  # an observed effect this close to 0 (points) is on the null: it points neither way
PAIRED = "paired t on per-seed differences"


def pvalues_of(x, y, competitive: bool, margin: float | None, one_sided=stats.paired_one_sided) -> tuple[float, float]:
    """``(p_support, p_against)`` of "x better than y" (``>``: Δ > 0 against Δ < 0) or "x competitive
    with y" (``>=``: non-inferiority Δ > −m against Δ < −m), by ``one_sided`` (paired or Welch)."""
    shift = margin if competitive else 0.0
    return one_sided(x, y, "greater", shift), one_sided(x, y, "less", shift)


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
        return f"non-inferiority Δ > −{margin:g} ({PAIRED}, one-sided)"
    return f"superiority ({PAIRED}, one-sided)"


def hours(seconds: float) -> str:
    if seconds >= 3600:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 60:.0f} min" if seconds >= 30 else "< 1 min"


@dataclass
class Test:
    """One comparison ``a op b`` at one (dataset, model); labels name the chosen sweep value.

    ``a_seeds`` / ``b_seeds`` (required, by keyword) name the seed of each value of ``a_stat`` /
    ``b_stat``, in order: the test pairs the seeds both sides have, by name, never by position (a
    side that lost a middle seed must not pair its seed 2 with the other's seed 1). ``a_nan`` /
    ``b_nan`` are the seeds whose stored value was NaN (a diverged run): counted as missing, and said.
    ``p_support_adj`` and ``p_against_adj`` are set once the claim's family is known (:func:`decide`);
    ``runs``, ``paper`` and ``seconds`` by the claim's evaluation.
    """

    a: str
    op: str
    b: str
    a_stat: Stat | None  # None: the label has no row in this config
    b_stat: Stat | None
    level: float
    margin: float | None = None  # points of accuracy; >= and <= only
    a_seeds: tuple[int, ...] = field(kw_only=True)
    b_seeds: tuple[int, ...] = field(kw_only=True)
    a_nan: tuple[int, ...] = ()
    b_nan: tuple[int, ...] = ()
    p_support_adj: float = math.nan
    p_against_adj: float = math.nan
    support_correction: str = HOLM
    runs: tuple[Run, ...] = ()  # every planned run of both sides (their chosen sweep values)
    paper: float | None = None  # the paper's mean a − mean b, same units
    seconds: tuple[float | None, float | None] = (None, None)  # one seed of a, of b, at this scale

    def __post_init__(self):
        for name, stat, seeds in (("a", self.a_stat, self.a_seeds), ("b", self.b_stat, self.b_seeds)):
            if stat is not None and len(seeds) != stat.n:
                raise ValueError(f"{name}_seeds: {len(seeds)} seeds for {stat.n} values of {getattr(self, name)}")

    @property
    def run(self) -> bool:
        return self.a_stat is not None and self.b_stat is not None

    @cached_property
    def paired(self) -> tuple[tuple[int, ...], np.ndarray, np.ndarray]:
        """``(seeds, a values, b values)`` of the seeds both sides have, in seed order."""
        if not self.run:
            return (), np.array([]), np.array([])
        a = dict(zip(self.a_seeds, self.a_stat.values))
        b = dict(zip(self.b_seeds, self.b_stat.values))
        seeds = tuple(sorted(set(a) & set(b)))
        return seeds, np.array([a[s] for s in seeds], dtype=float), np.array([b[s] for s in seeds], dtype=float)

    @property
    def n_pairs(self) -> int:
        return len(self.paired[0])

    @property
    def diff(self) -> float:
        """Δ: the mean of the per-seed differences a − b (the paired test's estimate)."""
        _, a, b = self.paired
        return float(np.mean(a - b)) if len(a) else math.nan

    @property
    def test(self) -> str:
        return describe_test(self.op, self.margin)

    def _sides(self, a, b):
        return (a, b)[::OPS[self.op]]

    @cached_property
    def pvalues(self) -> tuple[float, float]:
        """Raw paired ``(p_support, p_against)``; the sides swap for ``<`` and ``<=``."""
        if not self.run:
            return math.nan, math.nan
        return pvalues_of(*self._sides(*self.paired[1:]), self.op in COMPETITIVE, self.margin)

    @cached_property
    def welch_pvalues(self) -> tuple[float, float]:
        """The same question by Welch's unpaired test on every seed of each side (a column, never the verdict)."""
        if not self.run:
            return math.nan, math.nan
        return pvalues_of(*self._sides(self.a_stat.values, self.b_stat.values), self.op in COMPETITIVE,
                          self.margin, stats.welch_one_sided)

    @property
    def verdict(self) -> str:
        return verdict(self.p_support_adj, self.p_against_adj, self.level) if self.run else NOT_RUN

    @property
    def confidence(self) -> float:
        """The interval's level: 1 − 2α, the two-sided interval whose bounds are the one-sided tests at α."""
        return stats.interval_level(self.level)

    @cached_property
    def interval(self) -> tuple[float, float]:
        """The paired (1 − 2α) confidence interval of Δ (nan when no test is possible)."""
        return stats.paired_interval(*self.paired[1:], self.confidence) if self.run else (math.nan, math.nan)

    def effect(self, delta: float) -> float:
        """How far a − b = ``delta`` lies on the support side of the null: Δ for ``>``, Δ + m for ``>=``
        (the signs swapped for ``<`` and ``<=``)."""
        return OPS[self.op] * delta + (self.margin or 0.0)

    @property
    def std(self) -> float:
        """Our std of the per-seed differences: what every seed count plans with (nan: no spread to plan with)."""
        return stats.diff_std(*self.paired[1:]) if self.run and stats.paired_testable(*self.paired[1:]) else math.nan

    @property
    def null(self) -> float:
        """The value of Δ = a − b its null hypothesis sits at: 0, −m for ``>=``, +m for ``<=``."""
        return -OPS[self.op] * (self.margin or 0.0)

    def null_text(self) -> str:
        return "0" if not self.margin else fmt.signed(self.null, 2)

    @property
    def other_way(self) -> bool:
        """An inconclusive comparison whose observed Δ lies on the against side of its null (not on it)."""
        return self.verdict == INCONCLUSIVE and not fmt.missing(self.diff) and self.effect(self.diff) < -NULL_TOLERANCE

    @property
    def on_null(self) -> bool:
        """An inconclusive comparison whose observed Δ is its null (0, or −m): it points neither way."""
        return self.verdict == INCONCLUSIVE and not fmt.missing(self.diff) and abs(self.effect(self.diff)) <= NULL_TOLERANCE

    @property
    def interval_side(self) -> str:
        """"support" or "against" where an inconclusive comparison's interval lies wholly on that side of
        its null; "" otherwise. It happens on a Holm-adjusted side (the against side of every claim, the
        support side of an ``any`` or ``most`` claim): the p-value is adjusted there, the interval never is."""
        low, high = self.interval
        if self.verdict != INCONCLUSIVE or fmt.missing(low):
            return ""
        effects = (self.effect(low), self.effect(high))
        return "support" if min(effects) > 0 else "against" if max(effects) < 0 else ""

    @property
    def seeds_needed(self) -> int | None:
        """Seeds per side for 80 % power at the observed Δ and our std (inconclusive comparisons only)."""
        if self.verdict != INCONCLUSIVE or self.other_way or self.on_null or fmt.missing(self.std):
            return None
        return stats.seeds_needed(self.effect(self.diff), self.std, self.level)

    @property
    def seeds_needed_paper(self) -> int | None:
        """The same at the paper's Δ, with our std of the differences (the paper gives none of its own)."""
        if self.verdict != INCONCLUSIVE or self.paper is None or fmt.missing(self.std):
            return None
        return stats.seeds_needed(self.effect(self.paper), self.std, self.level)

    def extra_seconds(self, n: int | None) -> float | None:
        """What training ``n`` seeds per side would add, seeds already run aside (None: not estimated)."""
        if n is None or not self.run:
            return None
        extra = [(max(0, n - st.n), sec) for st, sec in zip((self.a_stat, self.b_stat), self.seconds)]
        if any(k and sec is None for k, sec in extra):
            return None
        return float(sum(k * sec for k, sec in extra if k))

    @property
    def nan_note(self) -> str:
        """The seeds left out because their stored value was NaN (a diverged run), "" when none."""
        parts = [f"{name} seed{'s' * (len(seeds) != 1)} {', '.join(map(str, seeds))}"
                 for name, seeds in ((self.a, self.a_nan), (self.b, self.b_nan)) if seeds]
        return f"NaN (a diverged run), counted as missing: {'; '.join(parts)}" if parts else ""

    @property
    def interval_note(self) -> str:
        """Why an interval wholly on one side of the null is still inconclusive (:attr:`interval_side`)."""
        side = self.interval_side
        if not side:
            return ""
        raw, adjusted = (self.pvalues[0], self.p_support_adj) if side == "support" else (self.pvalues[1], self.p_against_adj)
        return (f"the {100 * self.confidence:g} % interval excludes {self.null_text()} on the {side} side, but the "
                f"{side} side is Holm-adjusted over the claim's comparisons and the interval is not: adjusted p "
                f"{side} {fmt.pvalue(adjusted)} ≥ {self.level:g} (raw {fmt.pvalue(raw)})")

    @property
    def remark(self) -> str:
        """What a reader of the row must know beside its numbers: NaN seeds, an interval the Holm-adjusted
        verdict does not follow."""
        return "; ".join(n for n in (self.nan_note, self.interval_note) if n)

    @property
    def power_note(self) -> str:
        if self.verdict != INCONCLUSIVE:
            return ""
        if self.on_null:
            return (f"the observed Δ is {self.null_text()}, the null itself: it points neither way, and more seeds "
                    "would not be expected to support it")
        if self.other_way:
            return "the observed Δ points the other way: more seeds would not be expected to support it"
        if fmt.missing(self.std):
            return "no seed count: " + ("fewer than 2 seeds paired" if self.n_pairs < 2
                                        else "no variance in the per-seed differences")
        if self.seeds_needed is None:
            return f"more than {stats.MAX_SEEDS} seeds per side"
        return ""

    def _cost(self, n: int) -> str:
        """" (+1.2 h)": what n seeds per side would add; "" when no seed is missing."""
        if n <= min(self.a_stat.n, self.b_stat.n):
            return ""
        cost = self.extra_seconds(n)
        return " (cost not estimated: no step time in the bench file)" if cost is None else f" (+{hours(cost)})"

    def _paper_text(self) -> str:
        """The seeds at the paper's Δ with our std, or why there is no count."""
        head = f"at the paper's Δ {fmt.signed(self.paper)} with our std of the differences {fmt.num(self.std)}: "
        if fmt.missing(self.std):
            return head + "no std of ours to plan with"
        if abs(self.effect(self.paper)) <= NULL_TOLERANCE:
            return head + f"its Δ is {self.null_text()}, the null itself: no seed count"
        if self.effect(self.paper) < 0:
            return head + "its Δ points the other way"
        n = self.seeds_needed_paper
        if n is None:
            return head + f"more than {stats.MAX_SEEDS}"
        ran = self.n_pairs
        if n <= ran:
            return head + f"{n} per side (our {ran} already have 80 % power)"
        mine = stats.power(ran, self.effect(self.paper), self.std, self.level) if ran >= 2 else math.nan
        return head + f"{n} per side{self._cost(n)}" + (f"; our {ran} have power {mine:.2f}" if ran >= 2 else "")

    @property
    def plan_text(self) -> str:
        """To decide it: seeds per side (80 % power) and their cost, or why there is no count."""
        if self.verdict != INCONCLUSIVE:
            return ""
        parts = [self.power_note or f"{self.seeds_needed} seeds per side{self._cost(self.seeds_needed)}"]
        if self.paper is not None:
            parts.append(self._paper_text())
        return "; ".join(parts)

    @property
    def row_text(self) -> str:
        """The last cell of the comparison's row: its :attr:`remark`, then :attr:`plan_text`."""
        return "; ".join(t for t in (self.remark, self.plan_text) if t)


@dataclass(frozen=True)
class Basis:
    """What a line rests on, in words (:func:`.evidence.assess`): its data against the paper's, its
    seeds and its training against the paper's recipe. A report states each dataset's once and refers
    to it (:mod:`.rests_on`); ``text`` is the whole sentence (claims.csv's ``evidence``)."""

    data: str  # "mnist5k: a real subset of MNIST: 3,600 + 400 val of ..."
    seeds: str  # "3 seeds a side", "3 seeds of explanation data"
    training: str  # "the paper's recipe (50 epochs, batch 16)", "not the paper's recipe: epochs 3 (paper 50), ..."

    @property
    def text(self) -> str:
        return f"{self.data}; {self.seeds}; {self.training}"


@dataclass
class Line:
    """A claim at one (paper dataset, model): its comparisons, their combined verdict and what it
    rests on (``status``: DECIDED, REDUCED or REHEARSAL, with its ``basis`` in words: :mod:`.evidence`)."""

    claim: str
    paper_dataset: str
    dataset: str | None
    model: str
    tests: list[Test] = field(default_factory=list)
    verdict: str = NOT_RUN
    note: str = ""
    status: str = REHEARSAL
    basis: Basis | None = None
    rule: str = ""  # the claim's combine rule ("" for a fixed rule such as C10's) ...
    margin: float | None = None  # ... and its non-inferiority margin, as the claim was read

    @property
    def evidence(self) -> str:
        return self.basis.text if self.basis else ""

    @property
    def decided(self) -> bool:
        return self.status == DECIDED

    @property
    def where(self) -> str:
        return f"{self.paper_dataset}/{self.model}" if self.model else self.paper_dataset


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
    support = [s for s, _ in raw] if rule == "all" else stats.holm([s for s, _ in raw])
    for t, s, against in zip(ran, support, stats.holm([a for _, a in raw])):
        t.p_support_adj, t.p_against_adj = s, against
        t.support_correction = IUT if rule == "all" else HOLM


def _line_note(line: Line) -> str:
    ran = [t for t in line.tests if t.run]
    notes = [_competitive_note(line.tests)]
    unrun = sorted({x for t in line.tests if not t.run for x, s in ((t.a, t.a_stat), (t.b, t.b_stat)) if s is None})
    if unrun:
        notes.append(f"not run in this config: {', '.join(unrun)}")
    notes += [f"{t.a} {t.op} {t.b}: {t.nan_note}" for t in ran if t.nan_note]
    if any(t.n_pairs < 2 for t in ran):
        notes.append("fewer than 2 seeds paired")
    elif any(not stats.paired_testable(*t.paired[1:]) for t in ran):
        notes.append("no variance in the per-seed differences of a comparison")
    return "; ".join(n for n in notes if n)


def decide(lines: list[Line], rule: str) -> None:
    """Verdicts of a claim's lines: the claim's adjusted p-values (:func:`adjust`), then ``rule`` at each line."""
    adjust([t for line in lines for t in line.tests], rule)
    for line in lines:
        if any(t.run for t in line.tests):
            line.verdict = combine([t.verdict for t in line.tests], rule)
            line.note = _line_note(line)


def rule_of_lines(lines: list[Line]) -> tuple[str, float | None]:
    """``(combine rule, margin)`` the claim of ``lines`` was judged by; ``("", None)`` for a fixed rule."""
    return (lines[0].rule, lines[0].margin) if lines else ("", None)


def counted(lines: list[Line]) -> list[Line]:
    """The lines that give the claim its verdict (run and applicable)."""
    return [ln for ln in lines if ln.verdict not in (NOT_RUN, NOT_APPLICABLE)]


def claim_verdict(lines: list[Line]) -> str:
    decided = [ln.verdict for ln in counted(lines)]
    if not decided:
        return NOT_APPLICABLE if any(ln.verdict == NOT_APPLICABLE for ln in lines) else NOT_RUN
    return combine(decided)


def claim_status(lines: list[Line]) -> str:
    """What the claim rests on: decided when every line that gives its verdict is; reduced data when
    every one is decided or on reduced data; rehearsal otherwise; "" when none runs."""
    ran = {ln.status for ln in counted(lines)}
    if not ran:
        return ""
    return DECIDED if ran == {DECIDED} else REDUCED if ran <= {DECIDED, REDUCED} else REHEARSAL
