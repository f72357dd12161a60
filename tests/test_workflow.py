"""The Snakemake DAG and the DVC stages, run for real on a shrunk quick config."""
import json
import re
import shutil
import subprocess

import pyarrow.parquet as pq
import pytest
import yaml

from helpers import BIN, ROOT, env, tiny_params, write_params
from introspect import pipeline

ENV = env()


def snakemake(*args, cwd=ROOT, check=True):
    out = subprocess.run([str(BIN / "snakemake"), "--snakefile", str(ROOT / "Snakefile"), *args],
                         cwd=cwd, env=ENV, capture_output=True, text=True)
    if check and out.returncode != 0:
        raise AssertionError(f"snakemake {' '.join(args)} failed:\n{out.stdout[-3000:]}\n{out.stderr[-3000:]}")
    return out


def shrunk_params() -> dict:
    """The quick config, one seed, two epochs: every method and model family still in it."""
    return tiny_params(epochs=2, datasets=("digits", "mnist5k"), milestones=[1], seeds={"quick": [0], "paper": [0]},
                       method_options={"le": {"warmup": 1}, "le_permut": {"warmup": 1}})


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    work = write_params(tmp_path_factory.mktemp("quick"), shrunk_params())
    snakemake("--cores", "2", "--directory", str(work))
    return work


@pytest.mark.slow
def test_quick_dag_end_to_end(quick_run):
    plan = pipeline.load(quick_run / "params.yaml")
    rows = pq.read_table(quick_run / "reports" / "results.parquet").to_pylist()
    assert {r["run_id"] for r in rows} == set(plan.runs)
    for table in plan.tables:
        md = (quick_run / "reports" / "tables" / f"{table.name}.md").read_text()
        tex = (quick_run / "reports" / "tables" / f"{table.name}.tex").read_text()
        assert "\\toprule" in tex and "\\bottomrule" in tex
        for row in table.rows:
            assert row.label in md, (table.name, row.label)
    methods_run = {json.loads(r["config"])["method"]["name"] if "config" in r else r["method"] for r in rows}
    assert methods_run == {r.config["method"]["name"] for r in plan.runs.values()}
    index = (quick_run / "reports" / "index.md").read_text()
    table1 = (quick_run / "reports" / "tables" / "table1.md").read_text()
    assert re.search(r"teacher \(cnn8, ce\) \| \d+\.\d\d ± \S+ \(1\) \| —", table1)
    table4 = (quick_run / "reports" / "tables" / "table4.md").read_text()
    assert re.search(r"dml, second network \| \d+\.\d\d ± \S+ \(1\)", table4)
    table5 = (quick_run / "reports" / "tables" / "table5.md").read_text()
    assert re.search(r"teacher \(resnet20, ce\) \| \d+\.\d\d ± \S+ \(1\)", table5)
    assert re.search(r"assistant of takd \(kd from the teacher\) \| resnet14: \d+\.\d\d ± \S+ \(1\)", table5)
    claims = (quick_run / "reports" / "claims.md").read_text()
    for claim in ("C1", "C2", "C3", "C5", "C6"):
        assert f"**{claim}**" in claims or f"| {claim} " in claims or f"{claim}:" in claims, claim
    for name in ("table1", "table2", "table3", "table4", "table5", "table6_mnist", "table6_cifar10", "figure3", "claims.md",
                 "figure1_cifar10.png", "figure2_mnist.png", "figure3.png"):
        assert name in index
    for fig in ("figure1_cifar10", "figure2_cifar10", "figure1_mnist", "figure2_mnist", "figure3"):
        for ext in ("png", "pdf"):
            assert (quick_run / "reports" / "figures" / f"{fig}.{ext}").stat().st_size > 1000
    assert "C4" in (quick_run / "reports" / "claims.md").read_text()


@pytest.mark.slow
def test_snakemake_html_report_includes_the_figures(quick_run):
    snakemake("--directory", str(quick_run), "--report", "reports/report.html")
    html = (quick_run / "reports" / "report.html").read_text(errors="replace")
    for fig in ("figure1_cifar10.png", "figure2_mnist.png", "figure3.png"):
        assert fig in html


@pytest.mark.slow
def test_rerun_does_nothing(quick_run):
    out = snakemake("--cores", "2", "--directory", str(quick_run), "-n")
    assert "Nothing to be done" in out.stdout + out.stderr


@pytest.mark.slow
def test_changing_one_le_option_reruns_only_le_runs(quick_run, tmp_path):
    params = yaml.safe_load((quick_run / "params.yaml").read_text())
    params["method_options"]["le"]["warmup"] = 0
    changed = tmp_path / "changed.yaml"
    changed.write_text(yaml.safe_dump(params, sort_keys=False))
    out = snakemake("--cores", "2", "--directory", str(quick_run), "--configfile", str(changed), "-n", "train_all")
    text = out.stdout + out.stderr
    retrained = {m for line in text.splitlines() if line.strip().startswith("output: results/")
                 for m in re.findall(r"results/(\S+?)/provenance\.json", line)}
    plan = pipeline.load(changed)
    le_runs = {rid for rid, r in plan.runs.items() if r.config["method"]["name"] == "le"}
    assert retrained == le_runs and le_runs


