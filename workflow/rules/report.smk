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
            json.dump(params.config, f, indent=2)


rule report:
    input:
        config="reports/config.json",
        receipts=all_receipts(),
        explanations=all_explanations(),
        evaluations=all_evaluations(),
        reference=[REFERENCE / "paper_tables.csv", REFERENCE / "paper_claims.yaml", REFERENCE / "method_claims.yaml",
                   REFERENCE / "beyond_claims.yaml"],
    output:
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
    conda:
        "../envs/introspect.yaml"
    params:
        reference=REFERENCE,
    shell:
        "introspect report --params {input.config} --results results --reference {params.reference} "
        "--out reports 2> {log}"
