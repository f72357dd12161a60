"""What the runs of a plan left behind, and the summaries every part of the report shares.

A run is *present* when its ``metrics.json`` can be read, and *current* when its recorded config
and provenance (:mod:`introspect.provenance`) are what the plan and today's code and teachers
would give; a present run that is not current is *stale*. Only current runs enter a table or a
verdict; missing and stale runs are listed, never averaged in, and never fatal. A sweep row is summarised by the value chosen on the validation split
(highest mean ``val_acc`` over seeds; ties go to the value declared first): the test set never
picks anything.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..pipeline import Plan, Row, Run, Table, run_id
from ..provenance import staleness
from ..runfolder import read_json

METRICS = ("train_loss", "train_acc", "val_loss", "val_acc", "test_loss", "test_acc", "test_err",
           "peer_val_acc", "peer_test_acc",  # peer_*: DML's second network
           "samples_used", "params",
           "best_val_epoch", "best_val_test_acc", "best_val_test_err")  # the second epoch protocol  # share (%) of training samples that ever contributed; model size
# Beyond accuracy, from <run>/evaluation.json (introspect.evaluate): calibration on the test split, then
# the quality of the explanations of a fixed test subset: deletion and insertion of the real maps, of
# random maps on the same images and model (*_random) and real − random (*_relative, the score B4/B5
# decide on), with how many images were scored and left out (exact or near ties, the blank image's
# class: introspect.evaluate.faithfulness), and (pair_*) how close Figure 2's known-similar classes
# rank in the run's averaged explanation similarity (analysis.pair_scores)
FAITHFULNESS_COUNTS = ("faithfulness_images", "faithfulness_ties", "faithfulness_blank")
EVALUATION_METRICS = ("nll", "ece", "brier", "deletion_auc", "insertion_auc", "deletion_auc_random",
                      "insertion_auc_random", "deletion_auc_relative", "insertion_auc_relative", *FAITHFULNESS_COUNTS,
                      "infidelity", "teacher_agreement", "pair_rank", "pairs_close")
METRICS += EVALUATION_METRICS
CURVE_COLUMNS = ("train_loss", "val_acc", "test_acc")


@dataclass(frozen=True)
class RunResult:
    run: Run
    metrics: dict
    config: dict  # the resolved config.json; the plan's user config when that file is missing
    history: list[dict]  # one row per epoch; empty when history.parquet is missing

    @property
    def wall_seconds(self) -> float | None:
        seconds = [h["seconds"] for h in self.history if h.get("seconds") is not None]
        return float(sum(seconds)) if seconds else None


@dataclass(frozen=True)
class Stat:
    """Per-seed values of one quantity (in the plan's seed order) out of ``expected`` seeds."""

    values: tuple[float, ...]
    expected: int

    @property
    def n(self) -> int:
        return len(self.values)

    @property
    def mean(self) -> float:
        return float(np.mean(self.values)) if self.values else math.nan

    @property
    def std(self) -> float:  # sample standard deviation (ddof=1), as papers report over seeds
        return float(np.std(self.values, ddof=1)) if self.n >= 2 else math.nan


@dataclass(frozen=True)
class Choice:
    """The variant a row shows for one model: the only one, or the sweep value chosen on val."""

    variant: str | None  # None: no run of the row is present
    value: object  # the swept value (None without a sweep)


COMPLEMENT = {"test_acc": "test_err", "test_err": "test_acc"}  # each is 100 minus the other, in percent


PROTOCOLS = ("last", "best_val")


def protocol_key(key: str, protocol: str) -> str:
    """The metrics.json key of a test metric under an epoch protocol: ``best_val`` reads the test
    accuracy (error) at the epoch of best validation accuracy, ``last`` the last epoch's."""
    if protocol == "best_val" and key.removeprefix("peer_") in ("test_acc", "test_err"):
        prefix = "peer_" if key.startswith("peer_") else ""
        return f"{prefix}best_val_{key.removeprefix('peer_')}"
    return key


def other_protocol(protocol: str) -> str:
    return PROTOCOLS[1 - PROTOCOLS.index(protocol)]


def stored(metrics: dict, key: str) -> float | None:
    """``key`` of a metrics.json as stored (NaN kept); test_acc and test_err are read one from the other
    when one is absent."""
    if metrics.get(key) is not None:
        return float(metrics[key])
    base = key.removeprefix("best_val_")
    other = key.replace(base, COMPLEMENT[base]) if COMPLEMENT.get(base) else None
    if other and metrics.get(other) is not None:
        return 100.0 - float(metrics[other])
    return None


def diverged(metrics: dict, key: str) -> bool:
    """Whether ``key`` is stored as NaN or ±inf (a diverged run): :func:`metric` counts it as missing."""
    value = stored(metrics, key)
    return value is not None and not math.isfinite(value)


def metric(metrics: dict, key: str) -> float | None:
    """``key`` of a metrics.json (see :func:`stored`); None when absent or not finite: a diverged run's
    NaN is a missing value, never a number to average (the verdicts say which seeds, :func:`diverged`)."""
    value = stored(metrics, key)
    return value if value is not None and math.isfinite(value) else None


def _read_history(path: Path) -> list[dict]:
    if not path.is_file():
        return []
    import pyarrow.parquet as pq

    try:
        return pq.read_table(path).to_pylist()
    except Exception:  # a damaged file is reported as no history, like a missing one
        return []


def read_evaluation(run_folder: Path) -> dict | None:
    """A run's evaluation.json when it is current: it evaluated the run's present checkpoint with
    today's evaluation code (``code_sha256``, :func:`introspect.provenance.tool_digest`); else None
    (missing, unreadable, written before the run was retrained or before its code changed)."""
    from ..evaluate import NAME
    from ..provenance import checkpoint_digest, tool_digest

    evaluation = read_json(Path(run_folder) / NAME)
    if (evaluation is None or evaluation.get("checkpoint_sha256") != checkpoint_digest(Path(run_folder))
            or evaluation.get("code_sha256") != tool_digest("evaluate")):
        return None
    return evaluation


def evaluation_metrics(evaluation: dict | None) -> dict:
    """The scalar EVALUATION_METRICS of an evaluation.json (absent ones left out)."""
    if evaluation is None:
        return {}
    return {k: float(evaluation[k]) for k in EVALUATION_METRICS if evaluation.get(k) is not None}


class Results:
    """The current runs of ``plan`` under ``folder`` (``<folder>/<run_id>/...``), the stale ones
    (with why) and the missing ones."""

    def __init__(self, plan: Plan, folder: Path, protocol: str | None = None):
        self.plan = plan
        self.folder = Path(folder)
        self.protocol = protocol or plan.protocol  # "last" or "best_val": which test metrics stat() reads
        self.runs: dict[str, RunResult] = {}
        self.stale: dict[str, list[str]] = {}
        self.unevaluated: list[str] = []  # current runs without a current evaluation.json
        datasets: dict[str, str | None] = {}
        for run_id in sorted(plan.runs):
            run, path = plan.runs[run_id], self.folder / run_id
            metrics = read_json(path / "metrics.json")
            if metrics is None:
                continue
            config = read_json(path / "config.json")
            why = staleness(run.resolved, config, datasets)
            if why:
                self.stale[run_id] = why
                continue
            evaluation = evaluation_metrics(read_evaluation(path))
            if not evaluation:
                self.unevaluated.append(run_id)
            self.runs[run_id] = RunResult(run, {**metrics, **evaluation}, config, _read_history(path / "history.parquet"))
        self.missing = sorted(set(plan.runs) - set(self.runs) - set(self.stale))

    def _ids(self, dataset: str, model: str, variant: str) -> list[str]:
        return [run_id(dataset, model, variant, seed) for seed in self.plan.seeds]

    def stat(self, dataset: str, model: str, variant: str | None, key: str) -> Stat:
        """Metric ``key`` (see :func:`metric`) of every present seed of one variant."""
        present = [] if variant is None else [self.runs[i] for i in self._ids(dataset, model, variant) if i in self.runs]
        key = protocol_key(key, self.protocol)
        values = (metric(r.metrics, key) for r in present)
        return Stat(tuple(v for v in values if v is not None), len(self.plan.seeds))

    def choose(self, dataset: str, model: str, row: Row) -> Choice:
        if len(row.variants) == 1:
            (variant, value), = row.variants.items()
            return Choice(variant, value)
        best: tuple[float, str] | None = None
        for variant in row.variants:  # declared order, so a tie keeps the first value
            val = self.stat(dataset, model, variant, "val_acc")
            if val.n and (best is None or val.mean > best[0]):
                best = (val.mean, variant)
        if best is None:
            return Choice(None, None)
        return Choice(best[1], row.variants[best[1]])

    def history(self, dataset: str, model: str, variant: str) -> list[list[dict]]:
        return [self.runs[i].history for i in self._ids(dataset, model, variant) if i in self.runs]


@dataclass(frozen=True)
class Superseded:
    run_id: str
    at: str  # UTC time it was moved aside
    reason: str
    bytes: int


def superseded_runs(plan: Plan, folder: Path) -> list[Superseded]:
    """Every superseded copy kept inside the folders of the plan's runs (``<run>/superseded/<time>/``)."""
    out = []
    for run_id in sorted(plan.runs):
        for copy in sorted((Path(folder) / run_id / "superseded").glob("*/")):
            note = read_json(copy / "superseded.json") or {}
            size = sum(f.stat().st_size for f in copy.rglob("*") if f.is_file())
            out.append(Superseded(run_id, str(note.get("superseded_at", copy.name)), str(note.get("reason", "not recorded")), size))
    return out


def memberships(plan: Plan) -> dict[str, list[tuple[Table, Row]]]:
    """run id -> every (table, row) that shows it (the same run can serve several tables)."""
    out: dict[str, list[tuple[Table, Row]]] = {}
    for table in plan.tables:
        for row in table.rows:
            for model in table.models:
                for variant in row.variants:
                    for seed in plan.seeds:
                        out.setdefault(run_id(table.dataset, model, variant, seed), []).append((table, row))
    return out


def _join(items) -> str:
    return ",".join(sorted(set(items)))


def run_rows(results: Results) -> list[dict]:
    """One flat record per present run: what it is, what it was set to and what it scored."""
    member = memberships(results.plan)
    rows = []
    for run_id, res in sorted(results.runs.items()):
        run, places = res.run, member.get(run_id, [])
        row = places[0][1] if places else None
        method = dict(res.config.get("method") or {})
        sweep_value = row.variants.get(run.variant) if row else None
        rows.append({
            "run_id": run_id,
            "dataset": run.dataset,
            "paper_datasets": _join(t.paper_dataset for t, _ in places),
            "tables": _join(t.name for t, _ in places),
            "paper_tables": _join(t.paper_table for t, _ in places),
            "model": run.model,
            "variant": run.variant,
            "label": row.label if row else run.variant,
            "method": method.pop("name", row.method if row else None),
            "method_options": json.dumps(method, sort_keys=True),
            "sweep_key": row.sweep_key if row else None,
            "sweep_value": None if sweep_value is None else str(sweep_value),
            "seed": run.seed,
            **{k: metric(res.metrics, k) for k in METRICS},
            "epochs": int(res.metrics["epochs"]) if "epochs" in res.metrics else None,
            "wall_seconds": res.wall_seconds,
        })
    return rows


def mean_curve(histories: list[list[dict]], columns=CURVE_COLUMNS) -> list[dict]:
    """Per epoch, the mean over the seeds that reached it of each column."""
    by_epoch: dict[int, list[dict]] = {}
    for history in histories:
        for h in history:
            by_epoch.setdefault(int(h["epoch"]), []).append(h)
    return [{"epoch": e, **{c: float(np.mean([h[c] for h in hs])) for c in columns}}
            for e, hs in sorted(by_epoch.items())]


def curve_label(row_label: str, model: str, models: list[str]) -> str:
    """The legend entry of one curve: the row, with its model when the table has several."""
    return row_label if len(models) == 1 else f"{row_label} ({model})"


def curves(results: Results) -> dict[str, list[dict]]:
    """table name -> the mean learning curve of each of its rows (chosen sweep value), one list of
    ``{"epoch", "row", *CURVE_COLUMNS}`` per table, so that one plot per table shows every row."""
    out: dict[str, list[dict]] = {}
    for table in results.plan.tables:
        for model in table.models:
            for row in table.rows:
                variant = results.choose(table.dataset, model, row).variant
                histories = [h for h in results.history(table.dataset, model, variant) if h] if variant else []
                if histories:
                    label = curve_label(row.label, model, table.models)
                    out.setdefault(table.name, []).extend({"row": label, **point} for point in mean_curve(histories))
    return out


def load_explanations(path: Path) -> dict | None:
    """An explanations.pt (see introspect.analysis) or None when it is missing, unreadable or stale:
    computed by other code than today's (``code_sha256``, :func:`introspect.provenance.tool_digest`)."""
    if not Path(path).is_file():
        return None
    import torch

    from ..provenance import tool_digest

    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception:
        return None
    if not (isinstance(data, dict) and "similarity" in data and "classes" in data):
        return None
    return data if data.get("code_sha256") == tool_digest("analysis") else None
