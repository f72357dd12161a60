"""Config errors name the exact place: the key path (list elements as [i]) of the value to fix,
in params.yaml or a --config file, and what was expected, in one line."""
import copy

import pytest
import yaml

from helpers import ROOT
from introspect import cli, pipeline
from introspect.data import DataError, load_prepared
from introspect.registry import ConfigError

PARAMS = yaml.safe_load((ROOT / "params.yaml").read_text())


def plan_error(change) -> str:
    """The one-line error of ``pipeline.plan`` on the quick config after ``change(params)``."""
    params = copy.deepcopy(PARAMS)
    change(params)
    with pytest.raises(ConfigError) as err:
        pipeline.plan(params, "quick")
    text = str(err.value)
    assert "\n" not in text, text
    return text


def test_a_wrong_list_element_is_named_by_its_index():
    assert plan_error(lambda p: p.update(seeds=[0, "one"])) == "seeds[1]: expected an integer, got 'one'"


def test_a_wrong_element_of_a_per_scale_list_is_named_by_scale_and_index():
    text = plan_error(lambda p: p.update(seeds={"quick": [0, 1], "paper": [0, -1]}))
    assert text == "seeds.paper[1]: expected an integer >= 0, got -1"


def test_a_value_of_neither_accepted_form_says_both_forms():
    text = plan_error(lambda p: p["tables"]["table1"].update(models="cnn6"))
    assert text == "tables.table1.models: expected a list or {quick: ..., paper: ...}, got 'cnn6'"


def test_a_teacher_with_both_model_and_row_says_which_keys_clash():
    text = plan_error(lambda p: p["tables"]["table1"].update(teacher={"model": "cnn8", "row": "ce"}))
    assert text == "tables.table1.teacher: give one of model, row, not model and row together"


def test_a_bad_row_name_names_the_key_itself():
    text = plan_error(lambda p: p["tables"]["table1"]["rows"].update(KD={"method": "kd"}))
    assert text == "tables.table1.rows.KD: this key must be a name of lowercase letters, digits and _"


def test_a_bad_recipe_value_is_named_in_recipes():
    text = plan_error(lambda p: p["recipes"].update(digits={"optim": {"lr": -1}}))
    assert text == "recipes.digits.optim.lr: expected a number > 0, got -1.0"


def test_a_bad_recipe_list_element_is_named_in_recipes_with_its_index():
    text = plan_error(lambda p: p["recipes"].update(digits={"optim": {"milestones": [1, "two"]}}))
    assert text == "recipes.digits.optim.milestones[1]: expected an integer, got 'two'"


def test_a_recipe_section_that_is_not_a_mapping_is_named_in_recipes():
    text = plan_error(lambda p: p["recipes"].update(digits={"optim": 5}))
    assert text.startswith("recipes.digits.optim: expected a mapping of keys (lr, "), text


def test_a_bad_method_option_is_named_in_method_options():
    text = plan_error(lambda p: p["method_options"].update(srl_teacher={"alpha": -1}))
    assert text == "method_options.srl_teacher.alpha: expected a number >= 0, got -1.0"


def test_a_bad_value_set_by_a_row_is_named_in_that_rows_set():
    text = plan_error(lambda p: p["tables"]["table2"]["rows"]["ce"].update(set={"optim.weight_decay": -1}))
    assert text == "tables.table2.rows.ce.set.optim.weight_decay: expected a number >= 0, got -1.0"


def test_a_bad_swept_value_is_named_in_that_rows_sweep():
    text = plan_error(lambda p: p["tables"]["table3"]["rows"]["dropout"].update(sweep={"model.dropout": [0.1, 1.5]}))
    assert text == "tables.table3.rows.dropout.sweep.model.dropout: expected a number in [0, 1), got 1.5"


def test_a_recipe_overridden_by_a_row_set_is_not_blamed():
    def change(p):
        p["recipes"]["digits"]["optim"]["lr"] = 0.05
        p["tables"]["table2"]["rows"]["ce"]["set"] = {"optim": {"lr": -2}}

    assert plan_error(change) == "tables.table2.rows.ce.set.optim.lr: expected a number > 0, got -2.0"


def test_the_missing_dataset_hint_names_the_dataset(tmp_path):
    with pytest.raises(DataError) as err:
        load_prepared(tmp_path / "digits.pt")
    assert f"run `introspect prepare --dataset digits --out {tmp_path / 'digits.pt'}`" in str(err.value)
    with pytest.raises(DataError) as err:
        load_prepared(tmp_path / "mine.pt", "synthetic")
    assert "--dataset synthetic --out" in str(err.value) and "NAME" not in str(err.value)


BROKEN_PARAMS = """scale: quick
seeds: {quick: [0, 1, paper: [0]}
"""


def test_a_yaml_syntax_error_in_params_gives_file_line_and_column(tmp_path, capsys):
    path = tmp_path / "params.yaml"
    path.write_text(BROKEN_PARAMS)
    assert cli.main(["plan", "--params", str(path)]) == 2
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"introspect: error: {path}:2:"), lines
    assert "YAML syntax error: expected ',' or ']'" in lines[0], lines


def test_a_yaml_syntax_error_in_a_config_file_gives_file_line_and_column(tmp_path, capsys):
    path = tmp_path / "run.yaml"
    path.write_text("dataset: digits\nmodel: mlp1024\n  method: ce\n")
    assert cli.main(["train", "--config", str(path), "--print-config"]) == 2
    lines = capsys.readouterr().err.splitlines()
    assert lines == [f"introspect: error: {path}:3:9: YAML syntax error: mapping values are not allowed here"]


def test_a_missing_params_file_is_one_line(tmp_path, capsys):
    assert cli.main(["plan", "--params", str(tmp_path / "nope.yaml")]) == 2
    assert capsys.readouterr().err.splitlines() == [f"introspect: error: {tmp_path / 'nope.yaml'}: no such file"]


def test_a_recipe_for_no_dataset_is_named_not_ignored():
    text = plan_error(lambda p: p["recipes"].update(digitz={"epochs": 2}))
    assert text.startswith("recipes.digitz: unknown dataset 'digitz'; choices: cifar10, cifar100, digits"), text


def test_options_of_no_method_are_named_not_ignored():
    text = plan_error(lambda p: p["method_options"].update(lee={"warmup": 1}))
    assert text.startswith("method_options.lee: unknown method 'lee'; choices: at_kd, "), text


def test_a_recipes_model_and_dataset_keys_reach_every_run():
    """A recipe may set model or dataset keys (here model.dropout): the plan adds the names, not replaces them."""
    from introspect import pipeline

    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params = copy.deepcopy(params)
    params["recipes"]["digits"]["model"] = {"dropout": 0.3}
    plan = pipeline.plan(params)
    digits = [r for r in plan.runs.values() if r.dataset == "digits" and not r.variant.startswith("dropout")]
    assert digits and all(r.config["model"]["dropout"] == 0.3 and r.config["model"]["name"] == r.model for r in digits)


def test_an_unknown_dataset_in_datasets_is_named_there_not_at_a_teacher():
    """It used to be named at the first run built from it (tables.table1.teacher: dataset.name: ...)."""
    text = plan_error(lambda p: p["datasets"].update(cifar10={"quick": "digitz", "laptop": None, "paper": "cifar10"}))
    assert text.startswith("datasets.cifar10.quick: unknown dataset 'digitz'; choices: cifar10, cifar100, digits"), text
    text = plan_error(lambda p: p["datasets"].update(mnist="mnist5kk"))
    assert text.startswith("datasets.mnist: unknown dataset 'mnist5kk'"), text
