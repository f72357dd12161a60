"""What a reader sees first (issue 34): index.md's verdict table, the verdicts' forest plot, the summary a
run ends with, each dataset's evidence stated once, and the defects a reader tripped on (an interval the
Holm-adjusted verdict does not follow, seeds paired by position, a diverged run's NaN, a Δ of exactly 0,
the faithfulness interval's level, a faithfulness score on a handful of images). Fake results with known
numbers; nothing is trained here."""
import csv
import json
import math
import re
from pathlib import Path

import pytest
import torch
import yaml

from helpers import ROOT
from introspect import evaluate, pipeline
from introspect.report import forest, glance, judge, make_report, render
from introspect.report.beyond import unscored_text
from introspect.report.results import Stat, metric
from test_report import fake_prepared, write_current_config

REFERENCE = ROOT / "workflow" / "reference"
LE = {"method": "le", "set": {"method.explainer": "gradcam"}}
PARAMS = {
    "scale": "quick", "significance": 0.05, "seeds": [0, 1, 2],
    "datasets": {"cifar10": "synthetic", "mnist": "synthetic"}, "recipes": {},
    "tables": {
        "table2": {"caption": "Regularization methods", "dataset": "cifar10", "metric": "test_acc", "models": ["resnet8"],
                   "rows": {"ce": {"method": "ce"}, "ls": {"method": "ls"}, "dropout": {"method": "ce", "set": {"model.dropout": 0.1}},
                            "le_gradcam": LE}},
        "table3": {"caption": "Regularization methods", "dataset": "mnist", "metric": "test_err", "models": ["mlp1024"],
                   "rows": {"ce": {"method": "ce"}, "le_grad": {"method": "le", "set": {"method.explainer": "grad"}}}},
    },
    "explanations": {},
}
NAN = math.nan
# Per-seed test accuracy. le_gradcam − ce and le_gradcam − ls: differences −0.4, −0.2, −0.6 (mean −0.4, s_d 0.2):
# raw p against 0.037090 each (test_claims.py's hand value), Holm over the two: 0.074180 each, inconclusive,
# while each 90 % interval, −0.4 ± 2.919986 × 0.2 / √3 = [−0.737, −0.063], lies wholly below 0.
# le_gradcam − dropout: −0.5, −0.7, −0.3: Δ = −0.5, exactly the non-inferiority null of margin 0.5.
# On MNIST ce's seed 1 diverged: its test accuracy is stored as NaN.
TEST = {("resnet8", "ce"): [90.0, 90.2, 89.8], ("resnet8", "ls"): [90.0, 90.2, 89.8],
        ("resnet8", "dropout"): [90.1, 90.7, 89.5], ("resnet8", "le_gradcam"): [89.6, 90.0, 89.2],
        ("mlp1024", "ce"): [95.0, NAN, 95.2], ("mlp1024", "le_grad"): [95.5, 95.9, 95.6]}
OWN_CLAIMS = [
    {"id": "H1", "source": "test", "text": "LE beats CE and LS.", "compare": ["le_gradcam", ">", ["ce", "ls"]],
     "combine": "all", "where": {"dataset": "cifar10", "models": ["resnet8"]}},
    {"id": "H2", "source": "test", "text": "LE is competitive with dropout.", "compare": ["le_gradcam", ">=", "dropout"],
     "margin": 0.5, "where": {"dataset": "cifar10", "models": ["resnet8"]}},
    {"id": "H3", "source": "test", "text": "LE beats CE on MNIST.", "compare": ["le_grad", ">", "ce"],
     "where": {"dataset": "mnist", "models": ["mlp1024"]}},
]


def write_run(root: Path, run: pipeline.Run, test: float) -> None:
    d = root / run.id
    d.mkdir(parents=True)
    metrics = {"val_acc": 90.0, "test_acc": test, "test_err": 100.0 - test, "epochs": 3,
               "best_val_test_acc": test, "best_val_test_err": 100.0 - test}
    (d / "metrics.json").write_text(json.dumps(metrics))  # NaN is written as NaN, as json.dump does
    write_current_config(d, run)


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    """The report of PARAMS's runs against every shipped claim and the three above (the config's own)."""
    root = tmp_path_factory.mktemp("glance")
    plan = pipeline.plan(PARAMS)
    for run in plan.runs.values():
        write_run(root / "results", run, TEST[run.model, run.variant][run.seed])
    config = root / "params.yaml"
    config.write_text(yaml.safe_dump({**PARAMS, "claims": OWN_CLAIMS}))
    out = root / "reports"
    summary = make_report(plan, root / "results", REFERENCE, out, "abc1234", str(config))
    with open(out / "claims.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    return {"plan": plan, "out": out, "summary": summary, "rows": rows,
            "pages": {name: (out / name).read_text() for name in ("index.md", "claims.md", "beyond.md")}}


