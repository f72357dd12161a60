import os
import shutil
import subprocess
import tempfile

import pytest
import torch

from helpers import CACHE, ROOT, env, linked_copy, snakemake_argv, tiny_dag_params, write_params
from introspect.data import prepare

PACKAGE = ROOT / "src" / "introspect"


def pytest_configure(config):
    """One run cache for the session, in every command a test starts (the workflow's train jobs read
    $INTROSPECT_CACHE): a run trained by one test is restored, not trained again, by the next that
    plans it; never the cache of the user running the tests. Set here, before any test module is
    imported, so that environments copied at import time carry it too."""
    config._introspect_cache = (os.environ.get(CACHE), tempfile.mkdtemp(prefix="introspect-test-runcache-"))
    os.environ[CACHE] = config._introspect_cache[1]


def pytest_unconfigure(config):
    before, folder = getattr(config, "_introspect_cache", (None, None))
    if folder is None:
        return
    shutil.rmtree(folder, ignore_errors=True)
    if before is None:
        os.environ.pop(CACHE, None)
    else:
        os.environ[CACHE] = before


@pytest.fixture(autouse=True)
def _small_threads():
    torch.manual_seed(0)


@pytest.fixture(scope="session")
def synthetic_path(tmp_path_factory):
    """The tiny generated dataset, prepared once per test session."""
    path = tmp_path_factory.mktemp("data") / "synthetic.pt"
    prepare("synthetic", path, raw=tmp_path_factory.mktemp("raw"))
    return path


@pytest.fixture(scope="session")
def teacher_run(tmp_path_factory, synthetic_path):
    """A finished one-epoch CE run of resnet8 on the synthetic set, to teach students in tests."""
    from introspect.config import resolve
    from introspect.train import train

    run = tmp_path_factory.mktemp("teacher") / "run"
    cfg = resolve({"dataset": {"name": "synthetic", "path": str(synthetic_path)}, "model": "resnet8",
                   "method": "ce", "epochs": 1, "device": "cpu"})
    train(cfg, run)
    return run


def _train_from(tmp_path_factory, synthetic_path, name: str, model: str, method: dict):
    from introspect.config import resolve
    from introspect.train import train

    run = tmp_path_factory.mktemp(name) / "run"
    cfg = resolve({"dataset": {"name": "synthetic", "path": str(synthetic_path)}, "model": model,
                   "method": method, "epochs": 1, "device": "cpu"})
    train(cfg, run)
    return run


@pytest.fixture(scope="session")
def iekd_ae_run(tmp_path_factory, synthetic_path, teacher_run):
    """IE-KD's auto-encoder stage on ``teacher_run`` (one epoch)."""
    return _train_from(tmp_path_factory, synthetic_path, "iekd_ae", "resnet8", {"name": "iekd_ae", "teacher": str(teacher_run)})


@pytest.fixture(scope="session")
def srl_teacher_run(tmp_path_factory, synthetic_path):
    """A self-regulated teacher (one epoch, fixed theta 0.5) with its participation counts."""
    return _train_from(tmp_path_factory, synthetic_path, "srl", "resnet8", {"name": "srl_teacher", "schedule": "fixed"})


@pytest.fixture(scope="session")
def ked_teacher_run(tmp_path_factory, synthetic_path):
    """An explaining (4-branch) resnet8 teacher, one epoch."""
    return _train_from(tmp_path_factory, synthetic_path, "ked", "resnet8", {"name": "ked_teacher"})


TEACHER_FIXTURE = {"iekd": "iekd_ae_run", "ked": "ked_teacher_run", "srl_significance": "srl_teacher_run",
                   "srl_regulated": "srl_teacher_run", "srl_hybrid": "srl_teacher_run"}


@pytest.fixture
def teacher_of(request):
    """``teacher_of(method)``: a finished run that method can learn from (most: the CE ``teacher_run``)."""
    return lambda name: request.getfixturevalue(TEACHER_FIXTURE.get(name, "teacher_run"))


@pytest.fixture(scope="session")
def tiny_dag(tmp_path_factory):
    """The tiny DAG (helpers.tiny_dag_params) built once by Snakemake (`snakemake --cores all`), on a
    copy of the package: its tree ("work") and that copy ("src"). Tests take a copy of it
    (:func:`tiny_dag_copy`), so that a test can edit a method's code the way a user does."""
    base = tmp_path_factory.mktemp("tiny_dag")
    shutil.copytree(PACKAGE, base / "src" / "introspect", ignore=shutil.ignore_patterns("__pycache__"))
    (base / "workflow").symlink_to(ROOT / "workflow")  # the package finds its config schema there
    work = write_params(base / "work", tiny_dag_params())
    out = subprocess.run(snakemake_argv(work, "--cores", "all"), env=env(PYTHONPATH=str(base / "src")),
                         capture_output=True, text=True)
    assert out.returncode == 0, f"the tiny DAG failed:\n{out.stdout[-3000:]}\n{out.stderr[-3000:]}"
    return {"work": work, "src": base / "src"}


@pytest.fixture
def tiny_dag_copy(tiny_dag, tmp_path):
    """A finished tiny DAG of this test's own, in ``tmp_path``: "work" (its tree, hard-linked to the
    session's: nothing trains), "src" (a copy of the package to edit) and "env" (imports that copy)."""
    src = tmp_path / "src"
    shutil.copytree(tiny_dag["src"], src, ignore=shutil.ignore_patterns("__pycache__"))
    (tmp_path / "workflow").symlink_to(ROOT / "workflow")
    work = linked_copy(tiny_dag["work"], tmp_path / "work")
    return {"work": work, "src": src, "env": env(PYTHONPATH=str(src))}
