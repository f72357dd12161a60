"""``make_report``: every table, claim verdict, figure and summary of a plan's results, under one folder.

Missing runs and explanation files are marked where they would appear and listed in index.md;
they never stop the report.
"""
from __future__ import annotations

import csv
import io
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from . import beyond, figures, fmt, render, tables
from .claims import evaluate_all
from .claims_read import read_claims
from .evidence import MIN_SEEDS, real_data
from .judge import DECIDED, INCONCLUSIVE, REDUCED, REHEARSAL, claim_status, claim_verdict, counted
from .rank_check import mean_over_seeds
from .results import (METRICS, Results, Superseded, curves, load_explanations, other_protocol, run_rows,
                      superseded_runs)
from ..config import read_yaml
from ..fileio import atomic_write, save_json
from ..pipeline import Plan
from ..plan import epochs_of

RESULTS_SCHEMA = pa.schema([
    ("run_id", pa.string()), ("dataset", pa.string()), ("paper_datasets", pa.string()), ("tables", pa.string()),
    ("paper_tables", pa.string()), ("model", pa.string()), ("variant", pa.string()), ("label", pa.string()),
    ("method", pa.string()), ("method_options", pa.string()), ("sweep_key", pa.string()),
    ("sweep_value", pa.string()), ("seed", pa.int64()), *((k, pa.float64()) for k in METRICS),
    ("epochs", pa.int64()), ("wall_seconds", pa.float64()),
])
TITLE = "Introspective Learning by Distilling Knowledge from Online Self-explanation (LE)"
PAPER_DATASETS = ("cifar10", "mnist")  # the datasets the paper trains on


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


def dataset_mapping(plan: Plan) -> list[tuple[str, str]]:
    return sorted({(t.paper_dataset, t.dataset) for t in plan.tables})


def completeness(plan: Plan, res: Results, missing_explanations: list[str]) -> str:
    """The report's first claim: whether every planned run is present and current, else how many are not."""
    if not (res.missing or res.stale or missing_explanations):
        return f"**Complete and current**: all {len(plan.runs)} planned runs are present and current."
    parts = [f"{len(res.missing)} missing" if res.missing else "", f"{len(res.stale)} stale" if res.stale else "",
             f"{len(missing_explanations)} explanation files missing or stale" if missing_explanations else ""]
    return (f"**Incomplete**: {len(res.runs)} of {len(plan.runs)} planned runs are present and current; "
            f"{', '.join(p for p in parts if p)}. Tables and verdicts leave out every run that is not current: "
            "see *Missing and stale* below. `snakemake --cores all --forcerun train` trains exactly those "
            "(a current run is left as it is).")


def epochs_by_dataset(plan: Plan) -> dict[str, list[int]]:
    """The training lengths of a plan's table runs per dataset (stages and teachers aside)."""
    out: dict[str, set[int]] = {}
    for run_id in set().union(*(plan.shown(t) for t in plan.tables)):
        run = plan.runs[run_id]
        out.setdefault(run.dataset, set()).add(epochs_of(run))
    return {d: sorted(e) for d, e in sorted(out.items())}


def trained_explainer(run) -> str | None:
    """The explainer an LE run trained with ("auto": its model's standard one); None for other methods."""
    from ..methods.runs import build

    explainer = run.resolved["method"].get("explainer")
    if explainer == "auto":
        explainer = "gradcam" if build(run.resolved)[0].conv_layer is not None else "grad"
    return explainer


def rests_on(evaluated: list) -> set[str]:
    """The statuses of the claims that ran: DECIDED, REDUCED (reduced data), REHEARSAL."""
    return {claim_status(lines) for _, lines in evaluated} - {""}


def what_it_can_decide(plan: Plan, evaluated: list) -> str:
    """The report's second claim: which claims' lines this scale decides, which rest on reduced data (a
    real subset of the paper's dataset), which it only rehearses (a stand-in dataset, fewer than
    MIN_SEEDS seeds, or not the paper's recipe), which it does not run."""
    stand_ins = sorted({(t.dataset, t.paper_dataset) for t in plan.tables if t.dataset != t.paper_dataset})
    fake = [f"{d} for {p}" for d, p in stand_ins if not real_data(d, p)]
    subsets = [f"{d} (real {p} images) for {p}" for d, p in stand_ins if real_data(d, p)]
    buckets: dict[str, list[str]] = {DECIDED: [], REDUCED: [], REHEARSAL: []}
    not_run = []
    for claim, lines in evaluated:
        ran = counted(lines)
        if not ran:
            not_run.append(claim["id"])
            continue
        for status, bucket in buckets.items():
            where = [ln.where for ln in ran if ln.status == status]
            if where:
                bucket.append(claim["id"] if len(where) == len(ran) else f"{claim['id']} ({', '.join(where)})")
    epochs = "; ".join(f"{d}: {', '.join(map(str, e))} epoch{'s' * (e != [1])}" for d, e in epochs_by_dataset(plan).items())
    notes = []
    if fake:
        notes.append(f"**A smoke test where a dataset stands in for the paper's** ({'; '.join(fake)}): those tables "
                     "show no difference to the paper, and their verdicts only exercise the pipeline.")
    if subsets:
        notes.append(f"**Reduced data**: real images of the paper's dataset, fewer of them ({'; '.join(subsets)}), "
                     "with another test split: no difference to the paper's numbers (another training and test "
                     "set), and verdicts on what these images show where the runs follow the paper's recipe, marked "
                     "\"reduced data\", never decided.")
    if len(plan.seeds) < MIN_SEEDS:
        notes.append(f"With {len(plan.seeds)} seed{'s' * (len(plan.seeds) != 1)} per run (fewer than "
                     f"{MIN_SEEDS}), no verdict is decided here: expect most to be inconclusive.")
    seeds = f"{len(plan.seeds)} seed{'s' * (len(plan.seeds) != 1)}"
    notes.append(f"**What this scale decides** ({seeds}; {epochs}): decided (the paper's full dataset, "
                 f"≥ {MIN_SEEDS} seeds a side, the paper's recipe): {', '.join(buckets[DECIDED]) or 'none'}; "
                 f"on reduced data (a real subset, the same rules): {', '.join(buckets[REDUCED]) or 'none'}; "
                 f"rehearsed only: {', '.join(buckets[REHEARSAL]) or 'none'}"
                 + (f"; not run at this scale: {', '.join(not_run)}." if not_run else ".")
                 + " Each verdict row says which, with its evidence.")
    return " ".join(notes)


