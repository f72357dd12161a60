# One job per run. The run's config is the job's params, so a change to one method's options
# retrains only that method's runs (Snakemake's params rerun trigger). The checkpoint is not a
# declared output: when a job dies Snakemake deletes metrics.json and history.parquet, and the
# rerun (--rerun-incomplete) resumes from checkpoint.pt. A run retrained because its params changed
# moves the previous one to superseded/ inside its folder (--supersede) rather than deleting it.


rule train:
    input:
        train_inputs,
    output:
        metrics="results/{dataset}/{model}/{variant}/seed{seed}/metrics.json",
        history="results/{dataset}/{model}/{variant}/seed{seed}/history.parquet",
    log:
        "logs/train/{dataset}/{model}/{variant}/seed{seed}.log",
    conda:
        "../envs/introspect.yaml"
    params:
        config=lambda wildcards: json.dumps(run_of(wildcards).config, sort_keys=True),
    threads: 1
    resources:
        gpu=1,
    shell:
        "OMP_NUM_THREADS={threads} introspect train --config-json {params.config:q} --claim-gpu --supersede "
        '--out "$(dirname {output.metrics})" 2> {log}'


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
