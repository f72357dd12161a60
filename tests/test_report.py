"""The report, on fake results with known numbers (nothing is trained here)."""
import csv
import json
import math
import re
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch
import yaml
from scipy.stats import ttest_ind, ttest_rel

from introspect import pipeline
from introspect.config import resolve
from introspect.report import make_report
from introspect.report import claims, claims_read, evidence, judge, rank_check, render, stats
from introspect.provenance import of_run, tool_digest
from introspect.provenance import dataset_digest
from introspect.report.results import Stat

REFERENCE = Path(__file__).resolve().parents[1] / "workflow" / "reference"
LE = {"method": "le", "set": {"method.explainer": "gradcam"}}
PARAMS = {
    "scale": "quick",
    "significance": 0.05,
    "seeds": [0, 1, 2],
    "datasets": {"cifar10": "synthetic", "mnist": "synthetic"},
    "recipes": {},
    "tables": {
        "table2": {"caption": "Regularization methods (test accuracy, %)", "dataset": "cifar10", "metric": "test_acc",
                   "models": ["resnet8"],
                   "rows": {"ce": {"method": "ce"}, "ls": {"method": "ls", "sweep": {"method.alpha": [0.8, 0.9]}},
                            "le_gradcam": LE}},
        "table3": {"caption": "Regularization methods (test error, %)", "dataset": "mnist", "metric": "test_err",
                   "models": ["mlp1024"],
                   "rows": {"ce": {"method": "ce"}, "le_grad": {"method": "le", "set": {"method.explainer": "grad"}}}},
        "figure3": {"caption": "LE with each explainer", "paper_table": "figure3", "dataset": "cifar10",
                    "models": ["resnet8"],
                    "rows": {f"le_{e}": {"method": "le", "set": {"method.explainer": e}}
                             for e in ("grad_input", "guided_bp", "grad", "gradcam")}},
    },
    "explanations": {"cifar10": {"model": "resnet8", "row": "le_gradcam", "seed": 0},
                     "mnist": {"model": "mlp1024", "row": "le_grad", "seed": 0}},
}
# Per-seed test accuracy (and val accuracy where it matters) of every variant. Rows of one seed are paired:
# no two rows that a claim compares differ by the same amount at every seed (the paired test needs a spread).
TEST = {
    ("resnet8", "ce"): [80, 81, 82],
    ("resnet8", "ls-0.8"): [70, 71, 72],  # best on val ...
    ("resnet8", "ls-0.9"): [95, 96, 97],  # ... best on test: the table must show 0.8
    ("resnet8", "le_gradcam"): [90, 92, 91],
    ("resnet8", "le_grad_input"): [60, 80, 70],
    ("resnet8", "le_guided_bp"): [65, 75, 85],
    ("resnet8", "le_grad"): [86, 87, 88],
    ("mlp1024", "ce"): [95, 96, 97],
    ("mlp1024", "le_grad"): [85, 87, 86],
}
VAL = {("resnet8", "ls-0.8"): [90, 90.5, 91], ("resnet8", "ls-0.9"): [85, 85.5, 86]}
MISSING = "synthetic/resnet8/ls-0.9/seed2"
PAIRS = [(0, 6), (1, 7), (3, 5), (4, 9)]
CLAIMS = {"claims": [
    {"id": "C1", "source": "Table 1", "text": "KD beats CE.", "compare": ["kd", ">", "ce"],
     "where": {"dataset": "cifar10", "models": ["cnn8"]}},
    {"id": "C4", "source": "Tables 2 and 3", "text": "LE beats the regularizers.",
     "compare": ["le", ">", ["ce", "dropout", "ls", "cp"]], "combine": "all",
     "where": {"cifar10": ["resnet8"], "mnist": ["mlp1024"]}},
    {"id": "C9", "source": "Figure 3", "text": "Explainer order.",
     "compare": ["le_grad_input", "<", "le_guided_bp", "<", "le_grad", "<", "le_gradcam"], "combine": "all",
     "where": {"dataset": "cifar10", "models": ["resnet8"]}},
    {"id": "T1", "source": "test", "text": "LE beats CE.", "compare": ["le_gradcam", ">", "ce"],
     "where": {"dataset": "cifar10", "models": ["resnet8", "resnet14"]}},  # resnet14: not run by this config
    {"id": "T2", "source": "test", "text": "LE is competitive.", "compare": ["le_gradcam", ">=", ["ce", "le_grad"]],
     "combine": "all", "margin": 0.5, "where": {"dataset": "cifar10", "models": ["resnet8"]}},
    {"id": "C10", "source": "Figure 2", "text": "Similar classes are close.", "check": "top 3"},
]}


def seed_similarity(seed: int) -> torch.Tensor:
    """MNIST's matrix per seed: seed 2 puts classes 0, 1, 2 above 5 in 3's row (5 ranks 4th there), the
    mean of seeds 0-2 does not ((0.1 + 0.1 + 0.95) / 3 < 0.9)."""
    sim = pair_similarity()
    if seed == 2:
        sim[3, [0, 1, 2]] = 0.95
    return sim


