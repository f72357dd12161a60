"""What the tests share: the repository's root, the commands of this environment, one tiny config,
copies of the repository, and a way to kill a workflow at a chosen moment."""
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import yaml

from introspect.runcache import ENV as CACHE

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent  # this environment's snakemake, dvc and introspect


def env(own_cache: bool = False, **extra) -> dict:
    """The environment of a command the test starts: this one's, with this environment's commands
    first on PATH. Its run cache is the session's (conftest.py), where identical runs of other tests
    are restored, not trained; ``own_cache``: the tree's own (params.yaml's run_cache.dir, empty in a
    new tree), for a test that must see its runs train (a kill mid-epoch, a resume)."""
    base = {k: v for k, v in os.environ.items() if not (own_cache and k == CACHE)}
    return {**base, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}", **extra}


def shipped_params() -> dict:
    return yaml.safe_load((ROOT / "params.yaml").read_text())


def tiny_params(tables: dict | None = None, epochs: int = 1, datasets=("digits",), milestones=(), **overrides) -> dict:
    """The shipped params.yaml made small: seed 0, ``epochs`` epochs of each of ``datasets`` (batch 128,
    learning rate 0.05, ``milestones``); ``tables`` instead of the shipped ones (and then no
    explanations: the shipped figures name rows of the shipped tables); ``overrides`` set last."""
    params = shipped_params()
    params["seeds"] = [0]
    for dataset in datasets:
        params["recipes"][dataset] = {"epochs": epochs, "batch_size": 128, "optim": {"lr": 0.05, "milestones": list(milestones)}}
    if tables is not None:
        params["tables"] = tables
        params.pop("explanations")
    params.update(overrides)
    return params


# The tiny DAG: CE (which also teaches), LS, KD from the CE run, and CWTM-Random (no teacher, another
# module), ResNet8 on digits, one seed, two epochs: built once a session (conftest.py's tiny_dag).
TINY_DAG_ROWS = ("ce", "ls", "kd", "cwtm_random")


def tiny_dag_params() -> dict:
    return tiny_params({"table4": {"dataset": "cifar10", "models": ["resnet8"], "teacher": {"row": "ce"},
                                   "rows": {r: {"method": r} for r in TINY_DAG_ROWS}}}, epochs=2)


def write_params(work: Path, params: dict) -> Path:
    """``work``/params.yaml holding ``params``; returns ``work``."""
    work.mkdir(parents=True, exist_ok=True)
    (work / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    return work


def snakemake_argv(work: Path, *args) -> list[str]:
    """This repository's workflow run on the tree ``work``."""
    return [str(BIN / "snakemake"), "--snakefile", str(ROOT / "Snakefile"), "--directory", str(work), *args]


def copy_repository(dest: Path, items) -> Path:
    """Copy ``items`` (paths relative to the repository's root) into ``dest``, without byte code."""
    for item in items:
        src = ROOT / item
        if src.is_dir():
            shutil.copytree(src, dest / item, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
        else:
            shutil.copy(src, dest / item)
    return dest


def copy_clone(dest: Path) -> Path:
    """The files a clone would have (tracked, plus new ones git does not ignore), nothing built."""
    listed = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"], cwd=ROOT,
                            capture_output=True, text=True, check=True).stdout.split("\0")
    for rel in filter(None, listed):
        src = ROOT / rel
        if src.is_file():  # a file deleted in the working tree but still in the index is skipped
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / rel)
    return dest


LINKED = ("results", "data")  # written only by replacing a file (fileio.atomic_write, os.replace): safe to share


def linked_copy(src: Path, dest: Path) -> Path:
    """A copy of the workflow tree ``src`` that costs no training: results/ and data/ hard-linked (their
    writers replace a file, never write through it: tests/test_dvc.py checks it), the rest copied
    (Snakemake's metadata and the jobs' logs are rewritten in place), every mtime kept (Snakemake
    compares them)."""
    def link(s, d):
        os.link(s, d)
        return d

    dest.mkdir(parents=True, exist_ok=True)
    for entry in src.iterdir():
        target = dest / entry.name
        if entry.is_dir() and not entry.is_symlink():
            shutil.copytree(entry, target, symlinks=True, copy_function=link if entry.name in LINKED else shutil.copy2)
        else:
            shutil.copy2(entry, target, follow_symlinks=False)
    return dest


def kill_when(argv: list[str], environ: dict, ready) -> None:
    """Start ``argv``, SIGKILL its whole process group as soon as ``ready()`` holds."""
    proc = subprocess.Popen(argv, env=environ, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.time() + 300
    try:
        while not ready():
            assert proc.poll() is None and time.time() < deadline, "it ended before it could be killed"
            time.sleep(0.02)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
