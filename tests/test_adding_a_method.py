"""docs/adding-a-method.md, followed to the letter: its file and its params.yaml row, and nothing
else, make a method that the workflow schedules and `introspect train` trains.

The file goes into a copy of the repository (src/, workflow/, Snakefile, params.yaml), never into
this checkout: the package is installed editable from here, and a test that fails half-way must not
leave a method behind. The copy's package is the one imported (PYTHONPATH comes before the editable
install's path entry; `introspect` is a namespace package, so each module comes from the copy first).
"""
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from helpers import BIN, ROOT, copy_repository
from introspect.methods import METHODS
from introspect.pipeline import at_scale
COPIED = ("src", "workflow", "Snakefile", "params.yaml", "pyproject.toml")


def readme_section(title: str) -> str:
    text = "\n" + (ROOT / "docs" / "adding-a-method.md").read_text()
    start = text.index(f"\n{title}\n")
    end = re.search(r"\n#{2,3} ", text[start + len(title) + 2:])
    return text[start: start + len(title) + 2 + end.start()] if end else text[start:]


def code_blocks(section: str, language: str) -> list[str]:
    return re.findall(rf"^```{language}\n(.*?)^```$", section, flags=re.S | re.M)


def merge(base: dict, over: dict) -> dict:
    out = dict(base)
    for k, v in over.items():
        out[k] = merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


@pytest.fixture(scope="module")
def added(tmp_path_factory):
    """The docs' method file and row, added to a copy of the repository."""
    section = readme_section("# Adding a method")
    (code,), (row_yaml,) = code_blocks(section, "python"), code_blocks(section, "yaml")
    path = re.match(r"# (src/introspect/methods/\w+\.py)\n", code).group(1)
    name = re.search(r'@METHODS\.register\("(\w+)"\)', code).group(1)
    assert name not in METHODS and not (ROOT / path).exists(), f"{name} is already a method here: pick another example"
    copy = copy_repository(tmp_path_factory.mktemp("repo"), COPIED)
    (copy / path).write_text(code)
    row = yaml.safe_load(row_yaml)
    params = merge(yaml.safe_load((copy / "params.yaml").read_text()), row)
    (copy / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    (table, spec), = row["tables"].items()
    (label, row_spec), = spec["rows"].items()
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}", "PYTHONPATH": str(copy / "src")}
    return dict(copy=copy, name=name, table=table, label=label, row=row_spec, params=params, env=env)


def run(args, added, timeout=300):
    out = subprocess.run(args, cwd=added["copy"], env=added["env"], capture_output=True, text=True, timeout=timeout)
    assert out.returncode == 0, f"{' '.join(map(str, args))} failed:\n{out.stdout[-3000:]}\n{out.stderr[-3000:]}"
    return out.stdout + out.stderr


def test_the_readme_method_needs_no_other_file(added):
    listed = run([sys.executable, "-c", "from introspect import methods; "
                  "print(methods.__file__); print(' '.join(methods.METHODS.names()))"], added)
    where, names = listed.splitlines()[:2]
    assert Path(where).is_relative_to(added["copy"]), where
    assert added["name"] in names.split()
    assert added["name"] not in METHODS  # and this checkout never saw it


def test_the_dry_run_schedules_the_readme_row_for_every_model(added):
    text = run([str(BIN / "snakemake"), "-n", "--cores", "1"], added)
    jobs = set(re.findall(r"wildcards: dataset=(\w+), model=(\w+), variant=([\w.-]+)", text))
    models = at_scale(added["params"]["tables"][added["table"]]["models"], added["params"]["scale"])
    scheduled = {model for _, model, variant in jobs if variant == added["label"]}
    assert scheduled == set(models), (scheduled, models)


def test_introspect_train_trains_the_readme_method_for_one_epoch(added):
    data = added["copy"] / "data" / "synthetic.pt"
    run([str(BIN / "introspect"), "prepare", "--dataset", "synthetic", "--out", str(data)], added)
    sets = [f"--set={key}={value}" for key, value in (added["row"].get("set") or {}).items()]
    out = added["copy"] / "run"
    run([str(BIN / "introspect"), "train", "--dataset", "synthetic", "--model", "mlp1024", "--method", added["name"],
         "--epochs", "1", "--device", "cpu", f"--set=dataset.path={data}", *sets, "--out", str(out)], added)
    config = yaml.safe_load((out / "config.json").read_text())
    assert config["method"]["name"] == added["name"] and config["epochs"] == 1
    for key, value in (added["row"].get("set") or {}).items():
        section, option = key.split(".")
        assert config[section][option] == value
    metrics = yaml.safe_load((out / "metrics.json").read_text())
    assert 0 <= metrics["test_acc"] <= 100, metrics
