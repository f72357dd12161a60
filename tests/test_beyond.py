"""The beyond-accuracy report (beyond.md, results.parquet's evaluation columns, verdicts B*), on fake runs
with known evaluation numbers (nothing is trained here)."""
import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

from introspect import pipeline
from introspect.config import resolve
from introspect.provenance import of_run
from introspect.registry import ConfigError
from introspect.report import make_report
from introspect.report.beyond import reliability_stems
from introspect.analysis import pair_scores
from introspect.provenance import tool_digest
from introspect.report.claims_read import read_claims
from introspect.provenance import dataset_digest
from introspect.report.results import EVALUATION_METRICS

REFERENCE = Path(__file__).resolve().parents[1] / "workflow" / "reference"
PARAMS = {
    "scale": "quick", "significance": 0.05, "seeds": [0, 1, 2],
    "datasets": {"cifar10": "synthetic", "mnist": "synthetic"}, "recipes": {},
    "tables": {"table2": {"caption": "Regularization methods", "dataset": "cifar10", "metric": "test_acc",
                          "models": ["resnet8"],
                          "rows": {"ce": {"method": "ce"}, "ls": {"method": "ls"}, "cp": {"method": "cp"},
                                   "le_gradcam": {"method": "le", "set": {"method.explainer": "gradcam"}}}}},
    "explanations": {"cifar10": {"model": "resnet8", "row": "le_gradcam", "seed": 0}},
}
ECE = {"ce": [0.10, 0.11, 0.13], "ls": [0.05, 0.06, 0.07], "cp": [0.08, 0.09, 0.10], "le_gradcam": [0.02, 0.03, 0.04]}
STALE = "synthetic/resnet8/cp/seed2"  # its evaluation.json is of an older checkpoint: ignored


def similarity_with_ranks() -> list[list[float]]:
    """Classes 0-9; pair (0, 6) ranks 1 both ways, (1, 7) ranks 4 in 1's row and 1 in 7's, the rest 1 (ties)."""
    sim = np.full((10, 10), 0.1)
    np.fill_diagonal(sim, 1.0)
    sim[0, 6] = sim[6, 0] = 0.9
    sim[1, 7] = sim[7, 1] = 0.5
    sim[1, [2, 3, 4]] = 0.8
    return sim.tolist()


def test_pair_scores_by_hand():
    scores = pair_scores(similarity_with_ranks(), [str(k) for k in range(10)])
    # MNIST's pairs (0,6) (1,7) (3,5) (4,9): mean ranks 1, 2.5, 1, 1; (1, 7) fails the top-3 check
    assert scores == {"pair_rank": pytest.approx(1.375), "pairs_close": pytest.approx(75.0)}
    assert pair_scores(similarity_with_ranks(), [f"c{k}" for k in range(10)]) == {"pair_rank": None, "pairs_close": None}


def write_run(root: Path, run: pipeline.Run, ece: float) -> None:
    d = root / run.id
    d.mkdir(parents=True)
    (d / "metrics.json").write_text(json.dumps({"val_acc": 90.0, "test_acc": 90.0, "test_err": 10.0, "epochs": 3}))
    cfg = resolve(run.config)
    cfg["provenance"] = of_run(cfg, dataset_digest(cfg["dataset"]["path"], {}))
    (d / "config.json").write_text(json.dumps(cfg))
    digest = f"{run.seed:064d}"
    (d / "checkpoint.pt").write_bytes(f"introspect-checkpoint sha256={digest}\n".encode())  # what the digest reads
    count = [0.0] * 15
    count[13] = 10.0
    evaluation = {"checkpoint_sha256": "0" * 63 + "f" if run.id == STALE else digest, "nll": 10 * ece,
                  "ece": ece, "brier": 0.2, "deletion_auc": 0.3, "insertion_auc": 0.6, "deletion_auc_random": 0.45,
                  "insertion_auc_random": 0.4, "deletion_auc_relative": -2 * ece, "insertion_auc_relative": 0.2,
                  "faithfulness_images": 60, "faithfulness_ties": 1, "faithfulness_blank": 3, "infidelity": 1e-4,
                  "teacher_agreement": None, "similarity": similarity_with_ranks(),
                  "classes": [str(k) for k in range(10)], "code_sha256": tool_digest("evaluate"),
                  **pair_scores(similarity_with_ranks(), [str(k) for k in range(10)]),
                  "reliability": {"count": count, "confidence_sum": [9.0 * (c > 0) for c in count],
                                  "correct_sum": [8.0 * (c > 0) for c in count]}}
    (d / "evaluation.json").write_text(json.dumps(evaluation))


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    plan = pipeline.plan(PARAMS)
    root = tmp_path_factory.mktemp("beyond")
    results, reference, out = root / "results", root / "reference", root / "reports"
    for run in plan.runs.values():
        write_run(results, run, ECE[run.variant][run.seed])
    reference.mkdir()
    for name in ("paper_tables.csv", "beyond_claims.yaml"):
        (reference / name).write_text((REFERENCE / name).read_text())
    (reference / "paper_claims.yaml").write_text(yaml.safe_dump({"claims": []}))
    make_report(plan, results, reference, out, code_version="abc", config_path="params.yaml")
    return plan, out


