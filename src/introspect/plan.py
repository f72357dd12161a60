"""`introspect plan`: what a config will train, and roughly what it costs, before it runs.

Per table, the runs it shows; then the runs they learn from (teachers, assistants, stages); per run,
its image passes = epochs x training images. With a bench file (``introspect bench --json FILE`` on
the device that will train; without ``--bench``, the shipped workflow/bench/cpu.json: every model
and method of the three scales, one CPU thread), a run's time is, per epoch, its training images x
the measured step time of its (model, method) on its dataset at its batch size / that batch size
(an LE run's warm-up epochs at CE's step time; the bench's entry of the run's dataset, at its batch
size where there is one), plus its evaluation passes (val and test, forward only: EVAL_SHARE of a CE
step per image). Then one job evaluates every run (``introspect evaluate`` at the scale's settings):
per run, the test split forward and, per explained image, its all-class maps (an LE step of the
model's standard explainer) and the forward passes of its deletion and insertion curves and
infidelity perturbations. The workflow adds its fixed costs (:func:`fixed_seconds`, measured). The
wall-clock estimate spreads the jobs over idle cores (one thread per job, as the workflow runs
them), no shorter than the longest job; it ignores that a student waits for its teacher. A run whose
step the bench lacks is not estimated: its table shows ``?`` and the first line names it.
"""
from __future__ import annotations

import json
import math
import os
from pathlib import Path

from .evaluate import settings as evaluate_settings
from .pipeline import Plan, Run

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


def train_images(dataset: str) -> int:
    n = FULL_TRAIN[dataset]
    return n - math.ceil(n * VAL_FRACTION)


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
    from .config import resolve

    return resolve(run.config)["epochs"]


def warmup_of(run: Run) -> int:
    """The epochs an LE run trains with CE alone before its explanations start (0 for other methods)."""
    from .config import resolve

    return min(int(resolve(run.config)["method"].get("warmup", 0)), epochs_of(run)) if cost_label(run).startswith("le_") else 0


def batch_of(run: Run) -> int:
    from .config import resolve

    return int(resolve(run.config)["batch_size"])


def steps_for(run: Run, bench: dict | None) -> tuple[dict[str, float], int]:
    """The bench's step times (ms) of ``run``'s model and the batch they were measured at: from the
    entry of the run's dataset at its batch size, else of its dataset at another batch size, else from
    an entry that names no dataset (a bench written with --models); ({}, 1) when none has the model."""
    entries = _entries(bench)
    batch = batch_of(run)
    ranked = sorted((e for e in entries if run.model in e["step_ms"] and e.get("dataset") in (run.dataset, None)),
                    key=lambda e: (e.get("dataset") != run.dataset, e["batch_size"] != batch))
    return (ranked[0]["step_ms"][run.model], ranked[0]["batch_size"]) if ranked else ({}, 1)


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
    train = train_images(run.dataset) * (warm * per_image["ce"] + (epochs - warm) * per_image[label])
    evaluation = epochs * (FULL_TRAIN[run.dataset] - train_images(run.dataset) + TEST[run.dataset]) * per_image["ce"] * EVAL_SHARE
    return train + evaluation


def evaluate_seconds(run: Run, step_ms: dict[str, float], batch_size: int, scale: str) -> float | None:
    """A run's share of the evaluate job (None: a step it needs is not measured)."""
    explainer = "le_grad" if run.model.startswith("mlp") else "le_gradcam"  # the standard explainer's all-class maps
    if explainer not in step_ms or "ce" not in step_ms or run.dataset not in TEST:
        return None
    ce, maps = (step_ms[k] / 1000 / batch_size for k in ("ce", explainer))
    s = evaluate_settings(scale)
    forwards = TEST[run.dataset] + s["images"] * (2 * (s["steps"] + 1) + s["perturbations"])
    return forwards * ce * EVAL_SHARE + s["images"] * maps


def fixed_seconds(plan: Plan) -> float:
    """What the workflow spends besides training and evaluating, in seconds of one core: Snakemake's
    start (parsing, the DAG), each job's process start-up and bookkeeping (training jobs, the
    evaluate job, preparing each dataset, each Figures 1-2 explanation, the report) and what the
    prepare, explain and report jobs do."""
    datasets = len({run.dataset for run in plan.runs.values()})
    jobs = len({(r.dataset, r.model, r.variant) for r in plan.runs.values()}) + 1 + datasets + n_explain_jobs(plan) + 1
    return (SNAKEMAKE_START_S + jobs * (JOB_START_S + JOB_OVERHEAD_S) + datasets * PREPARE_S
            + n_explain_jobs(plan) * EXPLAIN_S + REPORT_S)


