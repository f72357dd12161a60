"""`introspect prepare | models | train | cache | explain | evaluate | report | bench | plan | status`: thin argparse over the library's functions.

Errors meant for people end the command with one line on stderr: exit 2 for a bad command line
or config (nothing is written), exit 1 for a missing/damaged file, a diverged run, or a file that
cannot be written for want of space or permission (introspect.fileio.WriteError).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from .registry import ConfigError
from .scales import SCALES

PROG = "introspect"


class OneLineParser(argparse.ArgumentParser):
    def error(self, message: str):  # argparse's usage + error, as one line
        print(f"{PROG}: error: {message} (see `{self.prog} --help`)", file=sys.stderr)
        sys.exit(2)


def _user_config(args) -> dict:
    from .config import apply_sets, read_yaml

    user: dict = {}
    if args.config_json:
        user = json.loads(args.config_json)
    elif args.config:
        path = Path(args.config)
        if not path.is_file():
            raise ConfigError(f"--config: no file {path}")
        user = read_yaml(path) or {}
        if not isinstance(user, dict):
            raise ConfigError(f"--config: {path} must hold a mapping of keys")
    flags = {"dataset": args.dataset, "model": args.model, "method": args.method}
    for sec, name in flags.items():
        if name is not None:
            node = user.setdefault(sec, {})
            if not isinstance(node, dict):
                node = user[sec] = {"name": node}
            node["name"] = name
    for key in ("seed", "epochs", "device"):
        if getattr(args, key) is not None:
            user[key] = getattr(args, key)
    return apply_sets(user, args.set or [])


def cmd_prepare(args) -> int:
    from .data import prepare

    out = Path(args.out or f"data/processed/{args.dataset}.pt")
    summary = prepare(args.dataset, out, Path(args.raw), args.val_fraction, args.seed)
    print(json.dumps(summary))
    return 0


def cmd_models(args) -> int:
    from .data import DATASETS
    from .models import MODELS, count_parameters

    src = DATASETS.get(args.dataset, "--dataset")
    for name in MODELS.names():
        try:
            n = count_parameters(MODELS.build(name, src.channels, src.size, len(src.classes)))
        except ValueError as exc:  # e.g. four pools on an image too small for them
            print(f"{name:10s} {'-':>10s}  ({exc})")
            continue
        print(f"{name:10s} {n:>10,d}")
    return 0


def cmd_train(args) -> int:
    from .config import resolve
    from .train import build, train

    if args.runs_json:
        return _train_runs(args)
    cfg = resolve(_user_config(args))
    build(cfg)  # impossible combinations fail here, before the run folder exists
    if cfg.get("recipe"):  # the dataset's source has no recipe for this model: the stated default
        print(f"{PROG}: recipe: {cfg['recipe']}", file=sys.stderr)
    if args.print_config:
        print(json.dumps(cfg, indent=2, sort_keys=True))
        return 0
    if not args.out:
        raise ConfigError("--out: required (the run folder)")
    _claim_gpu(args)
    metrics = train(cfg, Path(args.out), log=sys.stderr, supersede=args.supersede, **_run_cache(args))
    print(json.dumps(metrics, sort_keys=True))
    return 0


SINGLE_RUN_FLAGS = ("dataset", "model", "method", "seed", "epochs", "device", "out", "config", "config_json", "set", "print_config")


def _train_runs(args) -> int:
    """``--runs-json``: several runs in one process, one after another (the workflow's job: every
    seed of a table row, so torch is imported once). Every config is checked before any run starts;
    a run that diverges is reported and the others still train; the exit code is then 1."""
    from .config import resolve
    from .train import Diverged, build, train

    given = [f"--{k.replace('_', '-')}" for k in SINGLE_RUN_FLAGS if getattr(args, k) not in (None, False)]
    if given:
        raise ConfigError(f"--runs-json: cannot be combined with {', '.join(given)} (each run carries its own config)")
    try:
        items = json.loads(args.runs_json)
    except ValueError as exc:
        raise ConfigError(f"--runs-json: not valid JSON ({exc})") from None
    if not isinstance(items, list) or not items or not all(isinstance(i, dict) and set(i) == {"out", "config"} for i in items):
        raise ConfigError('--runs-json: expected a non-empty list of {"out": run folder, "config": {...}}')
    runs = []
    for item in items:
        try:
            cfg = resolve(item["config"])
            build(cfg)
        except ConfigError as exc:
            raise ConfigError(f"{item['out']}: {exc}") from None
        if cfg.get("recipe"):
            print(f"{PROG}: {item['out']}: recipe: {cfg['recipe']}", file=sys.stderr)
        runs.append((cfg, Path(item["out"])))
    _claim_gpu(args)
    failed = []
    for cfg, out in runs:
        try:
            metrics = train(cfg, out, log=sys.stderr, supersede=args.supersede, **_run_cache(args))
        except Diverged as exc:
            print(f"{PROG}: error: {exc}", file=sys.stderr)
            failed.append(str(out))
            continue
        print(json.dumps({"out": str(out), **metrics}, sort_keys=True))
    if failed:
        raise Diverged(f"{len(failed)} of {len(runs)} runs failed: {', '.join(failed)}")
    return 0


def _run_cache(args) -> dict:
    """train()'s run cache arguments from --cache (else $INTROSPECT_CACHE; "off": no restoring)."""
    from .runcache import settings

    root, restore = settings(args.cache)
    return {"cache": root, "restore": restore}


