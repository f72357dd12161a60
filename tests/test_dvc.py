"""DVC as a DVC user meets it, through the real `dvc` command line on a copy of this repository.

docs/dvc.md's commands run as printed, after `snakemake --cores all`, on the shipped params.yaml
(``page``: the quick DAG once, about 6 to 7 minutes on 2 cores, then the page's block, about 3 more).
A tiny experiment (two tables, one seed, one epoch on digits) checks, more cheaply, that `dvc repro`
alone builds everything from nothing, then one parameter changes in `dvc exp run`: the experiment
table, the metrics diff between two commits, the plots (one per table, a curve per row) and the
link cache are checked on those two runs.
"""
import hashlib
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from helpers import BIN, ROOT, copy_clone, env, tiny_params, write_params
from introspect.checkpoint import NAME, read_checkpoint, save_checkpoint
from introspect.fileio import save_json

TABLES = {  # two tables, so that "one plot per table" can fail
    "table2": {"dataset": "cifar10", "metric": "test_acc", "models": ["resnet8"],
               "rows": {"ce": {"method": "ce"}, "ls": {"method": "ls"}}},
    "table3": {"dataset": "mnist", "metric": "test_err", "models": ["mlp1024"], "rows": {"ce": {"method": "ce"}}},
}
CHANGE = "method_options.ls.alpha=0.5"  # retrains the ls run only
METRICS = "reports/metrics.json"


def clone_env(work: Path) -> dict:
    """The clone's package first, DVC without analytics, git with a committer."""
    return env(PYTHONPATH=str(work / "src"), DVC_NO_ANALYTICS="1", GIT_AUTHOR_NAME="t", GIT_AUTHOR_EMAIL="t@t",
               GIT_COMMITTER_NAME="t", GIT_COMMITTER_EMAIL="t@t")


def run(work: Path, *args: str) -> str:
    done = subprocess.run(list(args), cwd=work, env=clone_env(work), capture_output=True, text=True)
    assert done.returncode == 0, f"{' '.join(args)} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done.stdout


def dvc(work: Path, *args: str) -> str:
    return run(work, str(BIN / "dvc"), *args)


def tiny(work: Path) -> None:
    params = tiny_params(TABLES, datasets=("digits", "mnist5k"),  # what cifar10 and mnist stand for at the quick scale
                         explanations={"mnist": {"model": "mlp1024", "row": "ce", "seed": 0}})  # figures/ is an output
    params["method_options"]["ls"] = {"alpha": 0.9}
    write_params(work, params)


def headline_values(exp_show: list[dict]) -> dict[str, dict]:
    """rev or experiment name -> its reports/metrics.json, from `dvc exp show --json`."""
    out = {}
    for entry in exp_show:
        for rev in [entry, *(e for x in entry.get("experiments") or [] for e in x["revs"])]:
            data = (rev.get("data") or {}).get("metrics", {}).get(METRICS, {}).get("data")
            out[rev.get("name") or rev["rev"]] = data
    return out


@pytest.fixture(scope="module")
def repo(tmp_path_factory):
    """A git repository made from a copy of this one: `dvc repro` committed, then one experiment
    (`dvc exp run -S`) whose outputs are left in the workspace."""
    work = tmp_path_factory.mktemp("dvc") / "repo"
    copy_clone(work)
    assert not (work / "dvc.lock").exists(), "a dvc.lock made elsewhere would be rewritten by the first repro"
    tiny(work)
    run(work, "git", "init", "-q", "-b", "main")
    run(work, "git", "add", "-A")
    run(work, "git", "commit", "-qm", "tiny experiment")
    dvc(work, "repro")
    run(work, "git", "add", "-A")  # dvc.lock and the outputs that .gitignore lets through
    run(work, "git", "commit", "-qm", "repro")
    first = json.loads((work / METRICS).read_text())
    dvc(work, "exp", "run", "-n", "alpha05", "-S", CHANGE)
    return {"work": work, "first": first, "second": json.loads((work / METRICS).read_text())}


def test_the_repository_ships_no_dvc_lock():
    tracked = subprocess.run(["git", "ls-files", "dvc.lock"], cwd=ROOT, capture_output=True, text=True).stdout
    assert tracked == ""


