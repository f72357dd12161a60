import pickle

import numpy as np
import pytest
import torch

from introspect.data import DATASETS, DataError, augment_batch, load_prepared, loader, prepare


def test_prepare_writes_splits_stats_and_checksum(synthetic_path):
    d = load_prepared(synthetic_path)
    t = d["tensors"]
    assert d["name"] == "synthetic" and len(d["classes"]) == 10
    assert t["x_train"].dtype == torch.uint8 and t["x_train"].shape[1:] == (3, 16, 16)
    assert len(t["y_train"]) + len(t["y_val"]) == 400 and len(t["y_test"]) == 200
    assert len(t["y_val"]) == 40
    # stratified: every class appears in val
    assert torch.bincount(t["y_val"], minlength=10).min() >= 3
    assert d["mean"].shape == (3,) and d["std"].gt(0).all()


def test_prepare_is_reproducible(tmp_path, synthetic_path):
    again = tmp_path / "again.pt"
    prepare("synthetic", again, raw=tmp_path)
    assert load_prepared(again)["sha256"] == load_prepared(synthetic_path)["sha256"]


def test_digits_is_real_offline_and_stratified(tmp_path):
    summary = prepare("digits", tmp_path / "digits.pt", raw=tmp_path)
    d = load_prepared(tmp_path / "digits.pt")
    assert summary["train"] + summary["val"] + summary["test"] == 1797
    assert d["tensors"]["x_test"].shape[1:] == (1, 16, 16)
    counts = torch.bincount(d["tensors"]["y_test"], minlength=10)
    assert counts.min() >= 35 and counts.max() <= 37  # 360 test images, stratified


def test_damaged_or_missing_file_is_one_error_naming_it(tmp_path, synthetic_path):
    missing = tmp_path / "nope.pt"
    with pytest.raises(DataError, match=str(missing)):
        load_prepared(missing)
    payload = torch.load(synthetic_path, weights_only=True)
    payload["tensors"]["y_train"][0] += 1
    bad = tmp_path / "bad.pt"
    torch.save(payload, bad)
    with pytest.raises(DataError, match=f"{bad}: checksum mismatch"):
        load_prepared(bad)
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(synthetic_path.read_bytes()[:1000])
    with pytest.raises(DataError, match=f"{truncated}: unreadable"):
        load_prepared(truncated)


def test_augment_crops_a_window_of_the_zero_padded_image_and_flips():
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(64, 3, 8, 8) + 0.1  # no zeros inside the image
    out = augment_batch(x, pad=2, flip=True, gen=gen)
    padded = torch.nn.functional.pad(x, (2, 2, 2, 2))
    flips = 0
    for i in range(len(x)):
        windows = [padded[i, :, a:a + 8, b:b + 8] for a in range(5) for b in range(5)]
        plain = any(torch.equal(out[i], w) for w in windows)
        flipped = any(torch.equal(out[i], w.flip(2)) for w in windows)
        assert plain or flipped
        flips += flipped and not plain
    assert 10 < flips < 54  # about half are flipped
    assert torch.equal(augment_batch(x, pad=0, flip=False, gen=gen), x)


def test_loader_visits_every_sample_once_per_epoch(synthetic_path):
    d = load_prepared(synthetic_path)
    ld = loader(d, "train", 64, "cpu", augment="crop_flip", shuffle=True)
    gen = torch.Generator().manual_seed(0)
    ys, shapes = [], set()
    for x, y in ld.batches(gen):
        ys.append(y)
        shapes.add(tuple(x.shape[1:]))
        assert x.dtype == torch.float32
    assert torch.equal(torch.cat(ys).sort().values, d["tensors"]["y_train"].sort().values)
    assert shapes == {(3, 16, 16)}
    x, _ = next(loader(d, "test", 1000, "cpu").batches())
    mean = x.mean((0, 2, 3))  # normalized with train statistics: near zero mean
    assert mean.abs().max() < 0.2


def _fake_cifar(root, n=20):
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        batch = {"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8), "labels": list(rng.integers(0, 10, n))}
        with open(folder / name, "wb") as f:
            pickle.dump(batch, f)
    with open(folder / "batches.meta", "wb") as f:
        pickle.dump({"label_names": list(DATASETS.get("cifar10").classes)}, f)


def _fake_mnist(root, n=30):
    folder = root / "MNIST" / "raw"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for prefix, count in (("train", n), ("t10k", n)):
        images = rng.integers(0, 256, (count, 28, 28), dtype=np.uint8)
        labels = np.arange(count, dtype=np.uint8) % 10
        (folder / f"{prefix}-images-idx3-ubyte").write_bytes(
            np.array([0, 0, 8, 3], dtype=np.uint8).tobytes() + np.array([count, 28, 28], dtype=">i4").tobytes() + images.tobytes())
        (folder / f"{prefix}-labels-idx1-ubyte").write_bytes(
            np.array([0, 0, 8, 1], dtype=np.uint8).tobytes() + np.array([count], dtype=">i4").tobytes() + labels.tobytes())


def test_cifar10_reader_on_files_in_torchvision_layout(tmp_path, monkeypatch):
    import torchvision.datasets.cifar as cifar

    _fake_cifar(tmp_path / "raw" / "cifar10")
    # torchvision checks the real archive's MD5 sums; these files are our own
    monkeypatch.setattr(cifar, "check_integrity", lambda *args, **kwargs: True)
    summary = prepare("cifar10", tmp_path / "c.pt", raw=tmp_path / "raw", val_fraction=0.2)
    d = load_prepared(tmp_path / "c.pt")
    assert summary["test"] == 20 and summary["train"] + summary["val"] == 100
    assert d["tensors"]["x_train"].shape[1:] == (3, 32, 32) and d["augment"] == "crop_flip"


def test_mnist_reader_on_files_in_torchvision_layout(tmp_path):
    _fake_mnist(tmp_path / "raw" / "mnist")
    summary = prepare("mnist", tmp_path / "m.pt", raw=tmp_path / "raw", val_fraction=1 / 3)
    d = load_prepared(tmp_path / "m.pt")
    assert summary["test"] == 30 and summary["val"] == 10
    assert d["tensors"]["x_test"].shape[1:] == (1, 28, 28) and d["augment"] == "none"


def test_offline_and_absent_is_one_line_naming_path_and_command(tmp_path, monkeypatch):
    import torchvision

    def offline(*a, **k):
        raise OSError("no network")

    monkeypatch.setattr(torchvision.datasets.CIFAR10, "download", offline)
    with pytest.raises(DataError) as err:
        prepare("cifar10", tmp_path / "c.pt", raw=tmp_path / "raw")
    msg = str(err.value)
    assert "\n" not in msg and str(tmp_path / "raw" / "cifar10") in msg
    assert f"introspect prepare --dataset cifar10 --raw {tmp_path / 'raw'}" in msg
    assert not (tmp_path / "c.pt").exists()
