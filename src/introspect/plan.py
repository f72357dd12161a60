"""`introspect plan`: what a config will train, and roughly what it costs, before it runs.

Per table, the runs it shows; then the runs they learn from (teachers, assistants, stages); per run,
its image passes = epochs x training images. With a bench file (``introspect bench --json FILE`` on
the device that will train; without ``--bench``, the shipped workflow/bench/cpu.json: one CPU thread,
MLP1024 at batch 16, the laptop scale), a run's time is, per epoch, its training images x the
measured step time of its (model, method) / the bench's batch size (an LE run's warm-up epochs at
CE's step time), plus its evaluation passes (val and test, forward only: EVAL_SHARE of a CE step
per image); a job (one table row, every seed in turn) adds JOB_START_S of process start-up. The
wall-clock estimate spreads the jobs over the cores (one thread per job, as the workflow runs them),
no shorter than the longest job; it ignores that a student waits for its teacher. Then one job
evaluates every run (``introspect evaluate`` at the scale's settings): per run, the test split forward
and, per explained image, its all-class maps (an LE step of the model's standard explainer) and the
forward passes of its deletion and insertion curves and infidelity perturbations (forward passes at
EVAL_SHARE of a CE step); it starts after the last training job. Not counted: the
difference between the run's batch size and the bench's (a smaller batch costs more per image:
such runs are underestimated; a larger one, overestimated).
"""
from __future__ import annotations

import json
import math
import os
from pathlib import Path

from .evaluate import settings as evaluate_settings
from .pipeline import Plan, Run

FULL_TRAIN = {"cifar10": 50000, "mnist": 60000, "mnist5k": 4000, "digits": 1437, "synthetic": 400}  # before the val split
TEST = {"cifar10": 10000, "mnist": 10000, "mnist5k": 1000, "digits": 360, "synthetic": 200}
VAL_FRACTION = 0.1  # `introspect prepare`'s default
DEFAULT_BENCH = Path(__file__).resolve().parents[2] / "workflow" / "bench" / "cpu.json"
JOB_START_S = 5.0  # starting a job's process (importing torch) on a laptop CPU
EVAL_SHARE = 1 / 3  # an evaluation image (forward only, large batches) against a CE training image


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


def run_seconds(run: Run, step_ms: dict[str, float], batch_size: int) -> float | None:
    """A run's training and evaluation seconds from a bench's step times (None: its step is not measured)."""
    label = cost_label(run)
    if label not in step_ms or "ce" not in step_ms:
        return None
    per_image = {k: step_ms[k] / 1000 / batch_size for k in ("ce", label)}
    epochs, warm = epochs_of(run), warmup_of(run)
    train = train_images(run.dataset) * (warm * per_image["ce"] + (epochs - warm) * per_image[label])
    evaluation = epochs * (FULL_TRAIN[run.dataset] - train_images(run.dataset) + TEST[run.dataset]) * per_image["ce"] * EVAL_SHARE
    return train + evaluation


def evaluate_seconds(run: Run, step_ms: dict[str, float], batch_size: int, scale: str) -> float | None:
    """A run's share of the evaluate job (None: a step it needs is not measured)."""
    explainer = "le_grad" if run.model.startswith("mlp") else "le_gradcam"  # the standard explainer's all-class maps
    if explainer not in step_ms or "ce" not in step_ms:
        return None
    ce, maps = (step_ms[k] / 1000 / batch_size for k in ("ce", explainer))
    s = evaluate_settings(scale)
    forwards = TEST[run.dataset] + s["images"] * (2 * (s["steps"] + 1) + s["perturbations"])
    return forwards * ce * EVAL_SHARE + s["images"] * maps


def wall_hours(plan: Plan, hours: dict[str, float], cores: int, evaluate_hours: float = 0.0) -> float:
    """Hours of the training jobs (every seed of a row in turn, plus start-up) spread over ``cores``,
    then the evaluate job (one process, after the last training job)."""
    jobs: dict[tuple[str, str, str], float] = {}
    for run_id, h in hours.items():
        run = plan.runs[run_id]
        key = (run.dataset, run.model, run.variant)
        jobs[key] = jobs.get(key, JOB_START_S / 3600) + h
    training = max([sum(jobs.values()) / max(cores, 1), *jobs.values()], default=0.0)
    return training + (evaluate_hours + JOB_START_S / 3600 if evaluate_hours else 0.0)