def row(report, claim: str, comparison: str) -> dict:
    return next(r for r in report["rows"] if r["claim"] == claim and r["comparison"] == comparison)


# ---- the first screen ------------------------------------------------------------------------

def test_the_index_opens_with_the_scale_the_runs_and_one_verdict_table_with_intervals(report):
    index = report["pages"]["index.md"]
    head = index.splitlines()[:40]
    assert head[2].startswith("**Complete and current**: all 18 planned runs") and head[4].startswith("Scale **quick**")
    header = head.index("| claim | in a few words | verdict | rests on (data) | deciding comparison | Δ [90 % CI] | paper's Δ |")
    table = [line for line in head[header + 2:] if line.startswith("| ")]
    shipped = {f: [c["id"] for c in yaml.safe_load((REFERENCE / f"{f}_claims.yaml").read_text())["claims"]]
               for f in ("paper", "method", "beyond")}
    ids = shipped["paper"] + shipped["method"] + [c["id"] for c in OWN_CLAIMS] + shipped["beyond"]
    assert [line.split(" | ")[0][2:] for line in table] == ids  # every claim, in order, within the first 40 lines
    # H1: both comparisons inconclusive; the deciding one (its weakest) with its Δ, 90 % interval and the paper's Δ
    h1 = next(line for line in table if line.startswith("| H1 |"))
    assert h1 == ("| H1 | le_gradcam > ce, ls | inconclusive | rehearsal (D1) | cifar10/resnet8: le_gradcam > ls † | "
                  "-0.40 [-0.74, -0.06] | +0.56 |")
    # C4 at both datasets: its weakest comparison (cp has no row here) is on CIFAR10
    assert ("| C4 | le > ce, dropout, ls, cp | inconclusive | rehearsal (D1, D2) | cifar10/resnet8: le_gradcam > dropout † "
            "| -0.50 [-0.84, -0.16] | +0.68 |") in index
    assert len(index.encode()) <= 10 * 1024  # 25 claims, as many as the default scale's 22 and more


def test_each_datasets_evidence_is_stated_once_per_page_and_referenced_from_the_rows(report):
    evidence = {r["evidence"] for r in report["rows"] if r["evidence"]}
    data = {e.split("; ")[0] for e in evidence}
    assert len(data) == 2  # synthetic for cifar10, synthetic for mnist
    for name, page in report["pages"].items():
        for sentence in data:
            assert page.count(sentence) == 1, (name, sentence)
        for sentence in evidence:
            assert page.count(sentence) == 0, (name, sentence)  # never the whole evidence in a row
        assert "| D1 | cifar10 | synthetic stands in for cifar10" in page and "| D2 | mnist | synthetic stands in for mnist" in page
    assert "| rests on D2 |" in report["pages"]["claims.md"]


def test_the_forest_plot_draws_every_comparison_as_claims_csv_gives_it(report):
    out, rows = report["out"], report["summary"]["forest"]
    assert (out / "figures" / "verdicts.png").stat().st_size > 1000 and (out / "figures" / "verdicts.pdf").is_file()
    assert "![Every claim comparison" in report["pages"]["index.md"] and "](figures/verdicts.png)" in report["pages"]["index.md"]
    expected = [r for r in report["rows"] if r["diff"] and r["line_verdict"] not in (judge.NOT_RUN, judge.NOT_APPLICABLE)]
    assert len(rows) == len(expected) >= 8
    for drawn, r in zip(rows, expected):
        assert (drawn.claim, drawn.comparison, drawn.verdict) == (r["claim"], r["comparison"], r["verdict"])
        assert drawn.diff == float(r["diff"]) and (drawn.low, drawn.high) == (float(r["ci_low"]), float(r["ci_high"]))
        assert drawn.paper == (pytest.approx(float(r["paper_diff"])) if r["paper_diff"] else None)
        assert drawn.null == (-float(r["margin"]) if r["margin"] else 0.0)
    h1 = [d for d in rows if d.claim == "H1"]
    assert [d.interval_side for d in h1] == ["against", "against"] and all(d.label.endswith(" †") for d in h1)


