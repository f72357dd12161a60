"""What a report rests on, read once: the plan's runs (:class:`~.results.Results`), the paper's
published numbers, every explained seed's ``explanations.pt`` with Figure 2's mean over those seeds
(the very matrix C10 ranks and Figure 2 draws), and the claims to judge.

The claims are the paper's (paper_claims.yaml), the project's own questions about the seed papers'
methods (method_claims.yaml, optional), the experiment's own (a ``claims`` list in its params.yaml,
e.g. on a user's data: docs/your-data.md) and the beyond-accuracy questions (beyond_claims.yaml,
optional, shown in beyond.md), in that order.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .claims_read import read_claims
from .rank_check import mean_over_seeds
from .results import Results, load_explanations
from .tables import Paper, read_paper
from ..config import read_yaml
from ..pipeline import Plan


@dataclass
class Inputs:
    results: Results
    paper: Paper
    explanations: dict[str, dict[int, dict | None]]  # paper dataset -> seed -> its explanations.pt (None: missing, stale)
    means: dict[str, dict | None]  # paper dataset -> the mean over its seeds' similarity (None: no seed has data)
    missing_explanations: list[str]  # the explanations.pt files missing or stale
    claims: list[dict]
    beyond_ids: set[str]  # the claims beyond.md shows


def read_explanations(plan: Plan, results: Path) -> tuple[dict[str, dict[int, dict | None]], list[str]]:
    """paper dataset -> seed -> that run's explanations.pt (None: missing or stale), and the missing paths."""
    explanations, missing = {}, []
    for paper_dataset, runs in sorted(plan.explained_runs().items()):
        explanations[paper_dataset] = {}
        for run in runs:
            path = Path(results) / run.id / "explanations.pt"
            explanations[paper_dataset][run.seed] = load_explanations(path)
            if explanations[paper_dataset][run.seed] is None:
                missing.append(str(path))
    return explanations, missing


def read_all_claims(reference: Path, config_path: str) -> tuple[list[dict], set[str]]:
    """Every claim to judge, and the ids of the beyond-accuracy ones."""
    reference = Path(reference)
    claims = read_claims(reference / "paper_claims.yaml")
    if (reference / "method_claims.yaml").exists():
        claims += read_claims(reference / "method_claims.yaml")
    if config_path and Path(config_path).is_file() and "claims" in (read_yaml(Path(config_path)) or {}):
        claims += read_claims(Path(config_path))
    beyond_ids: set[str] = set()
    if (reference / "beyond_claims.yaml").exists():
        beyond = read_claims(reference / "beyond_claims.yaml")
        claims += beyond
        beyond_ids = {c["id"] for c in beyond}
    return claims, beyond_ids


def read_inputs(plan: Plan, results: Path, reference: Path, config_path: str) -> Inputs:
    explanations, missing = read_explanations(plan, results)
    claims, beyond_ids = read_all_claims(reference, config_path)
    return Inputs(Results(plan, results), read_paper(Path(reference) / "paper_tables.csv"), explanations,
                  {d: mean_over_seeds(per_seed) for d, per_seed in explanations.items()}, missing, claims, beyond_ids)
