"""Kill anywhere, lose nothing (issue 27): the run cache's store and restore killed (SIGKILL) after
each of their file operations ($INTROSPECT_KILL_AFTER, introspect.runcache._done), then run again;
two concurrent writers and a reader restoring while they write; the leftovers of killed writers;
a cache folder that cannot be used; docs/run-cache.md's commands for it, as printed.

Killed runs are forked children of this process (torch is imported once): a child uses one thread,
as a forked child must not enter the parent's OpenMP pool (it can hang); the uninterrupted run the
others are compared with is trained the same way."""
import io
import json
import multiprocessing
import os
import platform
import signal
import subprocess
import time
from pathlib import Path

import pytest
import torch

from helpers import BIN, ROOT, env
from introspect import runcache
from introspect.cli import main
from introspect.config import resolve
from introspect.train import train

CTX = multiprocessing.get_context("fork")
WHOLE = {*runcache.COMMIT}  # what a restored run folder holds, nothing else (no temp file, no staging folder)


def cfg_for(path):
    return resolve({"dataset": {"name": "synthetic", "path": str(path)}, "model": "mlp1024", "method": "ce",
                    "epochs": 1, "device": "cpu"})


def _train_child(cfg, out, cache, kill_after):
    torch.set_num_threads(1)
    if kill_after is not None:
        os.environ[runcache.KILL_AFTER] = str(kill_after)
    train(cfg, Path(out), log=io.StringIO(), cache=Path(cache) if cache else None)


def in_child(cfg, out, cache=None, kill_after=None) -> int:
    """Train ``cfg`` into ``out`` in a forked child, killed after its ``kill_after``-th file operation
    of a store or restore; its exit code (-9: killed)."""
    child = CTX.Process(target=_train_child, args=(cfg, str(out), cache and str(cache), kill_after))
    child.start()
    child.join(120)
    assert child.exitcode is not None, "the child hung"
    return child.exitcode


def rerun(cfg, out, cache):
    log = io.StringIO()
    metrics = train(cfg, out, log=log, cache=cache)
    return metrics, log.getvalue()


@pytest.fixture(scope="module")
def uninterrupted(synthetic_path, tmp_path_factory):
    """A run trained without interruption, stored in its cache: (config, run folder, cache, metrics bytes)."""
    base = tmp_path_factory.mktemp("uninterrupted")
    cfg = cfg_for(synthetic_path)
    assert in_child(cfg, base / "run", base / "cache") == 0
    return cfg, base / "run", base / "cache", (base / "run" / "metrics.json").read_bytes()


def assert_one_verified_entry(cache: Path):
    found, notes = runcache.entries(cache)
    assert len(found) == 1 and not notes, (found, notes)
    runcache.verify(found[0]["path"])
    assert runcache.temp_folders(cache) == [], sorted(os.listdir(cache))


def assert_whole(out: Path, metrics: bytes, restored: bool):
    names = set(os.listdir(out))
    assert names == (WHOLE if restored else WHOLE | {"progress.json"}), names
    assert (out / "metrics.json").read_bytes() == metrics
    config = json.loads((out / "config.json").read_text())
    assert bool(config["provenance"].get("restored_from")) == restored
    again = io.StringIO()
    train(config, out, log=again)  # once more: nothing to do
    assert "already complete and current" in again.getvalue(), again.getvalue()


