"""The paper's tables, ours next to the published numbers, plus every sweep shown whole.

Per model a table has three columns: ours (mean ± std over seeds, n), the paper's (mean ± std,
from workflow/reference/paper_tables.csv) and the difference ours − paper, given only where our
runs are on the paper's own dataset (a stand-in dataset's numbers are not comparable). Paper values match on
(table, paper dataset, model, row label, metric); other published rows for the same table and
metric (e.g. test_err_pereyra2017 in Table 3) are shown below as reference rows.
"""
from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

from . import fmt
from .results import Choice, Results
from ..pipeline import Plan, Row, Table

SYMBOLS = {"method.alpha": "α", "method.beta": "β", "model.dropout": "p"}
METRIC_NOTES = {
    "test_acc": "test accuracy (%), higher is better",
    "test_err": "test error (%) = 100 − test accuracy, lower is better",
}


@dataclass(frozen=True)
class Ref:
    mean: float
    std: float | None
    note: str


Paper = dict[tuple[str, str, str, str, str], Ref]  # (table, dataset, model, method, metric) -> value


def read_paper(path: Path) -> Paper:
    with open(path, newline="") as f:
        return {(r["table"], r["dataset"], r["model"], r["method"], r["metric"]):
                Ref(float(r["mean"]), float(r["std"]) if r["std"] else None, r.get("source_note") or "")
                for r in csv.DictReader(f)}


def paper_cell(ref: Ref | None) -> str:
    if ref is None:
        return fmt.DASH
    return fmt.num(ref.mean) if ref.std is None else f"{fmt.num(ref.mean)} ± {fmt.num(ref.std)}"


def sweep_symbol(key: str) -> str:
    return SYMBOLS.get(key, key.rsplit(".", 1)[-1])


def row_label(row: Row, choices: dict[str, Choice]) -> str:
    """``ls (α=0.9)``; per model when the validation split chose differently for each."""
    if row.sweep_key is None:
        return row.label
    sym = sweep_symbol(row.sweep_key)
    chosen = {str(c.value) for c in choices.values() if c.variant is not None}
    if not chosen:
        return f"{row.label} ({sym}: no run)"
    if len(chosen) == 1 and all(c.variant is not None for c in choices.values()):
        return f"{row.label} ({sym}={chosen.pop()})"
    per_model = ", ".join(f"{'—' if c.variant is None else c.value} for {m}" for m, c in choices.items())
    return f"{row.label} ({sym}={per_model})"


def dataset_note(table: Table, scale: str) -> str:
    if table.dataset == table.paper_dataset:
        return f"ours on {table.dataset}"
    return f"ours on {table.dataset} (stands in for {table.paper_dataset} at scale {scale})"


def upper_first(text: str) -> str:
    return text[:1].upper() + text[1:]


def same_data(table: Table) -> bool:
    """Whether a table's runs are on the paper's own dataset (only then is ours − paper a difference)."""
    return table.dataset == table.paper_dataset


PROTOCOL_NOTES = {"last": "at the last epoch (the paper's protocol)",
                  "best_val": "at the epoch of best validation accuracy (protocol best_val)"}


def caption(table: Table, scale: str, protocol: str = "last", published: bool = True) -> str:
    """The table's caption; ``published``: the paper has numbers for this table (not so for a user's own)."""
    sweeps = any(r.sweep_key for r in table.rows)
    delta = ("Δ = ours − paper" if same_data(table) else
             f"no Δ: the paper's numbers are on {table.paper_dataset}, another dataset than ours, shown for reference only")
    paper = f"paper: published mean ± std on {table.paper_dataset}; {delta}. " if published else ""
    text = (f"{table.caption}. {upper_first(dataset_note(table, scale))}: mean ± std over seeds (n); "
            f"{paper}Metric: {METRIC_NOTES.get(table.metric, table.metric)}, {PROTOCOL_NOTES[protocol]}.")
    if sweeps:
        text += " Sweep rows show the value chosen on the validation split (highest mean val_acc over seeds)."
    return text


FAR_BELOW_CE = 5.0  # points of accuracy (or error) a row may trail its table's CE row without a note


