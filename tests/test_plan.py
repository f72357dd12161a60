"""`introspect plan`: runs per table, image passes, and hours from a bench file, calibrated to this CPU,
scheduled on the cores."""
import dataclasses
import json
import math
from pathlib import Path

import pytest

from introspect import pipeline
from introspect.cli import main
from introspect.plan import (JOB_START_S, Calibration, bench_entries, calibrate, cost_label, default_bench, estimate,
                             probe_points, read_bench, report, schedule, seconds_per_run, steps_for, train_images,
                             wall_hours)

ROOT = Path(__file__).resolve().parents[1]


def test_counts_and_hours_from_a_bench_file(tmp_path, capsys):
    plan = pipeline.load(ROOT / "params.yaml", scale="paper")
    bench = {"device": "test", "batch_size": 100, "step_ms": {"resnet8": {"ce": 10.0}}}
    e = estimate(plan, bench)
    run = "cifar10/resnet8/ce/seed0"
    assert e["passes"][run] == 160 * 45000 == 160 * train_images(plan.runs[run])
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
    Grad-CAM maps (an LE step each), 4 x (8 + 1) curve points (deletion and insertion, real and random
    maps) + 4 perturbations forward per image,
    plus the test split forward (forwards at a third of a CE step)."""
    plan = pipeline.load(ROOT / "params.yaml", scale="quick")
    bench = {"device": "test", "batch_size": 10, "step_ms": {"resnet8": {"ce": 3.0, "le_gradcam": 12.0}}}
    e = estimate(plan, bench)
    run = "digits/resnet8/ce/seed0"
    forwards = 360 + 64 * (4 * 9 + 4)  # deletion and insertion of the real and of a random map
    assert e["evaluate"][run] == pytest.approx((forwards * 0.003 / 10 / 3 + 64 * 0.012 / 10) / 3600)
    assert "mnist5k/mlp1024/ce/seed0" not in e["evaluate"]  # the MLP's le_grad step is not in this bench
    hours = {run: 1.0}  # one job of an hour is the longest: the training part is that hour and its start-up
    with_eval, without = wall_hours(plan, hours, 4, 0.5), wall_hours(plan, hours, 4, 0.0)
    assert with_eval - without == pytest.approx(0.5)  # the evaluate job, after every training job
    assert 1.0 + JOB_START_S / 3600 < without < 1.0 + 60 / 3600


def test_the_shipped_bench_estimates_every_table_of_every_scale():
    """workflow/bench/cpu.json times every model and method each scale trains, on its dataset's shape
    at its batch size: no run is left unestimated, and the first line gives a figure."""
    bench, _ = default_bench()
    for scale in ("quick", "laptop", "mnist_full", "mnist_cut", "paper"):
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


def test_full_mnist_takes_the_steps_of_mnist5k_its_shape_where_the_bench_has_no_mnist_entry():
    """A step costs the same on two datasets of one image shape (1x28x28): the mnist_full scale's
    Figure 3 rows (le_grad_input, le_guided_bp at batch 16) are timed by the bench's mnist5k entry;
    the labels the mnist entry has stay its own; a dataset of another shape gets nothing from it."""
    bench, _ = default_bench()
    by = {(e["dataset"], e["batch_size"]): e["step_ms"]["mlp1024"] for e in bench["entries"] if "mlp1024" in e["step_ms"]}
    assert "le_guided_bp" not in by[("mnist", 16)]  # what this test is about
    plan = pipeline.load(ROOT / "params.yaml", scale="mnist_full")
    e = estimate(plan, bench)
    assert e["unmeasured"] == [] and set(e["hours"]) == set(plan.runs)
    steps, batch = steps_for(plan.runs["mnist/mlp1024/le_guided_bp/seed0"], bench)
    assert batch == 16 and steps["le_guided_bp"] == by[("mnist5k", 16)]["le_guided_bp"]
    assert steps["ce"] == by[("mnist", 16)]["ce"] != by[("mnist5k", 16)]["ce"]
    assert not report(plan, None, cores=2).splitlines()[0].count("not counting")
    only = {"device": "t", "entries": [{"dataset": "mnist5k", "batch_size": 64, "step_ms": {"resnet8": {"ce": 1.0}}}]}
    assert steps_for(pipeline.load(ROOT / "params.yaml", scale="quick").runs["digits/resnet8/ce/seed0"], only) == ({}, 1)


def test_a_row_s_seeds_in_one_job_bound_the_wall_time():
    """A training job trains its row's seeds one after another: at mnist_cut on 2 cores, with a job
    per row, the LE job alone (3 seeds) is longer than the work shared by the cores; with a job per
    run (params.yaml's train_jobs: seed) the cores bound it. The output says which."""
    bench, _ = default_bench()
    plan = pipeline.load(ROOT / "params.yaml", scale="mnist_cut")
    e = estimate(plan, bench)
    le = sum(h for run, h in e["hours"].items() if "/le_grad/" in run)
    for jobs in ("row", "seed"):
        p = dataclasses.replace(plan, train_jobs=jobs)
        s = schedule(p, e["hours"], 2, sum(e["evaluate"].values()))
        text = report(p, None, cores=2)
        bound = next(line for line in text.splitlines() if line.startswith("# bound by"))
        if jobs == "row":
            assert s["wall"] == pytest.approx(s["chain"]) and s["chain"] > le > s["work"]
            assert s["longest"][0] == "mnist/mlp1024/le_grad" and s["longest"][2] == 3
            assert bound.startswith("# bound by the longest chain of jobs") and "mnist/mlp1024/le_grad, 3 runs in turn" in bound
        else:
            assert s["chain"] < le / 2 < s["work"] <= s["wall"] < le
            assert bound.startswith("# bound by the cores")
        assert f"about {60 * s['wall']:.0f} min on 2 cores" in text.splitlines()[0]


def test_a_student_waits_for_its_teacher():
    """An hour of teacher, then an hour of its student: two hours on any number of cores."""
    plan = pipeline.load(ROOT / "params.yaml", scale="quick")
    student = next(r for r in plan.runs.values() if r.variant == "kd" and r.seed == 0)
    (teacher,) = student.needs
    s = schedule(plan, {teacher: 1.0, student.id: 1.0}, 8)
    assert s["work"] < 1.0 and 2.0 < s["chain"] < 2.0 + 60 / 3600 and s["wall"] == pytest.approx(s["chain"])
    assert wall_hours(plan, {teacher: 1.0, student.id: 1.0}, 8) == s["wall"]


def slower(factor: float, bench: dict):
    """A probe hook: this CPU's steps as the bench's times ``factor`` (a machine that much slower)."""
    def probe(points, steps):
        by = {(e["dataset"], e["batch_size"]): e["step_ms"] for e in bench["entries"]}
        return {p: factor * by[p[:2]][p[2]]["ce"] for p in points}, 1.0
    return probe


def test_on_a_slower_machine_every_estimate_scales_and_the_first_line_says_so():
    bench, _ = default_bench()
    plan = pipeline.load(ROOT / "params.yaml", scale="quick")
    base = report(plan, None, cores=2).splitlines()
    assert "(bench not calibrated to this CPU" in base[0]
    calibration = calibrate(bench, slower(3.0, bench))
    assert calibration.ratio == pytest.approx(3.0)
    text = report(plan, None, cores=2, calibration=calibration).splitlines()
    assert text[0].startswith("# scale quick: about ") and "(bench calibrated here: this CPU is 3.0x slower than the bench's)" in text[0]
    e = estimate(plan, bench)
    wall = wall_hours(plan, e["hours"], 2, sum(e["evaluate"].values()))
    fast = schedule(plan, {k: 3 * h for k, h in e["hours"].items()}, 2, 3 * sum(e["evaluate"].values()), 3.0)
    assert fast["wall"] == pytest.approx(3 * wall)  # every cost, fixed ones too, 3x
    assert f"about {60 * fast['wall']:.0f} min on 2 cores" in text[0]
    rows = {line.split()[0]: line.split()[-1] for line in text if line.startswith(("table1 ", "total "))}
    base_rows = {line.split()[0]: line.split()[-1] for line in base if line.startswith(("table1 ", "total "))}
    assert rows.keys() == base_rows.keys() == {"table1", "total"}
    for k in rows:
        assert float(rows[k]) == pytest.approx(3 * float(base_rows[k]), abs=0.02)
    assert any(line.startswith("# calibration: ") and "x 3.00" in line for line in text)
    assert "faster than the bench's" in calibrate(bench, slower(0.5, bench)).note
    assert "as fast as the bench's" in calibrate(bench, slower(1.01, bench)).note


def test_a_bench_that_cannot_be_calibrated_says_so():
    bench, _ = default_bench()

    def broken(points, steps):
        raise RuntimeError("no CPU kernels")

    assert calibrate(bench, broken) == Calibration(None, "bench not calibrated: the probe failed (RuntimeError: no CPU kernels)")
    gpu = {"device": "NVIDIA H100", "clock": "perf_counter", "entries": bench["entries"]}
    note = calibrate(gpu, slower(3.0, bench))
    assert note.ratio is None and note.note.startswith("bench of NVIDIA H100 as measured, not calibrated")
    assert calibrate({"clock": "process_time", "entries": [{"dataset": "mine", "batch_size": 8, "step_ms": {"m": {"ce": 9.0}}}]},
                     slower(3.0, bench)).ratio is None  # nothing of a built-in dataset to probe


def test_the_probe_times_this_cpu_and_plan_says_so_in_its_first_line(capsys):
    """The real probe: a CE step of each family's cheapest entry, here, a few seconds; the first line
    says calibrated, or with --no-probe that it is not."""
    bench, _ = default_bench()
    assert [m for _, _, m in probe_points(bench)] == ["mlp1024", "cnn6", "resnet8"]  # the cheapest CE step per family
    calibration = calibrate(bench, steps=3)
    assert calibration.ratio is not None and 0 < calibration.ratio < 100 and math.isfinite(calibration.ratio)
    assert calibration.note.startswith("bench calibrated here: this CPU is ")
    assert main(["plan", "--params", str(ROOT / "params.yaml"), "--scale", "quick"]) == 0
    head = capsys.readouterr().out.splitlines()[0]
    assert head.startswith("# scale quick: about ") and "(bench calibrated here: this CPU is " in head
    assert main(["plan", "--params", str(ROOT / "params.yaml"), "--scale", "quick", "--no-probe"]) == 0
    head = capsys.readouterr().out.splitlines()[0]
    assert head.endswith("(bench not calibrated to this CPU, --no-probe: the step times of the CPU it was made on)")
