"""CIFAR10 (and CIFAR-100) from the files users hold, offline: torchvision's files, a folder of PNGs per
class, a parquet export; one set of images gives one prepared file whatever the layout; a damaged
layout is one line and writes nothing. A real subset of a dataset by one config value
(``dataset.subset``), and the CIFAR10 cut (``cifar_cut``) that a laptop runs."""
import io
import pickle
import subprocess

import numpy as np
import pytest
import torch

from helpers import BIN, ROOT, env
from introspect import pipeline
from introspect.config import resolve
from introspect.data import DATASETS, DataError, for_run, load_prepared, prepare, subset_counts
from introspect.registry import ConfigError

CLASSES = DATASETS.get("cifar10").classes
TRAIN, TEST = 4, 2  # images per class


def images(seed: int = 0) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Random 32x32 RGB images, TRAIN / TEST per class, as uint8 HWC arrays and labels, in a shuffled order."""
    rng = np.random.default_rng(seed)
    out = {}
    for split, n in (("train", TRAIN), ("test", TEST)):
        y = np.repeat(np.arange(len(CLASSES)), n)
        rng.shuffle(y)
        out[split] = (rng.integers(0, 256, (len(y), 32, 32, 3), dtype=np.uint8), y)
    return out


def png(pixels: np.ndarray) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, format="PNG")
    return buf.getvalue()


def class_folders(root, data, order=1):
    """train/<class>/*.png and test/<class>/*.png, named in another order than the arrays' (``order``)."""
    for split, (x, y) in data.items():
        for i in range(len(y))[::order]:
            folder = root / split / CLASSES[y[i]]
            folder.mkdir(parents=True, exist_ok=True)
            (folder / f"{(i * 7919) % 1000:04d}.png").write_bytes(png(x[i]))
    return root


def parquet_export(root, data, label_column="label", order=-1):
    """Hugging Face's layout: plain_text/<split>-00000-of-00001.parquet, an ``img`` struct and a label."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    (root / "plain_text").mkdir(parents=True, exist_ok=True)
    for split, (x, y) in data.items():
        rows = [{"img": {"bytes": png(x[i]), "path": f"{i}.png"}, label_column: int(y[i])} for i in range(len(y))[::order]]
        pq.write_table(pa.Table.from_pylist(rows), root / "plain_text" / f"{split}-00000-of-00001.parquet")
    return root


def torchvision_files(root, data, monkeypatch):
    """torchvision's cifar-10-batches-py (its md5 check patched: these are not the real files)."""
    import torchvision

    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    x, y = data["train"]
    parts = np.array_split(np.arange(len(y)), 5)
    for k, idx in enumerate(parts, 1):
        batch = {"data": x[idx].transpose(0, 3, 1, 2).reshape(len(idx), -1), "labels": y[idx].tolist()}
        (folder / f"data_batch_{k}").write_bytes(pickle.dumps(batch))
    x, y = data["test"]
    (folder / "test_batch").write_bytes(pickle.dumps({"data": x.transpose(0, 3, 1, 2).reshape(len(y), -1), "labels": y.tolist()}))
    (folder / "batches.meta").write_bytes(pickle.dumps({"label_names": list(CLASSES)}))
    monkeypatch.setattr(torchvision.datasets.CIFAR10, "_check_integrity", lambda self: True)
    monkeypatch.setattr(torchvision.datasets.cifar, "check_integrity", lambda *a, **k: True)
    return root


def prepared(tmp_path, layout: str, raw, name="cifar10"):
    out = tmp_path / f"{layout}.pt"
    summary = prepare(name, out, raw=raw, val_fraction=0.25)
    return summary, load_prepared(out)


def test_three_layouts_of_one_set_of_images_prepare_alike(tmp_path, monkeypatch):
    data = images()
    made = {
        "folders": prepared(tmp_path, "folders", class_folders(tmp_path / "a" / "cifar10", data).parent),
        "parquet": prepared(tmp_path, "parquet", parquet_export(tmp_path / "b" / "cifar10", data).parent),
        "torchvision": prepared(tmp_path, "torchvision", torchvision_files(tmp_path / "c" / "cifar10", data, monkeypatch).parent),
    }
    digests = {layout: summary["sha256"] for layout, (summary, _) in made.items()}
    assert len(set(digests.values())) == 1, digests
    summary, payload = made["folders"]
    assert (summary["train"], summary["val"], summary["test"]) == (30, 10, 20)
    t = payload["tensors"]
    # the images are the arrays' own: every test image is found among the arrays, with its label
    want = {(int(y), x.transpose(2, 0, 1).tobytes()) for x, y in zip(*data["test"])}
    assert {(int(y), x.numpy().tobytes()) for x, y in zip(t["x_test"], t["y_test"])} == want
    assert torch.equal(t["y_test"], torch.sort(t["y_test"]).values)  # canonical order: by label first


def test_cifar100_parquet_reads_its_fine_label(tmp_path):
    rng = np.random.default_rng(1)
    classes = DATASETS.get("cifar100").classes
    y = np.repeat(np.arange(len(classes)), 2)
    data = {s: (rng.integers(0, 256, (len(y), 32, 32, 3), dtype=np.uint8), y) for s in ("train", "test")}
    raw = parquet_export(tmp_path / "cifar100", data, label_column="fine_label")
    summary = prepare("cifar100", tmp_path / "c100.pt", raw=raw.parent, val_fraction=0.5)
    assert (summary["train"], summary["val"], summary["test"]) == (100, 100, 200)


def one_line_and_nothing_written(tmp_path, raw, *names) -> str:
    with pytest.raises(DataError) as err:
        prepare("cifar10", tmp_path / "out.pt", raw=raw, val_fraction=0.25)
    msg = str(err.value)
    assert "\n" not in msg and all(n in msg for n in names), msg
    assert not (tmp_path / "out.pt").exists() and not list(tmp_path.glob(".out.pt*"))
    return msg


def test_a_damaged_class_folder_layout_is_one_line_naming_the_file(tmp_path):
    data = images()
    root = class_folders(tmp_path / "raw" / "cifar10", data)
    first = sorted((root / "test" / "cat").iterdir())[0]
    first.write_bytes(first.read_bytes()[:40])  # truncated
    one_line_and_nothing_written(tmp_path, root.parent, str(first), "unreadable image")
    first.write_bytes(png(np.zeros((31, 32, 3), np.uint8)))  # another size
    one_line_and_nothing_written(tmp_path, root.parent, str(first), "32x31 pixels", "32x32")
    first.write_bytes(png(np.zeros((32, 32), np.uint8)))  # grey
    one_line_and_nothing_written(tmp_path, root.parent, str(first), "mode L")
    first.unlink()
    (root / "test" / "unicorn").mkdir()
    one_line_and_nothing_written(tmp_path, root.parent, str(root / "test" / "unicorn"), "not one of the declared classes")
    (root / "test" / "unicorn").rmdir()
    for f in (root / "test" / "dog").iterdir():
        f.unlink()
    one_line_and_nothing_written(tmp_path, root.parent, str(root / "test" / "dog"), "no images")
    for f in (root / "test").rglob("*.png"):
        f.unlink()
    for d in list((root / "test").iterdir()):
        d.rmdir()
    (root / "test").rmdir()
    one_line_and_nothing_written(tmp_path, root.parent, str(root / "test"), "missing")


def test_a_damaged_parquet_export_is_one_line_naming_the_file(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    data = images()
    root = parquet_export(tmp_path / "raw" / "cifar10", data)
    test = root / "plain_text" / "test-00000-of-00001.parquet"
    good = test.read_bytes()
    rows = pq.read_table(test).to_pylist()
    pq.write_table(pa.Table.from_pylist([*rows[:3], {**rows[3], "label": 10}, *rows[4:]]), test)
    one_line_and_nothing_written(tmp_path, root.parent, f"{test}: row 3", "label 10 outside 0..9")
    pq.write_table(pa.Table.from_pylist([*rows[:5], {**rows[5], "img": {"bytes": png(np.zeros((28, 28, 3), np.uint8)), "path": "x"}}]), test)
    one_line_and_nothing_written(tmp_path, root.parent, f"{test}: row 5", "28x28 pixels")
    pq.write_table(pa.Table.from_pylist([r for r in rows if r["label"] != 3]), test)
    one_line_and_nothing_written(tmp_path, root.parent, "(test)", "no images of class cat")
    test.write_bytes(good[: len(good) // 2])
    one_line_and_nothing_written(tmp_path, root.parent, str(test), "unreadable parquet")
    test.unlink()
    one_line_and_nothing_written(tmp_path, root.parent, "no test-*.parquet")


def test_subset_is_seeded_stratified_and_keeps_the_whole_test_split(tmp_path):
    prepare("digits", tmp_path / "d.pt")
    payload = load_prepared(tmp_path / "d.pt")
    t = payload["tensors"]
    n_train, n_val = len(t["y_train"]), len(t["y_val"])
    cfg = resolve({"dataset": {"name": "digits", "subset": 300}, "model": "resnet8"})["dataset"]
    a, b = for_run(payload, cfg), for_run(payload, {**cfg, "scaling": "unit"})
    assert len(a["tensors"]["y_train"]) == 300 and len(a["tensors"]["y_val"]) == subset_counts(n_train, n_val, 300)[1]
    assert subset_counts(n_train, n_val, 300)[1] == round(n_val * 300 / n_train)
    assert torch.equal(a["tensors"]["x_train"], b["tensors"]["x_train"])  # the same images for every run
    assert torch.equal(a["tensors"]["x_test"], t["x_test"])  # the test split whole
    counts = torch.bincount(a["tensors"]["y_train"], minlength=10).float()
    share = torch.bincount(t["y_train"], minlength=10).float() / n_train
    assert (counts - 300 * share).abs().max() <= 1  # stratified: each class in its share
    assert torch.equal(a["mean"], payload["mean"]) and torch.equal(b["mean"], torch.zeros(1)) and torch.equal(b["std"], torch.ones(1))
    full = for_run(payload, resolve({"dataset": {"name": "digits"}, "model": "resnet8"})["dataset"])
    assert torch.equal(full["tensors"]["x_train"], t["x_train"])
    for bad, key in (({"subset": 0}, "dataset.subset"), ({"scaling": "minmax"}, "dataset.scaling")):
        with pytest.raises(ConfigError, match=key):
            resolve({"dataset": {"name": "digits", **bad}, "model": "resnet8"})


def test_cifar_cut_as_shipped():
    plan = pipeline.load(ROOT / "params.yaml", "cifar_cut")
    assert sorted(plan.runs) == [f"cifar10/resnet8/{v}/seed{s}" for v in ("ce", "le_gradcam", "le_permut") for s in (0, 1, 2)]
    assert [t.name for t in plan.tables] == ["table6_cifar10"] and plan.train_jobs == "seed"
    for run in plan.runs.values():
        r = run.resolved
        assert (r["epochs"], r["batch_size"], r["optim"]["lr"], r["optim"]["milestones"]) == (160, 128, 0.1, [80, 120])
        assert r["dataset"]["subset"] == 1000 and r["dataset"]["scaling"] == "standardize"
    assert {e.dataset for e in plan.explanations.values()} == {"cifar10"}
    # every other scale keeps its tables (select_tables defaults to all)
    assert len(pipeline.load(ROOT / "params.yaml", "quick").tables) > 10


def test_cifar_cut_plan_fits_two_hours_and_names_the_missing_data(tmp_path):
    """`introspect plan --scale cifar_cut` as a user runs it, in a folder without CIFAR10: the last line
    says how to get it; the estimate (the shipped bench, not calibrated: the same on every machine) is
    at most 2 hours on 2 cores."""
    (tmp_path / "params.yaml").write_text((ROOT / "params.yaml").read_text())
    out = subprocess.run([str(BIN / "introspect"), "plan", "--scale", "cifar_cut", "--no-probe"], cwd=tmp_path,
                         env=env(), capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[-1].startswith("# data missing: cifar10: no CIFAR10 in data/raw/cifar10;") and "train-*.parquet" in lines[-1]
    assert sum(line.startswith("# data missing") for line in lines) == 1
    head = lines[0]
    assert head.startswith("# scale cifar_cut: about ")
    amount = head.split("about ")[1].split(" on 2 cores")[0]
    minutes = float(amount.split()[0]) * (60 if "hour" in amount else 1)
    assert minutes <= 120, head


def test_a_scale_is_one_entry(monkeypatch):
    """A new scale is a line in introspect.scales.SCALES: the schema takes its name from there, a
    per-scale value may name it, and what it does not give falls back."""
    from helpers import tiny_params
    from introspect import scales

    monkeypatch.setitem(scales.SCALES, "tiny_cut", "quick")
    monkeypatch.setitem(scales.FALLBACK, "tiny_cut", "quick")
    params = tiny_params({"t": {"dataset": "cifar10", "models": ["resnet8"], "rows": {"ce": {"method": "ce"}}}})
    params["seeds"] = {"quick": [0], "tiny_cut": [0, 7], "paper": [0]}
    plan = pipeline.plan(params, "tiny_cut")
    assert plan.seeds == [0, 7] and sorted(plan.runs) == ["digits/resnet8/ce/seed0", "digits/resnet8/ce/seed7"]
    params["seeds"]["nosuch"] = [1]
    with pytest.raises(ConfigError, match=r"^seeds\.nosuch: not a scale; choices: quick, laptop, .*tiny_cut"):
        pipeline.plan(params, "quick")


def test_a_subset_is_reduced_data_with_its_size_in_the_evidence(tmp_path):
    from introspect.report import evidence
    from introspect.report.judge import REDUCED, Line

    path = tmp_path / "cifar10.pt"
    torch.save({"tensors": {"y_train": torch.zeros(45000), "y_val": torch.zeros(5000), "y_test": torch.zeros(10000)}}, path)
    text = evidence.data_text("cifar10", "cifar10", str(path), 1000)
    assert text == ("cifar10: a stratified part of CIFAR10 (dataset.subset 1,000): 1,000 + 111 val of CIFAR10's 50,000 "
                    "training images (2 % of train + val), test 10,000 (paper 10,000)")
    plan = pipeline.load(ROOT / "params.yaml", "cifar_cut")
    runs = [r for r in plan.runs.values() if r.variant in ("ce", "le_gradcam")]
    for r in runs:
        r.resolved["dataset"]["path"] = str(path)
    line = Line(claim="C4", paper_dataset="cifar10", dataset="cifar10", model="resnet8")
    evidence.assess(line, runs, 3)
    assert line.status == REDUCED and "dataset.subset 1,000" in line.evidence


@pytest.mark.slow
def test_the_cifar10_commands_as_printed(tmp_path):
    """docs/scales.md's CIFAR10 commands in their order, in a folder holding params.yaml as shipped and
    R/cifar10 as a class-folder layout (synthetic images: CI has no CIFAR10): prepare reads it, the plan
    finds it, the DAG runs the cut end to end (160 epochs of 90 images: minutes)."""
    import shutil

    from test_scales import page_commands

    work = tmp_path / "work"
    work.mkdir()
    for name in ("params.yaml", "Snakefile"):
        shutil.copy(ROOT / name, work / name)
    shutil.copytree(ROOT / "workflow", work / "workflow")
    rng = np.random.default_rng(2)
    y = {"train": np.repeat(np.arange(10), 10), "test": np.repeat(np.arange(10), 3)}
    class_folders(work / "R" / "cifar10", {s: (rng.integers(0, 256, (len(v), 32, 32, 3), dtype=np.uint8), v) for s, v in y.items()})
    commands = page_commands("docs/scales.md", "## CIFAR10 from the files you have")
    assert commands[0] == "introspect prepare --dataset cifar10 --raw R" and len(commands) == 3
    for command in commands:
        out = subprocess.run(command, shell=True, cwd=work, env=env(own_cache=True), capture_output=True, text=True,
                             timeout=1800)
        assert out.returncode == 0, (command, out.stderr[-3000:])
        if command.startswith("introspect plan"):
            assert "data missing" not in out.stdout  # prepared already: nothing to say
    index = (work / "reports" / "index.md").read_text()
    assert "reduced data" in index and "dataset.subset" in index
