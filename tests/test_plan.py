"""`introspect plan`: runs per table, image passes, and hours from a bench file."""
import json
from pathlib import Path

import pytest

from introspect import pipeline
from introspect.cli import main
from introspect.plan import (JOB_START_S, bench_entries, cost_label, default_bench, estimate, read_bench, report,
                             seconds_per_run, train_images, wall_hours)

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
    head = out.splitlines()[0]
    assert head.startswith("# scale paper: at least ") and "on " in head and "of test" in head  # the bench's device
    # what the bench cannot estimate is named in the headline and shown as ?, never summed as 0
    assert "not counting table1" in head and "resnet14/ce" in head
    assert next(line for line in out.splitlines() if line.startswith("table1 ")).split()[-1] == "?"
    assert f"{len(plan.runs)} runs" in out.splitlines()[1] and "table5" in out


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
    hours = {run: 1.0}  # one job of an hour is the longest: the training part is that hour and its start-up
    with_eval, without = wall_hours(plan, hours, 4, 0.5), wall_hours(plan, hours, 4, 0.0)
    assert with_eval - without == pytest.approx(0.5 + JOB_START_S / 3600)  # the evaluate job, after training
    assert 1.0 + JOB_START_S / 3600 < without < 1.0 + 60 / 3600


def test_the_shipped_bench_estimates_every_table_of_every_scale():
    """workflow/bench/cpu.json times every model and method each scale trains, on its dataset's shape
    at its batch size: no run is left unestimated, and the first line gives a figure."""
    bench, _ = default_bench()
    for scale in ("quick", "laptop", "paper"):
        plan = pipeline.load(ROOT / "params.yaml", scale=scale)
        e = estimate(plan, bench)
        assert e["unmeasured"] == [] and set(e["hours"]) == set(plan.runs) == set(e["evaluate"]), scale
        head = report(plan, None, cores=2).splitlines()[0]
        assert head.startswith(f"# scale {scale}: about ") and "on 2 cores of this CPU" in head
    assert "introspect bench --device cuda --json b.json" in head and "--scale paper --bench b.json" in head  # paper


def test_runs_take_the_bench_entry_of_their_dataset_and_batch():
    plan = pipeline.load(ROOT / "params.yaml", scale="quick")
    bench = {"device": "t", "entries": [
        {"dataset": "digits", "batch_size": 64, "step_ms": {"resnet8": {"ce": 6.4, "ls": 6.4}}},
        {"dataset": "digits", "batch_size": 32, "step_ms": {"resnet8": {"ce": 100.0, "ls": 100.0}}},
        {"dataset": "cifar10", "batch_size": 64, "step_ms": {"resnet8": {"ce": 100.0, "ls": 100.0}}}]}
    e = estimate(plan, bench)
    run = "digits/resnet8/ce/seed0"  # 3 epochs of 1293 images at 0.1 ms each, val + test forward at a third
    assert e["hours"][run] * 3600 == pytest.approx(3 * 1293 * 1e-4 + 3 * (144 + 360) * 1e-4 / 3)
    assert "mnist5k/mlp1024/ce/seed0" in e["unmeasured_runs"]  # no entry of its dataset: not estimated
    one = seconds_per_run(plan, "table2", "resnet8", "ls", bench)
    assert one == pytest.approx(e["hours"]["digits/resnet8/ls-0.9/seed0"] * 3600)  # one seed of the one sweep value
    assert seconds_per_run(plan, "table2", "resnet8", "le_gradcam", bench) is None  # le_gradcam not timed: never 0
    assert seconds_per_run(plan, "table5", "resnet8", "kd") < seconds_per_run(plan, "table5", "resnet8", "kd",
                                                                              with_support=True)  # + its teacher


def test_a_scale_bench_times_what_the_scale_trains(tmp_path, capsys):
    plan = pipeline.load(ROOT / "params.yaml", scale="laptop")
    (entry,) = bench_entries(plan)
    assert (entry["dataset"], entry["batch_size"]) == ("mnist5k", 16)
    assert entry["models"] == {"mlp1024": ["ce", "cp", "le_grad", "le_grad_input", "le_guided_bp", "ls"]}
    quick = bench_entries(pipeline.load(ROOT / "params.yaml", scale="quick"))
    assert {(e["dataset"], e["batch_size"]) for e in quick} == {("digits", 64), ("mnist5k", 64)}
    assert next(e for e in quick if e["dataset"] == "digits")["teachers"]["resnet"] == "resnet20"  # quick's teacher
    out = tmp_path / "b.json"
    assert main(["bench", "--device", "cpu", "--scale", "laptop", "--params", str(ROOT / "params.yaml"), "--steps", "1",
                 "--cpu-time", "--json", str(out)]) == 0
    written = read_bench(out)
    assert written["clock"] == "process_time" and written["entries"][0]["dataset"] == "mnist5k"
    assert set(written["entries"][0]["step_ms"]["mlp1024"]) == set(entry["models"]["mlp1024"])
    assert main(["plan", "--params", str(ROOT / "params.yaml"), "--scale", "laptop", "--bench", str(out)]) == 0
    head = capsys.readouterr().out.split("# scale laptop: ")[1].splitlines()[0]
    assert head.startswith("about ") and "of cpu" in head and "introspect bench" not in head