def cmd_cache(args) -> int:
    """`introspect cache [list] | add | prune | bench`: the run cache (introspect.runcache). A cache
    folder that cannot be used (a file in its place, unreadable) is one line naming it, exit 1."""
    from . import runcache

    if args.action == "bench":
        from .bench_cache import toggle_bench

        print(toggle_bench(Path(args.params), args.epochs, args.tables, args.seeds, args.cores, args.dataset))
        return 0
    root = Path(args.dir) if args.dir else runcache.settings()[0]
    if root is None and not args.dir:
        from .config import read_yaml

        params = read_yaml(Path(args.params)) if Path(args.params).is_file() else {}
        root = Path(((params or {}).get("run_cache") or {}).get("dir") or runcache.DEFAULT)
    try:
        return _cache_action(args, root)
    except runcache.CacheError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 1


def _cache_action(args, root: Path) -> int:
    from . import runcache

    if args.action == "list":
        text, damaged = runcache.listing(root, args.verify)
        print(text)
        return 1 if damaged else 0
    if args.action == "add":
        if not args.run:
            raise ConfigError("add: name the finished run folders to store (--run, repeatable)")
        runcache.check(root)
        stored = [runcache.add(Path(r), root, sys.stderr) for r in args.run]
        print(f"run cache {root}: {sum(1 for s in stored if s)} of {len(stored)} runs stored or already there")
        return 0
    try:
        age = runcache.parse_age(args.older_than) if args.older_than else None
        size = runcache.parse_size(args.larger_than) if args.larger_than else None
    except ValueError as exc:
        raise ConfigError(f"prune: {exc}") from None
    lines = runcache.prune(root, [Path(r) for r in args.results or ["results"]], age, size, args.unreferenced, args.dry_run)
    print("\n".join(lines) if lines else f"run cache {root}: nothing to prune")
    return 0


def _claim_gpu(args) -> None:
    if args.claim_gpu:
        from .gpu import claim

        claim()  # before anything touches CUDA


def cmd_explain(args) -> int:
    from .analysis import explain_run

    _claim_gpu(args)
    result = explain_run(Path(args.run), Path(args.out), args.explainer, args.examples, args.device)
    print(f"{args.out}: {result['explainer']} maps of {len(result['labels'])} images, "
          f"class similarity over the test set", file=sys.stderr)
    return 0


def cmd_evaluate(args) -> int:
    from .evaluate import evaluate_run

    if args.out and len(args.run) > 1:
        raise ConfigError("--out: only with one --run (each run writes <run>/evaluation.json)")
    missing = [r for r in args.run if not (Path(r) / "checkpoint.pt").is_file()]
    if missing:
        raise ConfigError(f"--run: no finished run (checkpoint.pt) in {', '.join(missing)}")
    _claim_gpu(args)
    given = {k: getattr(args, k) for k in ("images", "steps", "perturbations") if getattr(args, k) is not None}
    for run in args.run:  # every run in one process: torch is imported once
        result = evaluate_run(Path(run), Path(args.out) if args.out else None, explainer=args.explainer,
                              device=args.device, **given)
        print(json.dumps({k: result[k] for k in ("run", "nll", "ece", "brier", "deletion_auc", "insertion_auc",
                                                  "infidelity", "teacher_agreement")}, sort_keys=True))
    return 0


