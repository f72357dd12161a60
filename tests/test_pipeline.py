"""The experiment config: scale selection, run expansion, and one-line rejection of bad configs."""
import copy

import pytest
import yaml

from helpers import ROOT
from introspect.scales import SCALES
from introspect import pipeline
from introspect.methods import METHODS
from introspect.registry import ConfigError

PARAMS = yaml.safe_load((ROOT / "params.yaml").read_text())


@pytest.mark.parametrize("scale", ["quick", "laptop", "paper"])
def test_every_table_row_and_model_has_its_runs(scale):
    plan = pipeline.plan(PARAMS, scale)
    assert plan.scale == scale
    for table in plan.tables:
        for model in table.models:
            for row in table.rows:
                for variant in row.variants:
                    for seed in plan.seeds:
                        assert f"{table.dataset}/{model}/{variant}/seed{seed}" in plan.runs


def test_quick_scale_is_the_offline_set_with_every_method_and_family():
    plan = pipeline.plan(PARAMS, "quick")
    assert {r.dataset for r in plan.runs.values()} == {"digits", "mnist5k"}  # offline stand-in for CIFAR10, real MNIST digits
    assert len(plan.seeds) >= 3
    methods = {r.config["method"]["name"] for r in plan.runs.values()}
    assert methods == set(METHODS.names())
    explainers = {r.config["method"].get("explainer") for r in plan.runs.values()} - {None}
    assert explainers == {"grad", "grad_input", "guided_bp", "gradcam"}
    assert any(r.config["model"].get("dropout") for r in plan.runs.values())
    assert {r.model[:3] for r in plan.runs.values()} == {"res", "cnn", "mlp"}


def test_paper_scale_has_the_papers_sweeps_and_five_seeds():
    plan = pipeline.plan(PARAMS, "paper")
    assert plan.seeds == [0, 1, 2, 3, 4]
    t2 = next(t for t in plan.tables if t.name == "table2")
    sweeps = {r.label: list(r.variants.values()) for r in t2.rows if r.sweep_key}
    assert sweeps == {"dropout": [0.1, 0.25, 0.5, 0.75], "ls": [0.6, 0.7, 0.8, 0.9],
                      "cp": [0.1, 0.3, 0.5, 1.0, 2.0, 4.0, 8.0]}
    assert {r.dataset for r in plan.runs.values()} == {"cifar10", "mnist"}
    run = plan.runs["cifar10/resnet8/le_gradcam/seed3"]
    assert run.config["method"] == {"name": "le", "explainer": "gradcam", "warmup": 10}


def test_same_run_from_two_tables_is_trained_once():
    plan = pipeline.plan(PARAMS, "quick")
    ids = [r.id for r in plan.runs.values()]
    assert len(ids) == len(set(ids))
    assert "digits/resnet8/le_grad/seed0" in plan.runs  # in table 6 and figure 3


def mutate(path: str, value):
    params = copy.deepcopy(PARAMS)
    *parents, leaf = path.split(".")
    node = params
    for p in parents:
        node = node[p]
    if value is DELETE:
        del node[leaf]
    else:
        node[leaf] = value
    return params


DELETE = object()