def pair_similarity(c: int = 10) -> torch.Tensor:
    sim = torch.full((c, c), 0.1)
    for a, b in PAIRS:
        sim[a, b] = sim[b, a] = 0.9
    return sim.fill_diagonal_(1.0)


def fake_explanations(classes: list[str], map_shape: tuple, n: int = 3, similarity: torch.Tensor | None = None) -> dict:
    g = torch.Generator().manual_seed(0)
    c = len(classes)
    similarity = pair_similarity(c) if similarity is None else similarity
    return {"run": "fake", "explainer": "fake", "classes": classes, "similarity": similarity,
            "code_sha256": tool_digest("analysis"),
            "images": torch.rand(n, 3, 16, 16, generator=g), "labels": torch.arange(n), "predictions": torch.arange(n),
            "maps": torch.randn(n, c, *map_shape, generator=g), "cos": torch.rand(n, c, generator=g)}


def write_current_config(d: Path, run: pipeline.Run) -> None:
    """The config.json of a current run: the plan's config with today's provenance."""
    cfg = resolve(run.config)
    cfg["provenance"] = of_run(cfg, dataset_digest(cfg["dataset"]["path"], {}))
    (d / "config.json").write_text(json.dumps(cfg))


def write_run(root: Path, run: pipeline.Run, test: float, val: float) -> None:
    d = root / run.id
    d.mkdir(parents=True)
    metrics = {"train_loss": 0.1, "train_acc": 99.0, "val_loss": 0.2, "val_acc": val, "test_loss": 0.3,
               "test_acc": test, "test_err": 100.0 - test, "epochs": 3}
    best = test - 15 if run.variant == "le_gradcam" else test  # the best-val protocol turns T1 around
    metrics |= {"best_val_epoch": 2, "best_val_test_acc": best, "best_val_test_err": 100.0 - best}
    (d / "metrics.json").write_text(json.dumps(metrics))
    write_current_config(d, run)
    history = [{"epoch": e, "lr": 0.05, "train_loss": 1.0 / (e + 1), "train_acc": 90.0, "val_loss": 0.2,
                "val_acc": val - 2 + e, "test_loss": 0.3, "test_acc": test - 2 + e, "seconds": 2.5, "images_per_s": 1e3}
               for e in range(3)]
    pq.write_table(pa.Table.from_pylist(history), d / "history.parquet")


@pytest.fixture(scope="module")
def plan():
    return pipeline.plan(PARAMS)


@pytest.fixture(scope="module")
def setup(plan, tmp_path_factory):
    root = tmp_path_factory.mktemp("report")
    results, reference = root / "results", root / "reference"
    for run_id, run in plan.runs.items():
        if run_id != MISSING:
            test = TEST[run.model, run.variant][run.seed]
            val = VAL.get((run.model, run.variant), [t + 1 for t in TEST[run.model, run.variant]])
            write_run(results, run, test, val[run.seed])
    # one explanations.pt per seed of the explained rows; on MNIST seed 2 alone breaks the pair (3, 5)
    for run in plan.explained["cifar10"]:
        torch.save(fake_explanations([f"c{k}" for k in range(10)], (4, 4)), results / run.id / "explanations.pt")
    for run in plan.explained["mnist"]:
        torch.save(fake_explanations([str(k) for k in range(10)], (3, 16, 16), similarity=seed_similarity(run.seed)),
                   results / run.id / "explanations.pt")
    reference.mkdir()
    (reference / "paper_tables.csv").write_text((REFERENCE / "paper_tables.csv").read_text())
    (reference / "paper_claims.yaml").write_text(yaml.safe_dump(CLAIMS))
    out = root / "reports"
    summary = make_report(plan, results, reference, out, code_version="abc1234", config_path="params.yaml")
    return {"root": root, "results": results, "reference": reference, "out": out, "summary": summary}


def claim_rows(out: Path) -> list[dict]:
    with open(out / "claims.csv", newline="") as f:
        return list(csv.DictReader(f))


def test_table_sweep_is_chosen_on_validation_not_test(setup):
    md = (setup["out"] / "tables" / "table2.md").read_text()
    assert "| ls (α=0.8) | 71.00 ± 1.00 (3) | 88.14 ± 0.16 | — |" in md  # no Δ on a stand-in dataset
    assert "α=0.9" not in md
    sweeps = (setup["out"] / "tables" / "sweeps.md").read_text()
    assert "| ls | resnet8 | method.alpha | 0.8 | 90.50 ± 0.50 (3) | 71.00 ± 1.00 (3) | ✓ |" in sweeps
    assert "| ls | resnet8 | method.alpha | 0.9 | 85.25 ± 0.35 (2 of 3) | 95.50 ± 0.71 (2 of 3) |  |" in sweeps


