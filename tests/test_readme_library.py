"""docs/library.md's commands, run as written from the repository's root (a copy of its params.yaml and
workflow/): prepare, models, train (LE past its warm-up), explain, evaluate, report, plan. `bench`
alone is not run here (it times the paper scale's models; tests/test_cli.py runs it small)."""
import json
import math
import shlex
import subprocess
from pathlib import Path

from helpers import BIN, ROOT, copy_repository


def library_commands() -> list[str]:
    """The commands of docs/library.md's first bash block: continuation lines joined, comments and
    [optional] parts dropped."""
    text = (ROOT / "docs" / "library.md").read_text()
    block = text[text.index("# The library"):].split("```bash\n", 1)[1].split("```", 1)[0]
    commands, current = [], ""
    for line in block.splitlines():
        code = line.split("#", 1)[0].rstrip()
        current += " " + code.rstrip("\\").strip()
        if not code.endswith("\\"):
            if current.strip():
                commands.append(current.strip())
            current = ""
    return commands


def run(command: str, cwd: Path) -> subprocess.CompletedProcess:
    words = [w for w in shlex.split(command) if not (w.startswith("[") or w.endswith("]"))]
    assert words[0] == "introspect"
    out = subprocess.run([str(BIN / "introspect"), *words[1:]], cwd=cwd, capture_output=True, text=True)
    assert out.returncode == 0, f"{command}\n{out.stderr[-2000:]}"
    return out


def test_the_readme_library_example_trains_le_beyond_its_warmup_explains_and_evaluates_it(tmp_path):
    commands = {c.split()[1]: c for c in library_commands()}
    assert set(commands) == {"prepare", "models", "train", "explain", "evaluate", "report", "bench", "plan"}
    copy_repository(tmp_path, ["params.yaml", "workflow"])
    for name in ("prepare", "train", "explain", "evaluate"):
        run(commands[name], tmp_path)
    assert "resnet26" in run(commands["models"], tmp_path).stdout
    cfg = json.loads((tmp_path / "results" / "demo" / "config.json").read_text())
    assert cfg["method"]["name"] == "le" and cfg["epochs"] > cfg["method"]["warmup"]
    assert json.loads((tmp_path / "results" / "demo" / "metrics.json").read_text())["epochs"] == cfg["epochs"]
    assert (tmp_path / "results" / "demo" / "explanations.pt").is_file()
    evaluation = json.loads((tmp_path / "results" / "demo" / "evaluation.json").read_text())
    assert evaluation["explainer"] == "gradcam" and evaluation["test_images"] == 360  # ResNet8 on digits' test split
    assert 0 <= evaluation["ece"] <= 1 and evaluation["nll"] > 0 and math.isfinite(evaluation["deletion_auc_relative"])
    counted = evaluation["faithfulness_images"] + evaluation["faithfulness_ties"] + evaluation["faithfulness_blank"]
    assert counted == evaluation["images"]  # every scored image is scored, a tie or of the blank class
    # the report of the shipped plan: the demo run is none of its runs, so every planned run is missing
    report = run(commands["report"], tmp_path)
    assert "missing" in report.stderr and (tmp_path / "reports" / "index.md").is_file()
    assert run(commands["plan"], tmp_path).stdout.startswith("# scale quick: about ")


def test_the_report_outside_the_repository_finds_the_reference_beside_params_or_says_where_in_one_line(tmp_path):
    out = subprocess.run([str(BIN / "introspect"), "report", "--params", str(ROOT / "params.yaml"), "--results",
                          "results", "--out", "reports"], cwd=tmp_path, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-2000:]
    (tmp_path / "params.yaml").write_text((ROOT / "params.yaml").read_text())
    out = subprocess.run([str(BIN / "introspect"), "report"], cwd=tmp_path, capture_output=True, text=True)
    assert out.returncode != 0 and out.stderr.strip().splitlines() == [
        "introspect: error: --reference: no paper_tables.csv in workflow/reference (the repository's "
        "workflow/reference, found beside --params too)"]
