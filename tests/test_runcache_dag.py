"""The run cache through the real DAG on a tiny config (digits, CE teaching KD, one seed, 1 epoch):
the 1 -> 2 -> 1 epoch toggle trains nothing on the way back, its metrics byte-identical and its
disk use grown by the 2-epoch runs only; a second clone pointed at the first clone's cache (the
commands of docs/run-cache.md, run as printed) trains no teacher, and a damaged entry retrains
with one line."""
import json
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from helpers import BIN, ROOT, env, tiny_params

pytestmark = pytest.mark.slow  # whole DAGs, trained and retrained

RUNS = ("ce", "kd")


def toggle_params(epochs: int) -> dict:
    return tiny_params({"table4": {"dataset": "cifar10", "models": ["cnn6"], "teacher": {"row": "ce"},
                                   "rows": {r: {"method": r} for r in RUNS}}}, epochs)


def clone(path: Path, digits: Path) -> Path:
    """A checkout as a user has one: the Snakefile, workflow/ and params.yaml (the package is
    installed), the dataset already prepared (as `snakemake` would; it takes the DAG 15 s)."""
    path.mkdir(parents=True)
    (path / "Snakefile").symlink_to(ROOT / "Snakefile")
    (path / "workflow").symlink_to(ROOT / "workflow")
    (path / "params.yaml").write_text(yaml.safe_dump(toggle_params(1), sort_keys=False))
    (path / "data" / "processed").mkdir(parents=True)
    shutil.copy(digits, path / "data" / "processed" / "digits.pt")
    return path


def env_with(**extra) -> dict:
    """The test's own caches only (given in ``extra``), not the session's."""
    return env(own_cache=True, **extra)


