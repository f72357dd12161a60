"""Issue 13: real MNIST offline (mnist5k), quick on real digits with 3 seeds, the laptop scale."""
import copy
import socket

import pytest
import torch
import yaml

from helpers import ROOT
from introspect import pipeline
from introspect.cli import main
from introspect.config import RECIPES, recipe, resolve
from introspect.data import load_prepared
from introspect.plan import default_bench, estimate, report, wall_hours
from introspect.registry import ConfigError

PARAMS = yaml.safe_load((ROOT / "params.yaml").read_text())


@pytest.fixture
def no_network(monkeypatch):
    """Any attempt to open a connection fails, as on a machine without internet."""
    def refuse(*args, **kwargs):
        raise OSError("network disabled by the test")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


def test_prepare_mnist5k_offline_gives_5000_real_digits_split_by_class(tmp_path, no_network):
    out = tmp_path / "mnist5k.pt"
    assert main(["prepare", "--dataset", "mnist5k", "--out", str(out), "--raw", str(tmp_path / "raw")]) == 0
    data = load_prepared(out)
    t = data["tensors"]
    assert sum(len(t[f"y_{s}"]) for s in ("train", "val", "test")) == 5000
    assert (len(t["y_train"]) + len(t["y_val"]), len(t["y_test"])) == (4000, 1000)
    assert len(t["y_val"]) == 400  # prepare's 10% of train
    for split, per_class in (("test", 100), ("val", 40), ("train", 360)):  # stratified: 500 a class in all
        assert torch.bincount(t[f"y_{split}"], minlength=10).tolist() == [per_class] * 10, split
    for split in ("train", "val", "test"):
        x = t[f"x_{split}"]
        assert x.dtype == torch.uint8 and tuple(x.shape[1:]) == (1, 28, 28)
    assert int(t["x_train"].max()) == 255 and data["augment"] == "none" and data["classes"] == [str(d) for d in range(10)]
    again = tmp_path / "again.pt"
    assert main(["prepare", "--dataset", "mnist5k", "--out", str(again), "--raw", str(tmp_path / "raw")]) == 0
    assert load_prepared(again)["sha256"] == data["sha256"]  # a fixed split


def test_mnist5k_trains_with_the_papers_mnist_recipe_and_weight_decay():
    assert recipe("mnist5k", "mlp1024") is RECIPES[("mnist", "mlp")]
    cfg = resolve({"dataset": {"name": "mnist5k"}, "model": {"name": "mlp1024"}})
    assert (cfg["epochs"], cfg["batch_size"], cfg["optim"]["lr"]) == (50, 16, 0.01)
    assert cfg["optim"]["weight_decay"] > 0  # LE is "regularized by a common weight-decay term": every MNIST row alike
    assert resolve({"dataset": {"name": "mnist5k"}, "model": {"name": "mlp1024"},
                    "optim": {"weight_decay": 0.0}})["optim"]["weight_decay"] == 0.0


def test_quick_runs_the_mnist_tables_on_mnist5k_with_three_seeds():
    plan = pipeline.plan(PARAMS, "quick")
    assert len(plan.seeds) >= 3
    for table in plan.tables:
        assert table.dataset == {"mnist": "mnist5k", "cifar10": "digits"}[table.paper_dataset], table.name
    assert {"table3", "table6_mnist"} <= {t.name for t in plan.tables if t.dataset == "mnist5k"}
    assert plan.explanations["mnist"].dataset == "mnist5k"


def test_laptop_scale_is_the_mnist_side_at_the_papers_recipe_with_five_seeds():
    plan = pipeline.plan(PARAMS, "laptop")
    assert plan.seeds == [0, 1, 2, 3, 4]
    assert {t.name for t in plan.tables} == {"table3", "table6_mnist", "figure3_mnist"}  # CIFAR10's: not at laptop
    assert {r.dataset for r in plan.runs.values()} == {"mnist5k"} and {r.model for r in plan.runs.values()} == {"mlp1024"}
    for run in plan.runs.values():
        cfg = resolve(run.config)
        assert (cfg["epochs"], cfg["batch_size"], cfg["optim"]["lr"]) == (50, 16, 0.01), run.id
        if cfg["method"]["name"] in ("le", "le_permut"):
            assert cfg["method"]["warmup"] == 10, run.id
    explainers = {r.config["method"].get("explainer") for r in plan.runs.values()} - {None}
    assert explainers == {"grad", "grad_input", "guided_bp"}  # Figure 3's comparison on the MLP
    assert set(plan.explanations) == {"mnist"} and plan.explainers == {"mnist": "grad_input"}  # Figure 1(a)'s
    assert {t.name: all(len(r.variants) >= 2 for r in t.rows if r.sweep_key) for t in plan.tables}["table3"]


