"""The paper scale (`snakemake --config scale=paper`) executed on the CPU through the real DAG,
shrunk only in length and data size.

The config is derived from params.yaml at scale paper by code, so a paper-only setting that cannot
run fails here: the paper's models (ResNet26 teacher, ResNet20/14 assistants, ResNet14/8 students,
CNN-10 teacher, CNN-8/6, MLP1024), its recipes (optimizer, learning rates, milestones, weight decay,
batch sizes 128 for CIFAR10 and 16 for MNIST: the data below is larger than a batch) and every
option stay. What is shrunk:

- length: 1 seed, 1 epoch per run, stage and teacher-stage epochs 1, LE's (and LE-Permut's) warm-up
  0 epochs (10 of 160 at paper scale: at 1 epoch a warm-up of 10 would never reach LE's own loss);
- data: CIFAR10- and MNIST-shaped sets of 300 training and 100 test images (10 classes, 32x32x3 and
  28x28x1), written in torchvision's on-disk layout (cifar-10-batches-py pickles, MNIST raw
  idx-ubyte files) and read by torchvision, as `introspect prepare` does;
- sweeps: each sweep keeps its first value (a sweep is the same chain with another option);
- rows: a selection (below).

Selection rule. Every run of the full paper plan has a *chain*: the tree of the runs it learns
from (teacher, assistant, stage, teacher stage), each node being (model, method with its options,
model options); the student's own model, wherever it appears in its chain (itself, its FitNets /
FSP stage, its BAN teacher), is written as its family, so ``ce`` on ResNet14 and on ResNet8 is one
chain but TAKD through a ResNet20 and through a ResNet14 assistant are two. Walking the tables of
params.yaml in order, rows in order, models in order, a (table, row, model) job is kept when one of
its runs has a chain not covered yet or trains a model not trained yet, or when its run makes
Figures 1-2 (``explanations``); a kept row that learns from another row of its table (BAN:
``teacher: {row: ce}``) keeps that row too. Kept jobs become tables of one model each (the first
under the table's own name, the others suffixed with the model). The test asserts that the
selection covers every chain and every model of the full paper plan, so a chain type added to
params.yaml later is run here, not skipped.

The CIFAR10 set is prepared in the test process with torchvision's MD5 check of the batch files
lifted (torchvision's CIFAR10 accepts only the genuine files and, online, would download them over
the test's); MNIST is prepared by the DAG's own `prepare` job.
"""
from __future__ import annotations

import copy
import json
import pickle
import struct
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
import yaml

from helpers import env, shipped_params, snakemake_argv
from introspect import pipeline
from introspect.config import family

N_TRAIN, N_TEST, CLASSES = 300, 100, 10
DAG_TIMEOUT_S = 2700  # about 3.5 min of CPU on 2 idle cores; 30 min when 5 agents shared them


# --- the shrunk paper config ------------------------------------------------------------------

def paper_params() -> dict:
    """params.yaml with every {quick, paper} value resolved to paper's, scale paper."""
    params = shipped_params()
    resolved = pipeline.at_scale({k: v for k, v in params.items() if k != "scale"}, "paper")
    return {"scale": "paper", **resolved}


def shrink(params: dict) -> dict:
    """Shorten the paper config (seeds, epochs, stage epochs, LE warm-up, sweeps); nothing else."""
    p = copy.deepcopy(params)
    p["seeds"] = p["seeds"][:1]
    for dataset in set(p["datasets"].values()):
        p["recipes"][dataset] = {**(p["recipes"].get(dataset) or {}), "epochs": 1}
    for name in ("le", "le_permut"):
        p.setdefault("method_options", {}).setdefault(name, {})["warmup"] = 0
    for table in p["tables"].values():
        for row in table["rows"].values():
            for chained in ("stage", "teacher"):
                if "epochs" in (row.get(chained) or {}):
                    row[chained]["epochs"] = 1
            for key, values in (row.get("sweep") or {}).items():
                row["sweep"][key] = values[:1]
        if "epochs" in (table.get("teacher") or {}):
            table["teacher"]["epochs"] = 1
    return p


def node(run: pipeline.Run, student_model: str) -> tuple:
    method = {k: v for k, v in run.config["method"].items() if k != "teacher"}
    model_opts = {k: v for k, v in run.config["model"].items() if k != "name"}
    model = family(run.model) if run.model == student_model else run.model
    return model, json.dumps(method, sort_keys=True), json.dumps(model_opts, sort_keys=True)


