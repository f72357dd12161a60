"""`introspect plan`: what a config will train, and roughly what it costs, before it runs.

Per table, the runs it shows; then the runs they learn from (teachers, assistants, stages); per run,
its image passes = epochs x training images. With a bench file (``introspect bench --json FILE`` on
the device that will train; without ``--bench``, the shipped workflow/bench/cpu.json: every model
and method of the three scales, one CPU thread), a run's time is, per epoch, its training images x
the measured step time of its (model, method) on its dataset's image shape at its batch size / that
batch size (an LE run's warm-up epochs at CE's step time; a step costs the same on two datasets of one
shape, so full MNIST's steps are mnist5k's where the bench has only those), plus its evaluation passes
(val and test, forward only: EVAL_SHARE of a CE step per image). Then one job evaluates every run
(``introspect evaluate`` at the scale's settings): per run, the test split forward and, per explained
image, its all-class maps (an LE step of the model's standard explainer) and the forward passes of
its deletion and insertion curves and infidelity perturbations. The workflow adds its fixed costs
(:func:`fixed_seconds`, measured). The wall-clock estimate schedules the jobs on idle cores (one
thread per job, as the workflow runs them; a student after its teacher's job; :func:`schedule`): no
shorter than the longest chain of jobs (a training job trains its row's seeds one after another,
unless params.yaml's ``train_jobs: seed`` makes each run a job) nor than the work shared by the
cores. A bench made on another CPU is calibrated to this one first
(:func:`calibrate`: a few of its steps timed here). A run whose step the bench lacks is not
estimated: its table shows ``?`` and the first line names it.
"""
from __future__ import annotations

import heapq
import json
import math
import os
import statistics
from dataclasses import dataclass
from pathlib import Path

from .data import subset_counts
from .evaluate import settings as evaluate_settings
from .pipeline import Plan, Run, run_id

# Split sizes of the built-in datasets; a dataset of your own (docs/your-data.md) is not estimated:
# its rows are named as such ("?"), never counted as 0.
FULL_TRAIN = {"cifar10": 50000, "cifar100": 50000, "svhn": 73257, "fashionmnist": 60000, "mnist": 60000,
              "mnist5k": 4000, "digits": 1437, "synthetic": 400}  # before the val split
TEST = {"cifar10": 10000, "cifar100": 10000, "svhn": 26032, "fashionmnist": 10000, "mnist": 10000, "mnist5k": 1000,
        "digits": 360, "synthetic": 200}
VAL_FRACTION = 0.1  # `introspect prepare`'s default
DEFAULT_BENCH = Path(__file__).resolve().parents[2] / "workflow" / "bench" / "cpu.json"
# The workflow's costs besides training and evaluating, in CPU seconds of one core, measured on the
# 2-core CPU of docs/progress.md (2026-11-25, /usr/bin/time): a job's process start-up (`introspect
# train --help`: importing torch and the library, 2.9 s), Snakemake parsing the workflow and building
# the quick DAG (`snakemake -n`, 7.9 s), beyond their start-up: preparing a dataset (digits 1.4 s,
# mnist5k 2.6 s), one Figures 1-2 explanation job (1.2 s), the report job (10.9 s). JOB_OVERHEAD_S,
# Snakemake's bookkeeping per job, is what the quick DAG's measured 515 CPU seconds leave after all
# the rest (0.75 s a job).
JOB_START_S = 3.0
JOB_OVERHEAD_S = 0.75
SNAKEMAKE_START_S = 8.0
PREPARE_S = 2.0
EXPLAIN_S = 1.5
REPORT_S = 11.0
EVAL_SHARE = 1 / 3  # an evaluation image (forward only, large batches) against a CE training image


def n_explain_jobs(plan: Plan) -> int:
    """Figures 1-2 explanation jobs: one per explained seed of each dataset's explained row."""
    return sum(len(runs) for runs in plan.explained_runs().values())


def split_images(run: Run) -> tuple[int, int]:
    """(train, val) images of ``run``: its dataset's, after the val split and its ``dataset.subset``."""
    n = FULL_TRAIN[run.dataset]
    val = math.ceil(n * VAL_FRACTION)
    return subset_counts(n - val, val, run.resolved["dataset"].get("subset"))


def train_images(run: Run) -> int:
    return split_images(run)[0]


