"""The run cache (introspect.runcache) through introspect.train.train on the synthetic set: identity,
restore from the cache and from superseded/ copies, damage, an older layout, an unwritable folder,
two concurrent writers, list and prune."""
import io
import json
import multiprocessing
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from introspect import runcache
from introspect.config import resolve
from introspect.runfolder import MACHINE_KEYS
from introspect.train import train

BIN = Path(sys.executable).parent


def cfg_for(path, **over):
    return resolve({"dataset": {"name": "synthetic", "path": str(path)}, "model": "mlp1024", "method": "ce",
                    "epochs": 1, "device": "cpu", **over})


def run(cfg, out, cache=None, **kw):
    log = io.StringIO()
    metrics = train(cfg, out, log=log, cache=cache, **kw)
    return metrics, log.getvalue()


def with_prov(cfg, data="d" * 64, learned=None):
    return {**cfg, "provenance": {"code": "c" * 64, "data": data, "learned_from": learned or {}}}


def test_names_are_the_run_folders_and_listing_needs_no_torch():
    from introspect import checkpoint, provenance, runfolder

    assert runcache.MACHINE == MACHINE_KEYS
    assert set(runcache.WRITTEN) == set(runfolder.RUN_FILES) - {"checkpoint.prev.pt", "explanations.pt", "evaluation.json"} | {runfolder.PROGRESS}
    assert (runfolder.NAME, runfolder.PREVIOUS, runfolder.RECEIPT) == (checkpoint.NAME, checkpoint.PREVIOUS, provenance.RECEIPT)
    code = "import sys, introspect.cli, introspect.runcache; print('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout.strip() == "False"


def test_identity_is_what_a_run_computes_not_where_its_files_are(synthetic_path, tmp_path):
    a = cfg_for(synthetic_path, method={"name": "kd", "teacher": "results/x/teacher/seed0"})
    b = cfg_for(tmp_path / "elsewhere.pt", method={"name": "kd", "teacher": "/other/clone/results/t"},
                device="cuda", precision="bf16", channels_last="on", compile=True)
    ia = runcache.identity(with_prov(a, learned={"results/x/teacher/seed0": "t" * 64}))
    ib = runcache.identity(with_prov(b, learned={"/other/clone/results/t": "t" * 64}))
    assert ia == ib  # folders and machine settings aside, the same run
    assert runcache.identity(with_prov(b, learned={"/other/clone/results/t": "u" * 64})) != ia  # another teacher
    for other in (cfg_for(synthetic_path, seed=1), cfg_for(synthetic_path, epochs=2),
                  cfg_for(synthetic_path, optim={"lr": 0.01})):
        assert runcache.identity(with_prov(other)) != runcache.identity(with_prov(cfg_for(synthetic_path)))
    plain = with_prov(cfg_for(synthetic_path))
    assert runcache.identity({**plain, "provenance": {**plain["provenance"], "code": "e" * 64}}) != runcache.identity(plain)
    assert runcache.identity(with_prov(cfg_for(synthetic_path), data="f" * 64)) != runcache.identity(plain)


def test_settings_env_and_off(monkeypatch, tmp_path):
    monkeypatch.delenv(runcache.ENV, raising=False)
    assert runcache.settings() == (None, True)
    monkeypatch.setenv(runcache.ENV, str(tmp_path))
    assert runcache.settings() == (tmp_path, True)
    assert runcache.settings("off") == (None, False)
    monkeypatch.setenv(runcache.ENV, "off")
    assert runcache.settings() == (None, False)


def test_a_second_folder_restores_instead_of_training_and_stays_current(synthetic_path, tmp_path):
    cache = tmp_path / "cache"
    first, log = run(cfg_for(synthetic_path), tmp_path / "a", cache)
    assert "epoch 1/1" in log and "stored in the run cache" in log
    (entry,) = runcache.entries(cache)[0]
    assert entry["run"]["method"] == "ce" and entry["trained"]["device"] == "cpu"
    # another clone: the dataset file elsewhere, another folder
    data = tmp_path / "clone" / "synthetic.pt"
    data.parent.mkdir()
    shutil.copy(synthetic_path, data)
    b = tmp_path / "clone" / "run"
    second, log = run(cfg_for(data), b, cache)
    assert second == first and "epoch 1/" not in log
    assert log.count("\n") == 1 and "restored, not trained" in log and entry["identity"][:12] in log, log
    for name in runcache.FILES:  # stored once: the same inode in the run folder, the cache and the first folder
        assert (b / name).stat().st_ino == (tmp_path / "a" / name).stat().st_ino == (entry["path"] / name).stat().st_ino
    assert (b / "metrics.json").read_bytes() == (tmp_path / "a" / "metrics.json").read_bytes()
    saved = json.loads((b / "config.json").read_text())
    assert saved["dataset"]["path"] == str(data)
    note = json.loads((b / "provenance.json").read_text())["restored_from"]
    assert note["identity"] == entry["identity"] and note["path"] == str(entry["path"]) and note["kind"] == "cache"
    # again in that folder: complete and current (not moved aside because the checkpoint names the first folder's data)
    again, log = run(cfg_for(data), b, cache, supersede=True)
    assert again == first and "already complete and current" in log and not (b / "superseded").exists(), log


