"""A full disk or a quota says so in one line, and loses nothing (issue 33).

The n-th file write of `introspect train`, `prepare`, `evaluate` and `report` fails with ENOSPC
($INTROSPECT_FAIL_WRITE, introspect.fileio), for every n (counted first on an uninterrupted command):
the command ends with one error line naming the file and "space", no traceback; the folder is then
exactly as it was just before that write (no temp file, every earlier file whole); the same command
run again without the fault completes, byte-identical to the uninterrupted one. Then the same on a
real size-limited file system (a tmpfs, mounted here when we may).

The commands run in this process (cli.main: torch is imported once), on one thread so that runs
compare bit for bit; one runs as a real process, for its exit status and its whole standard error.
"""
import errno
import hashlib
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import torch

from helpers import ROOT, env, tiny_params, write_params
from introspect import fileio, pipeline
from introspect.checkpoint import load_latest
from introspect.cli import main

LINE = re.compile(r"introspect: error: (?P<path>.+): cannot be written \(no space left on device\); (?P<kept>.+); "
                  r"free space, then rerun the same command")
TRAIN = ("--dataset", "synthetic", "--model", "mlp1024", "--method", "ce", "--device", "cpu", "--cache", "off")


@pytest.fixture(autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def files(folder: Path) -> dict[str, str]:
    """Every file under ``folder`` (relative path -> SHA-256), but the temp file of a write under way."""
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file() and not (p.name.startswith(".") and p.name.endswith(".tmp"))}


class Commands:
    """introspect's commands run in this process, each with fileio's write count from 0; ``fail``:
    the write to fail with ENOSPC, and ``before`` the files of ``watch`` just before it."""

    def __init__(self, monkeypatch, capsys):
        self.monkeypatch, self.capsys, self.watch, self.before, self.writes = monkeypatch, capsys, None, None, 0
        count = fileio._count

        def spy() -> bool:
            if self.watch is not None and os.environ.get(fileio.FAIL_WRITE) == str(fileio._writes["n"] + 1):
                self.before = files(self.watch)
            return count()

        monkeypatch.setattr(fileio, "_count", spy)

    def run(self, *argv, fail: int | None = None, watch: Path | None = None) -> tuple[int, str]:
        """(exit status, standard error) of ``introspect argv``; how many writes it made is ``self.writes``."""
        self.monkeypatch.setattr(fileio, "_writes", {"pid": os.getpid(), "n": 0})
        if fail is None:
            self.monkeypatch.delenv(fileio.FAIL_WRITE, raising=False)
        else:
            self.monkeypatch.setenv(fileio.FAIL_WRITE, str(fail))
        self.watch, self.before = watch, None
        rc = main([str(a) for a in argv])  # an exception not turned into one line fails the test here
        self.writes = fileio._writes["n"]
        return rc, self.capsys.readouterr().err

    def fails_in_one_line(self, *argv, fail: int, watch: Path) -> re.Match:
        """Run ``argv`` failing its ``fail``-th write; check the line and that ``watch`` is as it was
        just before that write; the line's parts (path, kept)."""
        rc, err = self.run(*argv, fail=fail, watch=watch)
        lines = err.strip().splitlines()
        assert rc == 1 and "Traceback" not in err, err
        assert [line for line in lines if line.startswith("introspect: error:")] == lines[-1:], err
        found = LINE.fullmatch(lines[-1])
        assert found, lines[-1]
        assert Path(found["path"]).resolve().is_relative_to(watch.resolve()), found["path"]
        assert self.before is not None, f"write {fail} was never made"
        assert files(watch) == self.before, f"write {fail}: the files changed"
        assert not list(watch.rglob("*.tmp")), sorted(watch.rglob("*"))
        return found


@pytest.fixture
def commands(monkeypatch, capsys):
    return Commands(monkeypatch, capsys)


def test_every_write_of_a_training_run_fails_in_one_line_and_the_rerun_ends_identical(commands, synthetic_path, tmp_path):
    args = (*TRAIN, "--epochs", "2", "--set", f"dataset.path={synthetic_path}")
    assert commands.run("train", *args, "--out", tmp_path / "whole")[0] == 0
    whole, writes = (tmp_path / "whole" / "metrics.json").read_bytes(), commands.writes
    assert writes >= 8  # config, progress, then per epoch checkpoint, history, progress, then history, metrics, receipt
    for n in range(1, writes + 1):
        run = tmp_path / f"fail{n}"
        run.mkdir()
        found = commands.fails_in_one_line("train", *args, "--out", run, fail=n, watch=run)
        state, _ = load_latest(run)  # what the line says is kept is what the rerun resumes from
        assert found["kept"] == (f"epoch {len(state['history'])}'s checkpoint is kept" if state
                                 else "no checkpoint of this run was written yet"), (n, found["kept"])
        rc, err = commands.run("train", *args, "--out", run)
        assert rc == 0, err
        assert (run / "metrics.json").read_bytes() == whole, n
        assert set(files(run)) == set(files(tmp_path / "whole")), n