def wall_hours(plan: Plan, hours: dict[str, float], cores: int, evaluate_hours: float = 0.0) -> float:
    """Hours on ``cores`` idle cores: Snakemake's start, the datasets prepared, the training jobs (every
    seed of a row in turn, plus start-up) and the explanation jobs spread over the cores (no shorter
    than the longest job; a student waiting for its teacher is ignored), then the evaluate job and the
    report job, one after the other; Snakemake's bookkeeping of every job spread over the cores."""
    cores = max(cores, 1)
    jobs: dict[tuple[str, str, str], float] = {}
    for run_id, h in hours.items():
        run = plan.runs[run_id]
        key = (run.dataset, run.model, run.variant)
        jobs[key] = jobs.get(key, JOB_START_S / 3600) + h
    explain = n_explain_jobs(plan) * (JOB_START_S + EXPLAIN_S) / 3600
    training = max([(sum(jobs.values()) + explain) / cores, *jobs.values()], default=0.0)
    datasets = len({r.dataset for r in plan.runs.values()})
    prepare = datasets * (JOB_START_S + PREPARE_S) / cores / 3600
    count = len(jobs) + 1 + datasets + n_explain_jobs(plan) + 1
    serial = (SNAKEMAKE_START_S + JOB_START_S + REPORT_S + count * JOB_OVERHEAD_S / cores) / 3600
    return serial + prepare + training + (evaluate_hours + JOB_START_S / 3600 if evaluate_hours else 0.0)


def estimate(plan: Plan, bench: dict | None) -> dict:
    shown = {table.name: plan.shown(table) for table in plan.tables}
    support = set(plan.runs) - set().union(*shown.values())
    passes, hours, evaluate, unmeasured = {}, {}, {}, {}
    for run_id, run in plan.runs.items():
        passes[run_id] = epochs_of(run) * train_images(run.dataset) if run.dataset in FULL_TRAIN else None
        step_ms, batch = steps_for(run, bench)
        seconds = run_seconds(run, step_ms, batch)
        if seconds is None:
            unmeasured[run_id] = (f"{run.model}/{cost_label(run)}" if run.dataset in FULL_TRAIN else
                                  f"{run.dataset} (a dataset of your own: its size is not known before it is prepared)")
        else:
            hours[run_id] = seconds / 3600
        seconds = evaluate_seconds(run, step_ms, batch, plan.scale)
        if seconds is not None:
            evaluate[run_id] = seconds / 3600
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
    todo = [Run(t.dataset, model, v, seed, {}).id for v in rows[row].variants]
    ids: list[str] = []
    while todo:
        run_id = todo.pop()
        if run_id in plan.runs and run_id not in ids:
            ids.append(run_id)
            if with_support:
                todo += list(plan.runs[run_id].needs)
    total = 0.0
    for run_id in ids:
        run = plan.runs[run_id]
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
    if hours < 2:
        return f"{hours * 60:.0f} min"
    return f"{hours:.1f} hours" if hours < 48 else f"{hours / 24:.0f} days ({hours:.0f} hours)"


def report(plan: Plan, bench: dict | None, bench_name: str = "", cores: int | None = None) -> str:
    """The plan's summary. Its first line says how long the scale takes on ``cores`` (default: this
    machine's), from ``bench`` (default: the shipped CPU bench: then at the paper's scale it says the
    figure is this CPU's and how to bench a GPU), naming what the bench cannot estimate."""
    shipped = bench is None
    if shipped:
        bench, bench_name = default_bench()
        bench_name = "workflow/bench/cpu.json"
    cores = cores or os.cpu_count() or 1
    e = estimate(plan, bench)
    jobs = len({(r.dataset, r.model, r.variant) for r in plan.runs.values()})
    evaluate = sum(e["evaluate"].values())
    wall = wall_hours(plan, e["hours"], cores, evaluate)
    groups = [*e["shown"].items(), ("teachers, assistants, stages", e["support"]), ("total (each run once)", set(plan.runs))]
    unknown = [name for name, ids in e["shown"].items() if any(i in e["unmeasured_runs"] for i in ids)]
    if any(i in e["unmeasured_runs"] for i in e["support"]):
        unknown.append("their teachers, assistants, stages")
    where = f"{cores} core{'s' * (cores != 1)} of {'this CPU' if shipped else bench.get('device', 'the bench device')}"
    if not bench:
        head = "no bench file: pass --bench FILE written by `introspect bench --json FILE` on the training device"
    elif unknown:
        head = (f"at least {_minutes(wall)} on {where}, not counting {', '.join(unknown)} "
                f"(the bench has no step time for {', '.join(e['unmeasured'])})")
    else:
        head = f"about {_minutes(wall)} on {where}"
    if shipped and plan.scale == "paper" and bench:
        head += (" (the shipped CPU bench; for a GPU's figure: `introspect bench --device cuda --json b.json`, "
                 "then `introspect plan --scale paper --bench b.json`)")
    unit, factor = _unit(e, evaluate)
    lines = [f"# scale {plan.scale}: {head}",
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
                     f"{sum(e['hours'].values()) + evaluate + fixed_seconds(plan) / 3600:.2f} hours of one core in all "
                     "(with process start-up, Snakemake, preparing, explaining, the report)"
                     + (", counting only the measured runs" if e["unmeasured"] else ""))
        lines.append(f"# {unit}: training and evaluation on one core, from {bench_name} ({bench_label(bench)}); "
                     "tables share runs, so theirs overlap; the total counts each run once; ? = not estimated")
        if e["unmeasured"]:
            lines.append(f"# not in the bench file (not estimated, left out of every sum): {', '.join(e['unmeasured'])}")
    return "\n".join(lines)


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
