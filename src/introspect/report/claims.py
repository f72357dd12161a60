"""Verdicts on the paper's claims (workflow/reference/paper_claims.yaml) from per-seed results.

The claims are read by :mod:`.claims_read`, each comparison judged by :mod:`.judge` (paired one-sided
t-tests, intersection-union or Holm, the combine rule), each line's evidence and status by
:mod:`.evidence` (decided, reduced data or rehearsal), C10 by :mod:`.rank_check`, and everything is
written by :mod:`.render`. This module puts a claim's labels on the plan's runs and evaluates every
claim under both epoch protocols in one pass over one :class:`~.results.Results`: the sides are
located, their sweep values chosen on validation, their costs and paper values looked up once, and
each protocol only reads its own test metric. A sweep row contributes the seeds of its value chosen
on the validation split; a table reported in test error is compared through accuracy = 100 − error.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from .claims_read import COMPETITIVE, METRIC, check_claim, locate, parse, places, run_dataset
from .evidence import assess
from .judge import Line, Test, decide
from .rank_check import evaluate_figure2
from .results import PROTOCOLS, Results, Stat, diverged, metric, protocol_key
from .tables import Paper, row_label
from ..pipeline import Plan, Row, Run, Table, run_id


@dataclass
class Side:
    """One side of a comparison: the row's label as shown, its per-seed values under each protocol."""

    name: str  # the row label shown (with its chosen sweep value)
    values: dict[str, dict[int, float]] = field(default_factory=dict)  # protocol -> seed -> value; {}: no row
    nan: dict[str, tuple[int, ...]] = field(default_factory=dict)  # protocol -> seeds stored as NaN (diverged)
    expected: int = 0
    runs: tuple[Run, ...] = ()
    paper: float | None = None  # the paper's test accuracy of the row
    seconds: float | None = None  # one seed's training at this scale

    def stat(self, protocol: str) -> Stat | None:
        if not self.values:
            return None
        return Stat(tuple(self.values[protocol].values()), self.expected)

    def seeds(self, protocol: str) -> tuple[int, ...]:
        return tuple(self.values[protocol]) if self.values else ()

    def nan_seeds(self, protocol: str) -> tuple[int, ...]:
        return self.nan.get(protocol, ())


def seed_values(results: Results, dataset: str, model: str, variant: str | None, key: str,
                protocol: str) -> tuple[dict[int, float], tuple[int, ...]]:
    """(seed -> metric ``key`` under ``protocol`` of every present seed of one variant, in the plan's
    seed order (what :meth:`Results.stat` gives, with the seeds, for any protocol); the seeds whose
    value is stored as NaN, counted as missing)."""
    if variant is None:
        return {}, ()
    key, out, nan = protocol_key(key, protocol), {}, []
    for seed in results.plan.seeds:
        run = results.runs.get(run_id(dataset, model, variant, seed))
        value = metric(run.metrics, key) if run else None
        if value is not None:
            out[seed] = value
        elif run and diverged(run.metrics, key):
            nan.append(seed)
    return out, tuple(nan)


def seconds_per_seed(plan: Plan, table: Table, model: str, row: Row) -> float | None:
    """One seed of a table row on a model at the plan's scale (:func:`introspect.plan.seconds_per_run`,
    the shipped CPU bench), None where it gives none."""
    from ..plan import seconds_per_run

    try:
        return seconds_per_run(plan, table.name, model, row.label)
    except Exception:  # an estimate, never a reason to fail the report
        return None


def paper_value(paper: Paper | None, table: Table, model: str, label: str) -> float | None:
    """The paper's test accuracy of a row, from its own table first, then any table."""
    if not paper:
        return None
    keys = [(t, d, m, meth, metric) for (t, d, m, meth, metric) in paper
            if d == table.paper_dataset and m == model and meth == label and metric in ("test_acc", "test_err")]
    keys.sort(key=lambda k: k[0] != str(table.paper_table))
    if not keys:
        return None
    ref = paper[keys[0]]
    return ref.mean if keys[0][4] == "test_acc" else 100.0 - ref.mean


