"""What a verdict rests on: the data, the seeds and the training of a claim's line, in words, and its
status.

A line is **decided** only when its runs are on the paper's full dataset (the dataset itself, e.g.
``mnist``: MNIST's 60,000 / 10,000), with at least MIN_SEEDS seeds on every side, trained with the
paper's recipe for (paper dataset, model family) (epochs, batch size, optimizer:
:func:`introspect.config.recipe`). The same on a real subset of the paper's dataset (a source whose
``real_subset_of`` names it: ``mnist5k``), or on a part of the paper's own dataset (``dataset.subset``:
a seeded, stratified share of its training images, its whole test set), is **reduced data**: real
images, the paper's recipe, but fewer of them, so never plain "decided". Anything else (a stand-in
dataset, fewer seeds, another recipe) is a **rehearsal**: it exercises the pipeline. The evidence
names the dataset and its size against the paper's, the seeds and the training (epochs, batch).
"""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from .judge import DECIDED, REDUCED, REHEARSAL, Basis, Line
from ..config import recipe
from ..data import DATASETS, subset_counts
from ..pipeline import Run
from ..plan import FULL_TRAIN, TEST
from ..registry import ConfigError

MIN_SEEDS = 3  # seeds per side (and of explanation data, for C10) a decided verdict needs
# The training and test images of the paper's datasets (LeCun et al. 1998; Krizhevsky 2009), what a
# run's data is measured against: the plan's own sizes of those datasets.
PAPER_SIZES = {d: (FULL_TRAIN[d], TEST[d]) for d in ("mnist", "cifar10")}
PAPER_NAMES = {"mnist": "MNIST", "cifar10": "CIFAR10"}


def subset_of(dataset: str) -> str | None:
    """The dataset whose real images ``dataset`` is a part of (mnist5k: mnist), or None."""
    return DATASETS.get(dataset).real_subset_of if dataset in DATASETS else None


def real_data(dataset: str, paper_dataset: str) -> bool:
    """Whether ``dataset`` is the paper's dataset or real images of it (mnist5k for mnist)."""
    return dataset == paper_dataset or subset_of(dataset) == paper_dataset


@lru_cache(maxsize=None)
def _sizes(path: str, mtime: float) -> tuple[int, int, int] | None:
    import torch

    try:
        tensors = torch.load(path, map_location="cpu", weights_only=True, mmap=True)["tensors"]
        return tuple(len(tensors[f"y_{s}"]) for s in ("train", "val", "test"))
    except Exception:  # an unreadable file: the evidence says the sizes were not read
        return None


def split_sizes(path: str) -> tuple[int, int, int] | None:
    """(train, val, test) image counts of a prepared dataset file; None when it is absent or unreadable."""
    p = Path(path)
    return _sizes(str(p.resolve()), p.stat().st_mtime) if p.is_file() else None


def data_text(dataset: str, paper_dataset: str, path: str | None, subset: int | None = None) -> str:
    """The data in words with its size against the paper's: "mnist5k: 3,600 + 400 val of MNIST's
    60,000 training images (7 % of train + val), test 1,000 (paper 10,000)"; "digits stands in for
    cifar10 (...)"; with ``subset`` (the runs' dataset.subset) the counts the runs trained on."""
    sizes = split_sizes(path) if path else None
    if sizes is not None and subset is not None:
        sizes = (*subset_counts(sizes[0], sizes[1], subset), sizes[2])
    paper = PAPER_SIZES.get(paper_dataset)
    name = PAPER_NAMES.get(paper_dataset, paper_dataset)
    if not real_data(dataset, paper_dataset):
        size = f"{sizes[0]:,} + {sizes[1]:,} val images, " if sizes else ""
        return f"{dataset} stands in for {paper_dataset} ({size}not {name}'s images)"
    kind = ("" if dataset == paper_dataset and subset is None else
            f"a stratified part of {name} (dataset.subset {subset:,}): " if dataset == paper_dataset else f"a real subset of {name}: ")
    if sizes is None:
        return f"{dataset}: {kind}sizes not read ({path or 'no data path'} absent or unreadable)"
    train, val, test = sizes
    if paper is None:  # a dataset of the user's own: its own size is all there is to say
        return f"{dataset}: {kind}{train:,} + {val:,} val training images, test {test:,}"
    return (f"{dataset}: {kind}{train:,} + {val:,} val of {name}'s {paper[0]:,} training images "
            f"({100 * (train + val) / paper[0]:.0f} % of train + val), test {test:,} (paper {paper[1]:,})")


def recipe_gaps(configs: list[dict], paper_dataset: str, model: str) -> list[str]:
    """How the runs' resolved configs differ from the paper's recipe for (paper dataset, model family):
    epochs, batch size and every optimizer setting the recipe gives (:func:`introspect.config.recipe`)."""
    try:
        want = recipe(paper_dataset, model)
    except (ConfigError, KeyError, StopIteration):  # no recipe to compare with: never the paper's
        return [f"no recipe of {paper_dataset} for {model} to compare with"]
    gaps = []
    for got in configs:
        pairs = [("epochs", got["epochs"], want["epochs"]), ("batch_size", got["batch_size"], want["batch_size"]),
                 *((f"optim.{k}", got["optim"][k], v) for k, v in want.get("optim", {}).items())]
        gaps += [f"{k} {g} (paper {w})" for k, g, w in pairs if g != w and f"{k} {g} (paper {w})" not in gaps]
    return gaps


def scaling_note(configs: list[dict], paper_dataset: str, model: str) -> str:
    """", input scaling unit (the recipe's standardize)" when the runs scale their inputs otherwise than the
    recipe they are judged against. The paper states no scaling, so the recipe's is our choice
    (introspect.config): a difference is said, not counted as a departure from the paper's recipe."""
    try:
        want = recipe(paper_dataset, model).get("dataset", {}).get("scaling", "standardize")
    except (ConfigError, KeyError, StopIteration):
        return ""
    got = sorted({c["dataset"].get("scaling", "standardize") for c in configs} - {want})
    return f", input scaling {' and '.join(got)} (the recipe's {want})" if got else ""


def assess(line: Line, runs: list[Run], seeds: int, unit: str = "a side") -> None:
    """Set ``line.status`` and ``line.basis`` (see the module's docstring): ``runs`` are the runs
    behind it, ``seeds`` the seeds both sides ran (the pairs of the test; ``unit``: "of explanation data" for C10)."""
    configs = [r.resolved for r in runs]
    first = configs[0] if configs else None
    subsets = {c["dataset"].get("subset") for c in configs}
    subset = max((n for n in subsets if n is not None), default=None)  # the sides of a line share one subset
    data = data_text(line.dataset, line.paper_dataset, first["dataset"].get("path") if first else None, subset) \
        if line.dataset else "no dataset"
    gaps = recipe_gaps(configs, line.paper_dataset, line.model)
    training = ("not the paper's recipe: " + ", ".join(gaps) if gaps else
                f"the paper's recipe ({first['epochs']} epochs, batch {first['batch_size']})" if first else "no run")
    training += scaling_note(configs, line.paper_dataset, line.model)
    sound = bool(runs) and seeds >= MIN_SEEDS and not gaps
    line.status = (DECIDED if sound and line.dataset == line.paper_dataset and subsets <= {None} else
                   REDUCED if sound and real_data(line.dataset, line.paper_dataset) else REHEARSAL)
    line.basis = Basis(data, f"{seeds} seed{'s' * (seeds != 1)} {unit}" + (
        f" (a decided verdict needs {MIN_SEEDS})" if seeds < MIN_SEEDS else ""), training)
