"""`introspect status`: per table, runs current, stale, running (epoch, s/epoch, ETA), interrupted,
missing; and the report's first line, marked out of date while a workflow run changes results/."""
import io
import json
import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from helpers import ROOT, env, snakemake_argv as snakemake, tiny_params, write_params
from introspect import pipeline
from introspect.cli import main
from introspect.status import OUT_OF_DATE, PROGRESS, collect, mark_out_of_date, render, run_state, watch

ENV = env(own_cache=True)  # the kill test must see its run train: the tree's own run cache


def tiny(work: Path, epochs: int = 1) -> Path:
    return write_params(work, tiny_params({"table2": {"dataset": "cifar10", "metric": "test_acc", "models": ["resnet8"],
                                                      "rows": {"ce": {"method": "ce"}}}}, epochs))


def current(work: Path) -> bool:
    """The report says it is complete and current (near its top) and carries no out-of-date mark."""
    text = (work / "reports/index.md").read_text()
    return OUT_OF_DATE not in text and "**Complete and current**" in "".join(text.splitlines(True)[:5])


def test_importing_status_imports_no_torch():
    code = "import sys, introspect.status; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=ENV)
    assert out.returncode == 0 and out.stdout.strip() == "False", out.stderr


def test_states_from_the_files_of_a_run(tmp_path):
    now = time.time()
    live = {"epoch": 2, "epochs": 5, "seconds": [2.0, 4.0], "updated": now, "host": socket.gethostname(), "pid": os.getpid()}
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    cases = {"a": ("metrics.json", {}), "b": (PROGRESS, live), "c": (PROGRESS, {**live, "pid": dead.pid}),
             "d": ("checkpoint.pt", {})}
    for run, (name, content) in cases.items():
        (tmp_path / run).mkdir()
        (tmp_path / run / name).write_text(json.dumps(content))
    states = {run: run_state(tmp_path, run, 5, now) for run in [*cases, "e"]}
    assert {r: s.state for r, s in states.items()} == {"a": "current", "b": "running", "c": "interrupted",
                                                         "d": "interrupted", "e": "missing"}
    assert states["b"].seconds_per_epoch == 3.0 and states["b"].eta == 9.0  # 3 epochs left at 3 s each
    # from another host: running while the file is recent, interrupted once it is old
    other = {**live, "host": "elsewhere", "updated": now - 60}
    (tmp_path / "b" / PROGRESS).write_text(json.dumps(other))
    assert run_state(tmp_path, "b", 5, now).state == "running"
    (tmp_path / "b" / PROGRESS).write_text(json.dumps({**other, "updated": now - 3600}))
    assert run_state(tmp_path, "b", 5, now).state == "interrupted"


def test_training_writes_its_progress(teacher_run):
    progress = json.loads((teacher_run / PROGRESS).read_text())
    assert progress["epoch"] == progress["epochs"] == 1 and len(progress["seconds"]) == 1
    assert progress["pid"] != os.getpid() or progress["host"] == socket.gethostname()


def test_per_table_lines_name_stale_and_missing_runs(tmp_path, capsys):
    work = tiny(tmp_path / "w")
    plan = pipeline.load(work / "params.yaml")
    run = work / "results" / "digits/resnet8/ce/seed0"
    run.mkdir(parents=True)
    (run / "metrics.json").write_text("{}")  # finished, but with no config.json: not current
    states = collect(plan, work / "results")
    assert states["digits/resnet8/ce/seed0"].state == "stale"
    text = render(plan, work / "results", work / "reports", states)
    lines = text.splitlines()
    assert lines[0].startswith("# scale quick: 0 of 1 runs finished and current, 1 stale")
    assert lines[1].split()[:4] == ["table2", "0/1", "current,", "1"] and "stale" in lines[1]
    assert "config.json is missing" in text and "no report yet" in text
    assert main(["status", "--params", str(work / "params.yaml"), "--results", str(work / "results"),
                 "--reports", str(work / "reports")]) == 0
    assert capsys.readouterr().out.startswith("# scale quick: 0 of 1 runs")
    out = io.StringIO()
    watch(plan, work / "results", work / "reports", 0.0, out=out, rounds=2)
    assert out.getvalue().count("# scale quick") == 2