def estimate(plan: Plan, bench: dict | None) -> dict:
    shown = {table.name: plan.shown(table) for table in plan.tables}
    support = set(plan.runs) - set().union(*shown.values())
    passes, hours, evaluate, unmeasured = {}, {}, {}, set()
    for run_id, run in plan.runs.items():
        passes[run_id] = epochs_of(run) * train_images(run.dataset)
        step_ms, batch = (bench or {}).get("step_ms", {}).get(run.model, {}), (bench or {}).get("batch_size", 1)
        seconds = run_seconds(run, step_ms, batch)
        if seconds is None:
            unmeasured.add(f"{run.model}/{cost_label(run)}")
        else:
            hours[run_id] = seconds / 3600
        seconds = evaluate_seconds(run, step_ms, batch, plan.scale)
        if seconds is not None:
            evaluate[run_id] = seconds / 3600
    return {"shown": shown, "support": support, "passes": passes, "hours": hours, "evaluate": evaluate,
            "unmeasured": sorted(unmeasured)}


def default_bench() -> tuple[dict | None, str]:
    """The shipped CPU bench file and its name, where the package sits in its repository."""
    return (read_bench(DEFAULT_BENCH), str(DEFAULT_BENCH)) if DEFAULT_BENCH.is_file() else (None, "")


def report(plan: Plan, bench: dict | None, bench_name: str = "", cores: int | None = None) -> str:
    """The plan's summary; without ``bench``, hours from the shipped CPU bench file where it is;
    the wall-clock estimate is for ``cores`` (default: this machine's)."""
    if bench is None:
        bench, bench_name = default_bench()
    cores = cores or os.cpu_count() or 1
    e = estimate(plan, bench)
    jobs = len({(r.dataset, r.model, r.variant) for r in plan.runs.values()})
    lines = [f"# scale {plan.scale}: {len(plan.runs)} runs in {jobs} training jobs and 1 evaluate job, {len(plan.seeds)} seeds",
             f"{'':30s} {'runs':>6s} {'image passes':>14s}" + (f" {'hours':>8s}" if bench else "")]
    groups = [*e["shown"].items(), ("teachers, assistants, stages", e["support"]), ("total (each run once)", set(plan.runs))]
    for name, ids in groups:
        row = f"{name:30s} {len(ids):6d} {sum(e['passes'][i] for i in ids):14,d}"
        if bench:
            row += f" {sum(e['hours'].get(i, 0.0) for i in ids):8.2f}"
        lines.append(row)
    if bench:
        evaluate = sum(e["evaluate"].values())
        lines.append(f"{'evaluate (every run)':30s} {len(e['evaluate']):6d} {'':14s} {evaluate:8.2f}")
        wall = wall_hours(plan, e["hours"], cores, evaluate)
        lines.append(f"# about {wall * 60:.0f} min on {cores} core{'s' * (cores != 1)} (jobs of one thread in parallel), "
                     f"{sum(e['hours'].values()) + evaluate:.2f} hours of one core in all"
                     + (", counting only the measured runs" if e["unmeasured"] else ""))
        lines.append(f"# hours: training and evaluation, from {bench_name} ({bench.get('device')}, batch {bench['batch_size']}); "
                     "tables share runs, so their hours overlap; the total counts each run once")
        if e["unmeasured"]:
            lines.append(f"# not in the bench file (counted as 0 hours): {', '.join(e['unmeasured'])}")
    else:
        lines.append("# for hours, pass --bench FILE written by `introspect bench --json FILE` on the training device")
    return "\n".join(lines)


def read_bench(path: Path) -> dict:
    from .registry import ConfigError

    try:
        bench = json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        raise ConfigError(f"--bench: cannot read {path} ({exc})") from None
    if not isinstance(bench, dict) or not isinstance(bench.get("step_ms"), dict) or not bench.get("batch_size"):
        raise ConfigError(f"--bench: {path} is not a file written by `introspect bench --json`")
    return bench