def cost_label(run: Run) -> str:
    """The bench's name for what a step of this run does (LE by explainer)."""
    method = run.config["method"]
    if method["name"] in ("le", "le_permut"):
        explainer = method.get("explainer", "auto")
        if explainer == "auto":
            explainer = "grad" if run.model.startswith("mlp") else "gradcam"
        return f"le_{explainer}"
    return method["name"]


def epochs_of(run: Run) -> int:
    return run.resolved["epochs"]


def warmup_of(run: Run) -> int:
    """The epochs an LE run trains with CE alone before its explanations start (0 for other methods)."""
    return min(int(run.resolved["method"].get("warmup", 0)), epochs_of(run)) if cost_label(run).startswith("le_") else 0


def batch_of(run: Run) -> int:
    return int(run.resolved["batch_size"])


def steps_for(run: Run, bench: dict | None) -> tuple[dict[str, float], int]:
    """The bench's step times (ms) of ``run``'s model and the batch they were measured at: from the
    entries of the run's image shape at its batch size (its own dataset's times first, the labels it
    lacks from another dataset of that shape: a step costs the same), else of that shape at another
    batch size, else from an entry that names no dataset (a bench written with --models); ({}, 1)
    when none has the model."""
    entries = _entries(bench)
    batch, shape = batch_of(run), _shape(run.dataset)

    def kin(e: dict) -> int | None:  # 0: the run's dataset, 1: another of its shape, 2: no dataset named
        if e.get("dataset") is None:
            return 2
        return 0 if e["dataset"] == run.dataset else 1 if shape is not None and _shape(e["dataset"]) == shape else None

    ranked = sorted((e for e in entries if run.model in e["step_ms"] and kin(e) is not None),
                    key=lambda e: (kin(e) == 2, e["batch_size"] != batch, kin(e)))
    if not ranked:
        return {}, 1
    best = ranked[0]
    steps: dict[str, float] = {}
    for e in reversed(ranked):  # the best entry's labels last, so they win
        if e["batch_size"] == best["batch_size"] and (kin(e) == 2) == (kin(best) == 2):
            steps |= e["step_ms"][run.model]
    return steps, best["batch_size"]


def _shape(dataset: str) -> tuple[int, int, int] | None:
    """A registered dataset's (channels, size, classes): what a training step's cost depends on."""
    from .data import DATASETS
    from .registry import ConfigError

    try:
        src = DATASETS.get(dataset)
    except ConfigError:
        return None
    return src.channels, src.size, len(src.classes)


def _entries(bench: dict | None) -> list[dict]:
    """A bench's entries; a bench of --models (one batch size, no dataset) is one entry."""
    bench = bench or {}
    if "entries" in bench:
        return bench["entries"]
    if isinstance(bench.get("step_ms"), dict) and bench.get("batch_size"):
        return [{"dataset": None, "batch_size": bench["batch_size"], "step_ms": bench["step_ms"]}]
    return []


def run_seconds(run: Run, step_ms: dict[str, float], batch_size: int) -> float | None:
    """A run's training and evaluation seconds from a bench's step times (None: its step is not measured)."""
    label = cost_label(run)
    if label not in step_ms or "ce" not in step_ms or run.dataset not in FULL_TRAIN:
        return None
    per_image = {k: step_ms[k] / 1000 / batch_size for k in ("ce", label)}
    epochs, warm = epochs_of(run), warmup_of(run)
    train = train_images(run) * (warm * per_image["ce"] + (epochs - warm) * per_image[label])
    evaluation = epochs * (split_images(run)[1] + TEST[run.dataset]) * per_image["ce"] * EVAL_SHARE
    return train + evaluation


def evaluate_seconds(run: Run, step_ms: dict[str, float], batch_size: int, scale: str) -> float | None:
    """A run's share of the evaluate job (None: a step it needs is not measured)."""
    explainer = "le_grad" if run.model.startswith("mlp") else "le_gradcam"  # the standard explainer's all-class maps
    if explainer not in step_ms or "ce" not in step_ms or run.dataset not in TEST:
        return None
    ce, maps = (step_ms[k] / 1000 / batch_size for k in ("ce", explainer))
    s = evaluate_settings(scale)
    # deletion and insertion curves, each for the real and for a random map (the faithfulness baseline)
    forwards = TEST[run.dataset] + s["images"] * (4 * (s["steps"] + 1) + s["perturbations"])
    return forwards * ce * EVAL_SHARE + s["images"] * maps