def test_the_run_ends_with_where_the_report_is_and_what_it_found(report):
    out = report["out"]
    lines = (out / glance.SUMMARY).read_text().splitlines()
    assert lines[0] == f"Report: {out / 'index.md'} (the verdicts in one picture: {out / 'figures' / 'verdicts.png'})"
    assert lines[1].startswith("Scale quick: all 18 planned runs present and current; 25 claims: ")
    assert "; 25 claims: 1 supported, 9 inconclusive, 15 not run in this config; 0 decided, 0 on reduced data, " \
           "10 rehearsals." in lines[1]
    # what the workflow declares is what the report writes; the Snakefile prints it last, dvc repro too
    declared = glance.declared(report["plan"], REFERENCE / "paper_tables.csv")
    assert {f"reports/{f}" for f in report["summary"]["files"]} >= {*declared["figures"], *declared["summary"]}
    assert "GLANCE[\"figures\"]" in (ROOT / "workflow" / "rules" / "report.smk").read_text()
    assert re.search(r"onsuccess:\n(.*\n)*.*reports/summary.txt", (ROOT / "Snakefile").read_text())
    stage = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]["report"]
    assert stage["cmd"].endswith("&& cat reports/summary.txt") and {"reports/summary.txt"} <= {next(iter(o)) for o in stage["outs"]}


def test_the_paper_figure_puts_ours_beside_the_papers_where_the_data_is_the_papers(tmp_path, monkeypatch):
    from introspect.report import paper_figure
    from introspect.report.results import Results
    from introspect.report.tables import read_paper

    monkeypatch.chdir(tmp_path)
    fake_prepared(Path("data/processed/mnist.pt"), 54_000, 6_000, 10_000)  # MNIST's sizes: the paper's own dataset
    params = {**PARAMS, "datasets": {"cifar10": "synthetic", "mnist": "mnist"}}
    plan = pipeline.plan(params)
    for run in plan.runs.values():
        value = TEST[run.model, run.variant][run.seed]
        write_run(tmp_path / "results", run, 97.0 + run.seed if math.isnan(value) else value)
    assert [t.name for t in paper_figure.drawn_tables(plan, REFERENCE / "paper_tables.csv")] == ["table3"]  # not synthetic
    paper = read_paper(REFERENCE / "paper_tables.csv")
    results = Results(plan, tmp_path / "results")
    paths, points = paper_figure.paper_figure(plan.tables[1], results, paper, tmp_path / "reports")
    assert [p.name for p in paths] == ["paper_table3.png", "paper_table3.pdf"]
    by_row = {p.row: p for p in points}
    assert set(by_row) == {"ce", "le_grad"}
    # ours in the table's metric, test error: 100 − accuracy; the paper's published mean ± std
    assert by_row["le_grad"].ours.values == pytest.approx((4.5, 4.1, 4.4)) and by_row["le_grad"].ours.std == pytest.approx(0.2082, abs=1e-4)
    assert (by_row["ce"].paper.mean, by_row["ce"].paper.std) == (1.39, 0.05)
    assert paper_figure.stems(plan, REFERENCE / "paper_tables.csv") == ["figures/paper_table3"]


# ---- the defects -----------------------------------------------------------------------------

def test_an_inconclusive_row_whose_interval_excludes_0_on_the_against_side_says_why(report):
    r = row(report, "H1", "le_gradcam > ce")
    assert r["verdict"] == "inconclusive" and float(r["ci_high"]) < 0
    assert float(r["p_against"]) == pytest.approx(0.037090, abs=1e-6)
    assert float(r["p_against_adjusted"]) == pytest.approx(0.074180, abs=1e-6)
    said = ("the 90 % interval excludes 0 on the against side, but the against side is Holm-adjusted over the claim's "
            "comparisons and the interval is not: adjusted p against 0.074 ≥ 0.05 (raw 0.037)")
    assert said in r["note"]
    section = report["pages"]["claims.md"].split("\n## H1 ")[1]
    md_row = next(line for line in section.splitlines() if line.startswith("| cifar10 | synthetic | resnet8 | le_gradcam > ce |"))
    assert said in md_row
    # every inconclusive row of the report whose interval excludes its null says so
    excluding = 0
    for r in report["rows"]:
        if r["verdict"] == "inconclusive" and r["ci_low"]:
            sign = 1 if re.search(r" (>|>=) ", r["comparison"]) else -1
            effects = [sign * float(r[k]) + float(r["margin"] or 0) for k in ("ci_low", "ci_high")]
            if max(effects) < 0 or min(effects) > 0:
                excluding += 1
                assert "interval excludes" in r["note"], r
    assert excluding >= 2


