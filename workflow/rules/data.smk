# A dataset is prepared once into one checksummed tensor file (introspect.data.prepare). An image
# folder's files (a source subclassing introspect.data.Folder) are the job's inputs: an image
# changed, added or removed prepares it again, and every run on it is then retrained (its data digest).


def raw_images(wildcards):
    from introspect.data import DATASETS, Folder

    source = DATASETS.get(wildcards.dataset)
    if not issubclass(source, Folder):
        return []  # torchvision's and the bundled sets: read or downloaded by the job itself
    root = Path(source.root) if source.root else Path("data/raw") / wildcards.dataset
    if not root.is_dir():
        return []  # the job then stops in one line naming the folder
    return sorted(str(p) for p in root.rglob("*")
                  if p.is_file() and not any(part.startswith(".") for part in p.relative_to(root).parts))


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