def fixed_seconds(plan: Plan) -> float:
    """What the workflow spends besides training and evaluating, in seconds of one core: Snakemake's
    start (parsing, the DAG), each job's process start-up and bookkeeping (training jobs, the
    evaluate job, preparing each dataset, each Figures 1-2 explanation, the report) and what the
    prepare, explain and report jobs do."""
    datasets = len({run.dataset for run in plan.runs.values()})
    jobs = len({job_of(plan, r) for r in plan.runs.values()}) + 1 + datasets + n_explain_jobs(plan) + 1
    return (SNAKEMAKE_START_S + jobs * (JOB_START_S + JOB_OVERHEAD_S) + datasets * PREPARE_S
            + n_explain_jobs(plan) * EXPLAIN_S + REPORT_S)


def job_of(plan: Plan, run: Run) -> str:
    """The training job that trains ``run``: one per table row (dataset, model, variant), its seeds one
    after another, or with ``train_jobs: seed`` (params.yaml) one per run."""
    return run.id if plan.train_jobs == "seed" else f"{run.dataset}/{run.model}/{run.variant}"


def schedule(plan: Plan, hours: dict[str, float], cores: int, evaluate_hours: float = 0.0, speed: float = 1.0) -> dict:
    """The workflow's jobs on ``cores`` idle cores, one thread each, as list scheduling places them:
    whenever a core is free it takes the ready job with the longest chain of jobs still behind it.
    The jobs: preparing each dataset; the training jobs (:func:`job_of`: a row's seeds one after
    another, or a run each; ``hours`` of their runs, plus the process start-up), each after its
    dataset and the jobs of the runs it learns from (teachers, assistants, stages); one Figures 1-2
    explanation job per explained run, after its training job; the evaluate job after every
    training job; the report last. Snakemake's
    start comes first and its bookkeeping of every job is spread over the cores. ``speed``: this
    CPU's step time over the bench's (:func:`calibrate`), applied to the fixed costs (``hours`` and
    ``evaluate_hours`` come scaled). Returns the wall hours (``wall``), its two lower bounds: the
    longest chain (``chain``: with Snakemake's share) and the work over the cores (``work``), and the
    longest training job on that chain (``longest``: job, hours, runs)."""
    cores, s = max(cores, 1), speed / 3600
    datasets = sorted({r.dataset for r in plan.runs.values()})
    length: dict[str, float] = {f"prepare {d}": (JOB_START_S + PREPARE_S) * s for d in datasets}
    after: dict[str, set[str]] = {f"prepare {d}": set() for d in datasets}
    runs: dict[str, int] = {}
    for run_id, run in plan.runs.items():
        job = f"train {job_of(plan, run)}"
        length[job] = length.get(job, JOB_START_S * s) + hours.get(run_id, 0.0)
        runs[job] = runs.get(job, 0) + 1
        after.setdefault(job, set()).update({f"prepare {run.dataset}"} | {f"train {job_of(plan, plan.runs[n])}" for n in run.needs})
        after[job].discard(job)
    trains = sorted(runs)
    for explained in plan.explained_runs().values():
        for run in explained:
            length[f"explain {run.id}"] = (JOB_START_S + EXPLAIN_S) * s
            after[f"explain {run.id}"] = {f"train {job_of(plan, run)}"}
    length["evaluate"] = JOB_START_S * s + evaluate_hours
    after["evaluate"] = set(trains) | {f"prepare {d}" for d in datasets}
    length["report"] = (JOB_START_S + REPORT_S) * s
    after["report"] = set(length) - {"report"}
    serial = (SNAKEMAKE_START_S + len(length) * JOB_OVERHEAD_S / cores) * s

    before: dict[str, list[str]] = {job: [] for job in length}
    for job, needs in after.items():
        for need in needs:
            before[need].append(job)
    behind: dict[str, float] = {}  # a job's hours plus the longest chain of jobs that waits for it

    def chain(job: str) -> float:
        if job not in behind:
            behind[job] = length[job] + max((chain(j) for j in before[job]), default=0.0)
        return behind[job]

    waiting = {job: len(needs) for job, needs in after.items()}
    ready = [(-chain(job), job) for job, n in waiting.items() if n == 0]
    heapq.heapify(ready)
    running: list[tuple[float, str]] = []
    now = 0.0
    while ready or running:
        while ready and len(running) < cores:
            _, job = heapq.heappop(ready)
            heapq.heappush(running, (now + length[job], job))
        now, done = heapq.heappop(running)
        for job in before[done]:
            waiting[job] -= 1
            if waiting[job] == 0:
                heapq.heappush(ready, (-chain(job), job))
    critical, job = [], max(length, key=chain)  # the longest chain, followed from its first job
    while job:
        critical.append(job)
        job = max(before[job], key=chain, default=None)
    longest = max((j for j in critical if j in runs), key=length.get, default=None)
    return {"wall": serial + now, "chain": serial + max(behind.values()), "work": serial + sum(length.values()) / cores,
            "longest": (longest.removeprefix("train "), length[longest], runs[longest]) if longest else None}