def test_a_test_pairs_seeds_by_name_and_requires_them():
    a, b = Stat((90.4, 90.8, 89.8), 3), Stat((90.0, 89.6), 3)
    with pytest.raises(TypeError, match="a_seeds"):
        judge.Test("a", ">", "b", a, b, 0.05)  # no seeds: it could only pair by position
    with pytest.raises(ValueError, match="b_seeds: 3 seeds for 2 values"):
        judge.Test("a", ">", "b", a, b, 0.05, a_seeds=(0, 1, 2), b_seeds=(0, 1, 2))
    # b lost its middle seed: seeds 0 and 2 pair (differences 0.4 and 0.2), never b's seed 2 with a's seed 1
    t = judge.Test("a", ">", "b", a, b, 0.05, a_seeds=(0, 1, 2), b_seeds=(0, 2))
    assert t.paired[0] == (0, 2) and t.diff == pytest.approx(0.3)


def test_a_diverged_runs_nan_counts_as_missing_and_the_row_says_so(report):
    assert metric({"test_acc": NAN}, "test_acc") is None and metric({"test_acc": NAN, "test_err": 4.0}, "test_acc") is None
    assert metric({"test_err": NAN}, "test_acc") is None and metric({"test_acc": 95.0}, "test_err") == 5.0
    r = row(report, "H3", "le_grad > ce")
    # the paired test on seeds 0 and 2 (differences 0.5 and 0.4): numbers, not NaN
    assert (r["n_a"], r["n_b"], r["n_pairs"]) == ("3", "2", "2") and float(r["diff"]) == pytest.approx(0.45)
    assert not math.isnan(float(r["p_support"])) and not math.isnan(float(r["ci_low"]))
    assert "NaN (a diverged run), counted as missing: ce seed 1" in r["note"]
    assert "no variance" not in r["note"]
    assert "NaN (a diverged run), counted as missing: ce seed 1" in report["pages"]["claims.md"]
    table3 = (report["out"] / "tables" / "table3.md").read_text()
    assert "| ce | 4.90 ± 0.14 (2 of 3) |" in table3  # the table leaves the NaN out too


def comparison(differences, op=">", margin=None) -> judge.Test:
    base = [90.0, 90.25, 89.75]
    a = Stat(tuple(b + d for b, d in zip(base, differences)), 3)
    t = judge.Test("a", op, "b", a, Stat(tuple(base), 3), 0.05, margin, a_seeds=(0, 1, 2), b_seeds=(0, 1, 2))
    judge.decide([judge.Line("X", "cifar10", "synthetic", "resnet8", [t])], "all")
    return t


def test_an_observed_difference_of_exactly_0_is_not_said_to_point_the_other_way(report):
    t = comparison([0.25, -0.25, 0.0])  # Δ = 0: the null of a superiority test
    assert t.verdict == "inconclusive" and t.diff == pytest.approx(0.0, abs=1e-12)
    assert not t.other_way and t.on_null and t.seeds_needed is None
    assert "points the other way" not in t.plan_text and "the observed Δ is 0, the null itself" in t.plan_text
    # the same at a non-inferiority margin: Δ = −m exactly (H2: le_gradcam − dropout = −0.5)
    h2 = row(report, "H2", "le_gradcam >= dropout")
    assert float(h2["diff"]) == pytest.approx(-0.5) and h2["verdict"] == "inconclusive"
    assert "the observed Δ is -0.50, the null itself" in h2["power_note"] and "other way" not in h2["power_note"]
    # a Δ truly on the other side still says so
    assert "points the other way" in comparison([-0.25, -0.5, 0.0]).plan_text


def test_the_faithfulness_interval_is_documented_at_its_level():
    assert evaluate.CI_LEVEL == 0.90
    assert "90 % Student-t" in evaluate.faithfulness.__doc__ and "95 %" not in evaluate.faithfulness.__doc__
    assert "95 %" not in evaluate.__doc__


