"""Results that are current and complete, replayed through the real workflow as a user meets them.

Each test works on its own copy of the package (so it can edit a method's code the way a user
does) and a tiny one-table config: CE (which also teaches), LS, KD from the CE run, and CWTM-Random
(no teacher, another module), ResNet8 on digits, one seed, two epochs. The recovery commands are
docs/recovery.md's, copied as written.
"""
import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from helpers import BIN, ROOT, TINY_DAG_ROWS as RUNS, env, kill_when, tiny_dag_params, write_params


def readme_block(heading: str) -> list[str]:
    """The commands of the first ```bash block after ``heading`` in docs/recovery.md, comments stripped."""
    text = (ROOT / "docs" / "recovery.md").read_text()
    block = text[text.index(heading):].split("```bash\n", 1)[1].split("```", 1)[0]
    return [line.split("#", 1)[0].strip() for line in block.splitlines() if line.split("#", 1)[0].strip()]


def setup(tmp_path: Path) -> tuple[Path, dict]:
    """A work folder with the tiny DAG's params.yaml and nothing run, and an environment that imports a
    copy of the package and keeps the tree's own run cache (the test kills its runs mid-epoch)."""
    src = tmp_path / "src"
    shutil.copytree(ROOT / "src" / "introspect", src / "introspect", ignore=shutil.ignore_patterns("__pycache__"))
    (tmp_path / "workflow").symlink_to(ROOT / "workflow")  # the package finds its config schema there
    return write_params(tmp_path / "work", tiny_dag_params()), env(own_cache=True, PYTHONPATH=str(src))


def built(dag: dict) -> tuple[Path, dict]:
    """The tiny DAG's copy (conftest.py's tiny_dag_copy), finished as `snakemake --cores all` left it."""
    assert_complete_and_current(dag["work"])
    return dag["work"], dag["env"]


def argv(command: str, work: Path) -> list[str]:
    """A docs command run on ``work`` (the Snakefile is the repository's; the tree is ``work``)."""
    words = command.split()
    assert words[0] == "snakemake", command
    return [str(BIN / "snakemake"), "--snakefile", str(ROOT / "Snakefile"), "--directory", str(work), *words[1:]]


def run(command: str, work: Path, env: dict) -> subprocess.CompletedProcess:
    out = subprocess.run(argv(command, work), env=env, capture_output=True, text=True)
    assert out.returncode == 0, f"{command}\n{out.stdout[-3000:]}\n{out.stderr[-3000:]}"
    return out


def folder(work: Path, row: str) -> Path:
    return work / "results" / "digits" / "resnet8" / row / "seed0"


def assert_complete_and_current(work: Path) -> None:
    for row in RUNS:
        assert {"metrics.json", "history.parquet", "checkpoint.pt", "provenance.json"} <= {
            p.name for p in folder(work, row).iterdir()}, row
    index = (work / "reports" / "index.md").read_text()
    assert f"**Complete and current**: all {len(RUNS)} planned runs are present and current." in index, index[:800]


def recover(work: Path, env: dict) -> None:
    """docs/recovery.md's recovery commands, as written."""
    commands = readme_block("## When things go wrong")
    assert commands == ["snakemake --unlock", "snakemake --cores all --rerun-incomplete"], commands
    for command in commands:
        run(command, work, env)


def edit_code(src_file: Path) -> None:
    """What a user's edit of a loss does to the code's syntax tree (a comment would change nothing)."""
    src_file.write_text(src_file.read_text() + "\n\nEDITED = True\n")


def jobs_of(dry_run: str) -> set[str]:
    """The run folders of the train jobs a dry run would execute."""
    outputs = [line for block in dry_run.split("rule ")[1:] if block.startswith("train:")
               for line in block.splitlines() if line.strip().startswith("output:")]
    return {row for line in outputs for row in re.findall(r"results/digits/resnet8/([a-z_]+)/seed0/provenance", line)}


