"""Both epoch protocols in every run's metrics, and a warning when a run's length leaves part of
its schedule unused."""
import io
import json

from introspect.config import resolve
from introspect.train import best_val_metrics, schedule_warnings, train


def test_best_validation_epoch_protocol_on_a_hand_history():
    history = [{"epoch": 1, "val_acc": 80.0, "test_acc": 70.0}, {"epoch": 2, "val_acc": 90.0, "test_acc": 85.0},
               {"epoch": 3, "val_acc": 90.0, "test_acc": 88.0}, {"epoch": 4, "val_acc": 85.0, "test_acc": 91.0}]
    # the first epoch of the highest val_acc (2, not its tie 3), not the best test epoch (4)
    assert best_val_metrics(history) == {"best_val_epoch": 2, "best_val_test_acc": 85.0, "best_val_test_err": 15.0}
    peers = [{"epoch": 1, "peer_val_acc": 50.0, "peer_test_acc": 40.0}, {"epoch": 2, "peer_val_acc": 40.0, "peer_test_acc": 60.0}]
    assert best_val_metrics(peers, "peer_") == {"peer_best_val_epoch": 1, "peer_best_val_test_acc": 40.0,
                                                "peer_best_val_test_err": 60.0}


def cfg(synthetic_path, **over):
    return resolve({"dataset": {"name": "synthetic", "path": str(synthetic_path)}, "model": "mlp1024", "device": "cpu",
                    **over})


def test_unused_warmup_and_milestones_are_named(synthetic_path):
    c = cfg(synthetic_path, method={"name": "le", "warmup": 10}, epochs=2, optim={"milestones": [1, 2, 5]})
    assert schedule_warnings(c) == ["method.warmup = 10 >= epochs = 2: le never leaves its warm-up",
                                    "optim.milestones [2, 5] at or past the last epoch (2): the lr never drops there"]
    assert schedule_warnings(cfg(synthetic_path, method={"name": "le", "warmup": 1}, epochs=2,
                                 optim={"milestones": [1]})) == []


def test_a_run_warns_in_its_log_and_records_both_protocols(tmp_path, synthetic_path):
    log = io.StringIO()
    c = cfg(synthetic_path, method={"name": "le", "warmup": 3}, epochs=2)
    metrics = train(c, tmp_path / "run", log=log)
    assert "warning: method.warmup = 3 >= epochs = 2: le never leaves its warm-up" in log.getvalue()
    assert 1 <= metrics["best_val_epoch"] <= 2 and json.loads((tmp_path / "run" / "metrics.json").read_text()) == metrics
    assert metrics["best_val_test_err"] == 100.0 - metrics["best_val_test_acc"]