@pytest.mark.slow
def test_repro_commits_only_text_outputs_to_git_and_links_the_cache(repo):
    work = repo["work"]
    committed = run(work, "git", "show", "--name-only", "--format=", "HEAD~0").split()
    assert {"dvc.lock", METRICS, "reports/curves/table2.csv", "reports/beyond.md", "reports/claims.md"} <= set(committed)
    # every file of the report is in git or in one of DVC's outputs: nothing a DVC user would not version
    stages = yaml.safe_load((work / "dvc.yaml").read_text())["stages"]
    outs = [next(iter(o)) if isinstance(o, dict) else o for st in stages.values()
            for key in ("outs", "metrics", "plots") for o in st.get(key, [])]
    in_git = set(run(work, "git", "ls-files", "reports").split())
    written = [str(f.relative_to(work)) for f in (work / "reports").rglob("*") if f.is_file()]
    assert [f for f in written if f not in in_git and not any(f == o or f.startswith(o + "/") for o in outs)] == []
    assert not [p for p in committed if p.startswith(("results/", "data/", "reports/figures", "reports/tables"))]
    assert "Data and pipelines are up to date" in dvc(work, "status")
    checkpoint = work / "results/digits/resnet8/ce/seed0/checkpoint.pt"
    cached = {(p.stat().st_ino) for p in (work / ".dvc/cache").rglob("*") if p.is_file()}
    assert checkpoint.is_symlink() or (checkpoint.stat().st_nlink > 1 and checkpoint.stat().st_ino in cached), \
        "the output is a copy of the cache, not a link to it"


def test_exp_show_compares_headline_metrics(repo):
    work, first, second = repo["work"], repo["first"], repo["second"]
    assert set(first) == {"table2", "table3"} and set(first["table2"]["resnet8"]) == {"ce", "ls"}
    values = headline_values(json.loads(dvc(work, "exp", "show", "--json")))
    assert values["alpha05"] == second and values["main"] == first  # real numbers for both: no `!`
    assert second["table2"]["resnet8"]["ce"] == first["table2"]["resnet8"]["ce"]  # not retrained
    assert second["table2"]["resnet8"]["ls"] != first["table2"]["resnet8"]["ls"]
    plain = dvc(work, "exp", "show", "--no-pager", "--only-changed", "--md")
    header = plain.splitlines()[0]
    assert "table2.resnet8.ls" in header and "method_options.ls.alpha" in header
    assert "table2.resnet8.ce" not in header and "!" not in plain


def test_metrics_diff_between_commits(repo):
    work, first, second = repo["work"], repo["first"], repo["second"]
    run(work, "git", "add", "-u")
    run(work, "git", "commit", "-qm", CHANGE)
    diff = json.loads(dvc(work, "metrics", "diff", "HEAD~1", "--json"))[METRICS]
    assert diff == {"table2.resnet8.ls": {"old": first["table2"]["resnet8"]["ls"],
                                          "new": second["table2"]["resnet8"]["ls"],
                                          "diff": pytest.approx(second["table2"]["resnet8"]["ls"]
                                                                - first["table2"]["resnet8"]["ls"])}}


def test_the_cache_is_intact_after_every_run(repo):
    """Outputs are hard links to the cache: a writer that wrote through one would change a cache file."""
    files = [p for p in (repo["work"] / ".dvc/cache/files/md5").rglob("*") if p.is_file()]
    assert files
    for path in files:
        digest = hashlib.md5(path.read_bytes()).hexdigest()
        assert path.parent.name + path.name.removesuffix(".dir") == digest, f"{path} was written through a link"


def test_atomic_writes_replace_a_link_never_write_through_it(tmp_path):
    """Every writer of results/ and reports/ goes through fileio.atomic_write (or os.replace): the
    new file takes the link's name, the linked cache file keeps its bytes."""
    cache = tmp_path / "cache"
    cache.write_bytes(b"cached")
    linked = tmp_path / "out" / "metrics.json"
    linked.parent.mkdir()
    os.link(cache, linked)
    save_json({"a": 1}, linked)
    assert cache.read_bytes() == b"cached" and json.loads(linked.read_text()) == {"a": 1}
    os.link(cache, linked.with_name(NAME))
    save_checkpoint({"epoch": 1}, linked.parent)
    assert cache.read_bytes() == b"cached" and read_checkpoint(linked.with_name(NAME))["epoch"] == 1