def test_results_parquet_has_the_evaluation_columns(report):
    _, out = report
    rows = {r["run_id"]: r for r in pq.read_table(out / "results.parquet").to_pylist()}
    assert set(EVALUATION_METRICS) <= set(rows[STALE])
    assert rows["synthetic/resnet8/ce/seed1"]["ece"] == pytest.approx(0.11)
    assert rows["synthetic/resnet8/ce/seed1"]["pair_rank"] == pytest.approx(1.375)
    assert rows["synthetic/resnet8/ce/seed1"]["teacher_agreement"] is None
    assert rows["synthetic/resnet8/ce/seed1"]["deletion_auc_random"] == pytest.approx(0.45)  # the random maps' score
    assert rows["synthetic/resnet8/ce/seed1"]["deletion_auc_relative"] == pytest.approx(-0.22)  # real − random
    assert rows["synthetic/resnet8/ce/seed1"]["faithfulness_blank"] == 3
    assert rows[STALE]["ece"] is None  # evaluated before the run was retrained: left out
    assert pq.read_schema(out / "results.parquet").field("ece").type == pa.float64()


def test_beyond_page_tables_figures_and_verdicts(report):
    plan, out = report
    page = (out / "beyond.md").read_text()
    assert "## Calibration" in page and "## Explanations" in page
    ce_row = next(line for line in page.splitlines() if line.startswith("| ce |") and "0.113" in line)
    assert "0.113 ± 0.015 (3)" in ce_row and "1.133 ± 0.153 (3)" in ce_row  # ECE and NLL, mean ± std (n)
    cp_row = next(line for line in page.splitlines() if line.startswith("| cp |") and "0.085" in line)
    assert "0.085 ± 0.007 (2 of 3)" in cp_row
    assert "1 of 12 current runs have no current evaluation" in page
    # the explanation table shows deletion and insertion against random maps, the detail table the areas
    explained = next(line for line in page.splitlines() if line.startswith("| ce |") and "-0.227 ± 0.031 (3)" in line)
    assert "| — |" in explained and "| 0.200 ± 0.000 (3) |" in explained  # agreement with a teacher: ce has none
    assert "resnet8 deletion − random ↓ | resnet8 insertion − random ↑ |" in page
    detail = page.split("## Deletion and insertion in detail")[1]
    ce_detail = next(line for line in detail.splitlines() if line.startswith("| ce |"))
    assert ce_detail == ("| ce | 0.300 ± 0.000 (3) | 0.450 ± 0.000 (3) | 0.600 ± 0.000 (3) | 0.400 ± 0.000 (3) "
                         "| 3 ties, 9 blank class of 192 (3) |")
    assert "| 2 ties, 6 blank class of 128 (2 of 3) |" in next(line for line in detail.splitlines() if line.startswith("| cp |"))
    # B4 decides on deletion − random: LE's −0.06 is not below CE's −0.227
    b4 = next(line for line in page.splitlines() if line.startswith("| B4 | deletion_auc_relative |"))
    assert "by this score" in b4 and "not supported" in b4
    assert "| -0.0600 | -0.2267 |" in next(line for line in page.splitlines() if line.startswith("| B4 | cifar10 |"))
    for stem in reliability_stems(plan):
        assert f"]({stem}.png)" in page and (out / f"{stem}.png").is_file() and (out / f"{stem}.pdf").is_file()
    # B1: LE's ECE (0.03) below CE's (0.113), three seeds each: supported; B7 names e2kd, not in this config
    # synthetic stands in for CIFAR10 at 3 epochs: a rehearsal, said in the row with its evidence
    b1 = next(line for line in page.splitlines() if line.startswith("| B1 | ece |"))
    assert "| supported (rehearsal) | cifar10/resnet8 rehearsal; not run: cifar10/resnet14, mnist/mlp1024 |" in b1
    # what it rests on: a reference to its dataset's row, whose evidence the page states once
    assert b1.endswith("| D1 |") and page.count("synthetic stands in for cifar10") == 1
    d1 = next(line for line in page.splitlines() if line.startswith("| D1 |"))
    assert "synthetic stands in for cifar10" in d1 and "| not the paper's recipe: epochs 3 (paper 160)" in d1
    # B3's line pairs 2 seeds (cp lost an evaluation): named beside the others' 3
    assert "| 3 seeds a side; 2 seeds a side (a decided verdict needs 3) (B3 cifar10/resnet8) |" in d1
    assert "| not run in this config |" in next(line for line in page.splitlines() if line.startswith("| B7 |"))
    detail = next(line for line in page.splitlines() if line.startswith("| B1 | cifar10 |"))
    # a − b: the mean per-seed difference and its paired 90 % interval (the level of a one-sided test at
    # 0.05): t(0.95, 2 df) = 2.920 times the differences' std 0.00577 over √3
    assert "| -0.0833 [-0.0931, -0.0736] | 3, 3 |" in detail and "| a − b [90 % CI] |" in page
    claims = (out / "claims.md").read_text()
    assert "## B1 (calibration): supported (rehearsal)" in claims and "Metric: `ece` per seed." in claims
    index = (out / "index.md").read_text()
    assert index.startswith("# Report (a rehearsal: no verdict here is decided")
    assert "](beyond.md)" in index and "| B1 | ece: le < ce | supported | rehearsal (D1) | cifar10/resnet8: le_gradcam < ce |" in index


def test_every_beyond_claim_names_a_known_metric(tmp_path):
    claims = read_claims(REFERENCE / "beyond_claims.yaml")
    assert {c["metric"] for c in claims} <= set(EVALUATION_METRICS)
    path = tmp_path / "claims.yaml"
    path.write_text(yaml.safe_dump({"claims": [{"id": "X", "compare": ["le", "<", "ce"], "metric": "eec", "where": {}}]}))
    with pytest.raises(ConfigError, match="metric: 'eec' is not one of"):
        read_claims(path)