@pytest.mark.slow
def test_a_store_killed_after_any_operation_is_redone_by_the_next_run(uninterrupted, tmp_path):
    cfg, _, _, metrics = uninterrupted
    ident = runcache.identity(json.loads((uninterrupted[1] / "config.json").read_text()))
    for n in range(1, 100):
        out, cache = tmp_path / f"run{n}", tmp_path / f"cache{n}"
        code = in_child(cfg, out, cache, kill_after=n)
        if code == 0:  # the store has fewer than n operations: it completed
            break
        assert code == -signal.SIGKILL, code
        assert (out / "provenance.json").is_file()  # killed in its store: the run itself had finished
        stored, temps = (cache / ident).is_dir(), runcache.temp_folders(cache)
        assert len(temps) == (0 if stored else 1), (n, temps)
        if temps:  # `introspect cache list` counts it; a reader never sees it as an entry
            assert "1 temp folder(s) of unfinished writes: 0 under way, 1 of writers that are gone" in runcache.listing(cache)[0]
            assert runcache.entries(cache) == ([], [])
        again, log = rerun(cfg, out, cache)
        assert "already complete and current" in log and "epoch 1/" not in log and "Traceback" not in log, log
        assert ("stored in the run cache" in log) == (not stored), (n, log)
        assert ("removed 1 temp folder(s)" in log) == bool(temps), (n, log)
        assert_one_verified_entry(cache)
        assert_whole(out, metrics, restored=False)
        assert json.dumps(again, sort_keys=True) == json.dumps(json.loads(metrics), sort_keys=True)
    assert n > 10, n  # every operation of the store was a kill point (11: temp folder, 3 links, manifest, rename)


@pytest.mark.slow
def test_a_restore_killed_after_any_operation_is_taken_back_and_redone(uninterrupted, tmp_path):
    cfg, _, cache, metrics = uninterrupted
    for n in range(1, 100):
        out = tmp_path / f"run{n}"
        code = in_child(cfg, out, cache, kill_after=n)
        if code == 0:
            break
        assert code == -signal.SIGKILL, code
        before = set(os.listdir(out))
        # the cache is untouched by a restore: still its one verified entry, no temp folder
        assert_one_verified_entry(cache)
        _, log = rerun(cfg, out, cache)
        assert "epoch 1/" not in log and "Traceback" not in log, log
        whole_already = runcache.RECEIPT in before  # the receipt is renamed into place last
        assert ("already complete and current" in log) == whole_already, (n, before, log)
        assert ("restored, not trained" in log) != whole_already, (n, log)
        if runcache.STAGING in before and runcache.NAME in before and not whole_already:
            assert "taken back" in log, (n, before, log)  # half a run was in the folder: never accepted
        assert_whole(out, metrics, restored=True)
        assert runcache.add(out, cache, io.StringIO()) == cache / runcache.identity(json.loads((out / "config.json").read_text()))
        assert_one_verified_entry(cache)
    assert n > 15, n  # staging folder, 3 links, config and receipt, 5 renames, the staging folder removed