def test_plots_one_per_table_a_curve_per_row(repo):
    work = repo["work"]
    shown = json.loads(dvc(work, "plots", "show", "--json"))
    plots = shown.get("data", shown)
    assert sorted(plots) == ["reports/curves/table2.csv", "reports/curves/table3.csv"]
    for path, rows in (("reports/curves/table2.csv", {"ce", "ls"}), ("reports/curves/table3.csv", {"ce"})):
        (spec,) = plots[path]
        content = spec["content"]
        assert content["encoding"]["color"]["field"] == "row"
        assert {point["row"] for point in content["data"]["values"]} == rows
        assert {point["epoch"] for point in content["data"]["values"]} == {"1"}  # one epoch, counted from 1
    dvc(work, "plots", "show", "-o", "plots")  # the page a user opens: one chart per table
    assert (work / "plots" / "index.html").read_text().count("vegaEmbed(") == len(TABLES)
    diffed = json.loads(dvc(work, "plots", "diff", "HEAD~1", "--json"))  # after the metrics test's commit
    points = diffed.get("data", diffed)["reports/curves/table2.csv"][0]["content"]["data"]["values"]
    ls = {p["rev"]: float(p["test_acc"]) for p in points if p["row"] == "ls"}  # a dash per revision
    assert ls == {"HEAD~1": pytest.approx(repo["first"]["table2"]["resnet8"]["ls"], abs=0.005),  # metrics: 2 decimals
                  "workspace": pytest.approx(repo["second"]["table2"]["resnet8"]["ls"], abs=0.005)}


# docs/dvc.md, as printed -----------------------------------------------------------------------
PAGE = ROOT / "docs" / "dvc.md"
LE_JOBS = {"digits/resnet8/le_gradcam", "digits/resnet8/le_grad", "digits/resnet8/le_grad_input",
           "digits/resnet8/le_guided_bp", "mnist5k/mlp1024/le_grad"}  # one train job per table row, 3 seeds each


def page_commands() -> list[str]:
    (block,) = re.findall(r"```bash\n(.*?)```", PAGE.read_text(), re.S)
    return [line for line in block.splitlines() if line.strip()]


def shell(work: Path, command: str) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", "-c", command], cwd=work, env=clone_env(work), capture_output=True, text=True)


def jobs_run(work: Path) -> dict[str, int]:
    """table row (dataset/model/variant) -> the mtime (ns) of its train job's log: Snakemake rewrites a
    job's log when it runs the job (DVC links and relinks results/, so their mtimes say nothing)."""
    logs = work / "logs" / "train"
    return {str(p.relative_to(logs).with_suffix("")): p.stat().st_mtime_ns for p in logs.glob("*/*/*.log")}


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    """A clone (a copy of the files git would have, committed) with the shipped params.yaml; the
    README's `snakemake --cores all`; then each command of docs/dvc.md's block, as printed."""
    work = tmp_path_factory.mktemp("dvcpage") / "repo"
    copy_clone(work)
    assert (work / "params.yaml").read_bytes() == (ROOT / "params.yaml").read_bytes()
    run(work, "git", "init", "-q", "-b", "main")
    run(work, "git", "add", "-A")
    run(work, "git", "commit", "-qm", "clone")
    built = shell(work, "snakemake --cores all")
    assert built.returncode == 0, built.stderr[-3000:]
    before, params = jobs_run(work), (work / "params.yaml").read_text()
    steps = []
    for command in page_commands():
        done = shell(work, command)
        assert done.returncode == 0, f"{command}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
        steps.append({"command": command, "out": done.stdout + done.stderr, "jobs": jobs_run(work)})
    return {"work": work, "before": before, "params": params, "steps": steps}


def step(page, prefix: str) -> dict:
    return next(s for s in page["steps"] if s["command"].startswith(prefix))


@pytest.mark.slow
def test_repro_after_snakemake_retrains_nothing(page):
    repro = step(page, "dvc repro")
    assert repro["jobs"] == page["before"] and len(page["before"]) == 44  # not one train job ran again
    assert len(list((page["work"] / "results").glob("*/*/*/seed*/metrics.json"))) == 132
    assert repro["out"].count("Nothing to be done") == 2, repro["out"][-3000:]  # both stages: no Snakemake job
    committed = run(page["work"], "git", "show", "--name-only", "--format=", "HEAD").split()
    assert "dvc.lock" in committed and "reports/metrics.json" in committed


