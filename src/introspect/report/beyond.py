"""The "beyond accuracy" page, reports/beyond.md: calibration and explanation quality of every run.

Everything comes from the runs' ``evaluation.json`` (:mod:`introspect.evaluate`), read through
:class:`~introspect.report.results.Results` (only an evaluation of a run's present checkpoint
counts). Per paper table, one calibration table (NLL, ECE, Brier), one explanation table
(deletion and insertion against random maps, infidelity, agreement with the teacher, Figure 2's pair
rank) and one of deletion and insertion in detail (real and random maps' areas, the images left
out), each cell mean ± std over seeds (n), the sweep value chosen on the validation split as in the
accuracy tables; reliability diagrams of CE, LS, CP and LE per model (bins pooled over seeds); and the
verdicts of the project's beyond-accuracy questions (workflow/reference/beyond_claims.yaml),
decided like every other claim (:mod:`introspect.report.claims`).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import fmt
from .claims_read import METRIC
from .figures import save
from .judge import NOT_RUN
from .render import REST_HEADING, ci_header, claim_cell, diff_cell, lines_text, shown
from .rests_on import Bases
from .results import FAITHFULNESS_COUNTS, Results, Stat, read_evaluation
from .tables import dataset_note, row_label
from ..evaluate import MIN_SCORED
from ..fileio import atomic_write
from ..pipeline import Plan, Row, Table

PAGE = "beyond.md"
RELIABILITY_LABELS = ("ce", "ls", "cp")  # the soft-target regularizers' table rows, with CE and every LE row


LEFT_OUT = "left_out"  # the column of the images deletion and insertion left out (left_out_cell)


@dataclass(frozen=True)
class Column:
    key: str  # an EVALUATION_METRICS name, or LEFT_OUT
    name: str
    better: str  # "↓" lower is better, "↑" higher is better, "" neither
    spec: str  # number format


CALIBRATION = (Column("nll", "NLL", "↓", ".3f"), Column("ece", "ECE", "↓", ".3f"), Column("brier", "Brier", "↓", ".3f"))
EXPLANATION = (Column("deletion_auc_relative", "deletion − random", "↓", ".3f"),
               Column("insertion_auc_relative", "insertion − random", "↑", ".3f"),
               Column("infidelity", "infidelity", "↓", ".2e"), Column("teacher_agreement", "agreement with teacher", "↑", ".3f"),
               Column("pair_rank", "pair rank", "↓", ".2f"), Column("pairs_close", "pairs close (%)", "↑", ".0f"))
FAITHFULNESS = (Column("deletion_auc", "deletion", "↓", ".3f"), Column("deletion_auc_random", "deletion random", "", ".3f"),
                Column("insertion_auc", "insertion", "↑", ".3f"), Column("insertion_auc_random", "insertion random", "", ".3f"),
                Column(LEFT_OUT, "left out", "", ""))


def cell(stat: Stat, spec: str) -> str:
    """``mean ± std (n)`` in ``spec``; as fmt.mean_std for missing seeds and a missing row."""
    if not stat.n:
        return f"missing (0 of {stat.expected})"
    std = fmt.DASH if fmt.missing(stat.std) else format(stat.std, spec)
    return f"{format(stat.mean, spec)} ± {std} ({fmt.seeds(stat)})"


def left_out_cell(results: Results, dataset: str, model: str, variant: str | None) -> str:
    """The images deletion and insertion left out, summed over the evaluated seeds: ``t ties, b blank
    class of N (n)``, N the images explained (scored + left out), and the seeds with too few scored
    images to score (:data:`introspect.evaluate.MIN_SCORED`)."""
    scored, ties, blank = (results.stat(dataset, model, variant, k) for k in FAITHFULNESS_COUNTS)
    if not scored.n:
        return cell(scored, "")
    total = sum(scored.values) + sum(ties.values) + sum(blank.values)
    few = sum(v < MIN_SCORED for v in scored.values)
    unscored = f"; {few} seed{'s' * (few != 1)} under {MIN_SCORED} scored images: no score" if few else ""
    return f"{sum(ties.values):.0f} ties, {sum(blank.values):.0f} blank class of {total:.0f} ({fmt.seeds(scored)}){unscored}"


def unscored_runs(results: Results) -> list[tuple[str, int]]:
    """(run id, images scored) of every evaluated run with fewer than MIN_SCORED scored images: its
    deletion and insertion scores are missing (:func:`introspect.evaluate.faithfulness`)."""
    return [(run_id, int(r.metrics[FAITHFULNESS_COUNTS[0]])) for run_id, r in sorted(results.runs.items())
            if r.metrics.get(FAITHFULNESS_COUNTS[0]) is not None and r.metrics[FAITHFULNESS_COUNTS[0]] < MIN_SCORED]


def variant_cells(results: Results, dataset: str, model: str, variant: str | None, columns: tuple[Column, ...]) -> list[str]:
    """A variant's cell per column; — where its runs are evaluated but the metric does not apply (agreement
    with a teacher of a run without one, pair ranks on classes without known pairs, deletion and
    insertion where every image was left out)."""
    evaluated = results.stat(dataset, model, variant, "ece").n
    cells = []
    for col in columns:
        stat = results.stat(dataset, model, variant, FAITHFULNESS_COUNTS[0] if col.key == LEFT_OUT else col.key)
        if evaluated and not stat.n:
            cells.append(fmt.DASH)
        else:
            cells.append(left_out_cell(results, dataset, model, variant) if col.key == LEFT_OUT else cell(stat, col.spec))
    return cells


def metric_rows(table: Table, results: Results, columns: tuple[Column, ...]) -> list[list[str]]:
    """One row per table row (its chosen sweep value), then the table's teacher: per model, a cell per column."""
    rows = []
    for row in table.rows:
        choices = {m: results.choose(table.dataset, m, row) for m in table.models}
        rows.append([row_label(row, choices), *(c for m, choice in choices.items()
                                                 for c in variant_cells(results, table.dataset, m, choice.variant, columns))])
    if table.teacher:
        t = table.teacher
        rows.append([f"teacher ({t.model}, {t.method})",
                     *(variant_cells(results, table.dataset, t.model, t.variant, columns) * len(table.models))])
    return rows