@pytest.mark.slow
def test_the_issues_kills_through_the_command_line(uninterrupted, tmp_path):
    """Issue 27's cases C and A/B with `introspect train` itself: killed as soon as checkpoint.pt
    appears in the run folder (restore), and while the cache's temp folder holds the checkpoint (store)."""
    cfg, _, cache, metrics = uninterrupted
    cmd = [str(BIN / "introspect"), "train", "--dataset", "synthetic", "--set", f"dataset.path={cfg['dataset']['path']}",
           "--model", "mlp1024", "--epochs", "1", "--device", "cpu"]
    # restore: killed after its 12th operation, the rename of checkpoint.pt into the run folder
    killed = subprocess.run([*cmd, "--out", str(tmp_path / "r1"), "--cache", str(cache)], capture_output=True, text=True,
                            env=env(OMP_NUM_THREADS="1", **{runcache.KILL_AFTER: "12"}))
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    assert set(os.listdir(tmp_path / "r1")) == {runcache.NAME, runcache.STAGING}  # the issue's folder: no config.json
    again = subprocess.run([*cmd, "--out", str(tmp_path / "r1"), "--cache", str(cache)], capture_output=True, text=True,
                           env=env(OMP_NUM_THREADS="1"))
    assert again.returncode == 0 and "Traceback" not in again.stderr, again.stderr[-2000:]
    assert "taken back" in again.stderr and "restored, not trained" in again.stderr, again.stderr
    assert "already complete" not in again.stderr, again.stderr
    assert json.loads((tmp_path / "r1" / "provenance.json").read_text())["restored_from"]["kind"] == "cache"
    assert_whole(tmp_path / "r1", metrics, restored=True)
    # store: killed after its 4th operation (temp folder, checkpoint linked, history.parquet's link made)
    fresh = tmp_path / "fresh-cache"
    killed = subprocess.run([*cmd, "--out", str(tmp_path / "r2"), "--cache", str(fresh)], capture_output=True, text=True,
                            env=env(OMP_NUM_THREADS="1", **{runcache.KILL_AFTER: "4"}))
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    (temp,) = runcache.temp_folders(fresh)
    assert (temp / runcache.NAME).is_file()
    shown = subprocess.run([str(BIN / "introspect"), "cache", "prune", "--unreferenced", "--dry-run", "--results",
                            str(tmp_path)], capture_output=True, text=True, env=env(**{runcache.ENV: str(fresh)}))
    assert shown.returncode == 0 and shown.stdout == f"would delete {temp.name}: temp folder of a writer that is gone\n", shown
    again = subprocess.run([*cmd, "--out", str(tmp_path / "r2"), "--cache", str(fresh)], capture_output=True, text=True,
                           env=env(OMP_NUM_THREADS="1"))
    assert again.returncode == 0 and "Traceback" not in again.stderr, again.stderr[-2000:]
    assert "already complete and current" in again.stderr and "stored in the run cache" in again.stderr, again.stderr
    assert_one_verified_entry(fresh)
    assert (tmp_path / "r2" / "metrics.json").read_bytes() == metrics


def _writer(run, cfg, roots, barrier):
    for root in roots:
        barrier.wait(60)
        runcache.store(cfg, Path(run), Path(root), io.StringIO(), "writer", {"device": "cpu"})


def _reader(cfg, roots, outs, barrier, report):
    """Restore from each cache while the two writers store into it: every answer is none or a whole run."""
    torch.set_num_threads(1)
    seen = []
    for root, out in zip(roots, outs):
        barrier.wait(60)
        misses, log, deadline = 0, io.StringIO(), time.monotonic() + 30
        while time.monotonic() < deadline:
            target = Path(out) / str(misses)
            got = runcache.lookup(dict(cfg), target, Path(root), log, "reader")
            if got is not None:
                seen.append({"misses": misses, "metrics": got, "files": sorted(os.listdir(target)), "log": log.getvalue()})
                break
            assert not target.exists() or not os.listdir(target), os.listdir(target)  # a miss writes nothing
            misses += 1
    Path(report).write_text(json.dumps(seen))


def test_two_writers_and_a_reader_restoring_while_they_write(uninterrupted, tmp_path):
    _, run, _, metrics = uninterrupted
    cfg = json.loads((run / "config.json").read_text())  # with its provenance: the identity
    rounds = 12
    roots = [str(tmp_path / "caches" / str(k)) for k in range(rounds)]
    outs = [str(tmp_path / "reads" / str(k)) for k in range(rounds)]
    barrier = CTX.Barrier(3)
    procs = [CTX.Process(target=_writer, args=(str(run), cfg, roots, barrier)) for _ in range(2)]
    procs.append(CTX.Process(target=_reader, args=(cfg, roots, outs, barrier, str(tmp_path / "seen.json"))))
    for p in procs:
        p.start()
    for p in procs:
        p.join(180)
        assert p.exitcode == 0, p.exitcode
    seen = json.loads((tmp_path / "seen.json").read_text())
    assert len(seen) == rounds  # the reader restored from every cache, sooner or later
    for k, s in enumerate(seen):
        assert s["files"] == sorted(WHOLE) and "damaged" not in s["log"], s
        assert json.dumps(s["metrics"], sort_keys=True) == json.dumps(json.loads(metrics), sort_keys=True)
        assert (Path(outs[k]) / str(s["misses"]) / "metrics.json").read_bytes() == metrics
        assert_one_verified_entry(Path(roots[k]))


