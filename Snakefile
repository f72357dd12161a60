# The experiment DAG: prepare data -> train every run -> explain, evaluate -> report.
# What runs is declared once in params.yaml; how a run trains is the `introspect` package.
#   snakemake --cores all                      (the embedded quick scale, CPU)
#   snakemake --cores all --config scale=paper --profile workflow/profiles/gpu
from snakemake.utils import min_version

min_version("8.0")


import sys

from introspect.config import read_yaml
from introspect.registry import ConfigError

try:  # Snakemake's own message for a YAML syntax error names no line: give file:line:column first
    read_yaml("params.yaml")
except ConfigError as exc:
    sys.exit(f"introspect: config error: {exc}")


configfile: "params.yaml"
# A quiet console: a run prints one line per finished job with the progress ("[00:31:02] 3 of 20 done
# (15%): train digits/resnet8/ce, 4 min 12 s"), not each job's ~130 inputs and outputs nor Snakemake's
# scheduling chatter (introspect.console, installed below for runs, not for dry runs, whose job list
# stays; `--verbose` keeps the full console). A job's standard output (each
# command's JSON summary, also written to files) goes where its standard error goes: its log under
# logs/. The full detail stays in .snakemake/log/ and logs/ (docs/progress.md).
shell.suffix(">&2")


include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/evaluate.smk"
include: "workflow/rules/report.smk"


quiet_console()  # workflow/rules/common.smk


onstart:
    mark_report_out_of_date()  # workflow/rules/common.smk


# The run ends with the answer: where the report is and what it found, the two lines the report job
# writes to reports/summary.txt. Snakemake logs its log's path and the elapsed time after this handler,
# so they print as the process exits, last. A run without the report in its DAG (`train_all`) prints
# nothing; under `dvc repro` (DVC_STAGE set) the report stage's own command prints them instead.
onsuccess:
    import atexit
    import os

    summary = Path("reports/summary.txt")
    if summary.is_file() and "DVC_STAGE" not in os.environ and any(j.rule.name == "report" for j in workflow.dag.jobs):
        atexit.register(print, f"\n{summary.read_text().rstrip()}", file=sys.stderr, flush=True)


rule all:
    input:
        "reports/index.md",
        # every run and explanation file is a target too: Snakemake does not rebuild a missing
        # intermediate file when the report that used it looks up to date (a job killed after it
        # lost its outputs would stay missing behind an old report)
        all_receipts(),
        all_explanations(),
        all_evaluations(),
    default_target: True


rule train_all:  # everything under results/: dvc.yaml's train stage, whose output that folder is
    input:
        all_receipts(),
        all_explanations(),
        all_evaluations(),
