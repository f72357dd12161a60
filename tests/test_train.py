import json
import os
import signal
import subprocess
import sys
import time

import pyarrow.parquet as pq
import pytest
import torch

from introspect.checkpoint import read_checkpoint
from introspect.config import resolve
from introspect.methods.regularizers import CrossEntropy
from introspect.train import Diverged, train


def cfg_for(path, **over):
    user = {"dataset": {"name": "synthetic", "path": str(path)}, "model": "resnet8", "method": "ce",
            "epochs": 3, "device": "cpu", **over}
    return resolve(user)


def test_run_leaves_its_files(tmp_path, synthetic_path):
    cfg = cfg_for(synthetic_path, method={"name": "le", "warmup": 1})
    metrics = train(cfg, tmp_path / "run")
    run = tmp_path / "run"
    assert {p.name for p in run.iterdir()} >= {"config.json", "checkpoint.pt", "history.parquet", "metrics.json"}
    saved = json.loads((run / "config.json").read_text())
    assert set(saved.pop("provenance")) == {"code", "learned_from", "data"} and saved == cfg
    assert json.loads((run / "provenance.json").read_text())["code"]  # the receipt, written last
    hist = pq.read_table(run / "history.parquet").to_pylist()
    assert [r["epoch"] for r in hist] == [1, 2, 3]
    assert set(hist[0]) >= {"lr", "train_loss", "train_acc", "val_acc", "test_acc", "seconds", "images_per_s"}
    assert json.loads((run / "metrics.json").read_text()) == metrics
    assert metrics["test_acc"] == hist[-1]["test_acc"] and metrics["epochs"] == 3


def test_same_seed_same_result_and_rerun_is_a_no_op(tmp_path, synthetic_path):
    cfg = cfg_for(synthetic_path, epochs=2)
    a = train(cfg, tmp_path / "a")
    b = train(cfg, tmp_path / "b")
    assert a == b
    stamp = (tmp_path / "a" / "checkpoint.pt").stat().st_mtime_ns
    assert train(cfg, tmp_path / "a") == a
    assert (tmp_path / "a" / "checkpoint.pt").stat().st_mtime_ns == stamp


def test_folder_of_another_run_is_refused(tmp_path, synthetic_path):
    from introspect.registry import ConfigError

    first = train(cfg_for(synthetic_path, epochs=1), tmp_path / "a")
    with pytest.raises(ConfigError, match="different config"):
        train(cfg_for(synthetic_path, epochs=1, seed=5), tmp_path / "a")
    assert json.loads((tmp_path / "a" / "metrics.json").read_text()) == first


def test_supersede_moves_the_old_run_aside_and_starts_over(tmp_path, synthetic_path):
    run = tmp_path / "a"
    first = train(cfg_for(synthetic_path, epochs=1), run)
    second = train(cfg_for(synthetic_path, epochs=1, seed=5), run, supersede=True)
    (old,) = (run / "superseded").iterdir()
    assert json.loads((old / "metrics.json").read_text()) == first
    assert json.loads((old / "config.json").read_text())["seed"] == 0
    assert json.loads((run / "config.json").read_text())["seed"] == 5
    assert json.loads((run / "metrics.json").read_text()) == second


def test_non_finite_loss_stops_and_keeps_last_good_checkpoint(tmp_path, synthetic_path, monkeypatch):
    real = CrossEntropy.loss

    def nan_from_epoch_2(self, x, y, epoch):
        loss, logits = real(self, x, y, epoch)
        return (loss * float("nan") if epoch >= 1 else loss), logits

    monkeypatch.setattr(CrossEntropy, "loss", nan_from_epoch_2)
    run = tmp_path / "run"
    with pytest.raises(Diverged, match=r"epoch 2: training loss is nan; run stopped, its last good checkpoint \(epoch 1\) is kept"):
        train(cfg_for(synthetic_path), run)
    state = read_checkpoint(run / "checkpoint.pt")
    assert len(state["history"]) == 1 and not (run / "metrics.json").exists()
    assert all(torch.isfinite(v).all() for v in state["method"].values() if v.is_floating_point())


def _cli(*args):
    return [sys.executable, "-m", "introspect.cli", *args]


@pytest.mark.slow
@pytest.mark.parametrize("method", ["le_permut", "ce"])
def test_killed_run_resumes_bit_identical(tmp_path, synthetic_path, method):
    """SIGKILL a training process after its 2nd checkpoint, mid-epoch; the rerun resumes from the
    checkpoint (not from scratch) and ends with the metrics of an uninterrupted run, bit for bit."""
    common = ["train", "--dataset", "synthetic", "--model", "resnet8", "--method", method, "--epochs", "5",
              "--device", "cpu", "--set", f"dataset.path={synthetic_path}", "--set", "batch_size=16",
              "--cache", "off"]  # the run must train (the session's cache would restore the uninterrupted one)
    if method.startswith("le"):
        common += ["--set", "method.warmup=1", "--set", "method.explainer=grad"]
    whole = subprocess.run(_cli(*common, "--out", str(tmp_path / "whole")), capture_output=True, text=True, check=True)

    run = tmp_path / "killed"
    proc = subprocess.Popen(_cli(*common, "--out", str(run)), stderr=subprocess.PIPE, text=True)
    seen = []
    for line in proc.stderr:  # progress lines, one per epoch
        seen.append(line)
        if "epoch 2/5" in line:
            time.sleep(0.2)  # into epoch 3
            os.kill(proc.pid, signal.SIGKILL)
            break
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    assert not (run / "metrics.json").exists()
    resumed = subprocess.run(_cli(*common, "--out", str(run)), capture_output=True, text=True, check=True)
    assert "resuming after epoch 2" in resumed.stderr or "resuming after epoch 3" in resumed.stderr
    assert "epoch 1/5" not in resumed.stderr
    assert (run / "metrics.json").read_text() == (tmp_path / "whole" / "metrics.json").read_text()
    assert json.loads(resumed.stdout) == json.loads(whole.stdout)
    a = read_checkpoint(run / "checkpoint.pt")["method"]
    b = read_checkpoint(tmp_path / "whole" / "checkpoint.pt")["method"]
    assert all(torch.equal(a[k], b[k]) for k in a)