def test_leftovers_of_a_run_killed_after_its_last_epoch_are_removed(uninterrupted, tmp_path):
    """A run killed in its last writes (the final history.parquet, its metrics, its receipt) leaves an
    empty ``.history.parquet.<random>.tmp`` (fileio.atomic_write's temp file, made here by hand): the
    rerun removes it and ends with the uninterrupted run's metrics."""
    cfg, _, _, metrics = uninterrupted
    out = tmp_path / "run"
    assert in_child(cfg, out) == 0
    for name in ("metrics.json", "provenance.json"):
        (out / name).unlink()
    (out / ".history.parquet.k2j4h1xq.tmp").write_bytes(b"")
    (out / ".evaluation.json.abcd.tmp").write_bytes(b"")  # not the training's: left to its own writer
    _, log = rerun(cfg, out, None)
    assert "removed .history.parquet.k2j4h1xq.tmp: left in" in log, log
    assert sorted(os.listdir(out)) == sorted(WHOLE | {"progress.json", ".evaluation.json.abcd.tmp"})
    assert (out / "metrics.json").read_bytes() == metrics


def test_a_half_restore_of_an_earlier_version_is_redone(uninterrupted, tmp_path):
    """The earlier restore linked the checkpoint, history and metrics, then wrote config.json: killed
    in between, its folder held a checkpoint without config.json, which a rerun took as complete."""
    cfg, _, cache, metrics = uninterrupted
    out = tmp_path / "r1"
    _, log = rerun(cfg, out, cache)
    assert "restored, not trained" in log
    for name in ("config.json", "provenance.json"):
        (out / name).unlink()
    _, log = rerun(cfg, out, cache)
    assert "checkpoint without config.json" in log and "restored, not trained" in log, log
    assert "already complete" not in log, log
    assert_whole(out, metrics, restored=True)


def test_which_temp_folders_are_dead(tmp_path):
    cache = tmp_path / "cache"
    cache.mkdir()
    here = platform.node()
    gone = subprocess.Popen(["true"])
    gone.wait()
    folders = {"killed": f".tmp-{gone.pid}@{here}+store-x", "running": f".tmp-{os.getpid()}@{here}+store-y",
               "elsewhere": ".tmp-1@another-host+store-z", "old_layout": ".tmp-a1b2c3"}
    for name in folders.values():
        (cache / name).mkdir()
        (cache / name / "checkpoint.pt").write_bytes(b"x")
    hour_ago = time.time() - runcache.DEAD_AFTER - 60
    os.utime(cache / folders["old_layout"], (hour_ago, hour_ago))
    os.utime(cache / folders["old_layout"] / "checkpoint.pt", (hour_ago, hour_ago))
    assert {k for k, name in folders.items() if runcache.dead(cache / name)} == {"killed", "old_layout"}
    assert "4 temp folder(s) of unfinished writes: 2 under way, 2 of writers that are gone" in runcache.listing(cache)[0]
    assert sorted(runcache.prune(cache, [tmp_path])) == sorted(
        f"deleted {folders[k]}: temp folder of a writer that is gone" for k in ("killed", "old_layout"))
    assert sorted(p.name for p in cache.iterdir()) == sorted([folders["running"], folders["elsewhere"]])
    later = time.time() + runcache.DEAD_AFTER + 60  # nothing changed in them for an hour: taken to be gone too
    assert len(runcache.sweep(cache, now=later)) == 2 and not list(cache.iterdir())


