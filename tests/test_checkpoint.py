"""Damaged checkpoints are detected by checksum; a run falls back to the previous one or starts over,
saying which in one line, and still ends bit-identical to a run that was never damaged."""
import json

import pytest
import torch

from introspect.checkpoint import NAME, PREVIOUS, CheckpointError, load_latest, read_checkpoint, save_checkpoint
from introspect.config import resolve
from introspect.train import train


def test_round_trip_and_previous_kept(tmp_path):
    save_checkpoint({"epoch": 1, "w": torch.arange(4)}, tmp_path)
    save_checkpoint({"epoch": 2, "w": torch.arange(5)}, tmp_path)
    assert read_checkpoint(tmp_path / NAME)["epoch"] == 2
    assert read_checkpoint(tmp_path / PREVIOUS)["epoch"] == 1
    state, note = load_latest(tmp_path)
    assert state["epoch"] == 2 and note is None


def damage(path, how):
    data = path.read_bytes()
    if how == "truncate":
        path.write_bytes(data[: len(data) // 2])
    elif how == "flip":
        i = len(data) - 100
        path.write_bytes(data[:i] + bytes([data[i] ^ 0x01]) + data[i + 1:])
    elif how == "garbage":
        path.write_bytes(b"not a checkpoint at all")
    else:
        path.unlink()


@pytest.mark.parametrize("how,reason", [("truncate", "checksum mismatch"), ("flip", "checksum mismatch"),
                                        ("garbage", "no checksum line")])
def test_damage_is_detected(tmp_path, how, reason):
    save_checkpoint({"w": torch.randn(100)}, tmp_path)
    damage(tmp_path / NAME, how)
    with pytest.raises(CheckpointError, match=reason):
        read_checkpoint(tmp_path / NAME)


@pytest.mark.parametrize("how", ["truncate", "flip", "missing"])
def test_falls_back_to_the_previous_checkpoint(tmp_path, how):
    save_checkpoint({"history": [1]}, tmp_path)
    save_checkpoint({"history": [1, 2]}, tmp_path)
    damage(tmp_path / NAME, how)
    state, note = load_latest(tmp_path)
    assert state == {"history": [1]}
    assert "\n" not in note and note.endswith("resuming from checkpoint.prev.pt (epoch 1)")


def test_starts_over_when_nothing_verifies(tmp_path):
    save_checkpoint({"history": [1]}, tmp_path)
    save_checkpoint({"history": [1, 2]}, tmp_path)
    damage(tmp_path / NAME, "flip")
    damage(tmp_path / PREVIOUS, "truncate")
    state, note = load_latest(tmp_path)
    assert state is None and note.endswith("no good checkpoint left, starting over")
    assert load_latest(tmp_path / "empty") == (None, None)


def test_run_with_a_damaged_checkpoint_resumes_from_the_previous_and_ends_identical(tmp_path, synthetic_path):
    cfg = resolve({"dataset": {"name": "synthetic", "path": str(synthetic_path)}, "model": "resnet8",
                   "method": "ce", "epochs": 3, "device": "cpu"})
    whole = train(cfg, tmp_path / "whole")
    short = dict(cfg, epochs=2)
    run = tmp_path / "damaged"
    train(short, run)  # two epochs, as if a three-epoch run had been killed after the second
    (run / "metrics.json").unlink()
    states = [read_checkpoint(run / PREVIOUS), read_checkpoint(run / NAME)]
    for state in states:  # rewrite both (epoch 1, then epoch 2) as the three-epoch run's
        save_checkpoint(dict(state, config=cfg), run)
    damage(run / NAME, "truncate")
    log = []

    class Log:
        def write(self, text):
            log.append(text)

        def flush(self):
            pass

    assert train(cfg, run, log=Log()) == whole
    text = "".join(log)
    assert "checksum mismatch" in text and "resuming from checkpoint.prev.pt (epoch 1)" in text
    assert json.loads((run / "metrics.json").read_text()) == whole


def test_a_damaged_current_checkpoint_never_replaces_the_good_previous_one(tmp_path):
    save_checkpoint({"history": [1]}, tmp_path)
    save_checkpoint({"history": [1, 2]}, tmp_path)
    damage(tmp_path / NAME, "flip")
    save_checkpoint({"history": [1, 2, 3]}, tmp_path)  # the next epoch after resuming from epoch 1 ...
    assert read_checkpoint(tmp_path / PREVIOUS) == {"history": [1]}  # ... keeps the good previous one
    assert read_checkpoint(tmp_path / NAME) == {"history": [1, 2, 3]}


def test_a_checkpoint_from_before_checksums_is_still_read(tmp_path):
    torch.save({"history": [1], "config": {}}, tmp_path / NAME)  # the old format: a plain torch file
    assert load_latest(tmp_path) == ({"history": [1], "config": {}}, None)


def test_speed_options_do_not_change_which_run_it_is():
    from introspect.runfolder import same_config

    a = {"seed": 0, "device": "cpu", "precision": "auto", "channels_last": "auto", "compile": False}
    assert same_config(a, dict(a, device="cuda", precision="bf16", channels_last="on", compile=True))
    assert not same_config(a, dict(a, seed=1))
