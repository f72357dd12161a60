rule prepare:
    output:
        "data/processed/{dataset}.pt",
    log:
        "logs/prepare/{dataset}.log",
    conda:
        "../envs/introspect.yaml"
    shell:
        "introspect prepare --dataset {wildcards.dataset} --out {output} --raw data/raw 2> {log}"
