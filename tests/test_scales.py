"""The scales of the shipped params.yaml: the fallback chain, rows left out by their own `scales`, the
full-MNIST scales' runs and their one-job-per-run DAG."""
import re
import shutil
import subprocess

import pytest

from helpers import ROOT
from introspect import pipeline
from introspect.registry import ConfigError
from introspect.scales import FALLBACK, SCALES, at_scale


def test_fallback_chain():
    value = {"quick": 1, "laptop": 2, "paper": 9}
    assert at_scale(value, "mnist_full") == 2 and at_scale(value, "mnist_cut") == 2  # via mnist_full, then laptop
    assert at_scale({"quick": 1, "paper": 9}, "mnist_cut") == 1  # down to quick
    assert at_scale({"quick": 1, "mnist_full": 3, "paper": 9}, "mnist_cut") == 3
    assert at_scale({"quick": 1, "laptop": None, "paper": 9}, "mnist_full") is None  # ~ given at laptop is kept
    with pytest.raises(ConfigError, match=r"^x: no value for scale 'mnist_cut'; given: paper$"):
        at_scale({"paper": 9}, "mnist_cut", "x")
    for scale in SCALES:  # every chain ends at quick, with no loop
        seen = [scale]
        while seen[-1] in FALLBACK:
            seen.append(FALLBACK[seen[-1]])
            assert len(seen) <= len(SCALES)
        assert seen[-1] in ("quick", "paper")


def test_full_mnist_scales_shipped():
    cut = pipeline.load(ROOT / "params.yaml", "mnist_cut")
    assert sorted(cut.runs) == [f"mnist/mlp1024/{v}/seed{s}" for v in ("ce", "le_grad") for s in (0, 1, 2)]
    assert {r.config["dataset"]["name"] for r in cut.runs.values()} == {"mnist"}
    assert cut.train_jobs == "seed" and cut.seeds == [0, 1, 2]
    assert {t.name for t in cut.tables} == {"table3", "table6_mnist"}  # figure3_mnist: laptop and mnist_full only
    full = pipeline.load(ROOT / "params.yaml", "mnist_full")
    assert full.seeds == [0, 1, 2, 3, 4] and full.train_jobs == "seed"
    assert len(full.runs) == len(pipeline.load(ROOT / "params.yaml", "laptop").runs) == 55
    assert {r.config["dataset"]["name"] for r in full.runs.values()} == {"mnist"}
    le = full.runs["mnist/mlp1024/le_grad/seed0"].config
    assert le["method"]["warmup"] == 10 and "epochs" not in le  # the library's MNIST recipe: 50 epochs
    assert pipeline.load(ROOT / "params.yaml", "quick").train_jobs == "row"


def test_row_scales_validated(tmp_path):
    params = pipeline.read_yaml(ROOT / "params.yaml")
    params["tables"]["table3"]["rows"]["ce"]["scales"] = ["laptop", "tiny"]
    with pytest.raises(ConfigError, match=r"tables\.table3\.rows\.ce\.scales"):
        pipeline.plan(params, "quick")


def test_one_train_job_per_run_at_mnist_cut(tmp_path):
    """`snakemake -n --config scale=mnist_cut` (docs/scales.md without -n): six train jobs, one per run,
    each with its own log; the quick scale keeps one job per row."""
    shutil.copy(ROOT / "params.yaml", tmp_path)  # an empty working folder: no results/ of the checkout's

    def jobs(*config):
        out = subprocess.run(["snakemake", "-n", "-s", str(ROOT / "Snakefile"), "--config", *config], cwd=tmp_path,
                             capture_output=True, text=True, timeout=600)
        assert out.returncode == 0, out.stdout + out.stderr
        table = out.stdout + out.stderr
        return int(re.search(r"^train\s+(\d+)$", table, re.M).group(1)), table

    count, text = jobs("scale=mnist_cut")
    assert count == 6
    assert "logs/train/mnist/mlp1024/le_grad/seed2.log" in text
    count, _ = jobs("scale=quick")
    assert count == 44


def test_no_scale_is_named_like_a_dataset():
    """A mapping whose keys are all scale names is a per-scale value: a scale named like a dataset would
    read `explanations: {<that dataset>: ...}` as one."""
    from introspect.data import DATASETS

    assert not set(SCALES) & set(DATASETS.names())