BAD = [
    ("scale", "huge", f"scale: expected one of {', '.join(SCALES)}, got 'huge'"),
    ("significance", 2, "significance: expected a number in (0, 1), got 2"),
    ("seeds", [], "seeds: expected a non-empty list, got []"),
    ("seeds", "zero", "seeds: expected a list or {quick: ..., paper: ...}, got 'zero'"),
    ("typo_key", 1, "typo_key: unknown key; choices: claims, datasets, explanations,"),
    ("tables.table2.rows.ce.method", "sgd", "tables.table2.rows.ce: method.name: unknown method 'sgd'"),
    ("tables.table2.models", ["resnet9"], "tables.table2.rows.ce: model.name: unknown model 'resnet9'; choices:"),
    ("tables.table2.rows.ce.colour", "red", "tables.table2.rows.ce.colour: unknown key; choices: assistant, method,"),
    ("tables.table2.rows.le_gradcam.set", {"method.explainer": "lime"},
     "tables.table2.rows.le_gradcam.set.method.explainer: unknown explainer 'lime'"),
    ("tables.table3.rows.le_grad.set", {"method.explainer": "gradcam"},
     "tables.table3.rows.le_grad.set.method.explainer: gradcam needs a convolutional model"),
    ("tables.table2.rows.ls.sweep", {"method.alpha": [0.9, -1.0]},
     "tables.table2.rows.ls.sweep.method.alpha: expected a number in (0, 1], got -1.0"),
    ("tables.table2.rows.cp.sweep", {"method.beta": []}, "tables.table2.rows.cp.sweep.method.beta: expected a non-empty list, got []"),
    ("tables.table2.rows.ce.set", {"optim.lr": -0.1}, "tables.table2.rows.ce.set.optim.lr: expected a number > 0, got -0.1"),
    ("tables.table2.rows.ce.set", {"optim.lr": "fast"}, "tables.table2.rows.ce.set.optim.lr: expected a number, got 'fast'"),
    ("tables.table2.rows.ce.set", {"model.in_channels": 3},
     "tables.table2.rows.ce.set.model.in_channels: resnet8 for 3 channels cannot read digits"),
    ("tables.table2.dataset", "imagenet", "tables.table2.dataset: 'imagenet' is not in datasets"),
    ("datasets.cifar10", {"quick": "stl10", "paper": "cifar10"}, "datasets.cifar10.quick: unknown dataset 'stl10'"),
    ("recipes.digits", {"epochs": 0}, "recipes.digits.epochs: expected an integer >= 1, got 0"),
    ("recipes.digits", {"epochs": "ten"}, "recipes.digits.epochs: expected an integer, got 'ten'"),
    ("method_options.le", {"warmup": -2}, "method_options.le.warmup: expected an integer >= 0, got -2"),
    ("method_options.le", {"colour": 1}, "method_options.le.colour: not an option of method 'le'"),
    ("explanations.cifar10.row", "le_nothing", "explanations.cifar10: run digits/resnet8/le_nothing/seed0 is not in any table"),
    ("tables.table2.metric", "f1", "tables.table2.metric: expected one of test_acc, test_err, got 'f1'"),
    ("tables", DELETE, "tables: required"),
    ("tables.table2.rows.le_gradcam.set", {"method.alpha": {"paper": 0.9}},
     "tables.table2.rows.le_gradcam.set.method.alpha: no value for scale 'quick'; given: paper"),
    ("tables.table5.rows.takd.assistant", {"resnet14": "resnet20"},
     "tables.table5.rows.takd.assistant: no assistant for model resnet8; given for: resnet14"),
    ("tables.table5.rows.takd.assistant", {"resnet8": "resnet99"},
     "tables.table5.rows.takd.assistant: model.name: unknown model 'resnet99'"),
    ("tables.table5.rows.hint.stage", {"method": "hint_stage"}, "tables.table5.rows.hint.stage.epochs: required"),
    ("tables.table5.rows.hint.stage", {"method": "hint_stage", "epochs": 0}, "tables.table5.rows.hint.stage.epochs: expected an integer >= 1, got 0"),
    ("tables.table5.rows.hint.stage", {"method": "fitnets", "epochs": 2},
     "tables.table5.rows.hint.stage: method.name: unknown method 'fitnets'"),
    ("tables.table3.rows.ce.method", "at_kd", "tables.table3.rows.ce: method at_kd needs a teacher"),
    ("tables.table5.models", ["mlp1024"], "tables.table5.rows.hint.stage: method: the student has no convolutional stages"),
    ("tables.table_ked.rows.ked.teacher", {"model": "resnet20", "method": "ked_mentor"},
     "tables.table_ked.rows.ked.teacher.method: unknown method 'ked_mentor'"),
    ("tables.table_iekd.rows.iekd.teacher", {"model": "resnet20", "epochs": 2},
     "tables.table_iekd.rows.iekd.teacher.epochs: given without method"),
    ("tables.table_srd.columns", ["flops"], "tables.table_srd.columns[0]: expected one of params, samples_used, got 'flops'"),
    ("tables.table_iekd.models", ["mlp1024"], "tables.table_iekd.rows.iekd: method: the student has no"),
]


@pytest.mark.parametrize("path,value,message", BAD, ids=[f"{b[0]}={b[1]}" for b in BAD])
def test_bad_config_is_one_line_naming_the_key(path, value, message):
    with pytest.raises(ConfigError) as err:
        pipeline.plan(mutate(path, value), "quick")
    text = str(err.value)
    assert "\n" not in text and message in text, text


