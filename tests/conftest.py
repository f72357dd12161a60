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
