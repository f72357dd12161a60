"""When jobs die under Snakemake: resume from the checkpoint, finish the others, refuse a second
invocation on the same tree. Each test runs a tiny one-table config through the real workflow."""
import json
import subprocess
import time
from pathlib import Path

import pytest

from helpers import env, kill_when, snakemake_argv as command, tiny_params, write_params

# the kill tests must see their runs train: the tree's own run cache, not the session's
OWN = env(own_cache=True)


def snakemake(work: Path, *args, environ=None) -> subprocess.CompletedProcess:
    return subprocess.run(command(work, *args), env=environ or env(), capture_output=True, text=True)


def tiny(work: Path, rows: dict, epochs: int = 1) -> Path:
    return write_params(work, tiny_params({"table2": {"dataset": "cifar10", "models": ["resnet8"], "rows": rows}}, epochs))


def test_a_diverged_run_fails_alone_and_keep_going_finishes_the_others(tmp_path):
    work = tiny(tmp_path / "w", {"ce": {"method": "ce"}, "bad": {"method": "ce", "set": {"optim.lr": 1.0e30}}})
    out = snakemake(work, "--cores", "2", "--keep-going", "train_all")
    assert out.returncode != 0
    assert (work / "results/digits/resnet8/ce/seed0/metrics.json").exists()
    assert not (work / "results/digits/resnet8/bad/seed0/metrics.json").exists()
    errors = [line for line in (work / "logs/train/digits/resnet8/bad.log").read_text().splitlines()
              if line.startswith("introspect: error:")]
    assert errors and "training loss is" in errors[0]


@pytest.mark.slow
def test_sigkill_mid_run_then_rerun_incomplete_resumes_bit_identical(tmp_path):
    rows = {"ce": {"method": "ce"}}
    whole = tiny(tmp_path / "whole", rows, epochs=4)
    assert snakemake(whole, "--cores", "1", "train_all", environ=OWN).returncode == 0
    work = tiny(tmp_path / "killed", rows, epochs=4)
    run = work / "results/digits/resnet8/ce/seed0"
    # two epochs done: kill during the third
    kill_when(command(work, "--cores", "1", "train_all"), OWN, lambda: (run / "checkpoint.prev.pt").exists())
    assert not (run / "metrics.json").exists()
    assert snakemake(work, "--unlock", environ=OWN).returncode == 0  # Snakemake itself was killed: its lock stayed
    out = snakemake(work, "--cores", "1", "--rerun-incomplete", "train_all", environ=OWN)
    assert out.returncode == 0, out.stderr[-2000:]
    log = (work / "logs/train/digits/resnet8/ce.log").read_text()
    assert "resuming after epoch" in log and "epoch 1/4" not in log.split("resuming after epoch")[1]
    expected = json.loads((whole / "results/digits/resnet8/ce/seed0/metrics.json").read_text())
    assert json.loads((run / "metrics.json").read_text()) == expected


@pytest.mark.slow
def test_a_second_invocation_on_the_same_tree_is_refused_by_the_lock(tmp_path):
    # long enough (tens of seconds) that the first still holds the lock while the second builds its DAG
    work = tiny(tmp_path / "w", {"ce": {"method": "ce"}}, epochs=40)
    log = open(tmp_path / "first.log", "w")  # a file, not a pipe nobody drains
    first = subprocess.Popen(command(work, "--cores", "1", "train_all"), env=OWN, stdout=log, stderr=log)
    try:
        _refuse_second(work, first)
    finally:  # never leave the first invocation running behind a failed assertion
        try:
            first.wait(timeout=300)
        except subprocess.TimeoutExpired:
            first.kill()
            first.wait()
        log.close()
    assert first.returncode == 0, (tmp_path / "first.log").read_text()[-2000:]
    metrics = json.loads((work / "results/digits/resnet8/ce/seed0/metrics.json").read_text())
    assert metrics["epochs"] == 40


def _refuse_second(work: Path, first: subprocess.Popen) -> None:
    # wait until it trains: its lock is taken and its outputs are being written
    checkpoint = work / "results/digits/resnet8/ce/seed0/checkpoint.pt"
    deadline = time.time() + 180
    while not checkpoint.exists():
        assert first.poll() is None and time.time() < deadline, "the first invocation never started training"
        time.sleep(0.02)
    assert any((work / ".snakemake" / "locks").iterdir())
    # A train job's one declared output is its receipt, written last: while the first trains there is
    # no half-written output to find, so the lock refuses the second, with or without --rerun-incomplete.
    for extra in ([], ["--rerun-incomplete"]):
        second = snakemake(work, "--cores", "1", *extra, "train_all", environ=OWN)
        assert second.returncode != 0 and "cannot be locked" in second.stdout + second.stderr, second.stdout + second.stderr