def test_table_mean_std_n_paper_value_and_difference(setup):
    out = setup["out"]
    md = (out / "tables" / "table2.md").read_text()
    assert "| ce | 81.00 ± 1.00 (3) | 87.95 ± 0.32 | — |" in md  # synthetic is not CIFAR10: no Δ
    assert "ours on synthetic (stands in for cifar10 at scale quick)" in md.lower()
    assert "no Δ: the paper's numbers are on cifar10, another dataset than ours" in md
    table3 = (out / "tables" / "table3.md").read_text()  # test error: 100 - accuracy
    assert "| ce | 4.00 ± 1.00 (3) | 1.39 ± 0.05 | — |" in table3
    assert "reported by Pereyra et al. 2017" in table3  # extra published rows
    figure3 = (out / "tables" / "figure3.md").read_text()
    assert "| le_grad | 87.00 ± 1.00 (3) |\n" in figure3  # no published numbers for Figure 3: no paper, Δ columns
    assert "paper: published" not in figure3
    tex = (out / "tables" / "table2.tex").read_text()
    assert all(rule in tex for rule in (r"\toprule", r"\midrule", r"\bottomrule"))
    assert r"ls ($\alpha$=0.8) & 71.00 $\pm$ 1.00 (3) & 88.14 $\pm$ 0.16 & --- \\" in tex
    headline = json.loads((out / "metrics.json").read_text())
    assert headline["table2"]["resnet8"]["ls"] == 71.0 and headline["table3"]["mlp1024"]["le_grad"] == 14.0


def test_paired_and_welch_p_match_scipy(setup):
    row = next(r for r in claim_rows(setup["out"]) if r["claim"] == "T1")
    a, b = TEST["resnet8", "le_gradcam"], TEST["resnet8", "ce"]
    # the verdict's test: paired by seed (differences 10, 11, 9); Welch's unpaired p beside it
    assert float(row["p_support"]) == pytest.approx(ttest_rel(a, b, alternative="greater").pvalue, rel=1e-12)
    assert float(row["p_against"]) == pytest.approx(ttest_rel(a, b, alternative="less").pvalue, rel=1e-12)
    assert float(row["p_support_welch"]) == pytest.approx(
        ttest_ind(a, b, equal_var=False, alternative="greater").pvalue, rel=1e-12)
    assert float(row["p_against_welch"]) == pytest.approx(
        ttest_ind(a, b, equal_var=False, alternative="less").pvalue, rel=1e-12)
    # one comparison at one model: no correction
    assert row["p_support_adjusted"] == row["p_support"]
    assert row["test"] == "superiority (paired t on per-seed differences, one-sided)" and row["n_pairs"] == "3"
    assert float(row["diff"]) == pytest.approx(10.0) and row["verdict"] == "supported"
    # the interval at the level of the one-sided test at 0.05: 90 % two-sided
    ci = ttest_rel(a, b).confidence_interval(0.90)
    assert float(row["ci_level"]) == 0.9 and (float(row["ci_low"]), float(row["ci_high"])) == pytest.approx((ci.low, ci.high))
    assert float(row["std_diff"]) == pytest.approx(1.0)
    assert row["status"] == "rehearsal" and row["evidence"].startswith("synthetic stands in for cifar10 (")
    assert "; 3 seeds a side; not the paper's recipe: epochs 3 (paper 160)" in row["evidence"]


def test_claim_verdicts(setup):
    rows = claim_rows(setup["out"])
    verdict = {r["claim"]: r["claim_verdict"] for r in rows}
    assert verdict["T1"] == "supported"
    assert verdict["C1"] == "not run in this config"
    assert verdict["C9"] == "inconclusive"  # one supported link, two overlapping ones
    assert verdict["C4"] == "not supported"  # le_grad (le on mnist) loses to ce
    assert verdict["T2"] == "supported"
    by = {(r["claim"], r["model"], r["comparison"]): r for r in rows}
    assert by["C4", "mlp1024", "le_grad > ce"]["verdict"] == "not supported"
    assert by["C4", "resnet8", "le_gradcam > ls (α=0.8)"]["verdict"] == "supported"
    assert by["C4", "resnet8", "le_gradcam > dropout"]["verdict"] == "not run in this config"
    assert [r["verdict"] for r in rows if r["claim"] == "C1"] == ["not run in this config"]  # one line
    assert by["C4", "resnet8", "le_gradcam > ce"]["line_verdict"] == "inconclusive"  # dropout, cp not run
    assert [by["C9", "resnet8", c]["verdict"] for c in
            ("le_grad_input < le_guided_bp", "le_guided_bp < le_grad", "le_grad < le_gradcam")] == \
        ["inconclusive", "inconclusive", "supported"]
    assert "ranks 1 of 3; le_gradcam − the best other: +4.00 (le_grad)" in by["T2", "resnet8", "le_gradcam >= ce"]["note"]
    # T2: le_gradcam is 10 and 4 points above, far beyond the margin: non-inferiority holds
    t2 = by["T2", "resnet8", "le_gradcam >= le_grad"]
    assert t2["margin"] == "0.5" and t2["combine"] == "all" and t2["test"].startswith("non-inferiority Δ > −0.5")
    a, b = TEST["resnet8", "le_gradcam"], TEST["resnet8", "le_grad"]
    assert float(t2["p_support"]) == pytest.approx(ttest_rel(np.add(a, 0.5), b, alternative="greater").pvalue)
    assert t2["support_correction"] == judge.IUT
    md = (setup["out"] / "claims.md").read_text()
    assert "## C1 (Table 1): not run in this config" in md and "Not run in this config." in md
    assert "Combine: `all` (every comparison at a dataset and model must hold; 2 comparisons at each); " \
           "margin 0.5 points of accuracy." in md
    assert "intersection-union test" in md and "Holm-corrected (step-down)" in md and "non-inferiority" in md
    # every verdict cell of a stand-in run says it is a rehearsal
    assert "## C4 (Tables 2 and 3): not supported (rehearsal)" in md
    assert "| not supported (rehearsal) |" in md and "| supported |" not in md