def test_laptop_plan_says_how_long_before_it_starts():
    plan = pipeline.plan(PARAMS, "laptop")
    text = report(plan, None, cores=2)  # the shipped CPU bench, workflow/bench/cpu.json
    assert "counted as 0 hours" not in text and "about " in text
    bench, _ = default_bench()
    e = estimate(plan, bench)
    assert not e["unmeasured"] and set(e["hours"]) == set(plan.runs)
    minutes = 60 * wall_hours(plan, e["hours"], 2, sum(e["evaluate"].values()))  # training, then the evaluate job
    assert 10 < minutes <= 90  # the laptop budget: at most 90 minutes on 2 cores
    assert f"about {minutes:.0f} min on 2 cores" in text
    le = e["hours"]["mnist5k/mlp1024/le_grad/seed0"]
    assert le > 1.5 * e["hours"]["mnist5k/mlp1024/ce/seed0"]  # explanations cost (warm-up epochs at CE's)


def test_a_scale_without_a_value_of_its_own_falls_back_to_quick():
    assert pipeline.at_scale({"quick": 1, "paper": 2}, "laptop") == 1
    assert pipeline.at_scale({"quick": 1, "laptop": 3, "paper": 2}, "laptop") == 3
    assert pipeline.at_scale({"quick": 1, "laptop": None, "paper": 2}, "laptop") is None  # given as ~: kept
    assert pipeline.at_scale({"quick": 1, "paper": 2}, "paper") == 2
    with pytest.raises(ConfigError, match="no value for scale 'laptop'; given: paper"):
        pipeline.at_scale({"paper": 2}, "laptop", "x")
    params = copy.deepcopy(PARAMS)
    params["method_options"]["srl_teacher"] = {"alpha": {"quick": 0.6, "paper": 0.01}}
    params["tables"]["table3"]["rows"]["ls"]["sweep"] = {"method.alpha": {"quick": [0.7], "paper": [0.6]}}
    plan = pipeline.plan(params, "laptop")
    assert list(next(t for t in plan.tables if t.name == "table3").rows[2].variants.values()) == [0.7]


def test_a_paper_dataset_not_run_at_a_scale_and_a_table_of_some_scales_are_left_out():
    plan = pipeline.plan(PARAMS, "quick")
    assert "figure3_mnist" not in {t.name for t in plan.tables}  # scales: [laptop]
    assert "cifar10" not in pipeline.plan(PARAMS, "laptop").explanations  # datasets.cifar10.laptop: ~
    params = copy.deepcopy(PARAMS)
    params["tables"]["table3"]["scales"] = ["huge"]
    with pytest.raises(ConfigError, match=r"tables\.table3\.scales\[0\]"):
        pipeline.plan(params, "quick")


def test_the_explanation_figures_use_the_papers_explainer_per_dataset():
    plan = pipeline.plan(PARAMS, "quick")
    assert plan.explainers == {"cifar10": "gradcam", "mnist": "grad_input"}
    assert plan.explainer_of(plan.explanations["mnist"].id) == "grad_input"
    params = copy.deepcopy(PARAMS)
    params["explanations"]["mnist"]["explainer"] = "gradcam"  # the MLP has no conv layer
    with pytest.raises(ConfigError, match=r"explanations\.mnist\.explainer: gradcam needs a convolutional model"):
        pipeline.plan(params, "quick")
    del params["explanations"]["mnist"]["explainer"]
    assert pipeline.plan(params, "quick").explainers["mnist"] is None  # the run's own