def code_version() -> str:
    """`git describe` of the checkout the installed package lives in, or "unknown"."""
    import subprocess

    here = Path(__file__).resolve().parent
    out = subprocess.run(["git", "describe", "--always", "--dirty", "--tags"], cwd=here, capture_output=True, text=True)
    return out.stdout.strip() if out.returncode == 0 else "unknown"


def cmd_report(args) -> int:
    from .pipeline import load
    from .report import make_report

    plan = load(Path(args.params), args.scale)
    reference = Path(args.reference)
    if not reference.is_absolute() and not reference.is_dir():  # run outside the repository: beside params.yaml's
        reference = Path(args.params).resolve().parent / args.reference
    if not (reference / "paper_tables.csv").is_file():
        raise ConfigError(f"--reference: no paper_tables.csv in {args.reference} (the repository's workflow/reference, "
                          f"found beside --params too)")
    done = make_report(plan, Path(args.results), reference, Path(args.out), code_version(), args.params)
    missing, stale = done["missing_runs"], done["stale_runs"]
    if missing or stale:
        print(f"{PROG}: {len(plan.runs) - len(missing) - len(stale)} of {len(plan.runs)} planned runs are present and "
              f"current; {len(missing)} missing, {len(stale)} stale (left out of every table and verdict):", file=sys.stderr)
        for run_id in missing:
            print(f"  missing: {run_id}", file=sys.stderr)
        for run_id, why in sorted(stale.items()):
            print(f"  stale: {run_id} ({'; '.join(why)})", file=sys.stderr)
    else:
        print(f"{PROG}: all {len(plan.runs)} planned runs are present and current", file=sys.stderr)
    print(f"{args.out}/index.md written", file=sys.stderr)
    return 0


def cmd_bench(args) -> int:
    from .bench import run_bench, run_scale_bench

    if args.models:
        run_bench(args.device, args.models.split(","), args.batch_size, args.steps, args.loader_images, args.json)
        return 0
    from .pipeline import load
    from .plan import bench_entries, merge_entries

    scales = args.scale.split(",")
    entries = merge_entries([bench_entries(load(Path(args.params), scale)) for scale in scales])
    run_scale_bench(args.device, entries, args.steps, args.json, args.cpu_time, info=f", what scale {args.scale} trains")
    return 0


def cmd_status(args) -> int:
    from .pipeline import load
    from .status import render, watch

    plan = load(Path(args.params), args.scale)
    if args.watch:
        try:
            watch(plan, Path(args.results), Path(args.reports), args.watch, params=Path(args.params))
        except KeyboardInterrupt:
            pass
    else:
        print(render(plan, Path(args.results), Path(args.reports), params=Path(args.params)))
    return 0


def cmd_plan(args) -> int:
    from .pipeline import load
    from .plan import Calibration, calibrate, default_bench, read_bench, report

    bench = read_bench(Path(args.bench)) if args.bench else None
    plan = load(Path(args.params), args.scale)
    calibration = (Calibration(None, "bench not calibrated to this CPU, --no-probe: the step times of the CPU it was made on")
                   if args.no_probe else calibrate(bench or default_bench()[0]))
    print(report(plan, bench, args.bench or "", calibration=calibration))
    for line in plan.missing_data():  # the estimate stands; the data it needs is not here yet
        print(f"# data missing: {line}")
    return 0


