"""`introspect cache bench`: the A -> B -> A epoch toggle through the real DAG, with and without the
run cache, side by side (a benchmark, not a test).

Two fresh work folders get the same config (the given dataset's tables, optionally fewer tables
and seeds): one runs with the run cache (its own ``.introspect/cache``), the other with
``INTROSPECT_CACHE=off`` (every run trains, the behaviour before the cache). The three steps of
the toggle alternate between the two folders (A with, A without, B with, ...), so both see the same
machine load; each step is one ``snakemake --cores N`` (data, training, explanations, evaluation,
report: what a user waits for). Printed per step: wall seconds, runs trained and restored (from the
train logs), and the bytes on disk of results/ plus the cache (each hard-linked file counted once).
The steps run a snapshot of the package taken at the start (an edit meanwhile changes no identity).
"""
from __future__ import annotations

import copy
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

from .pipeline import at_scale

ROOT = Path(__file__).resolve().parents[2]  # the checkout: its Snakefile and workflow/


def disk_bytes(*folders: Path) -> int:
    """Bytes of the files under ``folders``, each inode once (what `du` counts for hard links)."""
    seen, total = set(), 0
    for top in folders:
        for dirpath, _, names in os.walk(top):
            for name in names:
                st = os.lstat(os.path.join(dirpath, name))
                if (st.st_dev, st.st_ino) not in seen:
                    seen.add((st.st_dev, st.st_ino))
                    total += st.st_size
    return total


def bench_params(params: dict, dataset: str, epochs: int, tables: list[str] | None, seeds: list[int] | None) -> dict:
    """``params`` with only ``dataset``'s tables (or ``tables``), ``seeds``, and that dataset's epochs."""
    p = copy.deepcopy(params)
    scale = p.get("scale", "quick")
    shown = [t for t, spec in p["tables"].items() if at_scale(p["datasets"].get(spec["dataset"]), scale) == dataset]
    keep = tables or shown
    unknown = set(keep) - set(p["tables"])
    if unknown or not keep:
        raise ValueError(f"--tables: {', '.join(sorted(unknown)) or 'none'} not among {', '.join(shown)}")
    p["tables"] = {t: p["tables"][t] for t in keep}
    if seeds:
        p["seeds"] = seeds
    recipe = at_scale(p["recipes"].get(dataset) or {}, scale)
    p["recipes"][dataset] = {**recipe, "epochs": epochs}
    explained = {t["dataset"] for t in p["tables"].values()}
    p["explanations"] = {k: v for k, v in (p.get("explanations") or {}).items() if k in explained}
    if not p["explanations"]:
        p.pop("explanations", None)
    return p


def step(work: Path, cache: str, cores: int, src: Path) -> dict:
    env = {**os.environ, "INTROSPECT_CACHE": cache, "PYTHONPATH": str(src),
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    t0 = time.perf_counter()
    out = subprocess.run([str(Path(sys.executable).parent / "snakemake"), "--snakefile", str(ROOT / "Snakefile"),
                          "--directory", str(work), "--cores", str(cores)], env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if out.returncode != 0:
        raise RuntimeError(f"snakemake failed in {work}:\n{out.stderr[-2000:]}")
    logs = [p.read_text() for p in (work / "logs" / "train").rglob("*.log")]
    trained = sum(text.count("] epoch 1/") for text in logs)
    restored = sum(text.count("restored, not trained") for text in logs)
    return {"wall": wall, "trained": trained, "restored": restored,
            "bytes": disk_bytes(work / "results", work / ".introspect")}


def toggle_bench(params_path: Path, epochs: str, tables: str | None, seeds: str | None, cores: int, dataset: str) -> str:
    a, b = (int(e) for e in epochs.split(","))
    params = yaml.safe_load(Path(params_path).read_text())
    chosen_tables = tables.split(",") if tables else None
    chosen_seeds = [int(s) for s in seeds.split(",")] if seeds else None
    base = Path(tempfile.mkdtemp(prefix="introspect-cache-bench-"))
    rows = []
    try:
        # a snapshot of the package: an edit of the source during the benchmark would change the
        # code digest, and so the runs' identities, between its steps
        src = base / "src"
        shutil.copytree(Path(__file__).resolve().parent, src / "introspect", ignore=shutil.ignore_patterns("__pycache__"))
        (base / "workflow").symlink_to(ROOT / "workflow")  # where the package finds its config schema
        works = {mode: base / mode for mode in ("cache", "off")}
        for work in works.values():
            work.mkdir()
        for n_epochs in (a, b, a):
            row = {"epochs": n_epochs}
            for mode, work in works.items():
                (work / "params.yaml").write_text(yaml.safe_dump(
                    bench_params(params, dataset, n_epochs, chosen_tables, chosen_seeds), sort_keys=False))
                row[mode] = step(work, str(work / ".introspect" / "cache") if mode == "cache" else "off", cores, src)
            rows.append(row)
        runs = len(list((works["cache"] / "results").rglob("metrics.json"))) - len(
            list((works["cache"] / "results").rglob("superseded/*/metrics.json")))
    finally:
        shutil.rmtree(base, ignore_errors=True)
    mib = 1 << 20
    lines = [f"introspect cache bench: {dataset} epochs {a} -> {b} -> {a}, {runs} runs, snakemake --cores {cores}, "
             f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}",
             f"{'step':12s} {'with cache':>34s}   {'without (INTROSPECT_CACHE=off)':>34s}"]
    for i, row in enumerate(rows):
        cells = [f"{r['wall']:6.1f} s  {r['trained']:3d} trained {r['restored']:3d} restored {r['bytes'] / mib:7.1f} MiB"
                 for r in (row["cache"], row["off"])]
        lines.append(f"{i + 1}. {row['epochs']:2d} epochs  {cells[0]:>34s}   {cells[1]:>34s}")
    back = rows[2]
    lines.append(f"toggle back ({b} -> {a}): {back['cache']['wall']:.1f} s with the cache, {back['off']['wall']:.1f} s without; "
                 f"disk grew {(back['cache']['bytes'] - rows[1]['cache']['bytes']) / mib:.1f} MiB with, "
                 f"{(back['off']['bytes'] - rows[1]['off']['bytes']) / mib:.1f} MiB without")
    return "\n".join(lines)