def chain(plan: pipeline.Plan, run: pipeline.Run, student_model: str | None = None) -> tuple:
    """The tree of runs ``run`` learns from, as nested tuples (see the module docstring)."""
    student_model = student_model or run.model
    return node(run, student_model), tuple(sorted(chain(plan, plan.runs[n], student_model) for n in run.needs))


def trained_models(plan: pipeline.Plan) -> set[str]:
    return {run.model for run in plan.runs.values()}


def job_runs(plan: pipeline.Plan, table: pipeline.Table, row: pipeline.Row, model: str) -> list[pipeline.Run]:
    return [plan.runs[f"{table.dataset}/{model}/{v}/seed{s}"] for v in row.variants for s in plan.seeds]


def runs_behind(plan: pipeline.Plan, runs: list[pipeline.Run]) -> set[str]:
    """The ids of ``runs`` and of every run they learn from, transitively."""
    ids, todo = set(), [r.id for r in runs]
    while todo:
        run_id = todo.pop()
        if run_id not in ids:
            ids.add(run_id)
            todo.extend(plan.runs[run_id].needs)
    return ids


def select(params: dict) -> dict[str, dict[str, list[str]]]:
    """{table: {model: [row labels kept]}} by the rule of the module docstring."""
    plan = pipeline.plan(params)
    figures = {run.id for run in plan.explanations.values()}
    chains, models, trained = set(), set(), set()
    kept: dict[str, dict[str, list[str]]] = {}
    for table in plan.tables:
        spec = params["tables"][table.name]
        for row in table.rows:
            for model in table.models:
                runs = job_runs(plan, table, row, model)
                behind = [plan.runs[i] for i in runs_behind(plan, runs)]
                new_chain = any(chain(plan, r) not in chains for r in runs)
                new_model = any(r.model not in models for r in behind)
                makes_figure = bool(figures & {r.id for r in runs} - trained)
                if not (new_chain or new_model or makes_figure):
                    continue
                trained |= {r.id for r in behind}
                chains |= {chain(plan, r) for r in runs}
                models |= {r.model for r in behind}
                labels = kept.setdefault(table.name, {}).setdefault(model, [])
                teacher_row = (spec["rows"][row.label].get("teacher") or spec.get("teacher") or {}).get("row")
                for label in ([teacher_row] if teacher_row else []) + [row.label]:
                    if label not in labels:
                        labels.append(label)
    return kept


def selected_params(params: dict, kept: dict[str, dict[str, list[str]]]) -> dict:
    """One table per (table, model) kept; row order as in params.yaml."""
    p = copy.deepcopy(params)
    tables = {}
    for name, per_model in kept.items():
        table = params["tables"][name]
        for i, (model, labels) in enumerate(per_model.items()):
            part = copy.deepcopy(table)
            part["models"] = [model]
            part["rows"] = {label: r for label, r in table["rows"].items() if label in labels}
            part.setdefault("paper_table", name.removeprefix("table"))
            tables[name if i == 0 else f"{name}_{model}"] = part
    p["tables"] = tables
    return p


# --- CIFAR10- and MNIST-shaped data in torchvision's layout -----------------------------------