def title_line(evaluated: list, title: str) -> str:
    """The report's first line: whether any verdict is decided, and if not, what they rest on."""
    statuses = rests_on(evaluated)
    if DECIDED in statuses:
        return f"# Report: {title}\n"
    if REDUCED in statuses:
        return (f"# Report (reduced data: no verdict here is decided; the ones on a real subset of the paper's "
                f"dataset are marked reduced data, the rest exercise the pipeline): {title}\n")
    return f"# Report (a rehearsal: no verdict here is decided, every one exercises the pipeline): {title}\n"


def superseded_markdown(kept: list[Superseded]) -> list[str]:
    if not kept:
        return ["Nothing superseded.\n"]
    total = sum(s.bytes for s in kept)
    rows = [[f"`{s.run_id}`", s.at, s.reason, f"{s.bytes / 2**20:.1f}"] for s in kept]
    return [f"{len(kept)} superseded runs kept whole under `<run>/superseded/<time>/` "
            f"({total / 2**20:.1f} MiB in all):\n", fmt.markdown(["run", "superseded at (UTC)", "why", "MiB"], rows)]


def index_markdown(plan: Plan, res: Results, evaluated, files: dict[str, list[str]], missing_explanations: list[str],
                   code_version: str, config_path: str, kept: list[Superseded] = (),
                   under_other: dict[str, str] | None = None) -> str:
    under_other = under_other or {}
    def link(path: str, text: str | None = None) -> str:
        return f"[{text or path}]({path})"

    mapping = [[p, d if d == p else f"{d} (stands in for {p} at scale {plan.scale})"] for p, d in dataset_mapping(plan)]
    # A config whose tables are all on datasets of its own (docs/your-data.md) reports on them, not on the paper.
    title = TITLE if any(t.paper_dataset in PAPER_DATASETS for t in plan.tables) else \
        f"{', '.join(sorted({t.paper_dataset for t in plan.tables}))} (your own tables, not the paper's)"
    plans = [(c["id"], render.to_decide(ls)) for c, ls in evaluated if claim_verdict(ls) == INCONCLUSIVE]
    out = [title_line(evaluated, title),
           completeness(plan, res, missing_explanations) + "\n",
           what_it_can_decide(plan, evaluated) + "\n",
           f"Scale **{plan.scale}**; seeds {', '.join(map(str, plan.seeds))}; significance level {plan.significance:g}.\n",
           "## Datasets\n", fmt.markdown(["paper dataset", "run at this scale"], mapping),
           "## Tables\n"]
    for table in plan.tables:
        out.append(f"- **{table.name}** (paper {table.paper_table}): {table.caption}: "
                   f"{link(f'tables/{table.name}.md', 'Markdown')}, {link(f'tables/{table.name}.tex', 'LaTeX')}")
    out += [f"- {link('tables/sweeps.md', 'Sweeps')}: every swept value, the one chosen on the validation split marked",
            f"- {link(beyond.PAGE, 'Beyond accuracy')}: calibration (NLL, ECE, Brier, reliability diagrams) and "
            "explanation quality (deletion / insertion AUC, infidelity, agreement with the teacher, Figure 2's "
            "class pairs) of every run, with verdicts on the project's questions\n",
            "## Claims\n", f"{link('claims.md')} ({link('claims.csv', 'CSV')})\n",
            fmt.markdown(["claim", "source", "verdict", f"under {other_protocol(plan.protocol)}", "lines",
                          "evidence"],
                         [[c["id"], c.get("source", ""), render.claim_cell(ls),
                           render.protocol_cell(claim_verdict(ls), under_other.get(c["id"], fmt.DASH), claim_status(ls)),
                           render.lines_text(ls), render.evidence_text(ls)]
                          for c, ls in evaluated])]
    if plans:
        out.append("What would decide each inconclusive claim: per inconclusive comparison, the seeds per side for "
                   "80 % power of its paired test at the observed Δ (and at the paper's Δ), both with our std of the "
                   "per-seed differences, with the training they would add (see [claims.md](claims.md)):\n")
        out += [f"- **{cid}**: " + ("; ".join(items) if items else "no comparison is inconclusive on its own")
                for cid, items in plans]
        out.append("")
    out.append("## Figures\n")
    for stem in files["figures"]:
        name = Path(stem).name
        out.append(f"### {name}\n\n![{name}]({stem}.png)\n\n{link(f'{stem}.pdf', 'PDF')}\n")
    out += ["## Data\n",
            f"- {link('results.parquet')}: one row per present run (config, seed, final metrics, wall time)",
            f"- {link('metrics.json')}: mean of each table's metric per model and row (chosen sweep values)",
            "- Learning curves (mean over seeds) for `dvc plots show`: "
            + (", ".join(link(c, Path(c).stem) for c in files["curves"]) or "none") + "\n",
            "## Missing and stale\n"]
    if res.missing or res.stale or missing_explanations:
        out += [f"- missing: run `{r}`" for r in res.missing]
        out += [f"- stale: run `{r}` ({'; '.join(why)})" for r, why in sorted(res.stale.items())]
        out += [f"- missing: explanations `{e}` (absent, unreadable, or computed by other code than today's)"
            for e in missing_explanations]
        out.append("")
    else:
        out.append(f"Nothing: all {len(plan.runs)} runs are present and current, with their explanation files.\n")
    out += ["## Superseded\n", *superseded_markdown(list(kept))]
    out.append(f"Produced by code version {code_version} with config {config_path}.")
    return "\n".join(out) + "\n"