def snakemake(work: Path, env: dict, *args) -> str:
    out = subprocess.run([str(BIN / "snakemake"), "--cores", "2", *args], cwd=work, env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    return out.stdout + out.stderr


def receipts() -> list[str]:
    """The train jobs' outputs: a step of the toggle that only trains (no evaluation, no report)."""
    return [f"results/digits/cnn6/{row}/seed0/provenance.json" for row in RUNS]


def train_logs(work: Path) -> dict[str, str]:
    return {p.stem: p.read_text() for p in (work / "logs" / "train").rglob("*.log")}


def run_folder(work: Path, row: str) -> Path:
    return work / "results" / "digits" / "cnn6" / row / "seed0"


def du(*paths: Path) -> int:
    """`du` of the folders together (a file hard-linked twice counts once), in bytes."""
    out = subprocess.run(["du", "-sbc", *map(str, paths)], capture_output=True, text=True, check=True).stdout
    return int(out.splitlines()[-1].split()[0])


def checkpoints(*tops: Path) -> set[tuple[int, int]]:
    return {(p.stat().st_dev, p.stat().st_ino) for top in tops for p in top.rglob("checkpoint*.pt")}


@pytest.fixture(scope="module")
def first(tmp_path_factory):
    """Clone A trained at 1 epoch into the lab's cache folder."""
    from introspect.data import prepare

    base = tmp_path_factory.mktemp("lab")
    digits = base / "digits.pt"
    prepare("digits", digits, raw=base / "raw")
    work, lab = clone(base / "cloneA", digits), base / "lab-cache"
    env = env_with(INTROSPECT_CACHE=str(lab))
    snakemake(work, env, *receipts())
    metrics = {row: (run_folder(work, row) / "metrics.json").read_bytes() for row in RUNS}
    return work, lab, env, metrics


def test_toggle_back_trains_nothing_and_stores_once(first):
    work, lab, env, metrics = first
    (work / "params.yaml").write_text(yaml.safe_dump(toggle_params(2), sort_keys=False))
    snakemake(work, env, *receipts())
    logs = train_logs(work)
    assert all("epoch 2/2" in logs[row] for row in RUNS), logs
    at_two, ckpts_at_two = du(work / "results", lab), checkpoints(work / "results", lab)

    (work / "params.yaml").write_text(yaml.safe_dump(toggle_params(1), sort_keys=False))
    snakemake(work, env)
    logs = train_logs(work)
    for row in RUNS:
        assert "restored, not trained" in logs[row] and "] epoch " not in logs[row], logs[row]
        assert (run_folder(work, row) / "metrics.json").read_bytes() == metrics[row]
        assert json.loads((run_folder(work, row) / "provenance.json").read_text())["restored_from"]["identity"]
    # stored once: no checkpoint byte was written on the way back; what grew is small JSON (configs,
    # receipts, evaluations) and the new explanations and evaluations of the restored runs
    assert checkpoints(work / "results", lab) == ckpts_at_two
    grown = du(work / "results", lab) - at_two
    assert grown < 200_000, grown
    index = (work / "reports" / "index.md").read_text()
    assert f"all {len(RUNS)} planned runs are present and current" in index, index[:600]
    assert "Nothing to be done" in snakemake(work, env, "-n")


def docs_block(heading: str) -> str:
    text = (ROOT / "docs" / "run-cache.md").read_text()
    return text[text.index(heading):].split("```bash\n", 1)[1].split("```", 1)[0]


def test_a_second_clone_pointed_at_the_cache_trains_no_teacher_and_a_damaged_entry_retrains(first):
    work, lab, _, metrics = first
    # the student's entry damaged (altered in a new file: clone A's own run keeps its bytes)
    kd_config = json.loads((run_folder(work, "kd") / "config.json").read_text())
    from introspect import runcache

    kd_entry = lab / runcache.identity(kd_config)
    data = (kd_entry / "history.parquet").read_bytes()
    (kd_entry / "history.parquet").unlink()
    (kd_entry / "history.parquet").write_bytes(data[:-10])

    other = clone(work.parent / "cloneB", work.parent / "digits.pt")
    block = docs_block("## Share a cache between clones")
    out = subprocess.run(["bash", "-e", "-c", block], cwd=other, env=env_with(), capture_output=True, text=True)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    logs = train_logs(other)
    assert "restored, not trained" in logs["ce"] and "] epoch " not in logs["ce"], logs["ce"]  # the teacher
    damaged = [line for line in logs["kd"].splitlines() if "damaged" in line]
    assert len(damaged) == 1 and "history.parquet has" in damaged[0], logs["kd"]
    assert "epoch 1/1" in logs["kd"]
    for row in RUNS:  # on the CPU the retrained student is bit-identical
        assert (run_folder(other, row) / "metrics.json").read_bytes() == metrics[row]
    listed = [line.split() for line in out.stdout.splitlines() if line[:12] in {p.name[:12] for p in lab.iterdir()}]
    assert {(w[1], w[5]) for w in listed} >= {("ce", "1"), ("kd", "1")}, out.stdout  # `introspect cache list`: method, epochs
    runcache.verify(kd_entry)  # the damaged entry was replaced by clone B's run
    # docs/run-cache.md's management commands as printed, on the lab's cache: every entry is used by a run folder
    before = sorted(p.name for p in lab.iterdir())
    out = subprocess.run(["bash", "-e", "-c", docs_block("## Manage it")], cwd=other, env=env_with(INTROSPECT_CACHE=str(lab)),
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    assert "total" in out.stdout and "would delete" not in out.stdout and "kept" in out.stdout, out.stdout
    assert sorted(p.name for p in lab.iterdir()) == before


def test_a_cache_shared_through_a_dvc_remote(first, tmp_path):
    """docs/run-cache.md's DVC blocks as printed: one clone tracks and pushes its cache, another pulls it."""
    from introspect import runcache

    _, lab, _, _ = first
    env = env_with(DVC_NO_ANALYTICS="1", GIT_AUTHOR_NAME="t", GIT_AUTHOR_EMAIL="t@t", GIT_COMMITTER_NAME="t",
                   GIT_COMMITTER_EMAIL="t@t")
    repo = tmp_path / "repo"
    repo.mkdir()
    for command in (["git", "init", "-q", "-b", "main"], [str(BIN / "dvc"), "init", "-q"]):
        subprocess.run(command, cwd=repo, env=env, check=True, capture_output=True)
    shutil.copy(ROOT / ".dvc" / "config", repo / ".dvc" / "config")  # the project's: hard links, no analytics
    subprocess.run(["git", "add", "-A"], cwd=repo, env=env, check=True)
    subprocess.run(["git", "commit", "-qm", "a clone"], cwd=repo, env=env, check=True)
    shutil.copytree(lab, repo / "runcache")  # what `snakemake` with INTROSPECT_CACHE=runcache stored there
    first_block, second_block = docs_block("## Share a cache through a DVC remote"), docs_block("In another clone")
    out = subprocess.run(["bash", "-e", "-c", first_block], cwd=repo, env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    other = tmp_path / "other"
    subprocess.run(["git", "clone", "-q", str(repo), str(other)], env=env, check=True)
    assert not (other / "runcache").exists()
    out = subprocess.run(["bash", "-e", "-c", second_block], cwd=other, env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    pulled, notes = runcache.entries(other / "runcache")
    assert len(pulled) == len(runcache.entries(lab)[0]) >= 2 and not notes
    for entry in pulled:
        runcache.verify(entry["path"])
        assert entry["identity"][:12] in out.stdout
