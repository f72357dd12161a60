"""docs/your-data.md, followed to the letter: its dataset file, model file and experiment params.yaml,
its toy image folder and its commands (the dry run, then `snakemake --cores all`, one epoch of each
row) make a report; the CIFAR-100 example lists its models and dry-runs offline.

The files go into a copy of the repository (src/, workflow/, Snakefile, params.yaml, tests/), never
into this checkout: the package is installed editable from here (PYTHONPATH puts the copy's first).
"""
import os
import re
import shutil
import subprocess
import sys

import pytest
import yaml

from introspect.data import DATASETS
from introspect.models import MODELS
from helpers import BIN, ROOT, copy_repository
from introspect.pipeline import plan

pytestmark = pytest.mark.slow  # the page's commands train a whole DAG once for the module

PAGE = ROOT / "docs" / "your-data.md"
COPIED = ("src", "workflow", "Snakefile", "params.yaml", "pyproject.toml", "tests")


def blocks(language: str) -> list[str]:
    return re.findall(rf"^```{language}\n(.*?)^```$", PAGE.read_text(), flags=re.S | re.M)


def files() -> dict[str, str]:
    """Every python / yaml block of the page whose first line is ``# <path>``: path -> text."""
    out = {}
    for block in blocks("python") + blocks("yaml"):
        head = re.match(r"# ([\w./-]+\.(?:py|yaml))\n", block)
        assert head, f"a block of {PAGE.name} names no file:\n{block[:200]}"
        out[head.group(1)] = block
    return out


def run(args, cwd, env, timeout=600, ok=True):
    out = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    if ok:
        assert out.returncode == 0, f"{args} failed:\n{out.stdout[-3000:]}\n{out.stderr[-3000:]}"
    return out


@pytest.fixture(scope="module")
def copy(tmp_path_factory):
    """The repository copied, the page's files written into it, and the page's first bash block run
    there as written (bash -e: every command must succeed)."""
    written = files()
    assert "tinynet" not in MODELS and "shapes" not in DATASETS  # this checkout never sees them
    repo = copy_repository(tmp_path_factory.mktemp("repo"), COPIED)
    for path, text in written.items():
        (repo / path).parent.mkdir(parents=True, exist_ok=True)
        (repo / path).write_text(text)
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}", "PYTHONPATH": str(repo / "src")}
    script = blocks("bash")[0]
    out = run(["bash", "-e", "-c", script], repo, env, timeout=900)
    return dict(repo=repo, env=env, out=out.stdout + out.stderr, files=written)


def test_the_page_writes_one_dataset_file_one_model_file_and_the_experiments(copy):
    paths = set(copy["files"])
    assert {p for p in paths if p.startswith("src/")} == {"src/introspect/data/sources/shapes.py",
                                                          "src/introspect/models/tinynet.py"}
    assert {"experiments/shapes/params.yaml", "experiments/cifar100/params.yaml"} <= paths


def test_the_plan_counts_the_runs_and_names_the_users_data_as_not_estimated(copy):
    """introspect plan on a dataset of one's own: no traceback, no minutes summed as 0, the dataset named."""
    assert "runs in" in copy["out"] and "shapes (a dataset of your own" in copy["out"]


def test_the_models_command_lists_the_users_model_on_the_users_data(copy):
    listed = dict(line.split()[:2] for line in copy["out"].splitlines()
                  if re.match(r"^[a-z0-9_]+ +[\d,]+$", line.strip()))
    assert "tinynet" in listed and "resnet8" in listed, copy["out"][-2000:]
    assert int(listed["tinynet"].replace(",", "")) > 0


def test_snakemake_trained_one_epoch_of_each_row_and_its_teacher(copy):
    exp = copy["repo"] / "experiments" / "shapes"
    params = yaml.safe_load((exp / "params.yaml").read_text())
    rows = params["tables"]["shapes"]["rows"]
    assert {r["method"] for r in rows.values()} == {"ce", "ls", "kd", "le"}
    for label in rows:
        cfg = yaml.safe_load((exp / "results" / "shapes" / "tinynet" / label / "seed0" / "config.json").read_text())
        metrics = yaml.safe_load((exp / "results" / "shapes" / "tinynet" / label / "seed0" / "metrics.json").read_text())
        assert cfg["epochs"] == 1 and metrics["epochs"] == 1 and 0 <= metrics["test_acc"] <= 100
        assert cfg["dataset"]["name"] == "shapes" and cfg["model"]["name"] == "tinynet"
        assert "recipe" not in cfg  # the source declares a recipe for every model ("*")
    assert (exp / "results" / "shapes" / "resnet8" / "teacher" / "seed0" / "metrics.json").is_file()
    kd = yaml.safe_load((exp / "results" / "shapes" / "tinynet" / "kd" / "seed0" / "config.json").read_text())
    assert kd["method"]["teacher"] == "results/shapes/resnet8/teacher/seed0"
    le = yaml.safe_load((exp / "results" / "shapes" / "tinynet" / "le" / "seed0" / "config.json").read_text())
    assert le["method"]["warmup"] == 0 and le["method"]["explainer"] == "gradcam"


def test_the_folder_was_prepared_with_a_stratified_test_split(copy):
    import torch

    data = torch.load(copy["repo"] / "experiments" / "shapes" / "data" / "processed" / "shapes.pt", weights_only=True)
    t = data["tensors"]
    assert data["classes"] == ["circle", "square", "triangle"] and t["x_train"].shape[1:] == (3, 16, 16)
    assert len(t["y_train"]) + len(t["y_val"]) + len(t["y_test"]) == 60
    assert torch.bincount(t["y_test"], minlength=3).tolist() == [4, 4, 4]  # 20 % of 20 per class