def test_mark_out_of_date_keeps_the_report_below(tmp_path):
    index = tmp_path / "index.md"
    assert not mark_out_of_date(index, "x")
    index.write_text("**Complete and current**: all 3 planned runs are present and current.\n\n# Tables\n")
    assert mark_out_of_date(index, "a run started")
    assert mark_out_of_date(index, "another run started")  # a second mark replaces the first
    text = index.read_text()
    assert text.startswith(f"{OUT_OF_DATE}: another run started") and text.count(OUT_OF_DATE) == 1
    assert text.endswith("\n\n**Complete and current**: all 3 planned runs are present and current.\n\n# Tables\n")


@pytest.mark.slow
def test_a_running_job_its_epoch_and_eta_then_a_kill_leaves_the_report_out_of_date(tmp_path):
    """The whole DAG once (report: complete); then a run retrains (its config changed): status shows
    its epoch and ETA while it trains; killed, the report's first line says it is out of date and
    status says so; resumed, the report is complete and current again."""
    work = tiny(tmp_path / "w", epochs=1)
    done = subprocess.run(snakemake(work, "--cores", "1"), env=ENV, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    assert current(work)
    # the console: one line per finished job, naming it, with the progress; not the jobs' inputs and
    # outputs, nor Snakemake's per-job scheduling lines, nor a job's JSON summary ...
    console = done.stdout + done.stderr
    job_lines = [line for line in console.splitlines() if re.match(r"\[\d\d:\d\d:\d\d\] \d+ of \d+ done", line)]
    total = int(job_lines[-1].split(" of ")[1].split()[0])
    assert len(job_lines) == total >= 4, console
    assert any(": train digits/resnet8/ce, " in line for line in job_lines), job_lines
    assert "output:" not in console and '"test_acc"' not in console
    assert "Finished jobid" not in console and "Select jobs to execute" not in console
    # ... which stay in Snakemake's log of the run
    (log,) = (work / ".snakemake" / "log").glob("*.snakemake.log")
    assert "output: results/digits/resnet8/ce/seed0/provenance.json" in log.read_text()
    tiny(work, epochs=40)  # the run's config changes: it is stale, retrained from scratch
    dry = subprocess.run(snakemake(work, "-n"), env=ENV, capture_output=True, text=True)
    assert "output: results/digits/resnet8/ce/seed0/provenance.json" in dry.stdout  # a dry run lists its jobs
    progress = work / "results/digits/resnet8/ce/seed0" / PROGRESS
    proc = subprocess.Popen(snakemake(work, "--cores", "1"), env=ENV, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.time() + 300
        while not (progress.exists() and json.loads(progress.read_text())["epoch"] >= 2):
            assert proc.poll() is None and time.time() < deadline, "training never reached epoch 2"
            time.sleep(0.1)
        plan = pipeline.load(work / "params.yaml")
        text = render(plan, work / "results", work / "reports")
        assert "1 running" in text.splitlines()[0]
        running = next(line for line in text.splitlines() if "running digits/resnet8/ce/seed0" in line)
        assert "of 40" in running and "s/epoch, ETA" in running
        assert f"# report: {OUT_OF_DATE}" in text  # marked before the job started
    finally:
        os.killpg(proc.pid, 9)
        proc.wait()
    assert (work / "reports/index.md").read_text().startswith(OUT_OF_DATE)
    text = render(pipeline.load(work / "params.yaml"), work / "results", work / "reports")
    assert "1 interrupted" in text.splitlines()[0] and "--rerun-incomplete" in text
    tiny(work, epochs=3)  # resume is not the point here: a short run finishes the DAG
    assert subprocess.run(snakemake(work, "--unlock"), env=ENV, capture_output=True).returncode == 0
    done = subprocess.run(snakemake(work, "--cores", "1", "--rerun-incomplete"), env=ENV, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    assert current(work)


@pytest.mark.slow
def test_the_progress_page_runs_as_printed(tmp_path):
    """docs/progress.md's block, each command as printed, in a folder holding the shipped params.yaml
    and no results: the plan's first lines, and every run missing."""
    import re
    import shutil

    page = (ROOT / "docs" / "progress.md").read_text()
    (block,) = re.findall(r"```bash\n(.*?)```", page, re.S)
    shutil.copy(ROOT / "params.yaml", tmp_path / "params.yaml")
    outs = []
    for command in filter(str.strip, block.splitlines()):
        done = subprocess.run(["bash", "-c", command], cwd=tmp_path, env=ENV, capture_output=True, text=True)
        assert done.returncode == 0, f"{command}\n{done.stderr[-2000:]}"
        outs.append(done.stdout)
    quick, paper, status = outs
    first = quick.splitlines()[0]
    assert first.startswith("# scale quick: about ") and "of this CPU (bench " in first
    assert "(bench calibrated here: this CPU is " in first or "(bench not calibrated" in first  # it says which
    assert paper.splitlines()[0].startswith("# scale paper: about ") and "introspect bench --device cuda --json b.json" in paper
    n = len(pipeline.load(tmp_path / "params.yaml").runs)
    assert status.startswith(f"# scale quick: 0 of {n} runs finished and current, {n} missing")
    assert "no report yet" in status.splitlines()[-1]
    if os.cpu_count() == 2:  # the figures the page quotes are the bench's own (--no-probe) on 2 cores
        fixed = [subprocess.run(["bash", "-c", f"introspect plan {s} --no-probe"], cwd=tmp_path, env=ENV,
                                capture_output=True, text=True).stdout.splitlines()[0] for s in ("", "--scale paper")]
        quoted = re.search(r"`(# scale quick: about \d+ min on 2 cores of this CPU \(bench not calibrated[^`]*)`", page).group(1)
        assert fixed[0] == quoted
        assert re.search(r"this CPU's figure \(about (\d+ days) on 2 cores", page).group(1) in fixed[1]


def test_runs_of_another_scale_are_named_with_the_command_that_shows_them(tmp_path):
    """`snakemake --config scale=laptop` trains runs the default scale's status does not plan: the
    status says how many finished and which train, and names the command that shows them."""
    plan = pipeline.load(ROOT / "params.yaml")  # the shipped config: quick
    laptop = pipeline.load(ROOT / "params.yaml", "laptop")
    first, second = sorted(set(laptop.runs) - set(plan.runs))[:2]
    live = {"epoch": 2, "epochs": 50, "seconds": [2.0], "updated": time.time(), "host": socket.gethostname(),
            "pid": os.getpid()}
    (tmp_path / first).mkdir(parents=True)
    (tmp_path / first / PROGRESS).write_text(json.dumps(live))
    text = render(plan, tmp_path, tmp_path / "reports", params=ROOT / "params.yaml")
    assert (f"# scale laptop's runs here, not in scale quick's plan: 1 running ({first}): "
            "`introspect status --scale laptop`") in text
    (tmp_path / first / "metrics.json").write_text("{}")
    (tmp_path / second).mkdir(parents=True)
    (tmp_path / second / "metrics.json").write_text("{}")
    text = render(plan, tmp_path, tmp_path / "reports", params=ROOT / "params.yaml")
    assert "# scale laptop's runs here, not in scale quick's plan: 2 finished: `introspect status --scale laptop`" in text
    assert "scale paper" not in text  # the paper scale trains on mnist, not mnist5k: none of these runs is its