def test_figure2_rank_check(setup):
    rows = [r for r in claim_rows(setup["out"]) if r["claim"] == "C10"]
    assert {r["line_verdict"] for r in rows if r["paper_dataset"] == "cifar10"} == {"not applicable at this scale"}
    assert {r["line_verdict"] for r in rows if r["paper_dataset"] == "mnist"} == {"supported"}
    assert rows[0]["claim_verdict"] == "supported"
    # three seeds of explanation data, on synthetic data: a rehearsal
    mnist = {r["comparison"]: r for r in rows if r["paper_dataset"] == "mnist"}
    assert {r["status"] for r in mnist.values()} == {"rehearsal"}
    assert "synthetic stands in for mnist (not MNIST's images); 3 seeds of explanation data; " in mnist["pair (3, 5)"]["evidence"]
    assert mnist["pair (3, 5)"]["test"].startswith("a fixed rule, not a statistical test")
    # the check is on the mean of the seeds' matrices; each pair says in how many seeds it passes alone
    assert mnist["pair (3, 5)"]["verdict"] == "supported"
    assert mnist["pair (3, 5)"]["note"] == "ranks 1 and 1 on the mean of 3 seeds (top 3 passes); passes in 2 of 3 seeds"
    assert mnist["pair (4, 9)"]["note"].endswith("passes in 3 of 3 seeds")
    md = (setup["out"] / "claims.md").read_text()
    assert "| mnist | synthetic | mlp1024 | pair (3, 5): ranks 1 and 1 on the mean of 3 seeds (top 3 passes); " \
           "passes in 2 of 3 seeds |" in md
    assert "explainer fake, synthetic/mlp1024/le_grad: the mean of seeds 0, 1, 2" in md
    # what the line rests on: a reference to its dataset's row, stated once in the page
    assert "| mnist | synthetic | mlp1024 | **at this dataset and model** |" in md and "| rests on D2 |" in md
    assert md.count("synthetic stands in for mnist (not MNIST's images)") == 1
    assert "3 seeds of explanation data (C10 mnist/mlp1024)" in md
    sim = pair_similarity().numpy()
    sim[3, [0, 1, 2]] = 0.95  # three classes above 5 in 3's row: 5 ranks 4th there
    checks = rank_check.check_pairs(sim, [str(k) for k in range(10)], [("3", "5"), ("4", "9"), ("truck", "cat")])
    assert [c.ranks for c in checks] == [(4, 1), (1, 1), None]
    assert [c.passes for c in checks] == [False, True, False]


def test_verdict_rules():
    assert judge.verdict(0.01, 0.99, 0.05) == "supported"
    assert judge.verdict(0.99, 0.01, 0.05) == "not supported"
    assert judge.verdict(0.2, 0.8, 0.05) == "inconclusive"
    assert judge.verdict(math.nan, math.nan, 0.05) == "inconclusive"
    assert math.isnan(stats.paired_one_sided([1.0], [2.0], "greater"))  # fewer than 2 seeds
    assert math.isnan(stats.paired_one_sided([1.0, 2.0], [0.0, 1.0], "greater"))  # no variance in the differences
    assert judge.combine(["supported", "inconclusive"]) == "inconclusive"
    assert judge.combine(["supported", "not supported"]) == "not supported"
    s = Stat((1.0, 2.0, 3.0), 3)
    assert (s.mean, s.std, s.n) == (2.0, 1.0, 3) and math.isnan(Stat((1.0,), 3).std)


def test_compare_parsing():
    assert claims_read.parse(["a", ">", ["b", "c"]]) == [("a", ">", "b"), ("a", ">", "c")]
    assert claims_read.parse([["a", "b"], ">", "c"]) == [("a", ">", "c"), ("b", ">", "c")]
    assert claims_read.parse(["a", "<", "b", "<", "c"]) == [("a", "<", "b"), ("b", "<", "c")]
    assert claims_read.parse([["a", ">", "b"], ["c", ">", "a"]]) == [("a", ">", "b"), ("c", ">", "a")]
    with pytest.raises(ValueError, match="cannot read"):
        claims_read.parse(["a", "?", "b"])
    assert claims_read.places({"dataset": "d", "models": ["m", "n"]}) == [("d", "m"), ("d", "n")]
    assert claims_read.places({"d": ["m"], "e": ["n"]}) == [("d", "m"), ("e", "n")]