def wall_hours(plan: Plan, hours: dict[str, float], cores: int, evaluate_hours: float = 0.0, speed: float = 1.0) -> float:
    """Hours on ``cores`` idle cores (:func:`schedule`)."""
    return schedule(plan, hours, cores, evaluate_hours, speed)["wall"]


@dataclass(frozen=True)
class Calibration:
    """How the bench's times were brought to this CPU: ``ratio`` (this CPU's step time over the
    bench's; None: the bench's times as they are), ``note`` (the first line's words) and ``detail``
    (a line of what the probe measured)."""

    ratio: float | None
    note: str
    detail: str = ""


NOT_CALIBRATED = Calibration(None, "bench not calibrated to this CPU: its own CPU's step times")
PROBE_STEPS = 20  # timed steps per probed entry (and 2 of warm-up): about a second on the bench's CPU
PROBE_MIN_MS = 2.0  # steps shorter than this time the timer as much as the step


def probe_points(bench: dict) -> list[tuple[str, int, str]]:
    """What the probe times: per model family in the bench (mlp, cnn, resnet), its cheapest CE step
    on a built-in dataset, as (dataset, batch size, model)."""
    best: dict[str, tuple[float, tuple[str, int, str]]] = {}
    for e in _entries(bench):
        if e.get("dataset") not in FULL_TRAIN:
            continue
        for model, steps in e["step_ms"].items():
            ms = steps.get("ce")
            if ms is not None and ms >= PROBE_MIN_MS and ms < best.get(family_of(model), (math.inf,))[0]:
                best[family_of(model)] = (ms, (e["dataset"], e["batch_size"], model))
    return [point for _, point in sorted(best.values())]


def calibrate(bench: dict | None, probe=None, steps: int = PROBE_STEPS) -> Calibration:
    """Bring a bench made on another CPU to this one: time a few of its own CE steps here (one
    thread, CPU seconds of this process, the median of ``steps``; `introspect bench --cpu-time`
    times the median of its own --steps, 5 and 3 for the shipped bench) and take the median over them of this CPU's step time over the bench's: every
    estimate is scaled by it. ``probe(points, steps)`` -> ({point: median ms}, wall / CPU seconds)
    times the points (default: :func:`introspect.bench.probe`). Only a bench timed in CPU seconds
    (``clock: process_time``) is calibrated; another is used as it is, and the note says so."""
    if not bench:
        return NOT_CALIBRATED
    if bench.get("clock") != "process_time":
        return Calibration(None, f"bench of {bench.get('device', 'its device')} as measured, not calibrated "
                                 "(only a bench of `introspect bench --cpu-time` is)")
    points = probe_points(bench)
    if not points:
        return Calibration(None, "bench not calibrated: it times no CE step of a built-in dataset to probe")
    if probe is None:
        from .bench import probe
    try:
        measured, busy = probe(points, steps)
    except (RuntimeError, OSError, MemoryError) as exc:  # torch cannot run here: the bench's own times
        return Calibration(None, f"bench not calibrated: the probe failed ({type(exc).__name__}: {exc})")
    # keyed by model too: a joined bench may hold two entries of one dataset and batch size
    by_point = {(e["dataset"], e["batch_size"], m): ms for e in _entries(bench) for m, ms in e["step_ms"].items()}
    ratios = {p: measured[p] / by_point[p]["ce"] for p in points}
    ratio = statistics.median(ratios.values())
    speed = (f"{ratio:.1f}x slower than the bench's" if ratio >= 1.05 else
             f"{1 / ratio:.1f}x faster than the bench's" if ratio <= 1 / 1.05 else f"as fast as the bench's ({ratio:.2f}x)")
    detail = ("# calibration: this CPU's CE step, one thread, CPU time, median of "
              f"{steps}: " + ", ".join(f"{m} on {d} at batch {b} {measured[(d, b, m)]:.1f} ms "
                                       f"(bench {by_point[(d, b, m)]['ce']:.1f})" for d, b, m in points)
              + f"; every figure is the bench's x {ratio:.2f} (the median ratio)")
    if busy > 1.3:
        detail += (f"; the probe's wall clock ran {busy:.1f}x its CPU time: other work shares these cores, "
                   "and the wall time stretches with it (the estimate is for idle cores)")
    return Calibration(ratio, f"bench calibrated here: this CPU is {speed}", detail)


