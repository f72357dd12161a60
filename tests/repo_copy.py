"""A copy of this repository for tests that add a user's files to it (a method, a dataset, a model)."""
import shutil
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def copy_repository(dest: Path, items) -> Path:
    """Copy ``items`` (paths relative to the repository's root) into ``dest``, without byte code."""
    for item in items:
        src = ROOT / item
        if src.is_dir():
            shutil.copytree(src, dest / item, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
        else:
            shutil.copy(src, dest / item)
    return dest
