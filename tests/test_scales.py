"""The scales of the shipped params.yaml: the fallback chain, rows left out by their own `scales`, the
full-MNIST scales' runs and their one-job-per-run DAG."""
import re
import shutil
import subprocess

import pytest

from helpers import BIN, ROOT
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


def page_commands(page: str = "docs/scales.md", heading: str = "## The full MNIST, offline") -> list[str]:
    text = (ROOT / page).read_text()
    block = text[text.index(heading):].split("```bash\n", 1)[1].split("```", 1)[0]
    return [line.strip() for line in block.splitlines() if line.strip()]


def test_the_full_mnist_commands_as_printed(tmp_path):
    """docs/scales.md's commands in their order, in a folder holding only params.yaml: `prepare` and
    `plan` for real, the DAG as a dry run (hours of training): six train jobs, one per run, each with
    its own log; the quick scale keeps one job per row."""
    commands = page_commands()
    assert commands == ["introspect prepare --dataset mnist", "introspect plan --scale mnist_cut",
                        "snakemake --cores all --config scale=mnist_cut"]
    shutil.copy(ROOT / "params.yaml", tmp_path)
    for command in commands[:2]:
        out = subprocess.run([str(BIN / "introspect"), *command.split()[1:]], cwd=tmp_path, capture_output=True,
                             text=True, timeout=600)
        assert out.returncode == 0, command + out.stderr
    assert '"train": 54000' in out.stdout or "scale mnist_cut" in out.stdout

    def train_jobs(command: str) -> tuple[int, str]:
        argv = [str(BIN / "snakemake"), "-s", str(ROOT / "Snakefile"), *command.split()[1:], "-n"]
        out = subprocess.run(argv, cwd=tmp_path, capture_output=True, text=True, timeout=600)
        assert out.returncode == 0, out.stdout + out.stderr
        return int(re.search(r"^train\s+(\d+)$", out.stdout + out.stderr, re.M).group(1)), out.stdout + out.stderr

    count, text = train_jobs(commands[2])
    assert count == 6 and "logs/train/mnist/mlp1024/le_grad/seed2.log" in text
    assert "prepare" not in re.findall(r"^(\w+)\s+\d+$", text, re.M)  # prepared by the first command
    assert train_jobs("snakemake --cores all --config scale=quick")[0] == 44


def test_no_scale_is_named_like_a_dataset():
    """A mapping whose keys are all scale names is a per-scale value: a scale named like a dataset would
    read `explanations: {<that dataset>: ...}` as one."""
    from introspect.data import DATASETS

    assert not set(SCALES) & set(DATASETS.names())