def test_reference_claims_all_parse():
    claims = claims_read.read_claims(REFERENCE / "paper_claims.yaml")  # a ConfigError fails the test
    for claim in claims:
        if "compare" in claim:
            assert claims_read.parse(claim["compare"]) and claims_read.places(claim["where"])


def test_missing_run_is_reported(setup):
    out = setup["out"]
    assert setup["summary"]["missing_runs"] == [MISSING]
    index = (out / "index.md").read_text()
    assert "- missing: `synthetic/resnet8/ls-0.9` seed 2" in index  # one line per row, its seeds named
    head = index.splitlines()[2]  # the report's first claim, before any table
    assert head.startswith("**Incomplete**: ") and "; 1 missing." in head and setup["summary"]["stale_runs"] == {}


def test_results_parquet_one_row_per_present_run(setup, plan):
    rows = pq.read_table(setup["out"] / "results.parquet").to_pylist()
    assert sorted(r["run_id"] for r in rows) == sorted(set(plan.runs) - {MISSING})
    ls = next(r for r in rows if r["run_id"] == "synthetic/resnet8/ls-0.8/seed1")
    assert ls["label"] == "ls" and ls["method"] == "ls" and ls["sweep_key"] == "method.alpha"
    assert ls["sweep_value"] == "0.8" and json.loads(ls["method_options"])["alpha"] == 0.8
    assert ls["test_acc"] == 71.0 and ls["seed"] == 1 and ls["epochs"] == 3 and ls["wall_seconds"] == 7.5
    ce = next(r for r in rows if r["run_id"] == "synthetic/resnet8/ce/seed0")
    assert ce["tables"] == "table2" and ce["paper_datasets"] == "cifar10"


def test_figures_and_curves_written(setup):
    out = setup["out"]
    for stem in ("figure1_cifar10", "figure2_cifar10", "figure1_mnist", "figure2_mnist", "figure3"):
        for ext in ("png", "pdf"):
            assert (out / "figures" / f"{stem}.{ext}").stat().st_size > 0
    assert sorted(p.name for p in (out / "curves").iterdir()) == ["figure3.csv", "table2.csv", "table3.csv"]
    curve = list(csv.DictReader((out / "curves" / "table2.csv").open()))  # one plot per table, a curve per row
    assert list(curve[0]) == ["row", "epoch", "train_loss", "val_acc", "test_acc"]
    assert [c["row"] for c in curve] == ["ce"] * 3 + ["ls"] * 3 + ["le_gradcam"] * 3
    ce_last = curve[2]
    assert np.allclose([float(ce_last[k]) for k in ("epoch", "train_loss", "val_acc", "test_acc")], [2, 1 / 3, 82.0, 81.0])
    assert float(curve[5]["test_acc"]) == 71.0  # ls: the value chosen on validation (0.8), not the best on test


def test_index_links_resolve(setup):
    out = setup["out"]
    index = (out / "index.md").read_text()
    links = re.findall(r"\]\(([^)]+)\)", index)
    assert {"tables/table2.md", "tables/table2.tex", "tables/sweeps.md", "claims.md", "results.parquet",
            "figures/figure3.png"} <= set(links)
    assert all((out / link).is_file() for link in links)
    assert "Produced by code version abc1234 with config params.yaml" in index
    assert sorted(setup["summary"]["files"]) == sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file())


def test_missing_explanations_do_not_crash(setup, plan):
    for run in plan.explained["cifar10"]:
        (setup["results"] / run.id / "explanations.pt").unlink()
    out = setup["root"] / "reports_missing"
    summary = make_report(plan, setup["results"], setup["reference"], out, "abc1234", "params.yaml")
    assert len(summary["missing_explanations"]) == 3
    assert (out / "figures" / "figure1_cifar10.png").stat().st_size > 0
    assert "- missing: explanations `" in (out / "index.md").read_text()
    c10 = [r for r in claim_rows(out) if r["claim"] == "C10" and r["paper_dataset"] == "cifar10"]
    assert c10[0]["line_verdict"] == "inconclusive" and "missing" in c10[0]["note"]


def test_extra_columns_and_a_rows_own_teacher(tmp_path):
    from introspect.report.results import Results
    from introspect.report.tables import build_table

    srl = {"model": "resnet8", "method": "srl_teacher"}
    params = {**PARAMS, "seeds": [0, 1], "tables": {"srd": {
        "caption": "SRD", "paper_table": "srd", "dataset": "cifar10", "models": ["resnet8"], "columns": ["samples_used", "params"],
        "teacher": {"model": "resnet8"},
        "rows": {"kd": {"method": "kd"}, "srl_significance": {"method": "srl_significance", "teacher": srl},
                 "srl_hybrid": {"method": "srl_hybrid", "teacher": srl}}}}}
    params.pop("explanations")
    plan = pipeline.plan(params)
    used = {"teacher": 100.0, "kd": 100.0, "teacher_srl_teacher": 60.0, "srl_significance": 60.0, "srl_hybrid": 40.0}
    for run in plan.runs.values():
        d = tmp_path / run.id
        d.mkdir(parents=True)
        (d / "metrics.json").write_text(json.dumps({"val_acc": 90.0, "test_acc": 90.0 + run.seed, "epochs": 1,
                                                   "samples_used": used[run.variant] + run.seed, "params": 1234567.0}))
        write_current_config(d, run)
    md = build_table(plan.tables[0], Results(plan, tmp_path), {}).markdown()
    assert "| method | resnet8 ours | resnet8 samples used (%) | resnet8 params |" in md  # no published table: no paper, Δ
    assert "| srl_hybrid | 90.50 ± 0.71 (2) | 40.5 | 1,234,567 |" in md
    assert "| teacher (resnet8, ce) | 90.50 ± 0.71 (2) | 100.5 | 1,234,567 |" in md
    assert "| teacher of srl_significance, srl_hybrid (resnet8, srl_teacher) | 90.50 ± 0.71 (2) | 60.5 |" in md


