# A dataset is prepared once into one checksummed tensor file (introspect.data.prepare). An image
# folder's files (a source subclassing introspect.data.Folder) are the job's inputs: an image
# changed, added or removed prepares it again, and every run on it is then retrained (its data digest).


rule prepare:
    input:
        raw_images,
    output:
        "data/processed/{dataset}.pt",
    log:
        "logs/prepare/{dataset}.log",
    conda:
        "../envs/introspect.yaml"
    shell:
        "introspect prepare --dataset {wildcards.dataset} --out {output} --raw data/raw 2> {log}"