def metric_table(table: Table, results: Results, columns: tuple[Column, ...]) -> str:
    header = ["method", *(f"{m} {col.name} {col.better}".rstrip() for m in table.models for col in columns)]
    return fmt.markdown(header, metric_rows(table, results, columns))


def reliability_groups(plan: Plan) -> list[tuple[Table, str, list[Row]]]:
    """(table, model, rows) of each reliability diagram: every (dataset, model) of a table with an LS or
    CP row, first table first; its CE, LS, CP and LE rows."""
    groups, seen = [], set()
    for table in plan.tables:
        rows = [r for r in table.rows if r.label in RELIABILITY_LABELS or r.method == "le"]
        if not any(r.label in ("ls", "cp") for r in rows):
            continue
        for model in table.models:
            if (table.dataset, model) not in seen:
                seen.add((table.dataset, model))
                groups.append((table, model, rows))
    return groups


def reliability_stem(dataset: str, model: str) -> str:
    return f"figures/reliability_{dataset}_{model}"


def reliability_stems(plan: Plan) -> list[str]:
    """Every reliability diagram's path stem under the report folder (the workflow declares them)."""
    return [reliability_stem(t.dataset, m) for t, m, _ in reliability_groups(plan)]


def pooled_bins(results: Results, dataset: str, model: str, variant: str | None) -> dict | None:
    """The reliability bins of a variant's current evaluated seeds, summed; None when none has one."""
    ids = [i for i in results._ids(dataset, model, variant) if i in results.runs] if variant else []
    bins = [e["reliability"] for e in (read_evaluation(results.folder / i) for i in ids) if e and "reliability" in e]
    if not bins:
        return None
    return {k: np.sum([b[k] for b in bins], axis=0) for k in ("count", "confidence_sum", "correct_sum")} | {"seeds": len(bins)}


def draw_reliability(panels: list[tuple[str, dict | None, Stat]], title: str):
    """One panel per method: accuracy per confidence bin (bars) against the diagonal (perfect
    calibration), the mean confidence of each bin as a dot; ECE over seeds in the panel's title."""
    from .figures import _plt

    plt = _plt()
    fig, axes = plt.subplots(1, len(panels), figsize=(2.6 * len(panels), 2.9), squeeze=False)
    for ax, (label, bins, ece) in zip(axes[0], panels):
        ax.plot([0, 1], [0, 1], color="gray", lw=0.8, ls="--")
        ax.set(xlim=(0, 1), ylim=(0, 1), xlabel="confidence", title=f"{label}\nECE {cell(ece, '.3f')}")
        if bins is None:
            ax.text(0.5, 0.5, "not evaluated", ha="center", va="center")
            continue
        count = np.asarray(bins["count"], dtype=float)
        n_bins, used = len(count), count > 0
        centers = (np.arange(n_bins) + 0.5) / n_bins
        accuracy = np.divide(bins["correct_sum"], count, out=np.zeros(n_bins), where=used)
        confidence = np.divide(bins["confidence_sum"], count, out=np.zeros(n_bins), where=used)
        ax.bar(centers[used], accuracy[used], width=1 / n_bins, edgecolor="black", lw=0.4, label="accuracy")
        ax.plot(confidence[used], confidence[used], "o", ms=2.5, color="C3", label="mean confidence")
    axes[0][0].set_ylabel("accuracy")
    if any(bins is not None for _, bins, _ in panels):
        next(ax for ax, (_, bins, _) in zip(axes[0], panels) if bins is not None).legend(loc="upper left", fontsize=6)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    return fig


