# Validation and input functions. The config is validated (schema + every run resolved by the
# library) when the workflow is parsed, before any job starts.
import json
import sys
from pathlib import Path

from introspect import pipeline
from introspect.registry import ConfigError

try:
    PLAN = pipeline.plan(config)
except ConfigError as exc:
    sys.exit(f"introspect: config error: {exc}")

wildcard_constraints:
    dataset="[a-z0-9_]+",
    model="[a-z0-9_]+",
    variant="[A-Za-z0-9_.\-]+",
    seed="[0-9]+",


# the paper's published tables and claims, beside this workflow (also when run with --directory)
REFERENCE = Path(workflow.basedir) / "workflow" / "reference"


def run_of(wildcards):
    return PLAN.runs["{dataset}/{model}/{variant}/seed{seed}".format(**wildcards)]


def train_inputs(wildcards):
    """The prepared dataset, and the finished runs this run learns from (its teacher)."""
    run = run_of(wildcards)
    return [f"data/processed/{run.dataset}.pt"] + [f"results/{need}/metrics.json" for need in run.needs]


def all_metrics():
    return [f"results/{run_id}/metrics.json" for run_id in sorted(PLAN.runs)]


def all_explanations():
    return [f"results/{run.id}/explanations.pt" for run in PLAN.explanations.values()]


def report_figures():
    names = [f"figure{n}_{ds}" for ds in sorted(PLAN.explanations) for n in (1, 2)]
    names += ["figure3"] * any(t.paper_table == "figure3" for t in PLAN.tables)
    return [f"reports/figures/{name}.{ext}" for name in names for ext in ("png", "pdf")]


def report_tables():
    return [f"reports/tables/{t.name}.{ext}" for t in PLAN.tables for ext in ("md", "tex")]