def make_report(plan: Plan, results: Path, reference: Path, out: Path, code_version: str, config_path: str) -> dict:
    """Write the report of ``plan``'s runs under ``results`` into ``out``.

    ``reference`` is the folder holding paper_tables.csv, paper_claims.yaml and, optionally,
    method_claims.yaml (the project's own questions about the seed papers' methods). Returns
    ``{"files": [paths relative to out], "missing_runs": [run ids], "stale_runs": {run id: [why]},
    "missing_explanations": [paths]}``.
    """
    results, out = Path(results), Path(out)
    res = Results(plan, results)
    paper = tables.read_paper(Path(reference) / "paper_tables.csv")
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

    # paper dataset -> seed -> that run's explanations.pt (None: missing or stale): Figure 1 draws one
    # seed's examples, Figure 2 and C10 use the mean of every seed's similarity matrix
    explanations, missing_explanations = {}, []
    for paper_dataset, runs in sorted(plan.explained_runs().items()):
        explanations[paper_dataset] = {}
        for run in runs:
            path = results / run.id / "explanations.pt"
            explanations[paper_dataset][run.seed] = load_explanations(path)
            if explanations[paper_dataset][run.seed] is None:
                missing_explanations.append(str(path))

    claim_list = read_claims(Path(reference) / "paper_claims.yaml")
    if (Path(reference) / "method_claims.yaml").exists():  # the project's own questions (seed-paper methods)
        claim_list += read_claims(Path(reference) / "method_claims.yaml")
    if config_path and Path(config_path).is_file() and "claims" in (read_yaml(Path(config_path)) or {}):
        # the experiment's own claims (params.yaml claims, e.g. on a user's data: docs/your-data.md)
        claim_list += read_claims(Path(config_path))
    beyond_ids = set()
    if (Path(reference) / "beyond_claims.yaml").exists():  # calibration and explanation quality (beyond.md)
        beyond_claims = read_claims(Path(reference) / "beyond_claims.yaml")
        claim_list += beyond_claims
        beyond_ids = {c["id"] for c in beyond_claims}
    # every claim under both epoch protocols, in one pass over the same runs
    by_protocol = evaluate_all(claim_list, plan, res, explanations, paper)
    other = other_protocol(plan.protocol)
    evaluated = by_protocol[plan.protocol]
    under_other = {c["id"]: claim_verdict(lines) for c, lines in by_protocol[other]}
    text("claims.md", render.markdown(evaluated, plan, under_other, other))
    write_csv(out / "claims.csv", render.CSV_COLUMNS, render.csv_rows(evaluated))
    written.append(out / "claims.csv")

    written += beyond.write_page(plan, res, [(c, ls) for c, ls in evaluated if c["id"] in beyond_ids], out)

    stems = []
    for paper_dataset, per_seed in explanations.items():
        run = plan.explanations[paper_dataset]
        mean = mean_over_seeds(per_seed)
        seeds = mean["seeds"] if mean else sorted(per_seed)
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

    text("index.md", index_markdown(plan, res, evaluated, {"figures": stems, "curves": curve_files},
                                    missing_explanations, code_version, config_path, superseded_runs(plan, results),
                                    under_other))
    return {"files": sorted(str(p.relative_to(out)) for p in written), "missing_runs": res.missing,
            "stale_runs": res.stale, "missing_explanations": missing_explanations}