def far_below_ce(table: Table, results: Results) -> list[tuple[str, str, float]]:
    """(row label, model, points behind CE) for every row whose mean trails the table's CE row by more
    than FAR_BELOW_CE on a model: the rows a table's notes must explain."""
    ce = next((r for r in table.rows if r.label == "ce"), None)
    if ce is None:
        return []
    worse = -1.0 if table.metric == "test_err" else 1.0  # how far below CE, in the metric's points
    out = []
    for model in table.models:
        base = results.stat(table.dataset, model, results.choose(table.dataset, model, ce).variant, table.metric)
        for row in table.rows:
            ours = results.stat(table.dataset, model, results.choose(table.dataset, model, row).variant, table.metric)
            if row is not ce and base.n and ours.n and worse * (base.mean - ours.mean) > FAR_BELOW_CE:
                out.append((row.label, model, worse * (base.mean - ours.mean)))
    return out


def notes_text(table: Table, results: Results) -> str:
    """The table's notes (params.yaml), and a warning for every row far below CE that no note explains."""
    parts = [f"Note on {label}: {text}" for label, text in table.notes.items()]
    for label, model, behind in far_below_ce(table, results):
        if label not in table.notes:
            parts.append(f"Unexplained: {label} is {behind:.1f} points below CE on {model}, and no note in "
                         f"params.yaml (tables.{table.name}.notes) says why.")
    return " ".join(parts)


COLUMNS = {"params": "params", "samples_used": "samples used (%)"}  # a table's extra columns, by metric


@dataclass(frozen=True)
class Rendered:
    name: str
    caption: str
    models: list[str]
    rows: list[list[str]]  # ours
    references: list[list[str]]  # other published rows of the same table
    columns: tuple[str, ...] = ()  # extra per-model columns (metrics.json keys)
    published: bool = True  # the paper has numbers for this table: its "paper" and "Δ" columns are shown

    @property
    def per_model(self) -> list[str]:
        return ["ours", *(["paper", "Δ"] if self.published else []), *(COLUMNS[c] for c in self.columns)]

    def markdown(self) -> str:
        header = ["method", *(f"{m} {col}" for m in self.models for col in self.per_model)]
        return f"**{self.name}**: {self.caption}\n\n" + fmt.markdown(header, self._rows())

    def latex(self) -> str:
        header = ["method", *(col for _ in self.models for col in self.per_model)]
        groups = [("", 1), *((m, len(self.per_model)) for m in self.models)]
        rows = self._rows()
        return fmt.latex(header, [rows[:len(self.rows)], rows[len(self.rows):]], self.caption, f"tab:{self.name}", groups)

    def _rows(self) -> list[list[str]]:
        """Rows as shown: without a published table, each model's "paper" and "Δ" cells (always —) are left out."""
        rows = self.rows + self.references
        if self.published:
            return rows
        width = 3 + len(self.columns)
        return [[r[0], *(c for i in range(len(self.models)) for j, c in enumerate(r[1 + i * width: 1 + (i + 1) * width])
                         if j not in (1, 2))] for r in rows]


def compared(ours, ref: Ref | None, comparable: bool = True) -> list[str]:
    """The three cells of a model's column: ours (mean ± std (n)), the paper's, ours − paper (only
    when ``comparable``: ours is on the paper's dataset)."""
    diff = ours.mean - ref.mean if ref is not None and ours.n and comparable else None
    return [fmt.mean_std(ours), paper_cell(ref), fmt.signed(diff)]


def extra_cells(table: Table, results: Results, model: str, variant: str | None) -> list[str]:
    """The table's extra columns for one variant: mean over its present seeds."""
    cells = []
    for column in table.columns:
        st = results.stat(table.dataset, model, variant, column)
        cells.append(fmt.DASH if not st.n else f"{round(st.mean):,}" if column == "params" else fmt.num(st.mean, 1))
    return cells


