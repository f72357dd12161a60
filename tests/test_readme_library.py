"""docs/library.md's commands, run as written: prepare, train (LE past its warm-up), explain, evaluate."""
import json
import shlex
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


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
    for name in ("prepare", "train", "explain", "evaluate"):
        run(commands[name], tmp_path)
    cfg = json.loads((tmp_path / "results" / "demo" / "config.json").read_text())
    assert cfg["method"]["name"] == "le" and cfg["epochs"] > cfg["method"]["warmup"]
    assert json.loads((tmp_path / "results" / "demo" / "metrics.json").read_text())["epochs"] == cfg["epochs"]
    assert (tmp_path / "results" / "demo" / "explanations.pt").is_file()
    evaluation = json.loads((tmp_path / "results" / "demo" / "evaluation.json").read_text())
    assert evaluation["explainer"] == "gradcam" and evaluation["test_images"] == 360  # ResNet8 on digits' test split
    assert 0 <= evaluation["ece"] <= 1 and evaluation["nll"] > 0 and -1 <= evaluation["deletion_auc"] <= 1
