# One job per table row (dataset, model, variant) trains each seed's run in turn in one process:
# starting a process (importing torch) costs seconds on a laptop CPU, as much as a quick run. Each
# seed keeps its own run folder, checkpoint and resume. With `train_jobs: seed` (params.yaml; the
# full-MNIST scales, whose runs take up to an hour) each run is a job of its own, and a row's seeds
# train in parallel.
#
# A job declares only each run's receipt, provenance.json, written last when the run finishes: a
# job Snakemake reruns loses only its receipts, never a run's metrics, history or checkpoint. The
# job reruns when its runs' configs change (param `runs`), when the code that defines them changes
# (param `code`: digests from introspect.provenance) or when a run it learns from was retrained
# (its receipt is an input). `introspect train` then decides per run: a current finished run is
# left as it is; a run whose config, code or teacher changed moves whole to superseded/<time>/
# and is trained again; a run that was killed resumes from its checkpoint. A run with nothing to
# resume whose identity was trained before is restored from its superseded/ copies or the run cache
# ($INTROSPECT_CACHE, set from params.yaml's run_cache.dir in common.smk), not trained.


rule train:
    input:
        train_inputs,
    output:
        train_job_outputs(),
    log:
        train_job_log(),
    conda:
        "../envs/introspect.yaml"
    params:
        runs=train_runs_json,
        code=train_code,
    threads: 1
    resources:
        gpu=1,
    shell:
        "OMP_NUM_THREADS={threads} introspect train --runs-json {params.runs:q} --claim-gpu --supersede 2> {log}"


rule explain:
    input:
        "results/{dataset}/{model}/{variant}/seed{seed}/provenance.json",
    output:
        "results/{dataset}/{model}/{variant}/seed{seed}/explanations.pt",
    log:
        "logs/explain/{dataset}/{model}/{variant}/seed{seed}.log",
    conda:
        "../envs/introspect.yaml"
    params:
        # the paper's explainer for the dataset (params.yaml explanations.<dataset>.explainer), else the run's own
        explainer=lambda w: "--explainer {}".format(e) if (e := PLAN.explainer_of("{dataset}/{model}/{variant}/seed{seed}".format(**w))) else "",
        # the code that computes explanations.pt (introspect.analysis, torch, captum): an edit reruns the job
        code=provenance.tool_digest("analysis"),
    threads: 1
    resources:
        gpu=1,
    shell:
        'OMP_NUM_THREADS={threads} introspect explain --claim-gpu --run "$(dirname {input})" {params.explainer} --out {output} 2> {log}'