def test_the_report_has_the_table_with_every_row_and_the_verdicts(copy):
    reports = copy["repo"] / "experiments" / "shapes" / "reports"
    table = (reports / "tables" / "shapes.md").read_text()
    for label in ("ce", "ls", "kd", "le"):
        assert re.search(rf"^\|[^|\n]*\b{label}\b", table, flags=re.M), (label, table)
    assert re.search(r"\d+\.\d", table)  # accuracies
    index = (reports / "index.md").read_text()
    assert "shapes" in index and (reports / "beyond.md").is_file()
    assert "Complete and current" in index
    # the page's own claim, judged on the runs (one seed: inconclusive, a rehearsal), not "not run"
    claims = (reports / "claims.md").read_text()
    u1 = [line for line in index.splitlines() if line.startswith("| U1 ")]
    assert u1 and "not run" not in u1[0] and "inconclusive" in u1[0] and "rehears" in u1[0], u1
    assert "U1" in claims and "shapes/tinynet" in claims


def test_the_users_model_gets_the_registry_tests_for_free(copy):
    """tests/test_models.py collects the user's model, with no edit: the contract checks, every method
    (trained one step, or refused in one line naming the method and the model) and every explainer."""
    from introspect.explain import EXPLAINERS
    from introspect.methods import METHODS

    args = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-k", "tinynet", "tests/test_models.py"]
    collected = run([*args, "--collect-only"], copy["repo"], copy["env"]).stdout
    picked = [line for line in collected.splitlines() if "tinynet" in line]
    for method in METHODS.names():
        assert f"trains_a_user_model_or_refuses_it_in_one_line[tinynet-{method}]" in collected, method
    for explainer in EXPLAINERS.names():
        assert f"explains_a_user_model_or_refuses_it_in_one_line[tinynet-{explainer}]" in collected, explainer
    assert any("test_gap_fc_is_what_the_conv_map_feeds" in line for line in picked)
    # run them, but the methods whose teachers are runs of their own (IE-KD, KED, self-regulated: CI time)
    own_teachers = [line for line in picked if re.search(r"tinynet-(iekd|ked|srl)", line)]
    args[args.index("tinynet")] = "tinynet and not (iekd or ked or srl)"
    out = run(args, copy["repo"], copy["env"]).stdout
    assert f"{len(picked) - len(own_teachers)} passed" in out, out[-2000:]


def test_the_cifar100_example_lists_its_models_and_dry_runs_offline(copy):
    script = blocks("bash")[1]
    out = run(["bash", "-e", "-c", script], copy["repo"], copy["env"])
    text = out.stdout + out.stderr
    assert re.search(r"^resnet8 +[\d,]+$", text, flags=re.M)
    exp = copy["repo"] / "experiments" / "cifar100"
    p = plan(yaml.safe_load((exp / "params.yaml").read_text()))
    assert len(p.runs) == 5 * (1 + 4 * 2)  # a teacher and four rows on two models, five seeds
    assert "rule prepare" in text or "prepare" in text
    assert not (exp / "results").exists() and not (exp / "data").exists()  # a dry run writes nothing


def test_a_broken_image_in_the_folder_stops_the_workflow_in_one_line_writing_no_result(copy):
    """The same experiment on a copy of the images with one file damaged: the prepare job fails with
    one line naming the file; no run starts, nothing is written under results/."""
    repo, shapes = copy["repo"], copy["repo"] / "experiments" / "shapes"
    broken = repo / "experiments" / "broken"
    shutil.copytree(shapes / "data" / "raw", broken / "data" / "raw")
    shutil.copy(shapes / "params.yaml", broken / "params.yaml")
    bad = broken / "data" / "raw" / "shapes" / "square" / "7.png"
    bad.write_bytes(bad.read_bytes()[:40])  # truncated
    out = run([str(BIN / "snakemake"), "--cores", "1", "--directory", str(broken)], repo, copy["env"], ok=False)
    assert out.returncode != 0
    log = (broken / "logs" / "prepare" / "shapes.log").read_text()
    assert log.count("\n") == 1 and log.startswith(f"introspect: error: data/raw/shapes/square/7.png: unreadable image"), log
    assert not (broken / "results").exists() and not (broken / "data" / "processed" / "shapes.pt").exists()


def test_an_image_added_to_the_folder_prepares_the_dataset_again_and_retrains_its_runs(copy):
    """The folder's files are the prepare job's inputs: a new image replans it, and every run after it."""
    from PIL import Image

    exp = copy["repo"] / "experiments" / "shapes"
    before = run([str(BIN / "snakemake"), "-n", "--cores", "1", "--directory", str(exp)], copy["repo"], copy["env"])
    assert "Nothing to be done" in before.stdout + before.stderr, (before.stdout + before.stderr)[-2000:]
    Image.new("RGB", (32, 32), (200, 10, 10)).save(exp / "data" / "raw" / "shapes" / "circle" / "new.png")
    after = run([str(BIN / "snakemake"), "-n", "--cores", "1", "--directory", str(exp)], copy["repo"], copy["env"])
    text = after.stdout + after.stderr
    assert re.search(r"^prepare +1$", text, flags=re.M) and re.search(r"^train +5$", text, flags=re.M), text[-3000:]