def estimate(plan: Plan, bench: dict | None, speed: float = 1.0) -> dict:
    """Per run: its image passes, its training hours and its share of the evaluate job from
    ``bench``'s step times x ``speed`` (:class:`Calibration`'s ratio); what the bench lacks."""
    shown = {table.name: plan.shown(table) for table in plan.tables}
    support = set(plan.runs) - set().union(*shown.values())
    passes, hours, evaluate, unmeasured = {}, {}, {}, {}
    for run_id, run in plan.runs.items():
        passes[run_id] = epochs_of(run) * train_images(run) if run.dataset in FULL_TRAIN else None
        step_ms, batch = steps_for(run, bench)
        seconds = run_seconds(run, step_ms, batch)
        if seconds is None:
            unmeasured[run_id] = (f"{run.model}/{cost_label(run)}" if run.dataset in FULL_TRAIN else
                                  f"{run.dataset} (a dataset of your own: its size is not known before it is prepared)")
        else:
            hours[run_id] = speed * seconds / 3600
        seconds = evaluate_seconds(run, step_ms, batch, plan.scale)
        if seconds is not None:
            evaluate[run_id] = speed * seconds / 3600
    return {"shown": shown, "support": support, "passes": passes, "hours": hours, "evaluate": evaluate,
            "unmeasured": sorted(set(unmeasured.values())), "unmeasured_runs": unmeasured}


def seconds_per_run(plan: Plan, table: str, model: str, row: str, bench: dict | None = None,
                    with_support: bool = False) -> float | None:
    """Seconds of one seed of ``table``'s row ``row`` on ``model`` at the plan's scale: that seed's run
    of each of the row's variants (a sweep: every value), trained and evaluated per epoch, from
    ``bench`` (default: the shipped CPU bench); ``with_support``: also the teachers, assistants and
    stages those runs learn from (one per seed; shared with other rows). None when the bench lacks a
    step the runs take (never 0). No process start-up, no evaluate job."""
    from .registry import ConfigError

    bench = bench if bench is not None else default_bench()[0]
    tables = {t.name: t for t in plan.tables}
    if table not in tables:
        raise ConfigError(f"table: unknown table {table!r}; choices: {', '.join(tables)}")
    t = tables[table]
    rows = {r.label: r for r in t.rows}
    if row not in rows or model not in t.models:
        raise ConfigError(f"{table}: no row {row!r} on model {model!r}; rows: {', '.join(rows)}; models: {', '.join(t.models)}")
    seed = plan.seeds[0]
    todo = [run_id(t.dataset, model, v, seed) for v in rows[row].variants]
    ids: list[str] = []
    while todo:
        rid = todo.pop()
        if rid in plan.runs and rid not in ids:
            ids.append(rid)
            if with_support:
                todo += list(plan.runs[rid].needs)
    total = 0.0
    for rid in ids:
        run = plan.runs[rid]
        seconds = run_seconds(run, *steps_for(run, bench))
        if seconds is None:
            return None
        total += seconds
    return total


def default_bench() -> tuple[dict | None, str]:
    """The shipped CPU bench file and its name, where the package sits in its repository."""
    return (read_bench(DEFAULT_BENCH), str(DEFAULT_BENCH)) if DEFAULT_BENCH.is_file() else (None, "")


