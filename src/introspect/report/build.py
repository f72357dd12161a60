"""``make_report``: every table, claim verdict, figure and summary of a plan's results, under one folder.

It reads once (:mod:`.read`: the runs, the paper's numbers, the explanation files and their mean over
seeds, the claims), judges once (:func:`.claims.evaluate_all`: every claim under both epoch
protocols) and renders what was judged (the tables, claims.md and claims.csv, beyond.md, the
figures, index.md and the summary). Missing runs and explanation files are marked where they would
appear and listed in index.md; they never stop the report.
"""
from __future__ import annotations

import csv
import io
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from . import beyond, figures, forest, glance, paper_figure, render, tables
from .claims import evaluate_all
from .evidence import real_data
from .index_page import index_markdown, verdicts_title
from .judge import claim_verdict
from .read import read_inputs
from .results import METRICS, curves, other_protocol, run_rows, superseded_runs
from ..fileio import atomic_write, save_json
from ..pipeline import Plan

RESULTS_SCHEMA = pa.schema([
    ("run_id", pa.string()), ("dataset", pa.string()), ("paper_datasets", pa.string()), ("tables", pa.string()),
    ("paper_tables", pa.string()), ("model", pa.string()), ("variant", pa.string()), ("label", pa.string()),
    ("method", pa.string()), ("method_options", pa.string()), ("sweep_key", pa.string()),
    ("sweep_value", pa.string()), ("seed", pa.int64()), *((k, pa.float64()) for k in METRICS),
    ("epochs", pa.int64()), ("wall_seconds", pa.float64()),
])
def write_text(path: Path, text: str) -> None:
    atomic_write(path, lambda f: f.write(text.encode()))


def write_csv(path: Path, columns, rows: list[dict]) -> None:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(columns), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    write_text(path, buf.getvalue())


def write_parquet(path: Path, rows: list[dict]) -> None:
    atomic_write(path, lambda f: pq.write_table(pa.Table.from_pylist(rows, schema=RESULTS_SCHEMA), f))


def trained_explainer(run) -> str | None:
    """The explainer an LE run trained with ("auto": its model's standard one); None for other methods."""
    from ..methods.runs import build

    explainer = run.resolved["method"].get("explainer")
    if explainer == "auto":
        explainer = "gradcam" if build(run.resolved)[0].conv_layer is not None else "grad"
    return explainer


def explanation_figures(plan: Plan, paper_dataset: str, per_seed: dict, mean: dict | None, out: Path,
                        written: list[Path]) -> list[str]:
    """Figure 1 (one seed's examples) and Figure 2 (the mean over seeds) of one paper dataset's
    explained row; a placeholder that says so where the explanations are missing. Their stems."""
    run = plan.explanations[paper_dataset]
    seeds = mean["seeds"] if mean else sorted(per_seed)
    stems = []
    for name, draw, data, label in (
            ("figure1", figures.figure1, per_seed.get(run.seed), f"seed {run.seed}"),
            ("figure2", figures.figure2, mean, f"(mean of seed{'s' * (len(seeds) != 1)} {', '.join(map(str, seeds))})")):
        title = figures.explanation_title(
            paper_dataset, run.dataset, f"{run.model} {run.variant} {label}",
            plan.explainers.get(paper_dataset) or (data or {}).get("explainer"), trained_explainer(run),
            real_data(run.dataset, paper_dataset))
        stem = f"figures/{name}_{paper_dataset}"
        if data is None:
            written += figures.placeholder(out / stem, f"{title}: explanations missing")
        else:
            written += draw(data, out / stem, title)
        stems.append(stem)
    return stems


def make_report(plan: Plan, results: Path, reference: Path, out: Path, code_version: str, config_path: str) -> dict:
    """Write the report of ``plan``'s runs under ``results`` into ``out``.

    ``reference`` is the folder holding paper_tables.csv, paper_claims.yaml and, optionally,
    method_claims.yaml (the project's own questions about the seed papers' methods). Returns
    ``{"files": [paths relative to out], "missing_runs": [run ids], "stale_runs": {run id: [why]},
    "missing_explanations": [paths], "forest": [the rows the verdicts' forest plot drew]}``.
    """
    results, out = Path(results), Path(out)
    read = read_inputs(plan, results, reference, config_path)
    # every claim under both epoch protocols, in one pass over the same runs
    by_protocol = evaluate_all(read.claims, plan, read.results, read.explanations, read.paper, read.means)
    evaluated = by_protocol[plan.protocol]
    other = other_protocol(plan.protocol)
    under_other = {c["id"]: claim_verdict(lines) for c, lines in by_protocol[other]}
    res, paper = read.results, read.paper
    written: list[Path] = []

    def text(rel: str, content: str) -> None:
        write_text(out / rel, content)
        written.append(out / rel)

    write_parquet(out / "results.parquet", run_rows(res))
    written.append(out / "results.parquet")

    for table in plan.tables:
        rendered = tables.build_table(table, res, paper)
        text(f"tables/{table.name}.md", rendered.markdown())
        text(f"tables/{table.name}.tex", rendered.latex())
    text("tables/sweeps.md", tables.sweeps_markdown(plan, res))

    text("claims.md", render.markdown(evaluated, plan, under_other, other))
    write_csv(out / "claims.csv", render.CSV_COLUMNS, render.csv_rows(evaluated))
    written.append(out / "claims.csv")

    written += beyond.write_page(plan, res, [(c, ls) for c, ls in evaluated if c["id"] in read.beyond_ids], out)

    stems = []
    for paper_dataset, per_seed in read.explanations.items():
        stems += explanation_figures(plan, paper_dataset, per_seed, read.means[paper_dataset], out, written)
    figure3 = [t for t in plan.tables if t.paper_table == "figure3"]
    for table in figure3:
        stem = "figures/figure3" if len(figure3) == 1 else f"figures/figure3_{table.name}"
        written += figures.figure3(table, res, out / stem)
        stems.append(stem)

    save_json(tables.headline(plan, res), out / "metrics.json")
    written.append(out / "metrics.json")

    curve_files = []  # one CSV per table; its `row` column tells the curves apart (.dvc/plots/rows.json colors by it)
    for name, rows in curves(res).items():
        rel = f"curves/{name}.csv"
        write_csv(out / rel, list(rows[0]), rows)
        written.append(out / rel)
        curve_files.append(rel)
    for stale in sorted(set((out / "curves").glob("*.csv")) - {out / rel for rel in curve_files}):
        stale.unlink()  # a table no longer in the plan, or an older layout, leaves no plot behind

    figure, drawn = forest.verdicts_figure(evaluated, out / forest.STEM, verdicts_title(plan, evaluated), plan.significance)
    written += figure
    for table in paper_figure.drawn_tables(plan, Path(reference) / "paper_tables.csv"):
        written += paper_figure.paper_figure(table, res, paper, out)[0]
        stems.append(paper_figure.stem(table))

    text("index.md", index_markdown(plan, res, evaluated, {"figures": stems, "curves": curve_files},
                                    read.missing_explanations, code_version, config_path, superseded_runs(plan, results),
                                    under_other))
    runs = glance.runs_text(len(plan.runs), len(res.runs), len(res.missing), len(res.stale),
                            len(read.missing_explanations))
    text(glance.SUMMARY, glance.summary(out, plan.scale, runs, evaluated))
    return {"files": sorted(str(p.relative_to(out)) for p in written), "missing_runs": res.missing,
            "stale_runs": res.stale, "missing_explanations": read.missing_explanations, "forest": drawn}
