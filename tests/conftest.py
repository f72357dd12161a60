import pytest
import torch

from introspect.data import prepare


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