def test_the_difference_to_the_paper_is_shown_only_on_the_papers_dataset():
    from introspect.report.tables import Ref, compared

    ours = Stat((3.0, 4.0, 5.0), 3)  # mean 4.00, std 1.00
    assert compared(ours, Ref(1.39, 0.05, ""), comparable=True) == ["4.00 ± 1.00 (3)", "1.39 ± 0.05", "+2.61"]
    assert compared(ours, Ref(1.39, 0.05, ""), comparable=False) == ["4.00 ± 1.00 (3)", "1.39 ± 0.05", "—"]


def test_the_other_epoch_protocol_is_computed_and_a_differing_verdict_flagged(setup, plan):
    from introspect.report.results import Results

    best = Results(plan, setup["results"], "best_val").stat("synthetic", "resnet8", "le_gradcam", "test_acc")
    assert best.values == (75.0, 77.0, 76.0)  # the fixture's test accuracy at the best-val epoch
    assert Results(plan, setup["results"]).stat("synthetic", "resnet8", "le_gradcam", "test_acc").values == (90.0, 92.0, 91.0)
    claims = (setup["out"] / "claims.md").read_text()
    assert "Verdicts use the test accuracy of the **last** epoch protocol" in claims
    assert re.search(r"\| T1 \| test \| all \| supported \(rehearsal\) \| ⚠ not supported \(rehearsal\) \|", claims), claims[:3000]
    index = (setup["out"] / "index.md").read_text()
    assert "| claim | in a few words | verdict | rests on (data) | deciding comparison | Δ [90 % CI] | paper's Δ |" in index
    assert "| T1 | le_gradcam > ce | supported (⚠ not supported under best_val) | rehearsal (D1) |" in index
    assert "at the last epoch (the paper's protocol)" in (setup["out"] / "tables" / "table2.md").read_text()


def test_the_head_says_a_stand_in_run_is_a_smoke_test_and_what_it_can_decide(setup):
    index = (setup["out"] / "index.md").read_text()
    assert index.splitlines()[0].startswith("# Report (a rehearsal: no verdict here is decided")
    assert index.splitlines()[4].startswith("Scale **quick**; seeds 0, 1, 2; significance level 0.05")
    head = next(line for line in index.splitlines() if line.startswith("**A smoke test"))
    assert head.startswith("**A smoke test where a dataset stands in for the paper's** "
                           "(synthetic for cifar10; synthetic for mnist)")
    # synthetic stands in everywhere: every claim that runs is a rehearsal; C1 has no table here
    assert "**What this scale decides** (3 seeds; synthetic: 3 epochs): decided (the paper's full dataset, ≥ 3 seeds " \
           "a side, the paper's recipe): none; on reduced data (a real subset, the same rules): none; rehearsed only: " \
           "C4, C9, T1, T2, C10; not run at this scale: C1." in head
    # the inconclusive claim C9: claims.md says what each of its inconclusive comparisons would need
    claims = (setup["out"] / "claims.md").read_text()
    c9 = next(line for line in claims.splitlines() if line.startswith("| cifar10 | synthetic | resnet8 | le_grad_input < le_guided_bp |"))
    assert "seeds per side" in c9


MNIST5K = {**PARAMS, "datasets": {"cifar10": "digits", "mnist": "mnist5k"},
           "tables": {"table3": PARAMS["tables"]["table3"]}, "explanations": {}}


def fake_prepared(path: Path, train: int, val: int, test: int) -> None:
    """A prepared-dataset file with only what the report reads of it: the split sizes and a digest."""
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"tensors": {f"y_{s}": torch.zeros(n, dtype=torch.uint8) for s, n in
                            (("train", train), ("val", val), ("test", test))}, "sha256": "fake"}, path)