def test_a_cache_folder_that_cannot_be_used_is_one_line(tmp_path, monkeypatch, capsys):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    said = f"introspect: error: run cache {blocker}: not a folder (a file is in its place, or in its path)\n"
    out = subprocess.run([str(BIN / "introspect"), "cache", "list"], capture_output=True, text=True,
                         env=env(**{runcache.ENV: str(blocker)}))
    assert (out.returncode, out.stdout, out.stderr) == (1, "", said), out
    monkeypatch.setenv(runcache.ENV, str(blocker))
    for action in (["list", "--verify"], ["prune"], ["prune", "--unreferenced"], ["add", "--run", str(tmp_path)]):
        assert main(["cache", *action]) == 1
        assert capsys.readouterr() == ("", said), action
    # unreadable (this test may run as root, whom permissions do not stop: the error is made here)
    unreadable = tmp_path / "unreadable"
    unreadable.mkdir()
    scandir = os.scandir

    def refusing(path="."):
        if Path(path) == unreadable:
            raise PermissionError(13, "Permission denied", str(path))
        return scandir(path)

    monkeypatch.setattr(os, "scandir", refusing)
    monkeypatch.setenv(runcache.ENV, str(unreadable))
    for action in (["list"], ["prune", "--older-than", "1d"]):
        assert main(["cache", *action]) == 1
        captured = capsys.readouterr()
        assert captured.err == f"introspect: error: run cache {unreadable}: cannot be read (Permission denied)\n", captured


def test_list_verify_marks_a_damaged_entry(uninterrupted, tmp_path, monkeypatch, capsys):
    _, run, _, _ = uninterrupted
    cache = tmp_path / "cache"
    assert runcache.add(run, cache, io.StringIO()) is not None
    monkeypatch.setenv(runcache.ENV, str(cache))
    assert main(["cache", "list", "--verify"]) == 0
    out = capsys.readouterr().out
    assert "|  verified" in out and "verified 1 of 1 entries; 0 damaged" in out, out
    (entry,) = runcache.entries(cache)[0]
    data = (entry["path"] / "history.parquet").read_bytes()
    (entry["path"] / "history.parquet").unlink()  # a new file: the run folder keeps its bytes
    (entry["path"] / "history.parquet").write_bytes(data[:-10])
    assert main(["cache", "list"]) == 0 and "DAMAGED" not in capsys.readouterr().out  # listing alone reads manifests
    assert main(["cache", "list", "--verify"]) == 1
    out = capsys.readouterr().out
    (line,) = [line for line in out.splitlines() if line.startswith(entry["identity"][:12])]
    assert line.endswith(f"|  DAMAGED: history.parquet has {len(data) - 10} bytes, not {len(data)} (truncated or altered)"), out
    assert "verified 0 of 1 entries; 1 damaged" in out, out


def docs_block(heading: str) -> str:
    text = (ROOT / "docs" / "run-cache.md").read_text()
    return text[text.index(heading):].split("```bash\n", 1)[1].split("```", 1)[0]


def test_the_docs_commands_after_a_kill(uninterrupted, tmp_path):
    """docs/run-cache.md's commands after a kill, as printed: on a cache with a whole entry and the
    temp folder of a store killed midway."""
    cfg, run, _, _ = uninterrupted
    killed, cache = tmp_path / "killed", tmp_path / "cache"
    assert in_child(cfg, tmp_path / "run", killed, kill_after=3) == -signal.SIGKILL  # in its store
    (temp,) = runcache.temp_folders(killed)
    assert runcache.add(run, cache, io.StringIO()) is not None  # a whole entry
    temp.rename(cache / temp.name)
    out = subprocess.run(["bash", "-e", "-c", docs_block("## A kill at any moment")], cwd=tmp_path, capture_output=True,
                         text=True, env=env(**{runcache.ENV: str(cache)}))
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    assert "|  verified" in out.stdout and "1 of writers that are gone" in out.stdout, out.stdout
    assert f"deleted {temp.name}: temp folder of a writer that is gone" in out.stdout, out.stdout
    assert_one_verified_entry(cache)
