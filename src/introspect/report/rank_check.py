"""C10 (Figure 2): do known-similar classes rank close in the averaged explanation similarity?

A fixed rule, not a statistical test: a pair (a, b) passes when each ranks in the top TOP of the
other's row of the class-by-class similarity averaged over the test set and over the explained row's
seeds (:func:`mean_over_seeds`, :func:`introspect.analysis.check_pairs`); the line is supported when
every applicable pair passes on that mean. Each pair also counts the seeds it passes in alone. It
rests on seeds of explanation data (one explanations.pt per seed), judged like every line
(:func:`.evidence.assess`).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .evidence import assess
from .judge import INCONCLUSIVE, MISSING, NOT_APPLICABLE, NOT_RUN, NOT_SUPPORTED, SUPPORTED, Line
from ..analysis import FIGURE2_PAIRS, TOP, PairCheck, check_pairs
from ..pipeline import Plan

RULE = f"a fixed rule, not a statistical test: each class of a pair in the top {TOP} of the other's row"


@dataclass
class PairLine(Line):
    rule_text = RULE  # what each pair's row says its test is
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

    def pair_verdict(self, c: PairCheck) -> str:
        return NOT_APPLICABLE if c.ranks is None else SUPPORTED if c.passes else NOT_SUPPORTED


def _matrix(x):
    return x.detach().cpu().numpy() if hasattr(x, "detach") else x


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


def evaluate_figure2(claim: dict, plan: Plan, explanations: dict[str, dict[int, dict | None]],
                     pairs: dict[str, list[tuple[str, str]]] = FIGURE2_PAIRS,
                     means: dict[str, dict | None] | None = None) -> list[Line]:
    """C10, one line per paper dataset (``explanations``: paper dataset -> seed -> that run's
    explanations.pt or None; ``means``: their :func:`mean_over_seeds` where already taken). Decided
    needs MIN_SEEDS seeds of explanation data, the paper's full dataset and recipe (:func:`.evidence.assess`)."""
    lines = []
    explained = plan.explained_runs()
    for paper_dataset in sorted(pairs):
        runs = explained.get(paper_dataset) or []
        run = runs[0] if runs else None
        line = PairLine(claim["id"], paper_dataset, run.dataset if run else None, run.model if run else "")
        per_seed = {r.seed: (explanations.get(paper_dataset) or {}).get(r.seed) for r in runs}
        data = means[paper_dataset] if means and paper_dataset in means else mean_over_seeds(per_seed)
        if run is None:
            line.verdict = NOT_RUN
        elif data is None:
            line.verdict = INCONCLUSIVE
            line.note = f"explanations of {', '.join(r.id for r in runs)} are {MISSING} (or stale)"
        else:
            _rank(line, data, per_seed, pairs[paper_dataset], run)
        if run is not None:
            assess(line, [r for r in runs if r.seed in line.seeds] or runs, len(line.seeds), "of explanation data")
        lines.append(line)
    return lines


def _rank(line: PairLine, data: dict, per_seed: dict, pairs: list[tuple[str, str]], run) -> None:
    """The verdict of one dataset's pairs on the mean over seeds, and how many seeds pass each alone."""
    classes = [str(c) for c in data["classes"]]
    line.seeds = data["seeds"]
    line.checks = check_pairs(data["similarity"], classes, pairs)
    for s in line.seeds:
        for c in check_pairs(per_seed[s]["similarity"], classes, pairs):
            line.passing[c.pair] = line.passing.get(c.pair, 0) + c.passes
    checked = [c for c in line.checks if c.ranks is not None]
    if not checked:
        line.verdict = NOT_APPLICABLE
        line.note = f"{run.dataset} has classes {', '.join(classes)}"
        return
    line.verdict = SUPPORTED if all(c.passes for c in checked) else NOT_SUPPORTED
    seeds = ", ".join(map(str, line.seeds))
    line.note = (f"{RULE}; explainer {data.get('explainer', '?')}, {run.dataset}/{run.model}/{run.variant}: "
                 f"the mean of seed{'s' * (len(line.seeds) != 1)} {seeds}")
    if data["missing"]:
        line.note += f"; seed{'s' * (len(data['missing']) != 1)} {', '.join(map(str, data['missing']))} " \
                     f"{MISSING} (or stale)"
