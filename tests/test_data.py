import pickle
import shutil

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


def _fake_mnist(root, n=30, folder="MNIST"):
    folder = root / folder / "raw"
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


@pytest.mark.parametrize("name,reader", [("cifar10", "CIFAR10"), ("cifar100", "CIFAR100")])
def test_offline_and_absent_is_one_line_naming_path_and_command(tmp_path, monkeypatch, name, reader):
    import torchvision

    def offline(*a, **k):
        raise OSError("no network")

    monkeypatch.setattr(getattr(torchvision.datasets, reader), "download", offline)
    with pytest.raises(DataError) as err:
        prepare(name, tmp_path / "c.pt", raw=tmp_path / "raw")
    msg = str(err.value)
    assert "\n" not in msg and msg.startswith(f"{tmp_path / 'raw' / name}: no {reader} there in any layout read")
    assert "train/<class>/*.png" in msg and "train-*.parquet" in msg  # the error names the layouts it reads
    assert f"introspect prepare --dataset {name} --raw {tmp_path / 'raw'}" in msg
    assert not (tmp_path / "c.pt").exists()


# CIFAR-100, SVHN and Fashion-MNIST: torchvision's readers, prepared when their files are present,
# one line when they are absent and cannot be downloaded.

def _fake_cifar100(root, n=30):
    folder = root / "cifar-100-python"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for name in ("train", "test"):
        batch = {"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8), "fine_labels": list(np.arange(n) % 100)}
        with open(folder / name, "wb") as f:
            pickle.dump(batch, f)
    with open(folder / "meta", "wb") as f:
        pickle.dump({"fine_label_names": list(DATASETS.get("cifar100").classes)}, f)


def _fake_svhn(root, n=40):
    import scipy.io

    root.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for name in ("train_32x32.mat", "test_32x32.mat"):
        labels = (np.arange(n) % 10) + 1  # SVHN labels the digit 0 as 10
        scipy.io.savemat(root / name, {"X": rng.integers(0, 256, (32, 32, 3, n), dtype=np.uint8), "y": labels[:, None]})


def test_cifar100_reader_on_files_in_torchvision_layout(tmp_path, monkeypatch):
    import torchvision.datasets.cifar as cifar

    _fake_cifar100(tmp_path / "raw" / "cifar100", n=300)
    monkeypatch.setattr(cifar, "check_integrity", lambda *args, **kwargs: True)
    summary = prepare("cifar100", tmp_path / "c.pt", raw=tmp_path / "raw", val_fraction=0.5)
    d = load_prepared(tmp_path / "c.pt")
    assert summary["test"] == 300 and summary["train"] + summary["val"] == 300
    assert d["tensors"]["x_train"].shape[1:] == (3, 32, 32) and len(d["classes"]) == 100
    assert d["classes"][:3] == ["apple", "aquarium_fish", "baby"] and d["augment"] == "crop_flip"


def test_svhn_reader_on_files_in_torchvision_layout(tmp_path, monkeypatch):
    import torchvision.datasets.svhn as svhn

    _fake_svhn(tmp_path / "raw" / "svhn")
    monkeypatch.setattr(svhn, "check_integrity", lambda *args, **kwargs: True)
    summary = prepare("svhn", tmp_path / "s.pt", raw=tmp_path / "raw", val_fraction=0.25)
    d = load_prepared(tmp_path / "s.pt")
    assert summary["test"] == 40 and summary["val"] == 10
    assert d["tensors"]["x_test"].shape[1:] == (3, 32, 32) and d["augment"] == "crop"
    assert sorted(set(d["tensors"]["y_test"].tolist())) == list(range(10))  # label 10 read as the digit 0


def test_fashionmnist_reader_on_files_in_torchvision_layout(tmp_path):
    _fake_mnist(tmp_path / "raw" / "fashionmnist", folder="FashionMNIST")
    summary = prepare("fashionmnist", tmp_path / "f.pt", raw=tmp_path / "raw", val_fraction=1 / 3)
    d = load_prepared(tmp_path / "f.pt")
    assert summary["test"] == 30 and d["tensors"]["x_test"].shape[1:] == (1, 28, 28)
    assert d["classes"][0] == "t-shirt/top"


@pytest.mark.parametrize("name,reader", [("svhn", "SVHN"), ("fashionmnist", "FashionMNIST")])
def test_the_new_torchvision_sets_offline_and_absent_are_the_cifar10_line(tmp_path, monkeypatch, name, reader):
    import torchvision

    def offline(*a, **k):
        raise OSError("no network")

    monkeypatch.setattr(getattr(torchvision.datasets, reader), "download", offline)
    with pytest.raises(DataError) as err:
        prepare(name, tmp_path / "x.pt", raw=tmp_path / "raw")
    msg = str(err.value)
    assert "\n" not in msg and msg.startswith(f"{tmp_path / 'raw' / name}: no {reader} there and it could not be downloaded")
    assert f"introspect prepare --dataset {name} --raw {tmp_path / 'raw'}" in msg
    assert not (tmp_path / "x.pt").exists()


# An image folder (introspect.data.Folder): a user's one-file dataset.

def _image(path, size=(12, 12), mode="RGB", value=100):
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new(mode, size, value if mode == "L" else (value, 255 - value, value // 2)).save(path)


def _folder(root, classes=("a", "b", "c"), n=10, **kw):
    for k, c in enumerate(classes):
        for i in range(n):
            _image(root / c / f"{i}.png", value=20 * k + i, **kw)
    return root


@pytest.fixture
def folder_source(monkeypatch):
    """``make(**attributes)``: a Folder dataset registered as 'myimages' for this test only."""
    from introspect.data import Folder

    def make(**attributes):
        cls = type("MyImages", (Folder,), {"channels": 3, "size": 8, "classes": ("a", "b", "c"), **attributes})
        monkeypatch.setitem(DATASETS._entries, "myimages", cls)
        return cls

    return make


def test_an_image_folder_is_resized_and_split_stratified(tmp_path, folder_source):
    folder_source()
    _folder(tmp_path / "raw" / "myimages", n=10)
    summary = prepare("myimages", tmp_path / "m.pt", raw=tmp_path / "raw")
    d = load_prepared(tmp_path / "m.pt")
    t = d["tensors"]
    assert t["x_train"].shape[1:] == (3, 8, 8) and d["classes"] == ["a", "b", "c"]
    assert summary["train"] + summary["val"] + summary["test"] == 30
    assert torch.bincount(t["y_test"], minlength=3).tolist() == [2, 2, 2]  # 20 % of each class
    # the pixels are the images' own: a uniform image stays uniform through the resize
    assert set(t["x_test"][0, 0].flatten().tolist()) == {int(t["x_test"][0, 0, 0, 0])}
    again = prepare("myimages", tmp_path / "again.pt", raw=tmp_path / "raw")
    assert again["sha256"] == summary["sha256"]  # the same folder, the same file


def test_an_image_folder_with_its_own_test_split_keeps_it_and_reads_greyscale(tmp_path, folder_source):
    folder_source(channels=1, size=12, root=str(tmp_path / "elsewhere"))
    _folder(tmp_path / "elsewhere" / "train", n=10, mode="L")
    _folder(tmp_path / "elsewhere" / "test", n=3, mode="L")
    summary = prepare("myimages", tmp_path / "m.pt", raw=tmp_path / "raw")
    assert summary["test"] == 9 and summary["train"] + summary["val"] == 30
    assert load_prepared(tmp_path / "m.pt")["tensors"]["x_test"].shape[1:] == (1, 12, 12)


BAD_FOLDERS = {  # what goes wrong -> (how to break a good folder, the file or class the line names, its words)
    "unreadable": (lambda r: (r / "b" / "3.png").write_bytes(b"not an image"), "b/3.png", "unreadable image"),
    "empty class": (lambda r: [p.unlink() for p in (r / "c").iterdir()], "c", "class 'c' has no images"),
    "missing class": (lambda r: shutil.rmtree(r / "c"), "c", "class 'c' has no images"),
    "mixed sizes": (lambda r: _image(r / "a" / "4.png", size=(20, 20)), "a/4.png", "mixed sizes"),
    "mixed channels": (lambda r: _image(r / "b" / "0.png", mode="L"), "b/0.png", "mode L (1 channel)"),
    "rgba": (lambda r: _image(r / "b" / "0.png", mode="RGBA"), "b/0.png", "mode RGBA (4 channels)"),
    "undeclared class": (lambda r: _image(r / "d" / "0.png"), "d", "class 'd' is not one of the declared classes"),
    "too few images": (lambda r: [p.unlink() for p in (r / "a").iterdir() if p.name != "0.png"], "", "class 'a' has 1"),
}


@pytest.mark.parametrize("case", sorted(BAD_FOLDERS))
def test_a_bad_image_folder_is_one_line_naming_the_file_or_class_and_nothing_is_written(tmp_path, folder_source, case,
                                                                                        capsys):
    from introspect.cli import main

    folder_source()
    root = _folder(tmp_path / "raw" / "myimages", n=10)
    breaks, named, words = BAD_FOLDERS[case]
    breaks(root)
    out = tmp_path / "processed" / "myimages.pt"
    assert main(["prepare", "--dataset", "myimages", "--raw", str(tmp_path / "raw"), "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("introspect: error: "), err
    assert words in err and str(root / named) in err, err
    assert not out.exists() and not out.parent.exists()


def test_a_runs_code_digest_covers_the_data_core_and_its_own_datasets_source(folder_source):
    from pathlib import Path

    from introspect import provenance
    from introspect.provenance import code_digest, code_files

    package = Path(provenance.__file__).resolve().parent
    files = {p.relative_to(package).as_posix() for p in code_files("ce", "resnet8", "cifar100")}
    assert {"data/__init__.py", "data/base.py", "data/prepared.py", "data/device.py", "data/download.py",
            "data/sources/cifar100.py", "data/sources/cifar10.py", "data/layouts.py",
            "data/folder.py"} <= files  # CIFAR-100 reads as CIFAR10 does: its layouts and their image reader
    assert not files & {"data/sources/svhn.py", "data/sources/digits.py"}
    folder_source()
    assert "data/folder.py" in {p.relative_to(package).as_posix() for p in code_files("ce", "resnet8", "myimages")}
    assert code_digest("ce", "resnet8", "cifar100") != code_digest("ce", "resnet8", "svhn")
