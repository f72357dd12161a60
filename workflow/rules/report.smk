# Reports are regenerated from results alone. (A `run:` rule: Snakemake allows no `conda:` with it;
# the report needs no more than the package.)


rule report:
    input:
        receipts=all_receipts(),
        explanations=all_explanations(),
        evaluations=all_evaluations(),
        reference=[REFERENCE / "paper_tables.csv", REFERENCE / "paper_claims.yaml", REFERENCE / "method_claims.yaml",
                   REFERENCE / "beyond_claims.yaml"],
    output:
        # the config the report was written from, by this job with the rest: never a copy older than
        # its report (a config change reruns the job: param `config`)
        config="reports/config.json",
        index="reports/index.md",
        results="reports/results.parquet",
        metrics="reports/metrics.json",
        claims="reports/claims.md",
        tables=report_tables(),
        figures=[report(f, category="Figures") for f in report_figures()],
        beyond="reports/beyond.md",
        beyond_figures=[report(f, category="Beyond accuracy") for f in beyond_figures()],
    log:
        "logs/report.log",
    params:
        reference=REFERENCE,
        config=config,  # a change of the config reruns the job
    run:
        from introspect.fileio import save_json

        save_json(params.config, Path(output.config))  # atomically: never through a DVC cache link
        shell("introspect report --params {output.config:q} --results results --reference {params.reference:q} "
              "--out reports 2> {log:q}")


# The report's first line is never older than the runs it describes: before any job that changes
# results/ starts (Snakemake calls onstart only when it has jobs to run, never in a dry run),
# reports/index.md is marked out of date; the report job rewrites it at the end. After a crash the
# mark stays until a run of the workflow finishes the report.
REPORT_RULES = {"report"}


def mark_report_out_of_date():
    import time

    from introspect.status import mark_out_of_date

    rules = [job.rule.name for job in workflow.dag.needrun_jobs()]
    changing = sorted({r for r in rules if r not in REPORT_RULES})
    if changing:
        count = sum(r not in REPORT_RULES for r in rules)
        mark_out_of_date(Path("reports/index.md"), f"a workflow run started {time.strftime('%Y-%m-%d %H:%M:%S')} "
                         f"is changing results/ ({count} job{'s' * (count != 1)}: {', '.join(changing)})")
