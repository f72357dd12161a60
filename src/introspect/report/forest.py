"""The verdicts in one picture: a forest plot of every claim comparison (``reports/figures/verdicts``).

One row per comparison ``a op b`` that ran, grouped by claim (a header per claim: its id, verdict and
what it rests on): Δ = a − b, the mean per-seed difference, as a point with its paired interval at the
level of the test (90 % at α = 0.05) as a bar, both exactly claims.csv's ``diff``, ``ci_low`` and
``ci_high``; the paper's Δ as a hollow diamond where the claim is on test accuracy; a line at 0 and, for
a non-inferiority comparison, a tick at its null −m (+m for ``<=``). The colour is the comparison's
verdict. Claims on other metrics (the beyond-accuracy questions: ECE, NLL, ...) get a panel each, in
their own units. An axis whose values span far more than their typical size (an AT student 50
points behind LE beside differences of 0.1) is drawn symmetric-log, linear within the typical size.

:func:`forest_rows` is the data, :func:`draw_verdicts` draws it, :func:`verdicts_figure` saves it and
returns the rows it drew, so a test compares them with claims.csv.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import fmt
from .claims_read import METRIC
from .figures import _plt, save
from .judge import INCONCLUSIVE, NOT_SUPPORTED, SUPPORTED, Line, claim_status, claim_verdict, counted
from .render import shown
from .stats import interval_level

STEM = "figures/verdicts"
COLOURS = {SUPPORTED: "#1a9850", NOT_SUPPORTED: "#d73027", INCONCLUSIVE: "#6f6f6f"}
SPREAD = 20.0  # an axis is symmetric-log when its largest |value| exceeds this many times the median one
ROW_INCHES = 0.2


@dataclass(frozen=True)
class ForestRow:
    """One comparison as drawn: claims.csv's numbers for it, and where it sits."""

    claim: str
    metric: str
    where: str  # paper dataset/model
    comparison: str  # "a op b", as claims.csv names it
    diff: float  # Δ = a − b
    low: float  # the interval; nan where no test is possible
    high: float
    null: float  # 0, or ∓m for a non-inferiority comparison
    paper: float | None  # the paper's Δ, test accuracy only
    verdict: str
    status: str  # what the line rests on
    interval_side: str  # "support" / "against": the interval excludes the null, the verdict does not follow

    @property
    def label(self) -> str:
        mark = " †" if self.interval_side else ""
        return f"{self.where}: {self.comparison}{mark}"


def forest_rows(evaluated: list[tuple[dict, list[Line]]]) -> list[ForestRow]:
    """Every comparison that ran with a Δ, in the order of claims.csv."""
    rows = []
    for claim, lines in evaluated:
        for line in counted(lines):
            for t in line.tests:
                if not t.run or fmt.missing(t.diff):
                    continue
                low, high = t.interval
                rows.append(ForestRow(claim["id"], claim.get("metric", METRIC), line.where, f"{t.a} {t.op} {t.b}",
                                      t.diff, low, high, t.null, t.paper, t.verdict, line.status, t.interval_side))
    return rows


def _scale(ax, values: list[float]) -> None:
    """Symmetric-log where a few values dwarf the typical one, linear within the typical size."""
    sizes = np.abs([v for v in values if math.isfinite(v)])
    sizes = sizes[sizes > 0]
    if len(sizes) and sizes.max() > SPREAD * np.median(sizes):
        ax.set_xscale("symlog", linthresh=float(np.median(sizes)), linscale=1.0)


def _panel(ax, rows: list[ForestRow], lines_of: dict[str, list[Line]]) -> None:
    """One metric's rows, a bold header per claim (its verdict and status), top to bottom."""
    labels, ticks, headers, drawn = [], [], set(), []
    y = 0
    for cid in dict.fromkeys(r.claim for r in rows):
        lines = lines_of[cid]
        ticks.append(y)
        labels.append(f"{cid}: {shown(claim_verdict(lines), claim_status(lines))}")
        headers.add(y)
        if y:
            ax.axhline(y - 0.5, color="0.8", lw=0.6)
        y += 1
        for r in (r for r in rows if r.claim == cid):
            colour = COLOURS.get(r.verdict, "black")
            if fmt.missing(r.low):  # no test possible: Δ alone, hollow
                ax.plot([r.diff], [y], "o", mfc="none", color=colour, ms=4)
            else:
                ax.errorbar([r.diff], [y], xerr=[[r.diff - r.low], [r.high - r.diff]], fmt="o", color=colour, ms=3.5,
                            capsize=2, lw=1.2)
                drawn += [r.low, r.high]
            if r.null:
                ax.plot([r.null] * 2, [y - 0.4, y + 0.4], color="black", lw=1.4)
            if r.paper is not None:
                ax.plot([r.paper], [y], "D", mfc="none", mec="black", ms=4.5, mew=0.9)
                drawn.append(r.paper)
            drawn += [r.diff, r.null]
            ticks.append(y)
            labels.append(r.label)
            y += 1
    ax.axvline(0.0, color="black", lw=0.8, ls="--")
    ax.set_yticks(ticks, labels, fontsize=6.5)
    for tick, text in zip(ticks, ax.get_yticklabels()):
        if tick in headers:
            text.set_fontweight("bold")
            text.set_fontsize(7.5)
    ax.set_ylim(y - 0.5, -0.5)
    ax.margins(x=0.04)  # an extreme point keeps its whole marker
    ax.tick_params(axis="x", labelsize=7)
    ax.grid(axis="x", lw=0.3, alpha=0.5)
    _scale(ax, drawn)