def build_table(table: Table, results: Results, paper: Paper) -> Rendered:
    key = (table.paper_table, table.paper_dataset)
    rows = []
    for row in table.rows:
        choices = {m: results.choose(table.dataset, m, row) for m in table.models}
        cells = [row_label(row, choices)]
        for model, choice in choices.items():
            cells += compared(results.stat(table.dataset, model, choice.variant, table.metric),
                              paper.get((*key, model, row.label, table.metric)), same_data(table))
            cells += extra_cells(table, results, model, choice.variant)
        rows.append(cells)
        peers = {m: results.stat(table.dataset, m, c.variant, f"peer_{table.metric}") for m, c in choices.items()}
        if any(st.n for st in peers.values()):  # DML: the second network of the same runs
            rows.append([f"{cells[0]}, second network",
                         *(c for m, ours in peers.items()
                           for c in compared(ours, paper.get((*key, m, row.label, table.metric)), same_data(table))
                           + [fmt.DASH] * len(table.columns))])
    teachers = {table.teacher: ""} if table.teacher else {}
    for r in table.rows:  # a row's own teacher, named with every row it teaches
        if r.teacher and r.teacher != table.teacher:
            teachers[r.teacher] = f"{teachers[r.teacher]}, {r.label}" if r.teacher in teachers else f" of {r.label}"
    for teacher, whose in teachers.items():  # the teachers' own accuracy (one teacher run per seed serves every student)
        cells = compared(results.stat(table.dataset, teacher.model, teacher.variant, table.metric),
                         paper.get((*key, teacher.model, teacher.variant, table.metric)), same_data(table))
        cells += extra_cells(table, results, teacher.model, teacher.variant)
        rows.append([f"teacher{whose} ({teacher.model}, {teacher.method})", *(cells * len(table.models))])
    for row in table.rows:  # TAKD's assistants, each in the column of the student it teaches
        if row.assistants:
            cells = [f"assistant of {row.label} ({row.method} from the teacher)"]
            for model in table.models:
                helper = row.assistants.get(model)
                ours = results.stat(table.dataset, helper, f"{row.label}_assistant", table.metric) if helper else None
                cells += [fmt.DASH if ours is None else f"{helper}: {fmt.mean_std(ours)}", fmt.DASH, fmt.DASH]
                cells += [fmt.DASH] * len(table.columns)
            rows.append(cells)
    extra = sorted({(k[4], k[3]) for k in paper
                    if k[:2] == key and k[2] in table.models and k[4].startswith(f"{table.metric}_")})
    references = []
    for metric, method in extra:
        refs = [paper.get((*key, m, method, metric)) for m in table.models]
        note = next((r.note for r in refs if r is not None and r.note), metric)
        references.append([f"{method}, {note}",
                           *(c for r in refs for c in (fmt.DASH, paper_cell(r), fmt.DASH, *[fmt.DASH] * len(table.columns)))])
    published = any(k[:2] == key for k in paper)
    text = " ".join(filter(None, [caption(table, results.plan.scale, results.protocol, published), notes_text(table, results)]))
    return Rendered(table.name, text, list(table.models), rows, references, tuple(table.columns), published)


def sweeps_markdown(plan: Plan, results: Results) -> str:
    """Every value of every sweep, with the one chosen on the validation split marked."""
    parts = ["# Sweeps\n",
             "Each swept value's mean validation accuracy and mean test metric over seeds. The chosen value "
             "(marked ✓) has the highest mean val_acc; the test metric plays no part in the choice.\n"]
    for table in plan.tables:
        swept = [r for r in table.rows if r.sweep_key]
        if not swept:
            continue
        lines = []
        for row in swept:
            for model in table.models:
                chosen = results.choose(table.dataset, model, row).variant
                for variant, value in row.variants.items():
                    val = results.stat(table.dataset, model, variant, "val_acc")
                    test = results.stat(table.dataset, model, variant, table.metric)
                    lines.append([row.label, model, row.sweep_key, str(value), fmt.mean_std(val),
                                  fmt.mean_std(test), "✓" if variant == chosen else ""])
        header = ["row", "model", "key", "value", "val_acc", table.metric, "chosen"]
        parts.append(f"## {table.name} ({dataset_note(table, plan.scale)})\n\n" + fmt.markdown(header, lines))
    if len(parts) == 2:
        parts.append("No table of this config has a sweep.\n")
    return "\n".join(parts)


def headline(plan: Plan, results: Results) -> dict:
    """{table: {model: {row label: mean of the table's metric}}}, chosen sweep value for sweep rows.

    DVC shows it as ``table.model.row`` keys: one column each in ``dvc exp show`` (short and unique,
    filtered with ``--keep``/``--only-changed``), one line each in ``dvc metrics diff``. Rounded to
    the two decimals of the tables."""
    out: dict = {}
    for table in plan.tables:
        for model in table.models:
            for row in table.rows:
                stat = results.stat(table.dataset, model, results.choose(table.dataset, model, row).variant, table.metric)
                if stat.n:
                    out.setdefault(table.name, {}).setdefault(model, {})[row.label] = round(stat.mean, 2)
    return out