def test_reduced_data_and_decided_verdicts_say_what_they_rest_on(tmp_path, monkeypatch):
    """mnist5k is a real subset of MNIST: at the paper's MLP recipe with 3 seeds its lines are "reduced
    data", never plain decided; at 3 epochs or with 2 seeds they are rehearsals. Only the full MNIST at
    the paper's recipe is decided. Every evidence names the data's size against MNIST's 60,000."""
    from introspect.data.prepared import prepare
    from introspect.report.index_page import title_line, what_it_can_decide
    from introspect.report.results import Results
    from introspect.report.tables import read_paper

    monkeypatch.chdir(tmp_path)  # the plan's data/processed/<dataset>.pt, prepared here
    prepare("mnist5k", Path("data/processed/mnist5k.pt"))  # the real one: 3,600 + 400 val, test 1,000
    fake_prepared(Path("data/processed/mnist.pt"), 54_000, 6_000, 10_000)  # MNIST's sizes, no images
    assert evidence.real_data("mnist5k", "mnist") and evidence.real_data("mnist", "mnist")
    assert not evidence.real_data("digits", "mnist")
    claim = {"id": "C4", "compare": ["le", ">", ["ce"]], "combine": "all", "where": {"mnist": ["mlp1024"]}}
    values = {"ce": [95.0, 95.2, 94.8], "le_grad": [95.1, 95.4, 94.8]}  # differences 0.1, 0.2, 0: inconclusive

    def lines_of(params, folder):
        plan = pipeline.plan(params)
        for run in plan.runs.values():
            d = folder / run.id
            d.mkdir(parents=True)
            acc = values[run.variant][run.seed]
            (d / "metrics.json").write_text(json.dumps({"val_acc": acc, "test_acc": acc, "test_err": 100 - acc}))
            write_current_config(d, run)
        results = Results(plan, folder)
        return plan, claims.evaluate(claim, plan, results, read_paper(REFERENCE / "paper_tables.csv"))[results.protocol]

    plan, (line,) = lines_of(MNIST5K, tmp_path / "paper_recipe")
    assert not line.decided and line.status == "reduced data" and line.verdict == "inconclusive"
    assert line.evidence == ("mnist5k: a real subset of MNIST: 3,600 + 400 val of MNIST's 60,000 training images "
                             "(7 % of train + val), test 1,000 (paper 10,000); 3 seeds a side; the paper's recipe (50 epochs, batch 16)")
    assert render.claim_cell([line]) == "inconclusive (reduced data)"
    decides = what_it_can_decide(plan, [(claim, [line])])
    assert "decided (the paper's full dataset, ≥ 3 seeds a side, the paper's recipe): none; on reduced data " \
           "(a real subset, the same rules): C4; rehearsed only: none" in decides
    assert title_line([(claim, [line])], "T").startswith("# Report (reduced data: no verdict here is decided")
    (t,) = line.tests
    # differences [0.1, 0.2, 0.0]: Δ = +0.1, std of the differences 0.1 (d = 1): 8 seeds per side; the paper's
    # Table 3 (test error 1.39 for CE, 1.10 for LE): Δ = +0.29 in accuracy, with OUR std 0.1 (d = 2.9): 3
    assert t.diff == pytest.approx(0.1) and t.std == pytest.approx(0.1)
    assert t.seeds_needed == stats.seeds_needed(0.1, 0.1, 0.05) == 8 and t.paper == pytest.approx(0.29)
    assert t.seeds_needed_paper == stats.seeds_needed(0.29, 0.1, 0.05) == 3
    assert "at the paper's Δ +0.29 with our std of the differences 0.10: 3 per side (our 3 already have 80 % power)" \
        in t.plan_text

    full = {**MNIST5K, "datasets": {"cifar10": "digits", "mnist": "mnist"}}
    _, (line,) = lines_of(full, tmp_path / "full")
    assert line.decided and render.claim_cell([line]) == "inconclusive"
    assert line.evidence.startswith("mnist: 54,000 + 6,000 val of MNIST's 60,000 training images (100 % of train + val), "
                                    "test 10,000 (paper 10,000); 3 seeds a side; the paper's recipe (50 epochs")
    assert title_line([(claim, [line])], "T") == "# Report: T\n"

    quick = {**MNIST5K, "recipes": {"mnist5k": {"epochs": 3, "batch_size": 64}}}
    _, (line,) = lines_of(quick, tmp_path / "three_epochs")
    assert line.status == "rehearsal" and render.claim_cell([line]) == "inconclusive (rehearsal)"
    assert line.evidence.endswith("; 3 seeds a side; not the paper's recipe: epochs 3 (paper 50), batch_size 64 (paper 16)")
    _, (line,) = lines_of({**MNIST5K, "seeds": [0, 1]}, tmp_path / "two_seeds")
    assert line.status == "rehearsal" and "2 seeds a side (a decided verdict needs 3)" in line.evidence


def test_rows_for_models_a_config_does_not_run_are_left_out(setup):
    claims = (setup["out"] / "claims.md").read_text()
    # T1 names resnet14, which this config does not run: no comparison row for it, only "not run" in the summary
    assert "| cifar10 | synthetic | resnet14 |" not in claims and "| cifar10 | — | resnet14 |" not in claims
    assert "| cifar10/resnet8 rehearsal; not run: cifar10/resnet14 |" in claims
    assert not [r for r in claim_rows(setup["out"]) if r["model"] == "resnet14"]
    assert "| cifar10 | synthetic | resnet8 | le_gradcam > ce |" in claims


