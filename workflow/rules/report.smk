# Reports are regenerated from results alone.


rule experiment_config:
    output:
        "reports/config.json",
    log:
        "logs/experiment_config.log",
    params:
        config=config,
    run:
        with open(output[0], "w") as f:
            json.dump(params.config, f, indent=2, sort_keys=True)


rule report:
    input:
        config="reports/config.json",
        metrics=all_metrics(),
        explanations=all_explanations(),
        reference=["workflow/reference/paper_tables.csv", "workflow/reference/paper_claims.yaml"],
    output:
        index="reports/index.md",
        results="reports/results.parquet",
        metrics="reports/metrics.json",
        claims="reports/claims.md",
        tables=report_tables(),
        figures=[report(f, category="Figures") for f in report_figures()],
    log:
        "logs/report.log",
    conda:
        "../envs/introspect.yaml"
    shell:
        "introspect report --params {input.config} --results results --reference workflow/reference "
        "--out reports 2> {log}"
