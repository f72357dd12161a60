# Beyond accuracy: one job per table row (dataset, model, variant) evaluates every seed's finished
# run in one process (importing torch costs seconds on a laptop), each into its own
# <run>/evaluation.json: calibration on the test split and the quality of its explanations on the
# first test images (introspect.evaluate). A student's job also waits for its teacher's receipt
# (agreement with the teacher's Grad-CAM). A retrained run rewrites its receipt, so its row is
# evaluated again; the report also ignores an evaluation.json older than the run's checkpoint.


rule evaluate:
    input:
        evaluate_inputs,
    output:
        run_outputs("evaluation.json"),
    log:
        "logs/evaluate/{dataset}/{model}/{variant}.log",
    conda:
        "../envs/introspect.yaml"
    params:
        runs=evaluate_runs,
    threads: 1
    resources:
        gpu=1,
    shell:
        "OMP_NUM_THREADS={threads} introspect evaluate --claim-gpu {params.runs} 2> {log}"