def test_toggle_back_restores_from_superseded_without_a_cache(synthetic_path, tmp_path):
    out = tmp_path / "run"
    one, _ = run(cfg_for(synthetic_path), out)
    metrics_bytes = (out / "metrics.json").read_bytes()
    run(cfg_for(synthetic_path, epochs=2), out, supersede=True)
    back, log = run(cfg_for(synthetic_path), out, supersede=True)
    assert back == one and (out / "metrics.json").read_bytes() == metrics_bytes
    assert "restored, not trained" in log and "epoch 1/1" not in log, log
    assert json.loads((out / "config.json").read_text())["provenance"]["restored_from"]["kind"] == "superseded"
    assert json.loads((out / "config.json").read_text())["epochs"] == 1
    # off: the old behaviour, every run trains
    _, log = run(cfg_for(synthetic_path, epochs=2), out, supersede=True, restore=False)
    assert "epoch 2/2" in log


def damage_truncate(path):
    data = path.read_bytes()
    path.unlink()  # a new file: the run folder sharing the old one keeps its bytes
    path.write_bytes(data[: len(data) // 2])


def damage_alter(path):
    data = bytearray(path.read_bytes())
    data[-3] ^= 1
    path.unlink()
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("damage,file,reason", [
    (damage_truncate, "checkpoint.pt", "truncated or altered"),
    (damage_alter, "metrics.json", "SHA-256 mismatch"),
    (lambda p: p.unlink(), "history.parquet", "history.parquet missing"),
])
def test_a_damaged_entry_is_one_line_and_the_run_trains(synthetic_path, tmp_path, damage, file, reason):
    cache = tmp_path / "cache"
    first, _ = run(cfg_for(synthetic_path), tmp_path / "a", cache)
    (entry,) = runcache.entries(cache)[0]
    damage(entry["path"] / file)
    second, log = run(cfg_for(synthetic_path), tmp_path / "b", cache)
    lines = [line for line in log.splitlines() if "run cache" in line and "damaged" in line]
    assert len(lines) == 1 and reason in lines[0], log
    assert "epoch 1/1" in log and second == first  # trained again (bit-identical on the CPU)
    (fresh,) = runcache.entries(cache)[0]  # the damaged entry was replaced by the new run's
    runcache.verify(fresh["path"])


def test_an_unwritable_cache_is_one_line_and_the_run_trains(synthetic_path, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    metrics, log = run(cfg_for(synthetic_path), tmp_path / "a", blocker / "cache")
    assert "epoch 1/1" in log and metrics
    assert len([line for line in log.splitlines() if "run cache" in line]) == 1 and "not stored" in log, log


def test_an_entry_of_another_layout_is_ignored(synthetic_path, tmp_path):
    cache = tmp_path / "cache"
    run(cfg_for(synthetic_path), tmp_path / "seed", cache)
    (entry,) = runcache.entries(cache)[0]
    (entry["path"] / "entry.json").write_text(json.dumps({"layout": 0, "whatever": [1, 2]}))  # an older writer's
    _, log = run(cfg_for(synthetic_path), tmp_path / "a", cache)
    assert "epoch 1/1" in log and "another layout 0, not 1: ignored" in log, log
    assert "ignored (layout 0, not 1)" in runcache.listing(cache)[0]


def _store_from(out, cfg, root, barrier):
    barrier.wait()
    for k in range(25):
        runcache.store(cfg, Path(out), Path(root) / str(k), io.StringIO(), "race", {"device": "cpu"})


def test_two_concurrent_writers_leave_one_valid_entry(synthetic_path, tmp_path):
    # two real training processes of the same run, into two folders, one cache
    cache = tmp_path / "cache"
    cmd = [str(BIN / "introspect"), "train", "--dataset", "synthetic", "--set", f"dataset.path={synthetic_path}",
           "--model", "mlp1024", "--epochs", "1", "--device", "cpu", "--cache", str(cache)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    procs = [subprocess.Popen([*cmd, "--out", str(tmp_path / n)], env=env, stderr=subprocess.PIPE, text=True) for n in "ab"]
    logs = [p.communicate()[1] for p in procs]
    assert all(p.returncode == 0 for p in procs), logs
    found, notes = runcache.entries(cache)
    assert len(found) == 1 and not notes and not [p for p in cache.iterdir() if p.name.startswith(".tmp")]
    runcache.verify(found[0]["path"])
    # the rename itself raced: two processes storing one identity into 25 fresh caches at once
    cfg = json.loads((tmp_path / "a" / "config.json").read_text())
    ctx = multiprocessing.get_context("fork")
    barrier = ctx.Barrier(2)
    writers = [ctx.Process(target=_store_from, args=(str(tmp_path / n), cfg, str(tmp_path / "race"), barrier)) for n in "ab"]
    for w in writers:
        w.start()
    for w in writers:
        w.join(60)
        assert w.exitcode == 0
    for k in range(25):
        root = tmp_path / "race" / str(k)
        assert [p.name for p in root.iterdir()] == [runcache.identity(cfg)]
        runcache.verify(root / runcache.identity(cfg))


def test_list_and_prune_never_touch_what_a_run_folder_uses(synthetic_path, tmp_path):
    cache = tmp_path / "cache"
    for seed in (0, 1):
        run(cfg_for(synthetic_path, seed=seed), tmp_path / f"s{seed}", cache)
    text, damaged = runcache.listing(cache)
    assert damaged == 0  # not checked without verify_files
    assert "2 entries" in text and text.count(" ce ") == 2 and "synthetic" in text and "total" in text, text
    assert runcache.prune(cache, [tmp_path], unreferenced=True) == [
        line for line in runcache.prune(cache, [tmp_path], unreferenced=True, dry_run=True)]  # both kept: used
    assert len(runcache.entries(cache)[0]) == 2
    shutil.rmtree(tmp_path / "s1")  # seed 1's run folder is gone: its entry is used by nothing
    assert runcache.prune(cache, [tmp_path], older_than=3600) == []  # too young
    lines = runcache.prune(cache, [tmp_path], older_than=0.0, now=time.time() + 10)
    assert [line.split()[0] for line in lines] == ["kept", "deleted"] or sorted(line.split()[0] for line in lines) == ["deleted", "kept"]
    (left,) = runcache.entries(cache)[0]
    assert left["run"]["seed"] == 0 and (tmp_path / "s0" / "checkpoint.pt").exists()
    # a run restored by a copy (as across file systems) shares no inode: its restored_from protects the entry
    _, log = run(cfg_for(synthetic_path), tmp_path / "r", cache)
    assert "restored, not trained" in log
    shutil.rmtree(tmp_path / "s0")
    for name in runcache.FILES:
        data = (tmp_path / "r" / name).read_bytes()
        (tmp_path / "r" / name).unlink()
        (tmp_path / "r" / name).write_bytes(data)
    assert [line.split()[0] for line in runcache.prune(cache, [tmp_path], unreferenced=True)] == ["kept"]
    assert [line.split()[0] for line in runcache.prune(cache, [tmp_path / "s0"], unreferenced=True)] == ["deleted"]


def test_cache_cli_list_and_prune(synthetic_path, tmp_path, monkeypatch, capsys):
    from introspect.cli import main

    cache = tmp_path / "cache"
    run(cfg_for(synthetic_path), tmp_path / "a", cache)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv(runcache.ENV, str(cache))
    assert main(["cache"]) == 0
    out = capsys.readouterr().out
    assert "1 entries" in out and "mlp1024" in out and "total" in out, out
    assert main(["cache", "prune"]) == 0  # no filter: only the temp folders of killed writers, here none
    assert capsys.readouterr().out == f"run cache {cache}: nothing to prune\n"
    assert len(runcache.entries(cache)[0]) == 1
    assert main(["cache", "prune", "--larger-than", "1k", "--results", "a"]) == 0
    assert capsys.readouterr().out.startswith("kept")
    monkeypatch.delenv(runcache.ENV)
    (tmp_path / "params.yaml").write_text(f"run_cache: {{dir: {cache}}}\n")  # read from params.yaml
    assert main(["cache", "list"]) == 0 and "1 entries" in capsys.readouterr().out


def test_a_run_trained_without_the_cache_is_added_and_then_restored(synthetic_path, tmp_path, monkeypatch, capsys):
    from introspect.cli import main

    cache = tmp_path / "cache"
    first, _ = run(cfg_for(synthetic_path), tmp_path / "old")  # no cache folder: stored nowhere
    assert not cache.exists()
    monkeypatch.setenv(runcache.ENV, str(cache))
    assert main(["cache", "add", "--run", str(tmp_path / "old"), "--run", str(tmp_path / "nothing")]) == 0
    captured = capsys.readouterr()
    assert "1 of 2 runs stored" in captured.out and "nothing: not added" in captured.err, captured
    (entry,) = runcache.entries(cache)[0]
    assert entry["trained"]["device"] == "cpu" and entry["trained"]["precision"] == "unknown"
    again, log = run(cfg_for(synthetic_path), tmp_path / "new", cache)
    assert again == first and "restored, not trained" in log