def side(plan: Plan, results: Results, paper_dataset: str, model: str, label: str, key: str,
         protocols: tuple[str, ...], paper: Paper | None = None) -> Side:
    found = locate(plan, paper_dataset, model, label)
    if found is None:
        return Side(label)
    table, row = found
    choice = results.choose(table.dataset, model, row)
    name = row_label(row, {model: choice}) if row.sweep_key else row.label
    ids = [run_id(table.dataset, model, choice.variant, s) for s in plan.seeds] if choice.variant else []
    read = {p: seed_values(results, table.dataset, model, choice.variant, key, p) for p in protocols}
    return Side(name, {p: values for p, (values, _) in read.items()}, {p: nan for p, (_, nan) in read.items()},
                len(plan.seeds), tuple(plan.runs[i] for i in ids if i in plan.runs),
                paper_value(paper, table, model, row.label) if key == METRIC else None,
                seconds_per_seed(plan, table, model, row))


def evaluate(claim: dict, plan: Plan, results: Results, paper: Paper | None = None,
             protocols: tuple[str, ...] | None = None) -> dict[str, list[Line]]:
    """A comparison claim under each of ``protocols`` (default: the results' own), one line per
    (paper dataset, model) it names; the same runs, so the same evidence, under every protocol."""
    protocols = protocols or (results.protocol,)
    rule, margin = check_claim(claim)
    comparisons = parse(claim["compare"])
    out: dict[str, list[Line]] = {p: [] for p in protocols}
    for paper_dataset, model in places(claim.get("where", {})):
        sides = {x: side(plan, results, paper_dataset, model, x, claim.get("metric", METRIC), protocols, paper)
                 for x in {x for a, _, b in comparisons for x in (a, b)}}
        for p in protocols:
            line = Line(claim["id"], paper_dataset, run_dataset(plan, paper_dataset), model, rule=rule, margin=margin)
            for a, op, b in comparisons:
                sa, sb = sides[a], sides[b]
                line.tests.append(Test(sa.name, op, sb.name, sa.stat(p), sb.stat(p), plan.significance,
                                       margin if op in COMPETITIVE else None, a_seeds=sa.seeds(p), b_seeds=sb.seeds(p),
                                       a_nan=sa.nan_seeds(p), b_nan=sb.nan_seeds(p),
                                       runs=sa.runs + sb.runs, seconds=(sa.seconds, sb.seconds),
                                       paper=sa.paper - sb.paper if sa.paper is not None and sb.paper is not None
                                       else None))
            out[p].append(line)
    for p in protocols:
        decide(out[p], rule)
    for at_place in zip(*out.values()):  # one line per protocol at each place: the same runs
        ran = [t for t in at_place[0].tests if t.run]
        if ran:
            # the test pairs seeds: the seeds both sides ran (not the fewer side's count) are what it rests on
            assess(at_place[0], [r for t in ran for r in t.runs], min(t.n_pairs for t in ran))
            for line in at_place[1:]:
                line.status, line.basis = at_place[0].status, at_place[0].basis
    return out


def evaluate_all(claims: list[dict], plan: Plan, results: Results, explanations: dict[str, dict | None],
                 paper: Paper | None = None, means: dict[str, dict | None] | None = None
                 ) -> dict[str, list[tuple[dict, list[Line]]]]:
    """Every claim under both epoch protocols from one Results, in one pass: protocol -> [(claim, lines)].
    C10 does not read test accuracy: its lines are the same under both (``means``: Figure 2's mean
    over seeds per paper dataset, as read once, :mod:`.read`)."""
    protocols = (results.protocol, *(p for p in PROTOCOLS if p != results.protocol))
    out: dict[str, list[tuple[dict, list[Line]]]] = {p: [] for p in protocols}
    for claim in claims:
        if "compare" in claim:
            by_protocol = evaluate(claim, plan, results, paper, protocols)
        else:
            lines = evaluate_figure2(claim, plan, explanations, means=means)
            by_protocol = {p: lines for p in protocols}
        for p in protocols:
            out[p].append((claim, by_protocol[p]))
    return out