def test_a_row_far_below_ce_is_flagged_unless_a_note_says_why(setup, tmp_path):
    """Table 2: LS (chosen 0.8: 71) trails CE (81) by 10 points; Table 3 (test error): LE 14 % against CE's 4 %."""
    table2 = (setup["out"] / "tables" / "table2.md").read_text()
    assert "Unexplained: ls is 10.0 points below CE on resnet8" in table2 and "le_gradcam is" not in table2
    assert "Unexplained: le_grad is 10.0 points below CE on mlp1024" in (setup["out"] / "tables" / "table3.md").read_text()
    from introspect.report.results import Results
    from introspect.report.tables import build_table

    note = "LS at alpha 0.8 over-smooths these 3-epoch runs."
    params = {**PARAMS, "tables": {"table2": {**PARAMS["tables"]["table2"], "notes": {"ls": {"quick": note, "paper": None}}}}}
    params.pop("explanations")
    noted = pipeline.plan(params)
    assert noted.tables[0].notes == {"ls": note} and pipeline.plan(params, "paper").tables[0].notes == {}
    md = build_table(noted.tables[0], Results(noted, setup["results"]), {}).markdown()
    assert f"Note on ls: {note}" in md and "Unexplained" not in md
    params["tables"]["table2"]["notes"] = {"kd": "no such row"}
    with pytest.raises(pipeline.ConfigError, match=r"tables.table2.notes.kd: no such row"):
        pipeline.plan(params)


def test_c10_rests_on_three_seeds_of_explanation_data_at_the_papers_recipe():
    """C10 on real MNIST images (mnist5k) at the paper's MLP recipe: reduced data with 3 seeds of explanation
    data, a rehearsal with 2 (explained seeds, or a seed's file missing), the mean over seeds ranked."""
    params = {**MNIST5K, "explanations": {"mnist": {"model": "mlp1024", "row": "le_grad"}}}
    plan = pipeline.plan(params)
    assert [r.seed for r in plan.explained["mnist"]] == [0, 1, 2] and plan.explanations["mnist"].seed == 0
    claim = {"id": "C10", "check": "top 3"}
    data = {s: fake_explanations([str(k) for k in range(10)], (3, 16, 16), similarity=seed_similarity(s)) for s in range(3)}
    line = next(ln for ln in rank_check.evaluate_figure2(claim, plan, {"mnist": data}) if ln.paper_dataset == "mnist")
    assert line.status == "reduced data" and line.verdict == "supported" and line.seeds == [0, 1, 2]
    assert line.evidence.startswith("mnist5k: a real subset of MNIST: ")
    assert line.evidence.endswith("; 3 seeds of explanation data; the paper's recipe (50 epochs, batch 16)")
    assert "a fixed rule, not a statistical test" in line.note
    assert line.passing == {("0", "6"): 3, ("1", "7"): 3, ("3", "5"): 2, ("4", "9"): 3}
    # the mean of the seeds' matrices is what is ranked
    mean = rank_check.mean_over_seeds(data)
    assert mean["seeds"] == [0, 1, 2] and mean["missing"] == []
    assert mean["similarity"][3, 0] == pytest.approx((0.1 + 0.1 + 0.95) / 3) and mean["similarity"][3, 5] == pytest.approx(0.9)
    mean = rank_check.mean_over_seeds({1: data[2], 2: data[2]})
    assert rank_check.check_pairs(mean["similarity"], [str(k) for k in range(10)], [("3", "5")])[0].ranks == (4, 1)
    # a seed's explanations missing: the mean of the other two, a rehearsal that names the missing seed
    line = next(ln for ln in rank_check.evaluate_figure2(claim, plan, {"mnist": {**data, 1: None}})
                if ln.paper_dataset == "mnist")
    assert line.status == "rehearsal" and line.seeds == [0, 2] and "seed 1 missing (or stale)" in line.note
    assert "2 seeds of explanation data (a decided verdict needs 3)" in line.evidence
    # two explained seeds: a rehearsal; Figure 1's seed must be one of them
    two = pipeline.plan({**params, "explanations": {"mnist": {"model": "mlp1024", "row": "le_grad", "seeds": [1, 2]}}})
    assert two.explanations["mnist"].seed == 1
    line = next(ln for ln in rank_check.evaluate_figure2(claim, two, {"mnist": data}) if ln.paper_dataset == "mnist")
    assert line.status == "rehearsal" and line.seeds == [1, 2]
    with pytest.raises(pipeline.ConfigError, match=r"explanations\.mnist\.seed: 0 is not one of the explained seeds \(1, 2"):
        pipeline.plan({**params, "explanations": {"mnist": {"model": "mlp1024", "row": "le_grad", "seeds": [1, 2], "seed": 0}}})
    with pytest.raises(pipeline.ConfigError, match=r"explanations\.mnist: run mnist5k/mlp1024/le_grad/seed7 is not in any table"):
        pipeline.plan({**params, "explanations": {"mnist": {"model": "mlp1024", "row": "le_grad", "seeds": [0, 7]}}})
