# Reports are regenerated from results alone. (A `run:` rule: Snakemake allows no `conda:` with it;
# the report needs no more than the package.) The job reruns when the config changes (param `config`)
# and when the code that writes the report does (param `code`: the report package and every module of
# ours it imports, as provenance.tool_digest digests them) or the libraries that compute its tests and
# figures are upgraded (param `libraries`), so a report is never older than the code that wrote it.
from importlib.metadata import version

from introspect.provenance import tool_digest
from introspect.report.glance import declared

GLANCE = declared(PLAN, REFERENCE / "paper_tables.csv")  # the summary, the verdicts' forest plot, ours against the paper


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
        glance_figures=[report(f, category="Verdicts") for f in GLANCE["figures"]],
        summary=GLANCE["summary"],  # what the run prints when it ends (the Snakefile's onsuccess)
    log:
        "logs/report.log",
    params:
        reference=REFERENCE,
        config=config,  # a change of the config reruns the job
        code=tool_digest("report.build"),  # so does a change of the report's code
        libraries={lib: version(lib) for lib in ("scipy", "numpy", "matplotlib")},
    run:
        from introspect.fileio import save_json

        save_json(params.config, Path(output.config))  # atomically: never through a DVC cache link
        shell("introspect report --params {output.config:q} --results results --reference {params.reference:q} "
              "--out reports 2> {log:q}")
