"""index.md, the report's first page: the first screen answers the question (the scale, whether every
run is present and current, one verdict table with the numbers behind each verdict, the verdicts in
one picture), then what the verdicts rest on, and links to everything else, one click away."""
from __future__ import annotations

from pathlib import Path

from . import fmt, forest, glance, render
from .evidence import MIN_SEEDS, real_data
from .judge import DECIDED, REDUCED, REHEARSAL, claim_status, counted
from .results import Results, Superseded, other_protocol
from .rests_on import Bases
from ..pipeline import Plan
from ..plan import epochs_of

TITLE = "Introspective Learning by Distilling Knowledge from Online Self-explanation (LE)"
PAPER_DATASETS = ("cifar10", "mnist")  # the datasets the paper trains on


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


def subset_runs(plan: Plan) -> dict[str, int]:
    """dataset -> the training images its table runs keep (``dataset.subset``), for the paper's own
    datasets run on a stratified part (reduced data, :mod:`.evidence`)."""
    out: dict[str, int] = {}
    for table in plan.tables:
        for run_id in plan.shown(table):
            n = plan.runs[run_id].resolved["dataset"].get("subset")
            if n is not None and table.dataset == table.paper_dataset:
                out[table.dataset] = max(n, out.get(table.dataset, 0))
    return out


def epochs_by_dataset(plan: Plan) -> dict[str, list[int]]:
    """The training lengths of a plan's table runs per dataset (stages and teachers aside)."""
    out: dict[str, set[int]] = {}
    for run_id in set().union(*(plan.shown(t) for t in plan.tables)):
        run = plan.runs[run_id]
        out.setdefault(run.dataset, set()).add(epochs_of(run))
    return {d: sorted(e) for d, e in sorted(out.items())}


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
    subsets += [f"{d} (dataset.subset {n:,} of its training images)" for d, n in sorted(subset_runs(plan).items())]
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
                     "(a real subset such as mnist5k has its own test split; a dataset.subset keeps the dataset's "
                     "test set): no difference to the paper's numbers (another, smaller training set), and verdicts "
                     "on what these images show where the runs follow the paper's recipe, marked "
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
                 + " Each verdict row says which, and what its data is (D1, ...).")
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
    """The superseded copies, one line per table row (its seeds, how many copies, when, why, how big)."""
    if not kept:
        return ["Nothing superseded.\n"]
    total = sum(s.bytes for s in kept)
    rows: dict[str, list[Superseded]] = {}
    for s in kept:
        rows.setdefault(s.run_id.rpartition("/seed")[0], []).append(s)
    table = [[f"`{row}`", ", ".join(sorted({s.run_id.rpartition("/seed")[2] for s in copies}, key=int)), str(len(copies)),
              " to ".join(sorted({min(s.at for s in copies), max(s.at for s in copies)})),
              "; ".join(sorted({s.reason for s in copies})), f"{sum(s.bytes for s in copies) / 2**20:.1f}"]
             for row, copies in rows.items()]
    return [f"{len(kept)} superseded runs kept whole under `<run>/superseded/<time>/` "
            f"({total / 2**20:.1f} MiB in all):\n",
            fmt.markdown(["row", "seeds", "copies", "superseded at (UTC)", "why", "MiB"], table)]


def tables_markdown(plan: Plan) -> list[str]:
    return [f"- [{t.name}](tables/{t.name}.md) ([LaTeX](tables/{t.name}.tex), paper {t.paper_table}): {t.caption}"
            for t in plan.tables] + ["- [Sweeps](tables/sweeps.md): every swept value, the one chosen on the validation "
                                     "split marked\n"]


def by_row(run_ids: list[str]) -> list[str]:
    """Run ids grouped by their row: "`digits/cnn6/ce` seeds 0, 1, 2" (one line per row, not per seed)."""
    seeds: dict[str, list[str]] = {}
    for run_id in sorted(run_ids):
        row, _, seed = run_id.rpartition("/seed")
        seeds.setdefault(row, []).append(seed)
    return [f"`{row}` seed{'s' * (len(s) != 1)} {', '.join(s)}" for row, s in seeds.items()]