def bench_entries(plan: Plan) -> list[dict]:
    """What `introspect bench` times for a scale: per (dataset, batch size) its models' step labels
    (every method run on them, LE by explainer; CE always, for warm-up epochs and evaluation) and the
    teacher model each model family learns from (the most common one)."""
    from collections import Counter

    groups: dict[tuple[str, int], dict[str, set[str]]] = {}
    teachers: dict[tuple[str, int], Counter] = {}
    for run in plan.runs.values():
        key = (run.dataset, batch_of(run))
        labels = groups.setdefault(key, {}).setdefault(run.model, {"ce"})
        labels.add(cost_label(run))
        if run.model.startswith("mlp"):
            labels.add("le_grad")  # the evaluate job's maps
        else:
            labels.add("le_gradcam")
        for need in run.needs:
            model = need.split("/")[1]
            if model != run.model:
                teachers.setdefault(key, Counter())[(family_of(run.model), model)] += 1
    out = []
    for (dataset, batch), models in sorted(groups.items()):
        picked: dict[str, str] = {}
        for (fam, model), _ in (teachers.get((dataset, batch)) or Counter()).most_common():
            picked.setdefault(fam, model)
        out.append({"dataset": dataset, "batch_size": batch, "models": {m: sorted(l) for m, l in sorted(models.items())},
                    "teachers": picked})
    return out


def merge_entries(lists: list[list[dict]]) -> list[dict]:
    """One entry per (dataset, batch size) from several scales' :func:`bench_entries`."""
    merged: dict[tuple[str, int], dict] = {}
    for entries in lists:
        for e in entries:
            m = merged.setdefault((e["dataset"], e["batch_size"]), {**e, "models": {}, "teachers": dict(e["teachers"])})
            for model, labels in e["models"].items():
                m["models"][model] = sorted(set(m["models"].get(model, [])) | set(labels))
    return [merged[k] for k in sorted(merged)]


def family_of(model: str) -> str:
    return model.rstrip("0123456789")


def _hours(e: dict, ids: set[str], factor: float = 1.0) -> str:
    if any(i in e["unmeasured_runs"] for i in ids):
        return f"{'?':>8s}"
    return f"{factor * sum(e['hours'][i] for i in ids):8.2f}"


def _unit(e: dict, evaluate: float) -> tuple[str, float]:
    """The column's unit: minutes when the whole is under two hours of one core, else hours."""
    return ("minutes", 60.0) if sum(e["hours"].values()) + evaluate < 2 else ("hours", 1.0)


def _minutes(hours: float) -> str:
    if hours < 1 / 60:
        return f"{hours * 3600:.0f} s"
    if hours < 2:
        return f"{hours * 60:.0f} min"
    return f"{hours:.1f} hours" if hours < 48 else f"{hours / 24:.0f} days ({hours:.0f} hours)"


