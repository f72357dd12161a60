# One job per table row (dataset, model, variant) trains each seed's run in turn in one process:
# starting a process (importing torch) costs seconds on a laptop CPU, as much as a quick run. Each
# seed keeps its own run folder, checkpoint and resume. The runs' configs are the job's params, so
# a change to one method's options retrains only that method's runs (Snakemake's params rerun
# trigger). Checkpoints are not declared outputs: when a job dies Snakemake deletes its metrics.json
# and history.parquet files, and the rerun (--rerun-incomplete) resumes each run from checkpoint.pt
# (a run that had finished only rewrites its files). A run retrained because its params changed
# moves the previous one to superseded/ inside its folder (--supersede) rather than deleting it.


rule train:
    input:
        train_inputs,
    output:
        metrics=run_outputs("metrics.json"),
        history=run_outputs("history.parquet"),
    log:
        "logs/train/{dataset}/{model}/{variant}.log",
    conda:
        "../envs/introspect.yaml"
    params:
        runs=train_runs_json,
    threads: 1
    resources:
        gpu=1,
    shell:
        "OMP_NUM_THREADS={threads} introspect train --runs-json {params.runs:q} --claim-gpu --supersede 2> {log}"


rule explain:
    input:
        "results/{dataset}/{model}/{variant}/seed{seed}/metrics.json",
    output:
        "results/{dataset}/{model}/{variant}/seed{seed}/explanations.pt",
    log:
        "logs/explain/{dataset}/{model}/{variant}/seed{seed}.log",
    conda:
        "../envs/introspect.yaml"
    threads: 1
    resources:
        gpu=1,
    shell:
        'OMP_NUM_THREADS={threads} introspect explain --claim-gpu --run "$(dirname {input})" --out {output} 2> {log}'
