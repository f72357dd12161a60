# Beyond accuracy: one job evaluates every finished run, each into its own <run>/evaluation.json:
# calibration on the test split and the quality of its explanations on the first test images
# (introspect.evaluate; a student's also against its teacher's Grad-CAM). One process for all runs,
# not one per table row: at the quick scale starting a process (importing torch, torchmetrics and
# Captum: ~5 s of CPU) costs half of what a row trains, and evaluating after every row would add
# ~100 % to the run's time; one process added about 11 % (28 s of 4.4 min, 2026-11-26; its faithfulness
# scores now also score random maps: about 1.5x that work; docs/beyond-accuracy.md). At the
# paper's scale a run evaluates in seconds on the GPU, against hours of training. Any retrained run
# rewrites its receipt, so every run is evaluated again; the report also ignores an
# evaluation.json older than its run's checkpoint. The digest of the evaluation code (introspect
# evaluate's modules and the versions of torch, captum, torchmetrics and scipy: provenance.tool_digest) is a
# param: an edit of that code, or an upgrade, reruns the job, and the report ignores an
# evaluation.json written by other code.

from introspect.evaluate import settings as evaluate_settings
from introspect.provenance import tool_digest


rule evaluate:
    input:
        evaluate_inputs(),
    output:
        all_evaluations(),
    log:
        "logs/evaluate.log",
    conda:
        "../envs/introspect.yaml"
    params:
        # fewer images, curve points and perturbations at the quick scale (introspect.evaluate.SCALE_SETTINGS)
        options=" ".join(f"--{k} {v}" for k, v in evaluate_settings(PLAN.scale).items()),
        runs=" ".join(f"--run results/{run_id}" for run_id in sorted(PLAN.runs)),
        code=tool_digest("evaluate"),
    threads: 1
    resources:
        gpu=1,
    shell:
        "OMP_NUM_THREADS={threads} introspect evaluate --claim-gpu {params.options} {params.runs} 2> {log}"
