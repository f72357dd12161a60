"""Reading claims: a claims YAML (workflow/reference/paper_claims.yaml and its siblings) into checked
comparisons, and a claim's row labels into the plan's tables.

A claim compares row labels on a paper dataset and model, e.g. ``[le, ">", [ce, dropout, ls, cp]]``.
It is read as a list of pairwise comparisons ``a op b``: a list on either side expands to one
comparison per member, a chain ``a < b < c`` to its adjacent pairs, and a list of such expressions
to all of theirs. Every comparison uses test accuracy (%) unless the claim names a ``metric`` (one
of results.METRICS, e.g. ``ece`` in beyond_claims.yaml). ``combine`` says how many comparisons at one
place must hold; ``margin`` (points of accuracy) is the non-inferiority margin of ``>=`` / ``<=``.
"""
from __future__ import annotations

from pathlib import Path

import yaml

from .results import METRICS
from ..pipeline import Plan, Row, Table
from ..registry import ConfigError

OPS = {">": 1, ">=": 1, "<": -1, "<=": -1}  # the sign the difference a − b should have
COMPETITIVE = (">=", "<=")  # "not worse by more than the margin"
COMBINE = ("all", "any", "most")
METRIC = "test_acc"
# C4 and C7's note: "LE means le_gradcam on CIFAR10 and le_grad on MNIST".
ALIASES = {"le": {"cifar10": "le_gradcam", "mnist": "le_grad"}}


def read_claims(path: Path) -> list[dict]:
    """The ``claims`` list of a claims YAML, each comparison claim checked (:func:`check_claim`);
    a file that does not parse, or a claim that does not read, is one line naming where."""
    try:
        claims = yaml.safe_load(Path(path).read_text())
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ConfigError(f"{path}: not valid YAML{at}: {getattr(exc, 'problem', None) or exc}") from None
    if not isinstance(claims, dict) or not isinstance(claims.get("claims"), list):
        raise ConfigError(f"{path}: expected a mapping with a list under 'claims'")
    for claim in claims["claims"]:
        if isinstance(claim, dict) and "compare" in claim:
            try:
                check_claim(claim)
            except ValueError as exc:
                raise ConfigError(f"{path}: claim {claim.get('id', '?')}: {exc}") from None
    return claims["claims"]


def _members(term) -> list[str]:
    return list(term) if isinstance(term, list) else [term]


def parse(expr: list) -> list[tuple[str, str, str]]:
    """``compare`` -> pairwise comparisons ``(a, op, b)``, in order."""
    if expr and all(isinstance(e, list) for e in expr) and any(isinstance(x, str) and x in OPS for e in expr for x in e):
        return [c for e in expr for c in parse(e)]
    terms, ops = expr[0::2], expr[1::2]
    if not ops or len(terms) != len(ops) + 1 or any(not isinstance(op, str) or op not in OPS for op in ops):
        raise ValueError(f"compare: cannot read {expr!r}; expected a op b [op c ...] with op one of {', '.join(OPS)}")
    return [(a, op, b) for left, op, right in zip(terms, ops, terms[1:])
            for a in _members(left) for b in _members(right)]


def check_claim(claim: dict) -> tuple[str, float | None]:
    """A comparison claim's ``(combine rule, margin)``, or ValueError saying what is wrong.

    ``combine`` is required when the claim makes more than one comparison at a place (it defaults to
    ``all`` for one); ``margin`` (points of accuracy, > 0) is required exactly when some comparison
    is ``>=`` / ``<=``.
    """
    comparisons = parse(claim["compare"])
    rule = claim.get("combine")
    if rule is None and len(comparisons) > 1:
        raise ValueError(f"{len(comparisons)} comparisons need a combine rule, one of {', '.join(COMBINE)}")
    if rule is not None and rule not in COMBINE:
        raise ValueError(f"combine: {rule!r} is not one of {', '.join(COMBINE)}")
    competitive = any(op in COMPETITIVE for _, op, _ in comparisons)
    margin = claim.get("margin")
    if competitive and (isinstance(margin, bool) or not isinstance(margin, (int, float)) or not margin > 0):
        raise ValueError(f"a >= or <= comparison needs margin: a number > 0 (points of accuracy), not {margin!r}")
    if not competitive and margin is not None:
        raise ValueError("margin applies to >= and <= comparisons only")
    metric = claim.get("metric", METRIC)
    if metric not in METRICS:
        raise ValueError(f"metric: {metric!r} is not one of {', '.join(METRICS)}")
    return rule or "all", float(margin) if competitive else None


def places(where: dict) -> list[tuple[str, str]]:
    """``where`` -> [(paper dataset, model)]: {dataset: d, models: [...]} or {d1: [...], d2: [...]}."""
    if "dataset" in where:
        return [(where["dataset"], m) for m in where.get("models", [])]
    return [(d, m) for d, models in where.items() for m in models]


def locate(plan: Plan, paper_dataset: str, model: str, label: str) -> tuple[Table, Row] | None:
    """The table and row a claim's label names at (paper dataset, model); None: not in this config."""
    label = ALIASES.get(label, {}).get(paper_dataset, label)
    return next(((t, r) for t in plan.tables if t.paper_dataset == paper_dataset and model in t.models
                 for r in t.rows if r.label == label), None)


def run_dataset(plan: Plan, paper_dataset: str) -> str | None:
    """The dataset this plan runs for a paper dataset (None: none of its tables)."""
    return next((t.dataset for t in plan.tables if t.paper_dataset == paper_dataset), None)