def reliability_figure(table: Table, model: str, rows: list[Row], results: Results, stem: Path) -> list[Path]:
    panels = []
    for row in rows:
        choice = results.choose(table.dataset, model, row)
        label = row_label(row, {model: choice})
        panels.append((label, pooled_bins(results, table.dataset, model, choice.variant),
                       results.stat(table.dataset, model, choice.variant, "ece")))
    title = (f"Reliability, {model} ({dataset_note(table, results.plan.scale)}): test split, "
             "equal-width confidence bins, seeds pooled")
    return save(draw_reliability(panels, title), stem)


def claims_markdown(evaluated: list[tuple[dict, list]], significance: float) -> str:
    """The beyond-accuracy verdicts: a summary (decided or rehearsal, with the evidence), then every
    comparison (claims.md's tests and legend)."""
    bases = Bases(evaluated)
    summary = [[c["id"], c.get("metric", METRIC), c.get("text", ""), claim_cell(ls), lines_text(ls), bases.refs(ls)]
               for c, ls in evaluated]
    rows = []
    for claim, lines in evaluated:
        for line in (ln for ln in lines if ln.verdict != NOT_RUN):
            for t in (t for t in line.tests if t.run):
                rows.append([claim["id"], line.paper_dataset, line.dataset or fmt.DASH, line.model, f"{t.a} {t.op} {t.b}",
                             fmt.num(t.a_stat.mean, 4), fmt.num(t.b_stat.mean, 4), diff_cell(t, 4),
                             f"{t.a_stat.n}, {t.b_stat.n}",
                             f"{fmt.pvalue(t.pvalues[0])} ({fmt.pvalue(t.p_support_adj)})",
                             shown(t.verdict, line.status), t.row_text])
    out = [fmt.markdown(["claim", "metric", "question", "verdict", "lines", "data"], summary)]
    if bases.ref:
        out += [REST_HEADING.replace("## ", "### "), bases.markdown()]
    if rows:
        out.append(fmt.markdown(["claim", "paper dataset", "ours on", "model", "comparison", "mean a", "mean b",
                                 ci_header(significance), "n", "p support (adjusted)", "verdict",
                                 "remarks; to decide (80 % power)"], rows))
    return "\n".join(out)


def unscored_text(results: Results) -> str:
    """The runs whose deletion and insertion scores are missing for want of scored images, counted and named."""
    few = unscored_runs(results)
    head = (f"A score needs at least {MIN_SCORED} scored images (`introspect.evaluate.MIN_SCORED`); below that it is "
            "missing, never a mean of a handful: ")
    if not few:
        return head + "every evaluated run has enough.\n"
    return head + f"{len(few)} run{'s' * (len(few) != 1)} fall short: " + ", ".join(
        f"`{run_id}` ({n} scored)" for run_id, n in few) + ".\n"