def report(plan: Plan, bench: dict | None, bench_name: str = "", cores: int | None = None,
           calibration: Calibration = NOT_CALIBRATED) -> str:
    """The plan's summary. Its first line says how long the scale takes on ``cores`` (default: this
    machine's), from ``bench`` (default: the shipped CPU bench: then at the paper's scale it says the
    figure is this CPU's and how to bench a GPU) scaled by ``calibration`` (:func:`calibrate`), and
    whether it was calibrated, naming what the bench cannot estimate; a later line says whether the
    longest chain of jobs or the cores bound the wall time."""
    shipped = bench is None
    if shipped:
        bench, bench_name = default_bench()
        bench_name = "workflow/bench/cpu.json"
    cores = cores or os.cpu_count() or 1
    speed = calibration.ratio or 1.0
    e = estimate(plan, bench, speed)
    jobs = len({job_of(plan, r) for r in plan.runs.values()})
    evaluate = sum(e["evaluate"].values())
    sched = schedule(plan, e["hours"], cores, evaluate, speed)
    wall = sched["wall"]
    groups = [*e["shown"].items(), ("teachers, assistants, stages", e["support"]), ("total (each run once)", set(plan.runs))]
    unknown = [name for name, ids in e["shown"].items() if any(i in e["unmeasured_runs"] for i in ids)]
    if any(i in e["unmeasured_runs"] for i in e["support"]):
        unknown.append("their teachers, assistants, stages")
    where = f"{cores} core{'s' * (cores != 1)} of {'this CPU' if shipped else bench.get('device', 'the bench device')}"
    notes = [calibration.note]
    if not bench:
        head, notes = "no bench file: pass --bench FILE written by `introspect bench --json FILE` on the training device", []
    elif unknown:
        head = (f"at least {_minutes(wall)} on {where}, not counting {', '.join(unknown)} "
                f"(the bench has no step time for {', '.join(e['unmeasured'])})")
    else:
        head = f"about {_minutes(wall)} on {where}"
    if shipped and plan.scale == "paper" and bench:
        notes.append("the shipped CPU bench; for a GPU's figure: `introspect bench --device cuda --json b.json`, "
                     "then `introspect plan --scale paper --bench b.json`")
    unit, factor = _unit(e, evaluate)
    lines = [f"# scale {plan.scale}: {head}" + (f" ({'; '.join(notes)})" if notes else ""),
             f"# {len(plan.runs)} runs in {jobs} training jobs and 1 evaluate job, {len(plan.seeds)} seeds",
             f"{'':30s} {'runs':>6s} {'image passes':>14s}" + (f" {unit:>8s}" if bench else "")]
    for name, ids in groups:
        counted = [e['passes'][i] for i in ids]
        images = f"{sum(counted):14,d}" if None not in counted else f"{'?':>14s}"
        row = f"{name:30s} {len(ids):6d} {images}"
        if bench:
            row += " " + _hours(e, ids, factor)
        lines.append(row)
    if bench:
        lines.append(f"{'evaluate (every run)':30s} {len(e['evaluate']):6d} {'':14s} {evaluate * factor:8.2f}")
        lines.append(f"# about {_minutes(wall)} on {cores} core{'s' * (cores != 1)} (jobs of one thread in parallel), "
                     f"{sum(e['hours'].values()) + evaluate + speed * fixed_seconds(plan) / 3600:.2f} hours of one core in all "
                     "(with process start-up, Snakemake, preparing, explaining, the report)"
                     + (", counting only the measured runs" if e["unmeasured"] else ""))
        lines.append("# " + bound(sched, cores))
        lines.append(f"# {unit}: training and evaluation on one core, from {bench_name} ({bench_label(bench)})"
                     + (f" x {speed:.2f} (calibrated)" if calibration.ratio else "")
                     + "; tables share runs, so theirs overlap; the total counts each run once; ? = not estimated")
        if calibration.detail:
            lines.append(calibration.detail)
        if e["unmeasured"]:
            lines.append(f"# not in the bench file (not estimated, left out of every sum): {', '.join(e['unmeasured'])}")
    return "\n".join(lines)


def bound(sched: dict, cores: int) -> str:
    """Which lower bound of :func:`schedule` the wall time meets: the longest chain of jobs (a training
    job trains its row's seeds one after another; a student waits for its teacher) or the cores."""
    job = sched["longest"]
    turn = f"{job[2]} runs in turn, " if job and job[2] > 1 else ""
    longest = f"; its longest job: {job[0]}, {turn}{_minutes(job[1])}" if job else ""
    chain = f"the longest chain of jobs ({_minutes(sched['chain'])}{longest})"
    work = f"the cores (the work over {cores} core{'s' * (cores != 1)}: {_minutes(sched['work'])})"
    return f"bound by {chain}, not {work}" if sched["chain"] >= sched["work"] else f"bound by {work}, not {chain}"


def bench_label(bench: dict) -> str:
    entries = _entries(bench)
    if len(entries) == 1 and entries[0].get("dataset") is None:
        return f"{bench.get('device')}, batch {entries[0]['batch_size']}"
    return f"{bench.get('device')}, " + ", ".join(f"{e.get('dataset')} at batch {e['batch_size']}" for e in entries)


def read_bench(path: Path) -> dict:
    from .registry import ConfigError

    try:
        bench = json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        raise ConfigError(f"--bench: cannot read {path} ({exc})") from None
    if isinstance(bench, dict) and isinstance(bench.get("step_ms"), dict) and bench.get("batch_size"):
        # a bench of --models: one batch size, each model on its family's dataset shape
        return {**bench, "entries": [{"dataset": None, "batch_size": bench["batch_size"], "step_ms": bench["step_ms"]}]}
    entries = bench.get("entries") if isinstance(bench, dict) else None
    if not isinstance(entries, list) or not entries or not all(
            isinstance(e, dict) and isinstance(e.get("step_ms"), dict) and e.get("batch_size") for e in entries):
        raise ConfigError(f"--bench: {path} is not a file written by `introspect bench --json`")
    return bench
