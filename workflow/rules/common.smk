# Validation and input functions. The config is validated (schema + every run resolved by the
# library) when the workflow is parsed, before any job starts.
import json
import os
import sys
from pathlib import Path

from introspect import pipeline, provenance
from introspect.registry import ConfigError

try:
    PLAN = pipeline.plan(config)
except ConfigError as exc:
    sys.exit(f"introspect: config error: {exc}")
for _line in PLAN.missing_data():  # its prepare job would fail: say now, once, how to get the data
    print(f"introspect: data missing: {_line}", file=sys.stderr)

# The run cache folder of every train job (introspect.runcache): $INTROSPECT_CACHE when set, else
# params.yaml's run_cache.dir. An environment variable, not a param: pointing at another cache reruns no job.
os.environ.setdefault("INTROSPECT_CACHE", str((config.get("run_cache") or {}).get("dir") or "off"))

wildcard_constraints:
    dataset="[a-z0-9_]+",
    model="[a-z0-9_]+",
    variant="[A-Za-z0-9_.\-]+",
    seed="[0-9]+",


# the paper's published tables and claims, beside this workflow (also when run with --directory)
REFERENCE = Path(workflow.basedir) / "workflow" / "reference"


def runs_of(wildcards):
    """What one train job trains: every seed's run of one table row (dataset, model, variant), or
    the one run of its seed with params.yaml's `train_jobs: seed`."""
    seeds = [wildcards.seed] if "seed" in wildcards.keys() else PLAN.seeds
    row = f"{wildcards.dataset}/{wildcards.model}/{wildcards.variant}"
    return [PLAN.runs[f"{row}/seed{seed}"] for seed in seeds]


def train_job_outputs():
    """The receipts one train job declares: its row's, every seed; or its run's (`train_jobs: seed`)."""
    if PLAN.train_jobs == "seed":
        return [f"results/{{dataset}}/{{model}}/{{variant}}/seed{{seed}}/{provenance.RECEIPT}"]
    return run_outputs(provenance.RECEIPT)


def train_job_log():
    if PLAN.train_jobs == "seed":
        return "logs/train/{dataset}/{model}/{variant}/seed{seed}.log"
    return "logs/train/{dataset}/{model}/{variant}.log"


def receipt(run_id):
    """Written last by a finished run (introspect.provenance): what a job waits for and declares."""
    return f"results/{run_id}/{provenance.RECEIPT}"


def run_outputs(name):
    return expand("results/{{dataset}}/{{model}}/{{variant}}/seed{seed}/{name}", seed=PLAN.seeds, name=name)


def train_inputs(wildcards):
    """The prepared dataset, and the finished runs these runs learn from (teacher, assistant, stage)."""
    runs = runs_of(wildcards)
    needs = sorted({need for run in runs for need in run.needs})
    return [f"data/processed/{runs[0].dataset}.pt"] + [receipt(need) for need in needs]


def train_runs_json(wildcards):
    return json.dumps([{"out": f"results/{run.id}", "config": run.config} for run in runs_of(wildcards)], sort_keys=True)


def train_code(wildcards):
    """Each run's code digest: an edit of the code that defines a run changes this param, so
    Snakemake reruns the job, and the run, stale, is superseded and trained again."""
    return {run.id: provenance.code_digest(run.config["method"]["name"], run.model, run.dataset) for run in runs_of(wildcards)}


def all_receipts():
    return [receipt(run_id) for run_id in sorted(PLAN.runs)]


def all_explanations():
    return [f"results/{run.id}/explanations.pt" for runs in PLAN.explained_runs().values() for run in runs]


def report_figures():
    names = [f"figure{n}_{ds}" for ds in sorted(PLAN.explanations) for n in (1, 2)]
    names += ["figure3"] * any(t.paper_table == "figure3" for t in PLAN.tables)
    return [f"reports/figures/{name}.{ext}" for name in names for ext in ("png", "pdf")]


def report_tables():
    return [f"reports/tables/{t.name}.{ext}" for t in PLAN.tables for ext in ("md", "tex")]


def all_evaluations():
    """Every run's evaluation.json (introspect.evaluate): calibration and explanation quality."""
    return [f"results/{run_id}/evaluation.json" for run_id in sorted(PLAN.runs)]



def evaluate_inputs():
    """Every finished run (a student's teacher is one of them) and every prepared dataset."""
    datasets = sorted({f"data/processed/{run.dataset}.pt" for run in PLAN.runs.values()})
    return datasets + all_receipts()

def beyond_figures():
    from introspect.report.beyond import reliability_stems

    return [f"reports/{stem}.{ext}" for stem in reliability_stems(PLAN) for ext in ("png", "pdf")]


# The console and the report's first line (Snakefile; docs/progress.md).
def quiet_console():
    """One console line per finished job and the progress (introspect.console), for a run that is
    not a dry run and not --verbose; nothing where Snakemake's logging differs."""
    from introspect.console import install

    try:
        from snakemake.logging import logger as snakemake_logger
    except ImportError:  # another Snakemake: its own console
        return
    settings = workflow.output_settings
    if getattr(settings, "dryrun", False) or getattr(settings, "verbose", False):
        return
    install(snakemake_logger.handlers)  # .snakemake/log/ keeps everything


# The report's first line is never older than the runs it describes: before any job that changes
# results/ starts (Snakemake calls onstart only when it has jobs to run, never in a dry run),
# reports/index.md is marked out of date; the report job rewrites it at the end. After a crash the
# mark stays until a run of the workflow finishes the report.
REPORT_RULES = {"report"}


def mark_report_out_of_date():
    import time

    from introspect.fileio import WriteError
    from introspect.status import mark_out_of_date

    rules = [job.rule.name for job in workflow.dag.needrun_jobs()]
    changing = sorted({r for r in rules if r not in REPORT_RULES})
    if changing:
        count = sum(r not in REPORT_RULES for r in rules)
        try:
            mark_out_of_date(Path("reports/index.md"), f"a workflow run started {time.strftime('%Y-%m-%d %H:%M:%S')} "
                             f"is changing results/ ({count} job{'s' * (count != 1)}: {', '.join(changing)})")
        except WriteError as exc:  # the old report stays whole; the jobs will say the same when they write
            print(f"introspect: warning: {exc}", file=sys.stderr)


# The prepare job's inputs (data.smk): an image folder's files.
def raw_images(wildcards):
    from introspect.data import DATASETS, Folder

    source = DATASETS.get(wildcards.dataset)
    if not issubclass(source, Folder):
        return []  # torchvision's and the bundled sets: read or downloaded by the job itself
    root = Path(source.root) if source.root else Path("data/raw") / wildcards.dataset
    if not root.is_dir():
        return []  # the job then stops in one line naming the folder
    return sorted(str(p) for p in root.rglob("*")
                  if p.is_file() and not any(part.startswith(".") for part in p.relative_to(root).parts))