def images(n: int, shape: tuple[int, ...], seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``n`` uint8 images, each a fixed per-class pattern plus noise, and balanced labels."""
    rng = np.random.default_rng(seed)
    protos = rng.random((CLASSES, *shape))
    labels = np.arange(n) % CLASSES
    x = 0.6 * protos[labels] + 0.4 * rng.random((n, *shape))
    return (x * 255).astype(np.uint8), labels


def write_cifar10(root: Path) -> None:
    """cifar-10-batches-py: five training batches, the test batch, batches.meta (pickles)."""
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    x, y = images(N_TRAIN, (32, 32, 3), seed=0)
    for k, part in enumerate(np.array_split(np.arange(N_TRAIN), 5)):
        batch = {"data": x[part].transpose(0, 3, 1, 2).reshape(len(part), -1), "labels": y[part].tolist()}
        (folder / f"data_batch_{k + 1}").write_bytes(pickle.dumps(batch))
    x, y = images(N_TEST, (32, 32, 3), seed=1)
    (folder / "test_batch").write_bytes(pickle.dumps({"data": x.transpose(0, 3, 1, 2).reshape(N_TEST, -1), "labels": y.tolist()}))
    names = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
    (folder / "batches.meta").write_bytes(pickle.dumps({"label_names": names}))


def idx(array: np.ndarray) -> bytes:
    """The idx-ubyte format: two zero bytes, type 0x08 (uint8), the rank, big-endian int32 dims, data."""
    return bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}i", *array.shape) + array.tobytes()


def write_mnist(root: Path) -> None:
    """MNIST/raw/{train,t10k}-{images-idx3,labels-idx1}-ubyte, uncompressed."""
    folder = root / "MNIST" / "raw"
    folder.mkdir(parents=True)
    for prefix, n, seed in (("train", N_TRAIN, 2), ("t10k", N_TEST, 3)):
        x, y = images(n, (28, 28), seed)
        (folder / f"{prefix}-images-idx3-ubyte").write_bytes(idx(x))
        (folder / f"{prefix}-labels-idx1-ubyte").write_bytes(idx(y.astype(np.uint8)))


def prepare_cifar10(work: Path, monkeypatch) -> None:
    """`introspect prepare` of the CIFAR10-shaped set, with only torchvision's MD5 checks lifted."""
    import torchvision.datasets.cifar as cifar

    from introspect.data import prepare

    monkeypatch.setattr(cifar, "check_integrity", lambda path, md5=None: Path(path).is_file())
    prepare("cifar10", work / "data" / "processed" / "cifar10.pt", raw=work / "data" / "raw")


# --- the test ---------------------------------------------------------------------------------

def test_selection_covers_every_chain_and_model_of_the_paper_plan():
    full = shrink(paper_params())
    plan, chosen = pipeline.plan(full), pipeline.plan(selected_params(full, select(full)))
    assert {chain(plan, r) for r in plan.runs.values()} == {chain(chosen, r) for r in chosen.runs.values()}
    assert trained_models(plan) == trained_models(chosen)
    assert {r.config["method"]["name"] for r in plan.runs.values()} == {r.config["method"]["name"] for r in chosen.runs.values()}
    assert set(chosen.explanations) == set(plan.explanations)
    assert len(chosen.runs) < len(plan.runs)


@pytest.mark.slow
def test_paper_scale_dag_runs_on_the_cpu(tmp_path, monkeypatch):
    work = tmp_path / "paper"
    params = selected_params(shrink(paper_params()), select(shrink(paper_params())))
    work.mkdir()
    (work / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    write_cifar10(work / "data" / "raw" / "cifar10")
    write_mnist(work / "data" / "raw" / "mnist")
    prepare_cifar10(work, monkeypatch)
    plan = pipeline.load(work / "params.yaml")

    t0 = time.monotonic()
    out = subprocess.run(snakemake_argv(work, "--cores", "2", "all"), env=env(), capture_output=True, text=True,
                         timeout=DAG_TIMEOUT_S)
    print(f"paper-scale DAG: {len(plan.runs)} runs, {time.monotonic() - t0:.0f} s")
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]

    assert (work / "logs" / "prepare" / "mnist.log").exists()  # MNIST went through the DAG's prepare job
    for run in plan.runs.values():
        folder = work / "results" / run.id
        metrics = json.loads((folder / "metrics.json").read_text())
        config = json.loads((folder / "config.json").read_text())
        assert metrics["epochs"] == 1 and 0 <= metrics["test_acc"] <= 100, run.id
        assert config["batch_size"] == {"cifar10": 128, "mnist": 16}[run.dataset], run.id
        if run.config["method"]["name"] == "dml":  # both networks of DML were trained and evaluated
            assert 0 <= metrics["peer_test_acc"] <= 100, run.id
    variants = {(r.model, r.variant) for r in plan.runs.values()}
    assert {("resnet26", "teacher"), ("resnet20", "takd_assistant"), ("resnet14", "takd_assistant"),
            ("cnn10", "teacher"), ("resnet26", "teacher_iekd_ae"), ("resnet26", "teacher_srl_teacher"),
            ("resnet26", "teacher_ked_teacher")} <= variants
    assert {"hint_stage", "fsp_kd_stage"} <= {v for _, v in variants}
    for name in ("index.md", "results.parquet", "claims.md", "metrics.json"):
        assert (work / "reports" / name).stat().st_size > 0, name
    for table in plan.tables:
        assert (work / "reports" / "tables" / f"{table.name}.md").exists(), table.name
    for run in plan.explanations.values():
        assert (work / "results" / run.id / "explanations.pt").exists()