def page(plan: Plan, results: Results, evaluated: list[tuple[dict, list]], stems: list[str]) -> str:
    out = ["# Beyond accuracy: calibration and explanation quality\n",
           "Every cell is mean ± std over seeds (n) of one run metric from its `evaluation.json` "
           "(`introspect evaluate`, the workflow's `evaluate` step), for the sweep value chosen on the validation "
           "split as in the accuracy tables; ↓ lower is better, ↑ higher is better. Per run: "
           "**calibration** on the whole test split: NLL (nats, torch `cross_entropy`), ECE (top-label, 15 "
           "equal-width bins, L1: torchmetrics `CalibrationError`), Brier score (sum over classes of (p − onehot)², "
           "mean over images). **Explanations** of the first test images (the same for every run; Grad-CAM on the "
           "CNNs, Grad on the MLP, for every method alike), each for the predicted class c: the areas under the "
           "deletion and insertion curves (Petsiuk et al. 2018; pixels removed / added in order of saliency, "
           "Grad-CAM upsampled to the image, a removed pixel set to 0 after normalization, the dataset mean), each "
           "curve the logit margin m = z_c − max_{k≠c} z_k after each of k equal steps in units of the model's median "
           "clean margin M, g = m(x_f) / M (not clipped: 1 is the model's median lead, −2 another class leading by "
           "twice that), so the areas do not change when the logits are divided by a temperature and measure the map, "
           "not the model's confidence; each map is scored against a **random map on the same image and model** (of "
           "the explainer's own shape, drawn from a seed derived from the run's seed): **deletion − random** and "
           "**insertion − random** are the means over images of real − random (each evaluation.json also holds its 90 % "
           "Student-t interval over images), about 0 for a map no better than "
           "chance, below 0 on deletion and above 0 on insertion for a faithful one, and what B4 and B5 decide on; "
           "images whose clean margin is a tie (within 2⁻²⁰ of the largest |logit|: which class leads is then a "
           "rounding accident) and images predicted as the class of the all-baseline image (whose insertion starts, "
           "and deletion ends, with their class leading, whatever the map) are left out and counted (the last "
           "section); Captum's infidelity (Gaussian perturbations of std 0.1, "
           "attributions optimally rescaled): 256 images, k = 16 and 10 perturbations per image by default, 64, 8 "
           "and 4 at the quick scale (each run's evaluation.json records its own), for a student the cosine of its Grad-CAM to its teacher's for the teacher's top-1 "
           "class (e2KD's agreement), and Figure 2's structure: the mean rank of each known-similar class pair "
           "(claim C10's pairs whose classes the dataset has) in the other's row of the run's averaged class "
           "similarity (1 = closest), and the share of pairs in each other's top 3. Every evaluation.json records the "
           "digest of the code that computed it; one computed by other code (or other versions of torch, captum, "
           "torchmetrics) is not current and is left out.\n"]
    if results.unevaluated:
        out.append(f"**{len(results.unevaluated)} of {len(results.runs)} current runs have no current evaluation** "
                   "(missing, or older than the run's checkpoint): left out of these tables. "
                   "`snakemake --cores all` evaluates them.\n")
    out += ["## Verdicts\n",
            "The project's own questions (workflow/reference/beyond_claims.yaml), decided by the tests of "
            "[claims.md](claims.md) (one-sided paired t-tests on the per-seed differences; intersection-union for "
            "`combine: all`, Holm on the against side; the interval at the level of the tests) on the metric each "
            "names. A verdict is decided, reduced data or a rehearsal by claims.md's rule (its legend).\n",
            claims_markdown(evaluated, plan.significance) if evaluated else "No beyond-accuracy claims in the reference folder.\n",
            "## Calibration\n"]
    for table in plan.tables:
        out.append(f"### {table.name} ({table.caption}; {dataset_note(table, plan.scale)})\n")
        out.append(metric_table(table, results, CALIBRATION))
    out.append("## Reliability diagrams\n")
    for stem in stems:
        out.append(f"![{Path(stem).name}]({stem}.png)\n\n[PDF]({stem}.pdf)\n")
    out.append("## Explanations\n")
    for table in plan.tables:
        out.append(f"### {table.name} ({table.caption}; {dataset_note(table, plan.scale)})\n")
        out.append(metric_table(table, results, EXPLANATION))
    out += ["## Deletion and insertion in detail\n",
            "The areas of the real maps and of the random maps behind the relative scores above, each mean ± std "
            "over seeds (n), and the images left out of both, summed over the evaluated seeds: ties (the clean "
            "margin within 2⁻²⁰ of the largest |logit|), the blank image's class (predicted as the all-baseline "
            "image is), of the images explained. The random maps' areas differ from model to model (their "
            "margins and mix of classes differ): compare models on the relative scores, not on these.\n",
            unscored_text(results)]
    for table in plan.tables:
        out.append(f"### {table.name} ({table.caption}; {dataset_note(table, plan.scale)})\n")
        out.append(metric_table(table, results, FAITHFULNESS))
    return "\n".join(out)


def write_page(plan: Plan, results: Results, evaluated: list[tuple[dict, list]], out: Path) -> list[Path]:
    """beyond.md and its reliability diagrams under ``out``; the paths written."""
    written, stems = [], []
    for table, model, rows in reliability_groups(plan):
        stem = reliability_stem(table.dataset, model)
        written += reliability_figure(table, model, rows, results, Path(out) / stem)
        stems.append(stem)
    text = page(plan, results, evaluated, stems)
    atomic_write(Path(out) / PAGE, lambda f: f.write(text.encode()))
    return [*written, Path(out) / PAGE]