def test_a_superseded_run_stays_where_it_was_when_its_copy_cannot_be_written(commands, synthetic_path, tmp_path):
    run = tmp_path / "run"
    args = (*TRAIN, "--set", f"dataset.path={synthetic_path}", "--out", run)
    assert commands.run("train", *args, "--epochs", "1")[0] == 0
    found = commands.fails_in_one_line("train", *args, "--epochs", "2", "--supersede", fail=1, watch=run)
    assert found["path"].endswith("superseded.json") and found["kept"] == "epoch 1's checkpoint is kept"
    assert not any((run / "superseded").iterdir())  # no copy without its files
    assert commands.run("train", *args, "--epochs", "2", "--supersede")[0] == 0
    assert json.loads((run / "metrics.json").read_text())["epochs"] == 2


def test_prepare_fails_in_one_line_keeping_the_previous_file(commands, tmp_path):
    data = tmp_path / "data"
    assert commands.run("prepare", "--dataset", "synthetic", "--out", data / "first.pt", "--raw", tmp_path)[0] == 0
    whole = (data / "first.pt").read_bytes()
    assert commands.writes == 1
    for target, kept in ((data / "first.pt", "the previous first.pt is kept"), (data / "new.pt", "no part of it is left")):
        found = commands.fails_in_one_line("prepare", "--dataset", "synthetic", "--out", target, "--raw", tmp_path,
                                           fail=1, watch=data)
        assert (found["path"], found["kept"]) == (str(target), kept)
        assert commands.run("prepare", "--dataset", "synthetic", "--out", target, "--raw", tmp_path)[0] == 0
        assert target.read_bytes() == whole


def test_evaluate_and_explain_fail_in_one_line_keeping_the_previous_file(commands, synthetic_path, tmp_path):
    run = tmp_path / "run"
    assert commands.run("train", *TRAIN, "--epochs", "1", "--set", f"dataset.path={synthetic_path}", "--out", run)[0] == 0
    for argv, written in ((("evaluate", "--run", run, "--images", "4", "--steps", "2", "--perturbations", "2",
                            "--device", "cpu"), run / "evaluation.json"),
                          (("explain", "--run", run, "--out", run / "explanations.pt", "--examples", "2", "--device", "cpu"),
                           run / "explanations.pt")):
        assert commands.run(*argv)[0] == 0
        whole, writes = written.read_bytes(), commands.writes
        for n in range(1, writes + 1):
            found = commands.fails_in_one_line(*argv, fail=n, watch=run)
            assert (found["path"], found["kept"]) == (str(written), f"the previous {written.name} is kept")
            assert commands.run(*argv)[0] == 0
            assert written.read_bytes() == whole


def test_every_write_of_the_report_fails_in_one_line_and_the_rebuilt_report_is_identical(commands, synthetic_path,
                                                                                         tmp_path, monkeypatch):
    monkeypatch.chdir(write_params(tmp_path, _report_params()))
    (tmp_path / "data" / "processed").mkdir(parents=True)
    shutil.copy(synthetic_path, tmp_path / "data" / "processed" / "synthetic.pt")
    plan = pipeline.load(Path("params.yaml"))
    runs = [{"out": f"results/{run_id}", "config": run.config} for run_id, run in plan.runs.items()]
    assert commands.run("train", "--runs-json", json.dumps(runs), "--cache", "off")[0] == 0
    report = ("report", "--reference", ROOT / "workflow" / "reference", "--out", "reports")
    assert commands.run(*report)[0] == 0
    whole, writes = files(tmp_path / "reports"), commands.writes
    assert writes >= 8 and "metrics.json" in whole  # results, tables, claims, beyond, metrics, curves, index
    for n in range(1, writes + 1):
        found = commands.fails_in_one_line(*report, fail=n, watch=tmp_path / "reports")
        assert found["kept"].startswith("the previous "), found["kept"]  # each file of the report before is kept
        assert commands.run(*report)[0] == 0
        assert files(tmp_path / "reports") == whole, n


def _report_params() -> dict:
    """One table of one CE run of the MLP on the synthetic set, one epoch."""
    params = tiny_params({"table2": {"dataset": "cifar10", "models": ["mlp1024"], "rows": {"ce": {"method": "ce"}}}},
                         datasets=("synthetic",))
    params["datasets"]["cifar10"] = "synthetic"
    return params


