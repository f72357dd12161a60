"""`introspect plan`: runs per table, image passes, and hours from a bench file."""
import json
from pathlib import Path

import pytest

from introspect import pipeline
from introspect.cli import main
from introspect.plan import JOB_START_S, cost_label, estimate, train_images, wall_hours

ROOT = Path(__file__).resolve().parents[1]


def test_counts_and_hours_from_a_bench_file(tmp_path, capsys):
    plan = pipeline.load(ROOT / "params.yaml", scale="paper")
    bench = {"device": "test", "batch_size": 100, "step_ms": {"resnet8": {"ce": 10.0}}}
    e = estimate(plan, bench)
    run = "cifar10/resnet8/ce/seed0"
    assert e["passes"][run] == 160 * 45000 == 160 * train_images("cifar10")
    train, evaluation = 160 * 45000 / 100 * 0.010, 160 * (5000 + 10000) / 100 * 0.010 / 3  # steps x 10 ms; val + test, forward
    assert e["hours"][run] == pytest.approx((train + evaluation) / 3600)
    assert "resnet14/ce" in e["unmeasured"] and run not in e["support"]
    assert "cifar10/resnet26/teacher/seed0" in e["support"] and "cifar10/resnet8/hint_stage/seed0" in e["support"]
    assert cost_label(plan.runs["cifar10/resnet8/le_grad/seed0"]) == "le_grad"
    assert cost_label(plan.runs["mnist/mlp1024/le_permut/seed0"]) == "le_grad"
    (tmp_path / "bench.json").write_text(json.dumps(bench))
    assert main(["plan", "--params", str(ROOT / "params.yaml"), "--scale", "paper", "--bench", str(tmp_path / "bench.json")]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"# scale paper: {len(plan.runs)} runs") and "hours" in out and "table5" in out


def test_bad_bench_file_is_one_line(tmp_path, capsys):
    (tmp_path / "b.json").write_text("{}")
    assert main(["plan", "--params", str(ROOT / "params.yaml"), "--bench", str(tmp_path / "b.json")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "not a file written by `introspect bench --json`" in err[0]


def test_the_evaluate_job_is_counted_after_training():
    """One run's share of the evaluate job, by hand: at quick, 64 images explained with all-class
    Grad-CAM maps (an LE step each), 2 x (8 + 1) curve points + 4 perturbations forward per image,
    plus the test split forward (forwards at a third of a CE step)."""
    plan = pipeline.load(ROOT / "params.yaml", scale="quick")
    bench = {"device": "test", "batch_size": 10, "step_ms": {"resnet8": {"ce": 3.0, "le_gradcam": 12.0}}}
    e = estimate(plan, bench)
    run = "digits/resnet8/ce/seed0"
    forwards = 360 + 64 * (2 * 9 + 4)
    assert e["evaluate"][run] == pytest.approx((forwards * 0.003 / 10 / 3 + 64 * 0.012 / 10) / 3600)
    assert "mnist5k/mlp1024/ce/seed0" not in e["evaluate"]  # the MLP's le_grad step is not in this bench
    hours = {run: 1.0}
    assert wall_hours(plan, hours, 4, 0.5) == pytest.approx(1.0 + JOB_START_S / 3600 + JOB_START_S / 3600 + 0.5)