def test_a_row_teacher_with_a_method_is_a_chain_of_its_own():
    plan = pipeline.plan(PARAMS, "paper")
    assert plan.runs["cifar10/resnet8/iekd/seed2"].needs == ("cifar10/resnet26/teacher_iekd_ae/seed2",)
    stage = plan.runs["cifar10/resnet26/teacher_iekd_ae/seed2"]
    assert stage.needs == ("cifar10/resnet26/teacher/seed2",) and stage.config["epochs"] == 30
    assert plan.runs["cifar10/resnet26/teacher_srl_teacher/seed2"].needs == ()
    assert plan.runs["cifar10/resnet26/teacher_ked_teacher/seed2"].needs == ()
    assert plan.runs["cifar10/resnet14/srl_hybrid/seed0"].needs == ("cifar10/resnet26/teacher_srl_teacher/seed0",)
    assert plan.runs["cifar10/resnet14/kd/seed0"].needs == ("cifar10/resnet26/teacher/seed0",)  # the table's own
    table = next(t for t in plan.tables if t.name == "table_srd")
    assert table.columns == ["samples_used"] and table.teacher == pipeline.Teacher("resnet26", "teacher", "ce")
    assert {r.label: r.teacher for r in table.rows}["srl_regulated"] == pipeline.Teacher("resnet26", "teacher_srl_teacher", "srl_teacher")


def test_students_learn_from_one_teacher_per_seed_and_depend_on_it():
    plan = pipeline.plan(PARAMS, "paper")
    kd = plan.runs["cifar10/cnn8/kd/seed3"]
    assert kd.needs == ("cifar10/cnn10/teacher/seed3",)
    assert kd.config["method"]["teacher"] == "results/cifar10/cnn10/teacher/seed3"
    assert plan.runs["cifar10/cnn10/teacher/seed3"].config["method"] == {"name": "ce"}
    ban = plan.runs["cifar10/resnet14/ban-5.0/seed1"]
    assert ban.needs == ("cifar10/resnet14/ce/seed1",)  # BAN: the same network trained with CE
    assert plan.runs["cifar10/cnn6/cwtm_random/seed0"].needs == ()
    for run in plan.runs.values():
        assert all(need in plan.runs for need in run.needs)


def test_a_teacher_method_without_a_teacher_is_refused():
    params = copy.deepcopy(PARAMS)
    del params["tables"]["table1"]["teacher"]
    with pytest.raises(ConfigError, match=r"tables\.table1\.rows\.kd: method kd needs a teacher"):
        pipeline.plan(params, "quick")


def test_chains_teacher_assistant_student_and_stage_then_student():
    """Table 5: every student method depends on the teacher, through an assistant (TAKD) or a
    stage run that starts it (FitNets, FSP)."""
    plan = pipeline.plan(PARAMS, "paper")
    teacher = "cifar10/resnet26/teacher/seed2"
    for model in ("resnet14", "resnet8"):
        assert plan.runs[f"cifar10/{model}/kd/seed2"].needs == (teacher,)
        assert plan.runs[f"cifar10/{model}/at_kd/seed2"].needs == (teacher,)
        for row, stage in (("hint", "hint_stage"), ("fsp_kd", "fsp_stage")):
            stage_id = f"cifar10/{model}/{row}_stage/seed2"
            assert plan.runs[stage_id].needs == (teacher,)
            assert plan.runs[stage_id].config["method"]["name"] == stage
            assert plan.runs[stage_id].config["epochs"] == 30
            student = plan.runs[f"cifar10/{model}/{row}/seed2"]
            assert student.needs == (teacher, stage_id) and student.config["init"] == f"results/{stage_id}"
            assert student.config["method"]["name"] == "kd"
    for student, helper in (("resnet14", "resnet20"), ("resnet8", "resnet14")):
        assistant = f"cifar10/{helper}/takd_assistant/seed2"
        assert plan.runs[assistant].needs == (teacher,)
        assert plan.runs[f"cifar10/{student}/takd/seed2"].needs == (assistant,)
    dml = plan.runs["cifar10/resnet8/dml/seed0"]
    assert dml.config["method"]["name"] == "dml" and dml.needs == ()
