"""Recipes come from each dataset's source; no recipe is never a traceback; the built-in datasets
list their models. (The StopIteration of issue 21: `introspect train --dataset mydata --model resnet8
--method le --print-config` on a dataset without a recipe.)"""
import json
import re

import pytest

from introspect.cli import main
from introspect.config import RECIPES, find_recipe, recipe, resolve
from introspect.data import DATASETS, Source
from introspect.pipeline import plan
from introspect.registry import ConfigError


@pytest.fixture
def no_recipe(monkeypatch):
    """A dataset 'mydata' whose source declares no recipe, registered for this test only."""
    cls = type("MyData", (Source,), {"channels": 3, "size": 16, "classes": ("a", "b")})
    monkeypatch.setitem(DATASETS._entries, "mydata", cls)
    return cls


def test_the_recipes_are_the_sources_own(monkeypatch):
    assert recipe("cifar10", "resnet8") is DATASETS.get("cifar10").recipes["resnet"]
    assert recipe("cifar100", "cnn6") is DATASETS.get("cifar10").recipes["cnn"]  # CIFAR-100: CIFAR10's
    assert recipe("digits", "mlp1024") is DATASETS.get("digits").recipes["*"]
    assert RECIPES[("cifar10", "resnet")]["optim"]["milestones"] == [80, 120]


def test_a_pair_the_paper_does_not_train_uses_the_datasets_first_recipe_and_says_so(capsys):
    cfg = resolve({"dataset": "mnist", "model": "resnet8"})
    assert cfg["epochs"] == 50 and cfg["batch_size"] == 16  # MNIST's MLP recipe
    assert cfg["recipe"].startswith("default: mnist declares no recipe for resnet8 (family resnet), so its 'mlp' recipe")
    assert "recipe" not in resolve({"dataset": "mnist", "model": "mlp1024"})  # the paper's own pair: nothing to say
    assert resolve({**cfg, "epochs": 2})["recipe"] == cfg["recipe"]  # a config.json given back resolves again
    assert main(["train", "--dataset", "mnist", "--model", "resnet8", "--method", "le", "--print-config"]) == 0
    out = capsys.readouterr()
    assert json.loads(out.out)["recipe"] == cfg["recipe"]
    assert out.err == f"introspect: recipe: {cfg['recipe']}\n"  # the log's line


def test_no_recipe_is_one_line_naming_recipes_of_the_dataset(no_recipe, capsys):
    assert find_recipe("mydata", "resnet8") == ({}, None)
    code = main(["train", "--dataset", "mydata", "--model", "resnet8", "--method", "le", "--print-config"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1
    assert err.startswith("introspect: error: recipes.mydata: mydata declares no training recipe for resnet8"), err
    assert "missing epochs, batch_size, optim.lr, optim.milestones, optim.weight_decay" in err
    # given in full, it trains; given in part, the line names what is missing
    full = {"epochs": 2, "batch_size": 8, "optim": {"lr": 0.1, "milestones": [], "weight_decay": 0.0}}
    assert resolve({"dataset": "mydata", "model": "resnet8", **full})["epochs"] == 2
    with pytest.raises(ConfigError, match=r"^recipes\.mydata: .*missing optim\.weight_decay \(give"):
        resolve({"dataset": "mydata", "model": "resnet8", **full, "optim": {"lr": 0.1, "milestones": []}})


def test_no_recipe_in_params_yaml_is_one_line_at_plan_time(no_recipe):
    params = {"scale": "quick", "seeds": [0], "datasets": {"mydata": "mydata"}, "recipes": {"mydata": {"epochs": 1}},
              "tables": {"t": {"dataset": "mydata", "models": ["resnet8"], "rows": {"ce": {"method": "ce"}}}}}
    with pytest.raises(ConfigError) as err:
        plan(params)
    assert re.match(r"^tables\.t\.rows\.ce: recipes\.mydata: mydata declares no training recipe for resnet8 and none is "
                    r"given; missing batch_size, optim\.lr, optim\.milestones, optim\.weight_decay", str(err.value)), err.value


@pytest.mark.parametrize("dataset,channels,classes", [("cifar100", 3, 100), ("svhn", 3, 10), ("fashionmnist", 1, 10)])
def test_introspect_models_lists_every_model_on_the_new_datasets(dataset, channels, classes, capsys):
    from introspect.models import MODELS, count_parameters

    assert main(["models", "--dataset", dataset]) == 0
    listed = dict(line.split()[:2] for line in capsys.readouterr().out.splitlines())
    assert set(listed) == set(MODELS.names())
    src = DATASETS.get(dataset)
    assert (src.channels, len(src.classes)) == (channels, classes)
    n = count_parameters(MODELS.build("resnet8", src.channels, src.size, len(src.classes)))
    assert listed["resnet8"] == f"{n:,d}"


def test_a_method_that_cannot_use_the_model_names_both(capsys):
    code = main(["train", "--dataset", "mnist5k", "--model", "mlp1024", "--method", "le", "--set",
                 "method.explainer=gradcam", "--print-config"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1
    assert "gradcam needs a convolutional model" in err and err.rstrip().endswith("(method le, model mlp1024)"), err
    # a bad option value is the option's own line, nothing added
    assert main(["train", "--dataset", "mnist5k", "--model", "mlp1024", "--method", "ls", "--set", "method.alpha=2",
                 "--print-config"]) == 2
    assert "model mlp1024" not in capsys.readouterr().err


def test_a_model_too_deep_for_the_images_is_one_line(monkeypatch, capsys):
    tiny = type("Tiny", (Source,), {"channels": 1, "size": 8, "classes": ("a", "b"),
                                    "recipes": {"*": {"epochs": 1, "batch_size": 4, "optim": {"lr": 0.1, "milestones": [], "weight_decay": 0.0}}}})
    monkeypatch.setitem(DATASETS._entries, "tiny8", tiny)
    assert main(["train", "--dataset", "tiny8", "--model", "cnn10", "--print-config"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("introspect: error: model.name: cnn10 cannot read tiny8's 1x8x8 images"), err