def missing_markdown(plan: Plan, res: Results, missing_explanations: list[str]) -> list[str]:
    """The runs left out, one line per row and reason (a stale tree would otherwise list every seed)."""
    if not (res.missing or res.stale or missing_explanations):
        return [f"Nothing: all {len(plan.runs)} runs are present and current, with their explanation files.\n"]
    out = [f"- missing: {row}" for row in by_row(res.missing)]
    reasons: dict[str, list[str]] = {}
    for run_id, why in res.stale.items():
        reasons.setdefault("; ".join(why), []).append(run_id)
    out += [f"- stale ({why}): {row}" for why, ids in sorted(reasons.items()) for row in by_row(ids)]
    out += [f"- missing: explanations `{e}` (absent, unreadable, or computed by other code than today's)"
            for e in missing_explanations]
    return out + [""]


def report_title(plan: Plan) -> str:
    # A config whose tables are all on datasets of its own (docs/your-data.md) reports on them, not on the paper.
    if any(t.paper_dataset in PAPER_DATASETS for t in plan.tables):
        return TITLE
    return f"{', '.join(sorted({t.paper_dataset for t in plan.tables}))} (your own tables, not the paper's)"


def index_markdown(plan: Plan, res: Results, evaluated, files: dict[str, list[str]], missing_explanations: list[str],
                   code_version: str, config_path: str, kept: list[Superseded] = (),
                   under_other: dict[str, str] | None = None) -> str:
    """index.md: the first screen answers the question (the scale, whether every run is present and
    current, one verdict table with its numbers, the verdicts in one picture); detail is one link away."""
    bases = Bases(evaluated)
    other = other_protocol(plan.protocol)
    out = [title_line(evaluated, report_title(plan)),
           completeness(plan, res, missing_explanations) + "\n",
           f"Scale **{plan.scale}**; seeds {', '.join(map(str, plan.seeds))}; significance level {plan.significance:g}; "
           f"verdicts on the test accuracy of the **{plan.protocol}** epoch protocol ({other}: flagged ⚠ where it "
           "differs).\n",
           "## Verdicts\n",
           glance.verdict_table(evaluated, bases, plan.significance, under_other, other),
           glance.legend(plan.significance),
           f"![Every claim comparison: Δ and its interval, coloured by verdict]({forest.STEM}.png)\n",
           f"[PDF]({forest.STEM}.pdf)\n",
           what_it_can_decide(plan, evaluated) + "\n",
           render.REST_HEADING, bases.markdown() or "No claim ran.\n",
           "## Tables\n", *tables_markdown(plan),
           "## Figures\n"]
    for stem in files["figures"]:
        out.append(f"- [{Path(stem).name}]({stem}.png) ([PDF]({stem}.pdf))")
    out += ["",
            "## Data\n",
            "- [results.parquet](results.parquet): one row per present run (config, seed, final metrics, wall time)",
            "- [metrics.json](metrics.json): mean of each table's metric per model and row (chosen sweep values)",
            "- Learning curves (mean over seeds) for `dvc plots show`: "
            + (", ".join(f"[{Path(c).stem}]({c})" for c in files["curves"]) or "none") + "\n",
            "## Missing and stale\n", *missing_markdown(plan, res, missing_explanations),
            "## Superseded\n", *superseded_markdown(list(kept)),
            f"Produced by code version {code_version} with config {config_path}."]
    return "\n".join(out) + "\n"


def verdicts_title(plan: Plan, evaluated: list) -> str:
    statuses = ", ".join(sorted(rests_on(evaluated))) or "nothing run"
    return (f"Every claim comparison at scale {plan.scale} ({statuses}): Δ = a − b over seeds with its paired "
            f"{100 * (1 - 2 * plan.significance):g} % interval, coloured by verdict")
