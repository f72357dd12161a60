"""No import runs back up the layers: data -> models -> explain -> methods -> train -> pipeline ->
report -> cli. Every import of every module counts, also one inside a function."""
import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "introspect"
LAYERS = [  # (layer, modules); a module may import its own layer and those before it
    ("base", {"registry", "scales", "fileio", "runfolder", "checkpoint", "gpu", "data"}),
    ("models", {"models"}),
    ("explain", {"explain"}),
    ("methods", {"methods"}),
    ("train", {"train", "provenance", "config", "analysis", "evaluate", "bench", "runcache"}),
    ("pipeline", {"pipeline", "plan", "bench_cache", "console", "status"}),  # status: staleness is provenance's
    ("report", {"report"}),
    ("cli", {"cli", "__init__", "__main__"}),
]
LEVEL = {name: i for i, (_, names) in enumerate(LAYERS) for name in names}


def top(module: str) -> str:
    """The package-level name of a module path under introspect: methods.le -> methods."""
    return module.split(".")[0]


def imports(source: str, here: tuple[str, ...]) -> set[str]:
    """The introspect modules that the module at ``here`` (its path under the package, e.g.
    ("methods", "distill")) imports, relative or absolute, anywhere in ``source``."""
    found = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = list(here[:len(here) - node.level])
                target = ".".join(base + ([node.module] if node.module else []))
                if not target:  # `from . import x` at the top of the package
                    found |= {alias.name for alias in node.names}
                elif node.module is None:  # `from . import cnn, mlp`
                    found |= {f"{target}.{alias.name}" for alias in node.names}
                else:
                    found.add(target)
            elif node.module and node.module.startswith("introspect."):
                found.add(node.module.removeprefix("introspect."))
        elif isinstance(node, ast.Import):
            found |= {a.name.removeprefix("introspect.") for a in node.names if a.name.startswith("introspect.")}
    return found


def test_every_module_has_a_layer():
    modules = {top(".".join(p.relative_to(PACKAGE).with_suffix("").parts)) for p in PACKAGE.rglob("*.py")}
    assert modules - LEVEL.keys() == set(), "add the new module to LAYERS"


def test_no_import_runs_back_up_the_layers():
    upward = []
    for path in sorted(PACKAGE.rglob("*.py")):
        source = top(".".join(path.relative_to(PACKAGE).with_suffix("").parts))
        for target in imports(path.read_text(), path.relative_to(PACKAGE).with_suffix("").parts):
            if LEVEL[top(target)] > LEVEL[source]:
                upward.append(f"{path.relative_to(PACKAGE)} ({LAYERS[LEVEL[source]][0]}) imports {target} "
                              f"({LAYERS[LEVEL[top(target)]][0]})")
    assert upward == []


def test_only_the_cli_imports_the_training_loop():
    """The training loop is a leaf: evaluation, explanation, the bench, the plan and the report take
    what they share with it from below (runfolder, data, methods.runs), so their code digests do not
    follow the loop's edits. The CLI's train job is its one importer."""
    importers = sorted(str(path.relative_to(PACKAGE)) for path in PACKAGE.rglob("*.py")
                       if "train" in imports(path.read_text(), path.relative_to(PACKAGE).with_suffix("").parts))
    assert importers == ["cli.py"]


def test_the_run_folder_module_loads_without_torch():
    """`introspect status` and `introspect cache` read run folders through runfolder: no torch there."""
    import subprocess
    import sys

    code = "import sys, introspect.runfolder, introspect.runcache; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_the_check_sees_every_kind_of_import():
    """The detector itself, on sources written here: late, relative, package-relative and absolute."""
    late = "def load(run):\n    from ..analysis import load_method\n"
    assert imports(late, ("methods", "distill")) == {"analysis"}
    assert imports("from . import cnn, mlp\n", ("models", "__init__")) == {"models.cnn", "models.mlp"}
    assert imports("from .base import METHODS\n", ("methods", "le")) == {"methods.base"}
    assert imports("import introspect.report.claims\n", ("train",)) == {"report.claims"}
