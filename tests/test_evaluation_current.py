"""Evaluations and explanations are tied to their code, through the real workflow.

A copy of the package (as tests/test_current.py makes one, so the test can edit the code the way a
user does) and a tiny config: CE and LE (Grad-CAM) on CNN6, digits, one seed, one epoch, with LE's
explanations for Figures 1-2. After a full run, an edit of the evaluation code plans the evaluate job
again (not a train job), an edit of the explanation code plans the explain job too, and until they
run the report leaves the stale evaluation out.
"""
import re
import shutil
import subprocess
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import yaml

from test_current import BIN, ROOT, edit_code, run

ROWS = {"ce": {"method": "ce"}, "le_gradcam": {"method": "le", "set": {"method.explainer": "gradcam"}}}


def setup(tmp_path: Path) -> tuple[Path, dict]:
    import os

    src = tmp_path / "src"
    shutil.copytree(ROOT / "src" / "introspect", src / "introspect", ignore=shutil.ignore_patterns("__pycache__"))
    (tmp_path / "workflow").symlink_to(ROOT / "workflow")
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["seeds"] = [0]
    params["recipes"]["digits"] = {"epochs": 1, "batch_size": 128, "optim": {"lr": 0.05, "milestones": []}}
    params["method_options"] = {"le": {"warmup": 0}}
    params["tables"] = {"table2": {"dataset": "cifar10", "models": ["cnn6"], "rows": ROWS}}
    params["explanations"] = {"cifar10": {"model": "cnn6", "row": "le_gradcam", "seed": 0, "explainer": "gradcam"}}
    work = tmp_path / "work"
    work.mkdir()
    (work / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}", "PYTHONPATH": str(src)}
    return work, env


def planned(dry_run: str) -> set[str]:
    """The rules of the jobs a dry run would execute: its job rules, or its "Job stats" table's rows."""
    stats = re.findall(r"^(\w+)\s+\d+$", dry_run, re.M)
    return set(re.findall(r"^(?:local)?rule (\w+):", dry_run, re.M)) | set(stats) - {"total"}


def report(work: Path, env: dict) -> str:
    out = subprocess.run([str(BIN / "introspect"), "report", "--params", "params.yaml", "--results", "results",
                          "--reference", str(ROOT / "workflow" / "reference"), "--out", "reports"],
                         cwd=work, env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-2000:]
    return (work / "reports" / "beyond.md").read_text()


@pytest.mark.slow
def test_an_edit_of_the_evaluation_code_reruns_the_evaluate_job_and_the_report_ignores_the_old_one(tmp_path):
    work, env = setup(tmp_path)
    run("snakemake --cores 2", work, env)
    assert "have no current evaluation" not in (work / "reports" / "beyond.md").read_text()
    assert planned(run("snakemake --cores 2 -n", work, env).stdout) == set()
    # results.parquet has the faithfulness of each run's maps against random maps, and the images left out
    rows = pq.read_table(work / "reports" / "results.parquet").to_pylist()
    assert len(rows) == 2 and all(r["deletion_auc_random"] is not None and r["insertion_auc_relative"] is not None
                                  and r["faithfulness_images"] + r["faithfulness_ties"] + r["faithfulness_blank"] == 64
                                  for r in rows), rows

    # a comment changes nothing; an edit of what runs in introspect evaluate plans the evaluate job, no train job
    evaluate = tmp_path / "src" / "introspect" / "evaluate.py"
    evaluate.write_text(evaluate.read_text() + "\n# a comment\n")
    assert planned(run("snakemake --cores 2 -n", work, env).stdout) == set()
    edit_code(evaluate)
    dry = run("snakemake --cores 2 -n", work, env).stdout
    assert "evaluate" in planned(dry) and not planned(dry) & {"train", "explain"}, dry[-2000:]
    # until it runs, the report leaves the evaluations out (computed by other code than today's)
    assert "**2 of 2 current runs have no current evaluation**" in report(work, env)

    # an edit of the explanation code (introspect.analysis, which introspect evaluate imports too)
    edit_code(tmp_path / "src" / "introspect" / "analysis.py")
    dry = run("snakemake --cores 2 -n", work, env).stdout
    assert {"evaluate", "explain"} <= planned(dry) and "train" not in planned(dry), dry[-2000:]
    run("snakemake --cores 2", work, env)
    assert "have no current evaluation" not in (work / "reports" / "beyond.md").read_text()
    index = (work / "reports" / "index.md").read_text()
    assert "explanations `" not in index  # the new explanations.pt is current

    # an edit of the report's code plans the report job alone: a report is never older than its code
    edit_code(tmp_path / "src" / "introspect" / "report" / "claims.py")
    dry = run("snakemake --cores 2 -n", work, env).stdout
    assert "report" in planned(dry) and not planned(dry) & {"train", "explain", "evaluate"}, dry[-2000:]