def test_paper_dry_run_holds_every_tables_runs(tmp_path):
    shutil.copy(ROOT / "params.yaml", tmp_path / "params.yaml")
    out = snakemake("-n", "--directory", str(tmp_path), "--config", "scale=paper")
    text = out.stdout + out.stderr
    plan = pipeline.load(ROOT / "params.yaml", scale="paper")
    for run_id in plan.runs:
        assert f"results/{run_id}/provenance.json" in text, run_id
    # every learned-from run (teacher, assistant, stage) is an input of its student's job
    inputs = {}
    parts = re.split(r"^(?:local)?rule (\w+):$", text, flags=re.M)
    for rule, block in zip(parts[1::2], parts[2::2]):
        if rule != "train":
            continue
        fields = dict(re.findall(r"^\s+(input|wildcards): (.*)$", block, re.M))
        w = dict(kv.split("=") for kv in fields["wildcards"].split(", "))
        inputs[f"{w['dataset']}/{w['model']}/{w['variant']}"] = fields["input"]
    edges = 0
    for run in plan.runs.values():
        for need in run.needs:
            assert f"results/{need}/provenance.json" in inputs[f"{run.dataset}/{run.model}/{run.variant}"], (run.id, need)
            edges += 1
    methods = {r.config["method"]["name"] for r in plan.runs.values() if r.needs}
    assert {"kd", "dkpp", "cwtm", "cwtm_permut", "ban", "ban_l", "hint_stage", "fsp_stage", "at_kd"} <= methods
    assert {"hint", "fsp_kd", "takd"} <= {r.variant for r in plan.runs.values() if r.needs} and edges
    # the seed papers' chains: teacher -> auto-encoder stage -> IE-KD; self-regulated / explaining teachers
    for student, teacher in (("iekd", "resnet26/teacher_iekd_ae"), ("srl_significance", "resnet26/teacher_srl_teacher"),
                             ("srl_regulated", "resnet26/teacher_srl_teacher"), ("srl_hybrid", "resnet26/teacher_srl_teacher"),
                             ("ked", "resnet26/teacher_ked_teacher"), ("e2kd", "resnet26/teacher")):
        for model in ("resnet14", "resnet8"):
            assert f"results/cifar10/{teacher}/seed3/provenance.json" in inputs[f"cifar10/{model}/{student}"], (student, model)
    assert "results/cifar10/resnet26/teacher/seed4/provenance.json" in inputs["cifar10/resnet26/teacher_iekd_ae"]
    assert "teacher/seed" not in inputs["cifar10/resnet26/teacher_srl_teacher"]  # trained from scratch, like ked_teacher
    assert "data/processed/cifar10.pt" in text and "data/processed/mnist.pt" in text


def test_bad_config_stops_before_any_job_with_one_line(tmp_path):
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["tables"]["table2"]["rows"]["ce"]["method"] = "sgd"
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    out = snakemake("--cores", "1", "--directory", str(tmp_path), check=False)
    assert out.returncode != 0
    lines = [line for line in out.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith(
        "introspect: config error: tables.table2.rows.ce: method.name: unknown method 'sgd'; choices: at_kd, ban, ban_l, ce,")
    assert not (tmp_path / "results").exists() and not (tmp_path / "data").exists()


def test_lint_is_clean():
    out = snakemake("--lint", check=False)
    assert out.returncode == 0, out.stdout + out.stderr


def test_dvc_repro_dry_runs_the_same_snakemake_targets():
    out = subprocess.run([str(BIN / "dvc"), "repro", "--dry", "--force"], cwd=ROOT, env=ENV, capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "snakemake --cores all train_all" in out.stdout
    assert "snakemake --cores all all" in out.stdout


PIPELINE_BLOCKS = [("README.md", "## Scales, and what each decides"), ("docs/pipeline.md", "# The pipeline")]


def readme_pipeline_commands(page: str = "docs/pipeline.md", heading: str = "# The pipeline") -> list[str]:
    """The commands of the first ```bash block under ``heading`` of ``page``, comments stripped."""
    text = (ROOT / page).read_text()
    block = text[text.index(heading):].split("```bash\n", 1)[1].split("```", 1)[0]
    return [line.split("#", 1)[0].strip() for line in block.splitlines() if line.split("#", 1)[0].strip()]


@pytest.mark.slow
@pytest.mark.parametrize("page, heading", PIPELINE_BLOCKS)
def test_every_readme_pipeline_command_runs_as_written(tmp_path, page, heading):
    """Each command of the README's pipeline block, copied: `introspect plan` for real, every DAG as a
    dry run (-n appended: these are hours of training) whose train jobs are those of the plan it names.
    (`--report` needs finished runs: test_snakemake_html_report_includes_the_figures runs it.)"""
    commands = [part.strip() for line in readme_pipeline_commands(page, heading) for part in line.split("&&")]
    assert "snakemake --cores all --config scale=laptop" in commands and "introspect plan --scale laptop" in commands
    shutil.copy(ROOT / "params.yaml", tmp_path / "params.yaml")
    ran = 0
    for command in commands:
        words = command.split()
        if "--report" in words:
            continue
        if words[0] == "introspect":
            out = subprocess.run([str(BIN / "introspect"), *words[1:]], cwd=tmp_path, env=ENV, capture_output=True, text=True)
            assert out.returncode == 0 and "training jobs and 1 evaluate job" in out.stdout, command + out.stderr
            ran += 1
            continue
        assert words[0] == "snakemake", command
        words = [str(ROOT / w) if w.startswith("workflow/profiles/") else w for w in words[1:]]
        out = snakemake(*words, "-n", cwd=tmp_path)
        scale = words[words.index("--config") + 1].split("=")[1] if "--config" in words else "quick"
        plan = pipeline.load(ROOT / "params.yaml", scale=scale)
        jobs = dict(re.findall(r"^(\w+)\s+(\d+)$", out.stdout, re.M))
        rows = {(r.dataset, r.model, r.variant) for r in plan.runs.values()}
        expected = len(plan.runs) if plan.train_jobs == "seed" else len(rows)  # one job per run, or per row
        assert int(jobs["train"]) == expected and int(jobs["evaluate"]) == 1, command + out.stdout[-1500:]
        ran += 1
    assert ran == len([c for c in commands if "--report" not in c.split()])
