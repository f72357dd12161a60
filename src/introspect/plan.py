"""`introspect plan`: what a config will train, and roughly what it costs, before it runs.

Per table, the runs it shows; then the runs they learn from (teachers, assistants, stages); per run,
its image passes = epochs x training images. With a bench file (``introspect bench --json FILE`` on
the device that will train), a run's time is its image passes x the measured step time of its
(model, method) / the bench's batch size. Not counted: evaluation passes, process start-up, and
the difference between the run's batch size and the bench's (a smaller batch, such as the MLP's
16, costs more per image than the bench's 128: those runs are underestimated).
"""
from __future__ import annotations

import json
import math
from pathlib import Path

from .pipeline import Plan, Run

FULL_TRAIN = {"cifar10": 50000, "mnist": 60000, "digits": 1437, "synthetic": 400}  # before the val split
VAL_FRACTION = 0.1  # `introspect prepare`'s default


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


def estimate(plan: Plan, bench: dict | None) -> dict:
    shown: dict[str, set[str]] = {}
    for table in plan.tables:
        ids = {Run(table.dataset, m, v, s, {}).id for r in table.rows for m in table.models for v in r.variants for s in plan.seeds}
        shown[table.name] = ids & set(plan.runs)
    support = set(plan.runs) - set().union(*shown.values())
    passes, hours, unmeasured = {}, {}, set()
    for run_id, run in plan.runs.items():
        passes[run_id] = epochs_of(run) * train_images(run.dataset)
        ms = (bench or {}).get("step_ms", {}).get(run.model, {}).get(cost_label(run))
        if ms is None:
            unmeasured.add(f"{run.model}/{cost_label(run)}")
        else:
            hours[run_id] = passes[run_id] * ms / 1000 / bench["batch_size"] / 3600
    return {"shown": shown, "support": support, "passes": passes, "hours": hours, "unmeasured": sorted(unmeasured)}


def report(plan: Plan, bench: dict | None, bench_name: str = "") -> str:
    e = estimate(plan, bench)
    jobs = len({(r.dataset, r.model, r.variant) for r in plan.runs.values()})
    lines = [f"# scale {plan.scale}: {len(plan.runs)} runs in {jobs} jobs, {len(plan.seeds)} seeds",
             f"{'':30s} {'runs':>6s} {'image passes':>14s}" + (f" {'hours':>8s}" if bench else "")]
    groups = [*e["shown"].items(), ("teachers, assistants, stages", e["support"]), ("total (each run once)", set(plan.runs))]
    for name, ids in groups:
        row = f"{name:30s} {len(ids):6d} {sum(e['passes'][i] for i in ids):14,d}"
        if bench:
            row += f" {sum(e['hours'].get(i, 0.0) for i in ids):8.2f}"
        lines.append(row)
    if bench:
        lines.append(f"# hours: training steps only, from {bench_name} ({bench.get('device')}, batch {bench['batch_size']}); "
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
