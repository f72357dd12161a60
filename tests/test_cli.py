import json
import subprocess
import sys

import pytest

from introspect.cli import main


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "introspect.cli", *args], capture_output=True, text=True)


def test_models_lists_paper_counts():
    out = run_cli("models", "--dataset", "cifar10")
    assert out.returncode == 0
    lines = dict(line.split()[:2] for line in out.stdout.splitlines())
    assert lines["resnet8"] == "78,042" and lines["resnet14"] == "175,258"
    assert lines["resnet20"] == "272,474" and lines["resnet26"] == "369,690"


BAD = [
    (["--method", "nope"], "method.name: unknown method 'nope'; choices:"),
    (["--model", "resnet9"], "model.name: unknown model 'resnet9'; choices:"),
    (["--dataset", "imagenet"], "dataset.name: unknown dataset 'imagenet'; choices:"),
    (["--model", "mlp1024", "--method", "le", "--set", "method.explainer=gradcam"],
     "method.explainer: gradcam needs a convolutional model; choices for this model: grad, grad_input, guided_bp"),
    (["--set", "optim.lr=abc"], "optim.lr: expected a number, got 'abc'"),
    (["--set", "optim.lr=-0.1"], "optim.lr: expected a number > 0, got -0.1"),
    (["--set", "optim.speed=2"], "optim.speed: unknown key; choices:"),
    (["--set", "method.alpha=0.5"], "method.alpha: not an option of method 'ce'; choices: none"),
    (["--method", "le", "--set", "method.warmup=1.5"], "method.warmup: expected an integer, got 1.5"),
    (["--set", "model.in_channels=3"], "model.in_channels: resnet8 for 3 channels cannot read digits, which has 1"),
    (["--epochs", "0"], "epochs: expected an integer >= 1, got 0"),
    (["--set", "model.dropout=1.5"], "model.dropout: expected a number in [0, 1), got 1.5"),
    (["--set", "dataset.augment=rotate"], "dataset.augment: expected one of auto, none, crop_flip, flip, crop, got 'rotate'"),
    (["--set", "optim.milestones=[20,10]"], "optim.milestones: expected increasing positive epochs"),
    (["--set", "batch_size"], "--set 'batch_size': expected key=value"),
]


@pytest.mark.parametrize("extra,message", BAD)
def test_bad_input_is_one_line_exit_2_nothing_written(tmp_path, extra, message):
    out_dir = tmp_path / "run"
    args = ["train", "--dataset", "digits", "--model", "resnet8", "--method", "ce", "--out", str(out_dir)]
    # later flags win: put the bad one last
    out = run_cli(*args, *extra)
    assert out.returncode == 2, out.stderr
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], out.stderr
    assert not out_dir.exists()


def test_argparse_errors_are_one_line_too():
    out = run_cli("train", "--epochs", "many")
    assert out.returncode == 2 and len(out.stderr.strip().splitlines()) == 1


def test_missing_prepared_dataset_names_file(tmp_path, capsys):
    path = tmp_path / "absent.pt"
    code = main(["train", "--dataset", "synthetic", "--model", "resnet8", "--out", str(tmp_path / "r"),
                 "--device", "cpu", "--set", f"dataset.path={path}"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1 and len(err) == 1 and str(path) in err[0]


def test_config_file_then_flags_then_sets(tmp_path, capsys):
    conf = tmp_path / "run.yaml"
    conf.write_text("dataset: digits\nmodel: {name: cnn6, dropout: 0.25}\nmethod: {name: le, alpha: 0.8}\noptim: {lr: 1e-3}\n")
    assert main(["train", "--config", str(conf), "--method", "le", "--set", "method.lam=0.2", "--print-config"]) == 0
    cfg = json.loads(capsys.readouterr().out)
    assert cfg["model"] == {"name": "cnn6", "dropout": 0.25, "in_channels": 1}
    assert cfg["method"] == {"name": "le", "explainer": "auto", "alpha": 0.8, "lam": 0.2, "warmup": 10}
    assert cfg["optim"]["lr"] == pytest.approx(1e-3) and cfg["optim"]["milestones"] == [15]


def test_train_end_to_end_through_the_cli(tmp_path, synthetic_path):
    out = run_cli("train", "--dataset", "synthetic", "--model", "cnn6", "--method", "le", "--epochs", "2",
                  "--set", f"dataset.path={synthetic_path}", "--set", "method.warmup=1", "--device", "cpu",
                  "--out", str(tmp_path / "run"))
    assert out.returncode == 0, out.stderr
    assert "epoch 2/2" in out.stderr and json.loads(out.stdout)["epochs"] == 2


def test_bench_prints_ratio_lines(capsys):
    assert main(["bench", "--device", "cpu", "--models", "resnet8,mlp1024", "--batch-size", "8",
                 "--steps", "1", "--loader-images", "256"]) == 0
    lines = capsys.readouterr().out.splitlines()
    ratios = {tuple(line.split()[1:3]) for line in lines if line.startswith("ratio ")}
    assert {("le_gradcam", "resnet8"), ("le_grad", "resnet8"), ("le_grad_input", "resnet8"),
            ("le_guided_bp", "resnet8"), ("le_grad", "mlp1024")} <= ratios
    assert ("le_gradcam", "mlp1024") not in ratios
    assert any(line.startswith("ratio loader introspect/torchvision cpu") for line in lines)
    for line in lines:
        if line.startswith("ratio "):
            assert float(line.split()[-1]) > 0


def _synthetic_run(path, seed, **over):
    return {"dataset": {"name": "synthetic", "path": str(path)}, "model": "resnet8", "method": "ce",
            "epochs": 1, "device": "cpu", "seed": seed, **over}


def test_runs_json_trains_each_run_in_turn_and_goes_on_after_a_diverged_one(tmp_path, synthetic_path, capsys):
    runs = [{"out": str(tmp_path / f"seed{s}"), "config": _synthetic_run(synthetic_path, s)} for s in (0, 1)]
    runs.insert(1, {"out": str(tmp_path / "nan"), "config": _synthetic_run(synthetic_path, 5, optim={"lr": 1e30})})
    code = main(["train", "--runs-json", json.dumps(runs)])
    out, err = capsys.readouterr()
    assert code == 1
    assert [json.loads(line)["out"] for line in out.splitlines()] == [runs[0]["out"], runs[2]["out"]]
    assert (tmp_path / "seed0" / "metrics.json").exists() and (tmp_path / "seed1" / "metrics.json").exists()
    assert not (tmp_path / "nan" / "metrics.json").exists()
    assert "training loss is" in err and err.strip().splitlines()[-1].startswith("introspect: error: 1 of 3 runs failed")


@pytest.mark.parametrize("args,message", [
    (["--runs-json", "[{"], "--runs-json: not valid JSON"),
    (["--runs-json", "[]"], "--runs-json: expected a non-empty list"),
    (["--runs-json", '[{"out": "x"}]'], "--runs-json: expected a non-empty list"),
    (["--runs-json", '[{"out": "r", "config": {"dataset": "digits", "model": "resnet9"}}]'],
     "r: model.name: unknown model 'resnet9'"),
    (["--runs-json", "[]", "--model", "resnet8"], "--runs-json: cannot be combined with --model"),
])
def test_runs_json_errors_are_one_line_and_nothing_is_written(tmp_path, monkeypatch, capsys, args, message):
    monkeypatch.chdir(tmp_path)
    assert main(["train", *args]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0], err
    assert list(tmp_path.iterdir()) == []