def curves(n: int, steps: int = 4) -> tuple[dict, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    return {"real": torch.rand(2, n, steps + 1, generator=g, dtype=torch.float64),
            "random": torch.rand(2, n, steps + 1, generator=g, dtype=torch.float64)}, 1 + torch.rand(n, generator=g)


def test_a_faithfulness_score_needs_a_minimum_of_scored_images():
    n = evaluate.MIN_SCORED
    few, clean = curves(12)
    scored = torch.zeros(12, dtype=torch.bool)
    scored[: n - 1] = True  # one image short
    out = evaluate.faithfulness(few, clean, scored, 4)
    assert out["faithfulness_images"] == n - 1 and out["faithfulness_min_images"] == n
    assert all(out[k] is None for k in ("deletion_auc", "insertion_auc", "deletion_auc_relative",
                                        "insertion_auc_relative_ci", "faithfulness_scale"))
    scored[n - 1] = True
    out = evaluate.faithfulness(few, clean, scored, 4)
    assert out["faithfulness_images"] == n and out["deletion_auc_relative"] is not None
    assert len(out["insertion_auc_relative_ci"]) == 2


def test_beyond_counts_and_names_the_runs_with_too_few_scored_images():
    class Run:
        def __init__(self, scored):
            self.metrics = {"faithfulness_images": float(scored)}

    class Results:
        runs = {"d/m/ce/seed0": Run(64), "d/m/le/seed1": Run(1), "d/m/le/seed2": Run(9)}

    text = unscored_text(Results())
    assert text.startswith(f"A score needs at least {evaluate.MIN_SCORED} scored images")
    assert "2 runs fall short: `d/m/le/seed1` (1 scored), `d/m/le/seed2` (9 scored)." in text
    Results.runs = {"d/m/ce/seed0": Run(64)}
    assert "every evaluated run has enough" in unscored_text(Results())


def test_the_deciding_comparison_follows_the_combine_rule():
    strong, weak, against = comparison([1.0, 1.25, 0.75]), comparison([0.4, 0.65, 0.15]), comparison([-10, -9.75, -10.25])
    line = judge.Line("X", "cifar10", "synthetic", "resnet8", [strong, weak])
    judge.decide([line], "all")
    assert glance.deciding([line], "all")[1] is weak  # all: the weakest must hold too
    judge.decide([line], "any")
    assert glance.deciding([line], "any")[1] is strong  # any: one suffices, the strongest
    line = judge.Line("X", "cifar10", "synthetic", "resnet8", [strong, against])
    judge.decide([line], "all")
    assert line.verdict == "not supported" and glance.deciding([line], "all")[1] is against
    assert glance.brief({"compare": [["dkpp", ">", "ce"], ["kd", ">", "dkpp"]]}) == "dkpp > ce; kd > dkpp"
    assert glance.brief({"compare": ["le", "<", "ce"], "metric": "ece"}) == "ece: le < ce"
    assert glance.brief({"compare": [["a", "<=", "b"], ["c", ">", ["d", "e"]]]}) == "a <= b; c > d, e"
    assert render.shown("supported", "rehearsal") == "supported (rehearsal)"
    assert forest.panels([]) == {}


def test_missing_and_stale_runs_are_listed_one_line_per_row():
    from introspect.report.index_page import by_row

    assert by_row(["d/m/ce/seed2", "d/m/ce/seed0", "d/m/ls-0.9/seed1"]) == ["`d/m/ce` seeds 0, 2", "`d/m/ls-0.9` seed 1"]


def test_superseded_copies_are_listed_one_line_per_row():
    from introspect.report.index_page import superseded_markdown
    from introspect.report.results import Superseded

    kept = [Superseded("d/m/ce/seed0", "20261206T1", "its code changed", 2**20),
            Superseded("d/m/ce/seed1", "20261206T2", "its config changed", 2**20),
            Superseded("d/m/ce/seed0", "20261206T3", "its code changed", 2**20)]
    head, table = superseded_markdown(kept)
    assert head == "3 superseded runs kept whole under `<run>/superseded/<time>/` (3.0 MiB in all):\n"
    assert "| `d/m/ce` | 0, 1 | 3 | 20261206T1 to 20261206T3 | its code changed; its config changed | 3.0 |" in table
    assert superseded_markdown([]) == ["Nothing superseded.\n"]
