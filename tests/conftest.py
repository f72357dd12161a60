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