@pytest.mark.slow
def test_edited_method_code_retrains_its_runs_and_their_students_and_keeps_the_old_ones_whole(tiny_dag_copy):
    work, env = built(tiny_dag_copy)
    assert "Nothing to be done" in run("snakemake --cores all -n", work, env).stdout + run(
        "snakemake --cores all -n", work, env).stderr

    # a comment or docstring changes nothing ...
    ce_module = tiny_dag_copy["src"] / "introspect" / "methods" / "regularizers.py"
    ce_module.write_text(ce_module.read_text().replace('"""', '"""A note. ', 1) + "\n# a comment\n")
    dry = run("snakemake --cores all -n", work, env)
    assert not jobs_of(dry.stdout), dry.stdout[-2000:]
    # ... an edit of what runs retrains CE and LS (its module), KD (its teacher, CE, was retrained), not CWTM-Random
    before = {row: json.loads((folder(work, row) / "metrics.json").read_text()) for row in RUNS}
    edit_code(ce_module)
    dry = run("snakemake --cores all -n", work, env)
    assert jobs_of(dry.stdout) >= {"ce", "ls"} and "cwtm_random" not in jobs_of(dry.stdout), dry.stdout[-2000:]
    run("snakemake --cores all", work, env)
    assert_complete_and_current(work)

    for row, why in (("ce", "its code changed"), ("ls", "its code changed"), ("kd", "ce/seed0 was retrained")):
        (old,) = (folder(work, row) / "superseded").iterdir()
        # whole: Snakemake deletes only a rerun job's receipts (provenance.json; config.json keeps it)
        assert {"config.json", "checkpoint.pt", "checkpoint.prev.pt", "history.parquet", "metrics.json",
                "superseded.json"} <= {p.name for p in old.iterdir()}, row
        assert json.loads((old / "metrics.json").read_text()) == before[row]
        assert why in json.loads((old / "superseded.json").read_text())["reason"], row
    assert not (folder(work, "cwtm_random") / "superseded").exists()
    index = (work / "reports" / "index.md").read_text()
    assert "3 superseded runs kept whole" in index


@pytest.mark.slow
def test_a_run_edited_outside_the_workflow_is_stale_in_the_report_until_retrained(tiny_dag_copy):
    work, env = built(tiny_dag_copy)
    # the teacher retrained by hand in its folder (another seed's weights in the same place)
    ce = folder(work, "ce")
    cfg = json.loads((ce / "config.json").read_text())
    cfg.pop("provenance")
    report = subprocess.run([str(BIN / "introspect"), "report", "--params", "params.yaml", "--results", "results",
                             "--reference", str(ROOT / "workflow" / "reference"), "--out", "reports"],
                            cwd=work, env=env, capture_output=True, text=True)
    assert report.returncode == 0 and "all 4 planned runs are present and current" in report.stderr, report.stderr
    subprocess.run([str(BIN / "introspect"), "train", "--config-json", json.dumps({**cfg, "optim": {**cfg["optim"], "lr": 0.02}}),
                    "--out", str(ce), "--supersede"], cwd=work, env=env, capture_output=True, text=True, check=True)
    report = subprocess.run([str(BIN / "introspect"), "report", "--params", "params.yaml", "--results", "results",
                             "--reference", str(ROOT / "workflow" / "reference"), "--out", "reports"],
                            cwd=work, env=env, capture_output=True, text=True)
    assert "2 of 4 planned runs are present and current; 0 missing, 2 stale" in report.stderr, report.stderr
    assert "stale: digits/resnet8/ce/seed0 (its config is not the plan's)" in report.stderr
    assert "stale: digits/resnet8/kd/seed0 (results/digits/resnet8/ce/seed0 was retrained)" in report.stderr
    index = (work / "reports" / "index.md").read_text()
    assert index.splitlines()[2].startswith("**Incomplete**: 2 of 4 planned runs are present and current; 2 stale")
    advice = re.search(r"`(snakemake [^`]+)` trains exactly those", index.splitlines()[2]).group(1)
    run(advice, work, env)  # what the report says to do, as it says it
    assert_complete_and_current(work)
    assert len(list((ce / "superseded").iterdir())) == 2  # the plan's first run, then the one changed by hand


@pytest.mark.slow
def test_killed_forcerun_then_the_readme_recovery_ends_complete_and_current(tiny_dag_copy):
    work, env = built(tiny_dag_copy)
    receipts = [folder(work, row) / "provenance.json" for row in RUNS]
    # --forcerun train killed once it has deleted a job's receipt (the job is running)
    kill_when(argv("snakemake --cores all --forcerun train", work), env, lambda: not all(r.exists() for r in receipts))
    recover(work, env)
    assert_complete_and_current(work)


@pytest.mark.slow
def test_killed_mid_epoch_between_jobs_and_during_the_report_then_recovery_ends_complete_and_current(tmp_path):
    work, env = setup(tmp_path)
    # mid-epoch: the first run is training (its first checkpoint is written)
    kill_when(argv("snakemake --cores all", work), env, lambda: (folder(work, "ce") / "checkpoint.pt").exists())
    recover(work, env)
    assert_complete_and_current(work)
    # between jobs, after a code edit: CE's run retrained and finished, its students not yet
    edit_code(tmp_path / "src" / "introspect" / "methods" / "regularizers.py")
    kill_when(argv("snakemake --cores all", work), env, lambda: (folder(work, "ce") / "superseded").exists()
              and (folder(work, "ce") / "provenance.json").exists())
    recover(work, env)
    assert_complete_and_current(work)
    assert len(list((folder(work, "ce") / "superseded").iterdir())) == 1  # the resumed run was not superseded again
    # during the report
    (work / "reports" / "index.md").unlink()
    (work / "logs" / "report.log").unlink()
    kill_when(argv("snakemake --cores all", work), env, lambda: (work / "logs" / "report.log").exists())
    recover(work, env)
    assert_complete_and_current(work)