@pytest.mark.slow
def test_the_experiment_retrains_exactly_the_le_runs(page):
    exp = step(page, "dvc exp run")
    before, after = page["before"], exp["jobs"]
    assert set(after) == set(before)
    assert {r for r in after if after[r] != before[r]} == LE_JOBS
    for row in LE_JOBS:  # trained again, every seed, all 3 epochs (not restored, not left as they were)
        assert (page["work"] / "logs" / "train" / f"{row}.log").read_text().count("epoch 3/3") == 3, row
    # params.yaml: the one line the experiment set, nothing else rewritten by DVC's round trip
    new = (page["work"] / "params.yaml").read_text().splitlines()
    changed = [(a, b) for a, b in zip(page["params"].splitlines(), new) if a != b]
    assert len(new) == len(page["params"].splitlines()) and changed == [
        ("  le: {warmup: {quick: 1, laptop: 10, paper: 10}}", "  le: {warmup: {quick: 2, laptop: 10, paper: 10}}")]


@pytest.mark.slow
def test_exp_show_and_metrics_diff_compare_the_experiment_with_the_commit(page):
    shown = step(page, "dvc exp show")["out"]
    header, *rows = [line for line in shown.splitlines() if line.startswith("|")]
    assert "method_options.le.warmup.quick" in header and "table2.resnet8.le_gradcam" in header
    assert "table2.resnet8.ce" not in header  # unchanged: not shown
    assert any("main" in row for row in rows) and any("[le-warmup2]" in row for row in rows)
    diff = step(page, "dvc metrics diff")["out"]
    rows = [line for line in diff.splitlines() if "reports/metrics.json" in line]
    assert rows and all(".le_" in line for line in rows), diff  # only LE rows changed
    assert any("table2.resnet8.le_gradcam" in line for line in rows) and any("table3.mlp1024.le_grad" in line for line in rows)
    values = json.loads(shell(page["work"], "dvc metrics diff --json").stdout)["reports/metrics.json"]
    assert all(v["old"] is not None and v["new"] is not None for v in values.values())  # both sides exist


@pytest.mark.slow
def test_plots_diff_writes_one_chart_per_table(page):
    html = (page["work"] / "dvc_plots" / "index.html").read_text()
    curves = sorted((page["work"] / "reports" / "curves").glob("*.csv"))
    assert curves and html.count("vegaEmbed(") == len(curves)


def test_the_page_says_the_plots_need_a_network():
    assert "CDN" in PAGE.read_text() and "offline" in PAGE.read_text()


def test_an_experiment_rewrites_one_line_of_params_yaml(tmp_path):
    """DVC's YAML round trip (what `dvc exp run -S` does to params.yaml) keeps the shipped file: only
    the line set changes (no wrapped lines, no `~` made `null`, no flow list made a block list)."""
    from dvc.utils.hydra import apply_overrides

    key = re.search(r"-S (\S+)=", "\n".join(page_commands())).group(1)
    path = tmp_path / "params.yaml"
    shutil.copy(ROOT / "params.yaml", path)
    old = path.read_text().splitlines()
    apply_overrides(str(path), [f"{key}=7"])
    new = path.read_text().splitlines()
    assert len(new) == len(old) and sum(a != b for a, b in zip(old, new)) == 1, \
        [(a, b) for a, b in zip(old, new) if a != b][:5]


# params.yaml's keys that change no result: how jobs are grouped, and where finished runs are restored from
NOT_DVC_PARAMS = {"train_jobs", "run_cache"}


def test_every_key_of_params_yaml_that_changes_a_result_is_a_param_of_a_stage():
    """`dvc repro` reruns a stage when one of its params changes: a key of params.yaml that is no stage's
    param (as `claims` once was: a claim added there left the report as it was) changes nothing under DVC."""
    stages = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    declared = {p for stage in stages.values() for p in stage.get("params", [])}
    keys = set(yaml.safe_load((ROOT / "params.yaml").read_text()))
    assert keys - NOT_DVC_PARAMS == declared, (keys - NOT_DVC_PARAMS) ^ declared
    assert "claims" in stages["report"]["params"]