def panels(rows: list[ForestRow]) -> dict[str, list[ForestRow]]:
    """metric -> its rows: one panel per metric (test accuracy first), each in its own units."""
    out: dict[str, list[ForestRow]] = {}
    for r in sorted(rows, key=lambda r: r.metric != METRIC):
        out.setdefault(r.metric, []).append(r)
    return out


def not_drawn(evaluated: list[tuple[dict, list[Line]]], rows: list[ForestRow]) -> str:
    """The claims with no row: a fixed rule (C10, no Δ), or nothing run."""
    drawn = {r.claim for r in rows}
    rule = [c["id"] for c, ls in evaluated if c["id"] not in drawn and "compare" not in c and counted(ls)]
    unrun = [c["id"] for c, ls in evaluated if c["id"] not in drawn and c["id"] not in rule]
    parts = ([f"{', '.join(rule)} (a fixed rule, no Δ)"] if rule else []) + ([f"{', '.join(unrun)} (no comparison run)"]
                                                                            if unrun else [])
    return f"Not drawn: {'; '.join(parts)}" if parts else ""


def draw_verdicts(rows: list[ForestRow], evaluated: list[tuple[dict, list[Line]]], title: str, level: float):
    """The forest plot of ``rows`` (:func:`forest_rows` of ``evaluated``); None when there is no row."""
    if not rows:
        return None
    plt = _plt()
    groups = panels(rows)
    heights = [len(rs) + len({r.claim for r in rs}) + 1.5 for rs in groups.values()]
    fig, axes = plt.subplots(len(groups), 1, figsize=(9.5, 1.6 + ROW_INCHES * sum(heights)), squeeze=False,
                             gridspec_kw={"height_ratios": heights}, layout="constrained")
    lines = {c["id"]: ls for c, ls in evaluated}
    for ax, (metric, rs) in zip(axes[:, 0], groups.items()):
        _panel(ax, rs, lines)
        unit = "points of test accuracy" if metric == METRIC else metric
        ax.set_xlabel(f"Δ = a − b ({unit}); {100 * interval_level(level):g} % interval", fontsize=7.5)
    handles = [plt.Line2D([], [], color=c, marker="o", ls="-", ms=4, label=v) for v, c in COLOURS.items()]
    handles += [plt.Line2D([], [], color="black", marker="D", mfc="none", ls="none", ms=4.5, label="the paper's Δ"),
                plt.Line2D([], [], color="black", ls="--", lw=0.8, label="0"),
                plt.Line2D([], [], color="black", marker="|", ls="none", ms=9, label="−m: a non-inferiority null")]
    fig.legend(handles=handles, loc="outside lower center", ncols=6, fontsize=7, frameon=False)
    notes = [not_drawn(evaluated, rows)]
    if any(r.interval_side for r in rows):
        notes.append("† inconclusive although the interval excludes the null: that side's p-value is Holm-adjusted "
                     "over the claim's comparisons, the interval is not")
    fig.suptitle("\n".join([title, *filter(None, notes)]), fontsize=8.5)
    return fig


def verdicts_figure(evaluated: list[tuple[dict, list[Line]]], stem: Path, title: str,
                    level: float) -> tuple[list[Path], list[ForestRow]]:
    """reports/figures/verdicts.{png,pdf} and the rows drawn (a placeholder when no comparison ran)."""
    from .figures import placeholder

    rows = forest_rows(evaluated)
    fig = draw_verdicts(rows, evaluated, title, level)
    if fig is None:
        return placeholder(stem, f"{title}: no comparison ran"), rows
    return save(fig, stem), rows