def parser() -> argparse.ArgumentParser:
    p = OneLineParser(prog=PROG, description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="command", required=True, parser_class=OneLineParser)

    s = sub.add_parser("prepare", help="turn a dataset into one checksummed tensor file")
    s.add_argument("--dataset", required=True)
    s.add_argument("--out", help="default: data/processed/<dataset>.pt")
    s.add_argument("--raw", default="data/raw", help="where raw files live, per dataset subfolder: downloads, "
                   "or an image folder's class subfolders (docs/your-data.md)")
    s.add_argument("--val-fraction", type=float, default=0.1, help="share of train carved out as validation")
    s.add_argument("--seed", type=int, default=0, help="seed of the train/val split")
    s.set_defaults(func=cmd_prepare)

    s = sub.add_parser("models", help="list the models and their parameter counts for a dataset "
                       "(any registered one: cifar10, cifar100, svhn, fashionmnist, mnist, ... or your own)")
    s.add_argument("--dataset", default="cifar10")
    s.set_defaults(func=cmd_models)

    s = sub.add_parser("train", help="train one run into a folder (resumes if the folder holds a checkpoint)")
    s.add_argument("--dataset")
    s.add_argument("--model")
    s.add_argument("--method")
    s.add_argument("--seed", type=int)
    s.add_argument("--epochs", type=int)
    s.add_argument("--device", choices=["auto", "cpu", "cuda"])
    s.add_argument("--out", help="the run folder")
    s.add_argument("--config", help="a YAML/JSON file of config keys, applied before the flags")
    s.add_argument("--config-json", help="the same as inline JSON (what the workflow passes)")
    s.add_argument("--set", action="append", metavar="KEY=VALUE", help="any config key, e.g. method.alpha=0.8")
    s.add_argument("--print-config", action="store_true", help="print the resolved config and exit")
    s.add_argument("--runs-json", help='several runs, one after another: [{"out": folder, "config": {...}}, ...] '
                   "(what the workflow passes: every seed of a table row)")
    s.add_argument("--claim-gpu", action="store_true", help="take a free GPU slot first (see introspect.gpu)")
    s.add_argument("--supersede", action="store_true",
                   help="if --out holds a run with another config, move it to --out/superseded/<time>/ and start over")
    s.add_argument("--cache", help="the run cache folder: restore a finished identical run instead of training, store "
                   "a trained one (default: $INTROSPECT_CACHE; the workflow: params.yaml run_cache.dir); off: never restore")
    s.set_defaults(func=cmd_train)

    s = sub.add_parser("cache", help="list, prune or benchmark the run cache (finished runs restored instead of retrained)")
    s.add_argument("action", nargs="?", default="list", choices=["list", "add", "prune", "bench"])
    s.add_argument("--run", action="append", help="add: a finished run folder trained without the cache (repeat)")
    s.add_argument("--verify", action="store_true", help="list: check every entry's sizes and SHA-256s, mark the damaged "
                   "ones (exit 1 when there is one)")
    s.add_argument("--dir", help="the cache folder (default: $INTROSPECT_CACHE, else params.yaml run_cache.dir)")
    s.add_argument("--params", default="params.yaml", help="where run_cache.dir is read (and bench's experiment)")
    s.add_argument("--results", action="append", help="prune: a results folder whose runs are kept (repeat; default results)")
    s.add_argument("--older-than", help="prune: entries stored longer ago than this (30d, 12h, 2w)")
    s.add_argument("--larger-than", help="prune: entries larger than this (500M, 2G)")
    s.add_argument("--unreferenced", action="store_true", help="prune: every entry no run folder uses (without any of "
                   "these three, prune removes only the temp folders of killed writers, as every prune does)")
    s.add_argument("--dry-run", action="store_true", help="prune: say what would be deleted, delete nothing")
    s.add_argument("--epochs", default="3,6", help="bench: the toggle A,B (A -> B -> A) of --dataset's epochs")
    s.add_argument("--dataset", default="mnist5k", help="bench: the dataset whose recipe's epochs are toggled")
    s.add_argument("--tables", help="bench: only these tables (comma-separated; default: every table with --dataset)")
    s.add_argument("--seeds", help="bench: only these seeds (comma-separated; default: the config's)")
    s.add_argument("--cores", type=int, default=2, help="bench: snakemake --cores")
    s.set_defaults(func=cmd_cache)

    s = sub.add_parser("explain", help="explain a trained run's test set (data of Figures 1 and 2)")
    s.add_argument("--run", required=True, help="a finished run folder")
    s.add_argument("--out", required=True, help="the torch file to write")
    s.add_argument("--explainer", help="default: the run's own (LE) or the paper's for the model")
    s.add_argument("--examples", type=int, default=10, help="test images kept with their maps (one per class)")
    s.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    s.add_argument("--claim-gpu", action="store_true", help="take a free GPU slot first (see introspect.gpu)")
    s.set_defaults(func=cmd_explain)

    s = sub.add_parser("evaluate", help="calibration and explanation quality of finished runs (<run>/evaluation.json)")
    s.add_argument("--run", required=True, action="append", help="a finished run folder; repeat for several")
    s.add_argument("--out", help="the JSON file to write (one --run only); default: <run>/evaluation.json")
    # defaults: introspect.evaluate's (IMAGES, STEPS, PERTURBATIONS; the workflow passes each scale's)
    s.add_argument("--images", type=int, help="explain the first N test images (the same for every run); default 256")
    s.add_argument("--steps", type=int, help="points of the deletion and insertion curves, after the first; default 16")
    s.add_argument("--perturbations", type=int, help="Gaussian perturbations per image of the infidelity; default 10")
    s.add_argument("--explainer", help="default: Grad-CAM on a CNN, Grad on the MLP (the same for every method)")
    s.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    s.add_argument("--claim-gpu", action="store_true", help="take a free GPU slot first (see introspect.gpu)")
    s.set_defaults(func=cmd_evaluate)

    s = sub.add_parser("report", help="tables, claim verdicts and figures from a results folder")
    s.add_argument("--params", default="params.yaml", help="the experiment config the results come from")
    s.add_argument("--scale", choices=list(SCALES), help="default: the config's own")
    s.add_argument("--results", default="results")
    s.add_argument("--reference", default="workflow/reference", help="the paper's tables and claims")
    s.add_argument("--out", default="reports")
    s.set_defaults(func=cmd_report)

    s = sub.add_parser("bench", help="step-time ratios of LE to CE and loader throughput on this device")
    s.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    s.add_argument("--scale", default="paper", help="time what these scales train (comma-separated; default paper): "
                   "each model and method on its dataset's shape at its batch size (without --models)")
    s.add_argument("--params", default="params.yaml", help="the config whose scales are timed")
    s.add_argument("--cpu-time", action="store_true", help="time steps in CPU seconds of this process (a shared machine)")
    s.add_argument("--models", help="instead: these models (comma-separated), every method, at --batch-size, "
                   "and the loader (e.g. resnet8,resnet14,mlp1024)")
    s.add_argument("--batch-size", type=int, default=128, help="with --models")
    s.add_argument("--steps", type=int, default=15, help="timed steps per method (median reported)")
    s.add_argument("--loader-images", type=int, default=10000, help="images per loader timing (with --models)")
    s.add_argument("--json", help="also write the step times to this file (for `introspect plan --bench`)")
    s.set_defaults(func=cmd_bench)

    s = sub.add_parser("plan", help="runs per table and, with --bench, the training hours of a config")
    s.add_argument("--params", default="params.yaml")
    s.add_argument("--scale", choices=list(SCALES), help="default: the config's own")
    s.add_argument("--bench", help="a file written by `introspect bench --json` on the training device")
    s.add_argument("--no-probe", action="store_true", help="use the bench's step times as they are: no probe of a "
                   "few seconds calibrating them to this CPU (a fixed output)")
    s.set_defaults(func=cmd_plan)

    s = sub.add_parser("status", help="per table: runs finished and current, stale, running (epoch, ETA), missing")
    s.add_argument("--params", default="params.yaml")
    s.add_argument("--scale", choices=list(SCALES), help="default: the config's own")
    s.add_argument("--results", default="results")
    s.add_argument("--reports", default="reports")
    s.add_argument("--watch", type=float, nargs="?", const=5.0, metavar="SECONDS",
                   help="print it again every SECONDS (default 5) until Ctrl-C")
    s.set_defaults(func=cmd_status)
    return p


def main(argv: list[str] | None = None) -> int:
    from .checkpoint import CheckpointError
    from .data import DataError
    from .fileio import WriteError, trouble
    from .train import Diverged

    args = parser().parse_args(argv)
    try:
        return args.func(args)
    except ConfigError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 2
    except (DataError, Diverged, CheckpointError, WriteError) as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:  # no space or permission outside fileio's writers: the file, why, what to do
        if (why := trouble(exc)) is None:
            raise
        print(f"{PROG}: error: {exc.filename or 'a file'}: {'; '.join(why)}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