def test_no_space_or_permission_outside_fileio_is_one_line_too(monkeypatch, capsys):
    """A writer of no fileio's (a GPU slot's lock file, say): the file, why and what to do, nothing kept claimed."""
    from introspect import cli

    def no_quota(args):
        raise OSError(errno.EDQUOT, os.strerror(errno.EDQUOT), "/locks/slot0.lock")

    monkeypatch.setattr(cli, "cmd_models", no_quota)
    assert main(["models"]) == 1
    assert capsys.readouterr().err == ("introspect: error: /locks/slot0.lock: disk quota exceeded: no space left in the "
                                       "quota; free space, then rerun the same command\n")

    def missing(args):
        raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), "x")

    monkeypatch.setattr(cli, "cmd_models", missing)
    with pytest.raises(FileNotFoundError):  # not a full disk: not ours to word
        main(["models"])


def test_the_real_command_exits_1_with_one_line_and_no_traceback(tmp_path):
    out = tmp_path / "x.pt"
    done = subprocess.run([shutil.which("introspect", path=env()["PATH"]), "prepare", "--dataset", "synthetic",
                           "--out", str(out), "--raw", str(tmp_path)],
                          env=env(**{fileio.FAIL_WRITE: "1"}), capture_output=True, text=True)
    assert done.returncode == 1, done.stderr
    assert LINE.fullmatch(done.stderr.rstrip("\n")) and str(out) in done.stderr, done.stderr
    assert os.listdir(tmp_path) == []


# ----------------------------------------------------------------------------- a real full file system
@pytest.fixture
def tmpfs(tmp_path):
    """A 15 MiB tmpfs at ``tmp_path/fs``; skipped where mounting is not permitted (root, CAP_SYS_ADMIN)."""
    where = tmp_path / "fs"
    where.mkdir()
    if shutil.which("mount") is None:
        pytest.skip("no mount command here to mount a tmpfs with")
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=15m", "tmpfs", str(where)], capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"mounting a tmpfs is not permitted here (needs root or CAP_SYS_ADMIN): {done.stderr.strip()}")
    try:
        yield where
    finally:
        subprocess.run(["umount", str(where)], check=True)


def introspect(*argv) -> subprocess.CompletedProcess:
    return subprocess.run([shutil.which("introspect", path=env()["PATH"]), *map(str, argv)],
                          env=env(OMP_NUM_THREADS="1"), capture_output=True, text=True)


def test_a_real_full_disk_says_so_in_one_line_and_the_rerun_after_freeing_space_ends_identical(tmpfs, synthetic_path, tmp_path,
                                                                                              capsys):
    # mlp1024 on the synthetic set: a checkpoint of about 15 MB (weights and SGD momentum); the first
    # fits in 15 MiB, the second beside it does not
    args = ("train", *TRAIN, "--epochs", "2", "--set", f"dataset.path={synthetic_path}", "--out")
    whole = introspect(*args, tmp_path / "whole")
    assert whole.returncode == 0, whole.stderr
    run = tmpfs / "run"
    failed = introspect(*args, run)
    assert failed.returncode == 1 and "Traceback" not in failed.stderr, failed.stderr
    last = failed.stderr.strip().splitlines()[-1]
    assert LINE.fullmatch(last) and str(run / "checkpoint.pt") in last and "epoch 1's checkpoint is kept" in last, last
    assert not list(tmpfs.rglob("*.tmp"))

    # prepare onto the file system filled up but 64 KiB, less than the digits' file: torch.save gets
    # part of it written, then says so in an error of its own (RuntimeError); one line all the same, no file
    filler = tmpfs / "filler"
    with open(filler, "wb", buffering=0) as f:
        with pytest.raises(OSError, match="No space"):
            while True:
                f.write(b"\0" * (1 << 16))
        f.truncate(f.tell() - (1 << 16))
    prepared = introspect("prepare", "--dataset", "digits", "--out", tmpfs / "x.pt", "--raw", tmp_path / "raw")
    assert prepared.returncode == 1 and "Traceback" not in prepared.stderr, prepared.stderr
    assert LINE.fullmatch(prepared.stderr.strip()) and str(tmpfs / "x.pt") in prepared.stderr, prepared.stderr
    assert sorted(os.listdir(tmpfs)) == ["filler", "run"]
    filler.unlink()

    subprocess.run(["mount", "-o", "remount,size=200m", str(tmpfs)], check=True)
    resumed = introspect(*args, run)
    assert resumed.returncode == 0, resumed.stderr
    assert "resuming from checkpoint.prev.pt (epoch 1)" in resumed.stderr, resumed.stderr
    assert (run / "metrics.json").read_bytes() == (tmp_path / "whole" / "metrics.json").read_bytes()
    assert not list(tmpfs.rglob("*.tmp"))

    # a read-only file system: the same line, its own reason and remedy
    subprocess.run(["mount", "-o", "remount,ro", str(tmpfs)], check=True)
    assert main(["prepare", "--dataset", "synthetic", "--out", str(tmpfs / "y.pt"), "--raw", str(tmp_path / "raw")]) == 1
    assert capsys.readouterr().err == (f"introspect: error: {tmpfs / 'y.pt'}: cannot be written (read-only file system); "
                                       "no part of it is left; make it writable, then rerun the same command\n")
