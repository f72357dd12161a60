"""Ours against the paper's, per row: ``reports/figures/paper_<table>.{png,pdf}``.

Drawn only where a table's runs are on the paper's own dataset (the full-MNIST scales, the paper
scale, and a stratified part of the paper's dataset, ``dataset.subset``), and the paper published
numbers for the table: a stand-in's numbers are not comparable (the tables show no Δ there either,
:func:`.tables.same_data`). One panel per model, one line per row: our mean ± std over seeds (filled)
and the paper's mean ± std (hollow), in the table's metric. :func:`paper_points` is the data,
:func:`paper_figure` draws it and returns the points it drew, so a test compares them with the runs.
"""
from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

from .figures import _plt, metric_label, save
from .results import Results, Stat
from .tables import Paper, Ref, dataset_note, row_label, same_data
from ..pipeline import Plan, Table


@dataclass(frozen=True)
class PaperPoint:
    """One row of one model: ours (every seed) and the paper's published mean ± std."""

    row: str  # the row label as the table shows it (its chosen sweep value)
    model: str
    ours: Stat
    paper: Ref


def published(table: Table, paper_tables: set[tuple[str, str]]) -> bool:
    """Whether the paper published numbers for ``table`` on its dataset (``paper_tables``: (table, dataset))."""
    return (str(table.paper_table), table.paper_dataset) in paper_tables


def paper_tables(path: Path) -> set[tuple[str, str]]:
    """(paper table, dataset) of every published number in paper_tables.csv."""
    with open(path, newline="") as f:
        return {(r["table"], r["dataset"]) for r in csv.DictReader(f)}


def drawn_tables(plan: Plan, paper_csv: Path) -> list[Table]:
    """The tables that get a figure: on the paper's own dataset, with published numbers."""
    tables = paper_tables(paper_csv) if Path(paper_csv).is_file() else set()
    return [t for t in plan.tables if same_data(t) and published(t, tables)]


def stem(table: Table) -> str:
    return f"figures/paper_{table.name}"


def stems(plan: Plan, paper_csv: Path) -> list[str]:
    """Every such figure's path stem under the report folder (the workflow declares them)."""
    return [stem(t) for t in drawn_tables(plan, paper_csv)]


def paper_points(table: Table, results: Results, paper: Paper) -> list[PaperPoint]:
    """Per row and model with a published value of the table's metric, ours beside the paper's."""
    key = (str(table.paper_table), table.paper_dataset)
    out = []
    for row in table.rows:
        choices = {m: results.choose(table.dataset, m, row) for m in table.models}
        label = row_label(row, choices)
        for model, choice in choices.items():
            ref = paper.get((*key, model, row.label, table.metric))
            if ref is not None:
                out.append(PaperPoint(label, model, results.stat(table.dataset, model, choice.variant, table.metric), ref))
    return out


def subset_note(table: Table, plan: Plan) -> str:
    subsets = {r.resolved["dataset"].get("subset") for r in plan.runs.values() if r.dataset == table.dataset}
    subsets.discard(None)
    return f"; a stratified part of it: dataset.subset {max(subsets):,} training images" if subsets else ""


def draw_paper_figure(table: Table, points: list[PaperPoint], note: str):
    plt = _plt()
    models = list(dict.fromkeys(p.model for p in points)) or list(table.models)
    rows = list(dict.fromkeys(p.row for p in points))
    fig, axes = plt.subplots(1, len(models), figsize=(3.6 * len(models) + 1.6, 1.2 + 0.32 * max(len(rows), 1)),
                             squeeze=False, layout="constrained")
    for ax, model in zip(axes[0], models):
        mine = [p for p in points if p.model == model]
        for p in mine:
            y = rows.index(p.row)
            if p.ours.n:
                ax.errorbar([p.ours.mean], [y - 0.15], xerr=[0.0 if p.ours.n < 2 else p.ours.std], fmt="o", color="C0",
                            capsize=2, ms=4)
            else:
                ax.text(0.02, y - 0.15, "ours: missing", transform=ax.get_yaxis_transform(), fontsize=6, va="center")
            ax.errorbar([p.paper.mean], [y + 0.15], xerr=[p.paper.std or 0.0], fmt="D", mfc="none", color="black",
                        capsize=2, ms=4)
        ax.set_yticks(range(len(rows)), rows, fontsize=7)
        ax.set_ylim(len(rows) - 0.5, -0.5)
        ax.set_title(model, fontsize=8)
        ax.set_xlabel(metric_label(table.metric), fontsize=7)
        ax.tick_params(axis="x", labelsize=7)
        ax.grid(axis="x", lw=0.3, alpha=0.5)
    handles = [plt.Line2D([], [], color="C0", marker="o", label="ours: mean ± std over seeds"),
               plt.Line2D([], [], color="black", marker="D", mfc="none", label="the paper: mean ± std")]
    fig.legend(handles=handles, loc="outside lower center", ncols=2, fontsize=7, frameon=False)
    fig.suptitle(f"{table.caption}: ours against the paper ({note})", fontsize=8.5)
    return fig


def paper_figure(table: Table, results: Results, paper: Paper, out: Path) -> tuple[list[Path], list[PaperPoint]]:
    """Draw and save one table's figure under ``out``; the paths and the points drawn."""
    points = paper_points(table, results, paper)
    note = dataset_note(table, results.plan.scale) + subset_note(table, results.plan)
    return save(draw_paper_figure(table, points, note), Path(out) / stem(table)), points
