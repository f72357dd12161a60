"""Rendering the verdicts: claims.md (legend, summary, every comparison), claims.csv, and the cells
the index and beyond.md share. Nothing here decides anything (:mod:`.judge`, :mod:`.evidence`)."""
from __future__ import annotations

from . import fmt
from .claims_read import ALIASES, METRIC, run_dataset
from .evidence import MIN_SEEDS
from .judge import (DECIDED, INCONCLUSIVE, NOT_APPLICABLE, NOT_RUN, NOT_SUPPORTED, REDUCED, REHEARSAL, SUPPORTED,
                    Line, Test, claim_status, claim_verdict, counted, rule_of_lines)
from .rests_on import Bases
from .stats import interval_level
from ..analysis import TOP
from ..pipeline import Plan

CSV_COLUMNS = ("claim", "source", "combine", "margin", "claim_verdict", "claim_status", "paper_dataset", "dataset",
               "model", "line_verdict", "status", "evidence", "comparison", "test", "mean_a", "mean_b", "diff",
               "ci_level", "ci_low", "ci_high", "n_a", "n_b", "n_pairs", "p_support", "p_support_adjusted",
               "support_correction", "p_against", "p_against_adjusted", "p_support_welch", "p_against_welch",
               "verdict", "std_diff", "seeds_needed", "extra_seconds", "paper_diff", "seeds_needed_paper",
               "power_note", "note")
REST_HEADING = "## What the verdicts rest on\n"
RULE_TEXT = {"all": "every comparison at a dataset and model must hold",
             "any": "at least one comparison at a dataset and model must hold",
             "most": "more than half of the comparisons at a dataset and model must hold"}


def shown(verdict: str, status: str) -> str:
    """A verdict as a table shows it: "not supported (rehearsal)", "supported (reduced data)"; plain
    only where it is decided."""
    if status in (REHEARSAL, REDUCED) and verdict in (SUPPORTED, NOT_SUPPORTED, INCONCLUSIVE):
        return f"{verdict} ({status})"
    return verdict


def claim_cell(lines: list[Line]) -> str:
    return shown(claim_verdict(lines), claim_status(lines))


def protocol_cell(verdict: str, other: str, status: str = "") -> str:
    """The verdict under the other epoch protocol (the same runs: the same status), flagged ⚠ where it differs."""
    return shown(other, status) if other == verdict else f"⚠ {shown(other, status)}"


def lines_text(lines: list[Line]) -> str:
    """Which lines of a claim ran, with what they rest on, and which did not: "mnist/mlp1024 reduced
    data; not run: cifar10/resnet14, cifar10/resnet8"."""
    parts = [f"{ln.where} {ln.status}" for ln in counted(lines)]
    parts += [f"{ln.where} not applicable" for ln in lines if ln.verdict == NOT_APPLICABLE]
    unrun = [ln.where for ln in lines if ln.verdict == NOT_RUN]
    return "; ".join(parts + ([f"not run: {', '.join(unrun)}"] if unrun else [])) or fmt.DASH


def to_decide(lines: list[Line]) -> list[str]:
    """What would decide each inconclusive comparison of a claim: "mnist/mlp1024 le_grad > ls (Δ +0.12):
    12 seeds per side (+1.3 h); at the paper's Δ +0.15 with our std of the differences 0.20: ..."."""
    open_ = [(ln, t) for ln in counted(lines) for t in ln.tests if t.run and t.verdict == INCONCLUSIVE]
    items = [f"{ln.where} {t.a} {t.op} {t.b} (Δ {fmt.signed(t.diff)}): {t.row_text}" for ln, t in open_ if t.n_pairs >= 2]
    untested = [f"{ln.where} {t.a} {t.op} {t.b} ({t.n_pairs} paired)" for ln, t in open_ if t.n_pairs < 2]
    if untested:
        items.append(f"fewer than 2 seeds paired, no test yet: {', '.join(untested)}")
    return items


def ci_header(level: float) -> str:
    return f"a − b [{100 * interval_level(level):g} % CI]"


def diff_cell(t: Test, digits: int = 2) -> str:
    """``+1.58 [+1.26, +1.90]``: Δ (the mean per-seed difference) and its interval at the test's level."""
    low, high = t.interval
    return fmt.signed(t.diff, digits) + ("" if fmt.missing(low) else f" [{fmt.signed(low, digits)}, {fmt.signed(high, digits)}]")


def _test_cells(t: Test) -> dict:
    if not t.run:
        return {"comparison": f"{t.a} {t.op} {t.b}", "verdict": t.verdict}
    (support, against), (low, high), (w_support, w_against) = t.pvalues, t.interval, t.welch_pvalues
    return {"comparison": f"{t.a} {t.op} {t.b}", "test": t.test, "mean_a": t.a_stat.mean, "mean_b": t.b_stat.mean,
            "diff": t.diff, "ci_level": round(t.confidence, 6), "ci_low": low, "ci_high": high, "n_a": t.a_stat.n,
            "n_b": t.b_stat.n, "n_pairs": t.n_pairs, "p_support": support, "p_support_adjusted": t.p_support_adj,
            "support_correction": t.support_correction, "p_against": against, "p_against_adjusted": t.p_against_adj,
            "p_support_welch": w_support, "p_against_welch": w_against, "verdict": t.verdict, "std_diff": t.std,
            "seeds_needed": t.seeds_needed, "extra_seconds": t.extra_seconds(t.seeds_needed),
            "paper_diff": round(t.paper, 6) if t.paper is not None else None, "seeds_needed_paper": t.seeds_needed_paper,
            "power_note": t.power_note}


def csv_rows(evaluated: list[tuple[dict, list[Line]]]) -> list[dict]:
    """One row per comparison (or class pair); lines with none get one row."""
    rows = []
    for claim, lines in evaluated:
        rule, margin = rule_of_lines(lines)
        head = {"claim": claim["id"], "source": claim.get("source", ""), "combine": rule, "margin": margin,
                "claim_verdict": claim_verdict(lines), "claim_status": claim_status(lines)}
        if all(ln.verdict == NOT_RUN for ln in lines):
            rows.append({k: None for k in CSV_COLUMNS} | head | {"verdict": head["claim_verdict"]})
            continue
        for line in (ln for ln in lines if ln.verdict != NOT_RUN):  # models this config does not run: left out
            base = head | {"paper_dataset": line.paper_dataset, "dataset": line.dataset or "", "model": line.model,
                           "line_verdict": line.verdict, "status": line.status, "evidence": line.evidence,
                           "note": line.note}
            items = [_test_cells(t) | {"note": "; ".join(n for n in (t.remark, line.note) if n)} if t.run else _test_cells(t)
                     for t in line.tests]
            items += [{"comparison": f"pair ({c.pair[0]}, {c.pair[1]})", "test": line.rule_text,
                       "verdict": line.pair_verdict(c), "note": "" if c.ranks is None else line.pair_text(c)}
                      for c in getattr(line, "checks", [])]
            rows += [{k: None for k in CSV_COLUMNS} | base | item for item in items or [{"verdict": line.verdict}]]
    return [{k: ("" if fmt.missing(r[k]) else r[k]) for k in CSV_COLUMNS} for r in rows]


def legend(plan: Plan) -> str:
    """What every verdict of claims.md means, at the plan's significance level."""
    a, level = f"{plan.significance:g}", f"{100 * interval_level(plan.significance):g} %"
    return "\n".join([
        "How to read the verdicts (α = " + a + ", the plan's `significance`):\n",
        f"- **Decided, reduced data or rehearsal.** A verdict is *decided* only where its runs are on the paper's "
        f"full dataset, with at least {MIN_SEEDS} seeds on every side, trained with the paper's recipe for that "
        "dataset and model family (epochs, batch size, optimizer). The same on a real subset of the paper's "
        "dataset (a dataset whose images are a part of the paper's, e.g. mnist5k: 4,000 of MNIST's 60,000 "
        "training digits, its test split drawn from them) or on a stratified part of the paper's own dataset "
        "(`dataset.subset`: fewer training images, the paper's whole test set) is *reduced data*, marked "
        "\"(reduced data)\": real images and the paper's recipe, but fewer of them. Every other verdict is a "
        "*rehearsal*, marked \"(rehearsal)\": it exercises the pipeline. What each line rests on (the dataset and "
        "its size against the paper's, the seeds, the training against the paper's recipe) is stated once per "
        f"dataset, in the table *What the verdicts rest on* (D1, D2, ...). C10 needs {MIN_SEEDS} seeds of "
        "explanation data (one explained run per seed).",
        "- Each comparison `a op b` is a one-sided question about Δ = a − b over seeds; `<` and `<=` swap the "
        "sides (`a < b` is asked as `b > a`). The rows of one seed share their data order (and, without a "
        "teacher, their initialization), so the test is the **paired t-test on the per-seed differences** over "
        "the seeds both sides have (scipy.stats.ttest_rel) and Δ is their mean. Welch's unpaired test "
        "(scipy.stats.ttest_ind, equal_var=False) is shown beside it (`Welch p support`); it decides nothing.",
        "- `>` (better): **p support** tests Δ > 0 (superiority); **p against** tests Δ < 0.",
        "- `>=` (competitive: not worse by more than the claim's margin m, in points of accuracy, declared "
        "with the claim in the claims YAML): **p support** is the one-sided non-inferiority test of Δ > −m; "
        "**p against** tests Δ < −m (worse by more than the margin).",
        "- Multiplicity: a `combine: all` claim holds only if every comparison at every dataset and model "
        "does, an intersection-union test: on the support side each comparison is tested at α with no "
        "correction. The support side of an `any` or `most` claim, and the against side of every claim, are "
        "Holm-corrected (step-down) over all the claim's run comparisons. Tables show raw p (adjusted p).",
        f"- A comparison is **supported** when its adjusted p support < {a}; **not supported** when its "
        f"adjusted p against < {a}; **inconclusive** otherwise, and always when no test is possible "
        "(fewer than 2 seeds paired, or no variance in the differences: p is shown as —).",
        f"- Each comparison shows the paired **{level} two-sided confidence interval** of Δ (1 − 2α): the level "
        "of its one-sided tests at α, so a supported `>` has its lower bound above 0 and a supported `>=` above "
        "−m. The interval is never adjusted, the Holm-corrected side is: a comparison can be inconclusive with its "
        "interval wholly on the against side (or, for `any` and `most`, the support side) of its null, and its "
        "row then says so, with the adjusted p.",
        "- A metric stored as NaN (a diverged run) counts as a missing seed, and the comparison's row names it.",
        "- An inconclusive comparison shows the seeds per side that would give its test 80 % power at α "
        "(noncentral t) at the observed Δ, and, for the paper's claims, at the paper's own Δ, **both with our "
        "std of the per-seed differences** (the paper gives no spread of differences, and its per-row stds are "
        "smaller than ours), with what training the missing seeds would add by `introspect plan`'s estimate "
        "(the shipped one-thread CPU bench unless it is given another); where our seeds fall short at the "
        "paper's Δ it gives their power; where the observed Δ points the other way, or is exactly the null "
        "(0, or −m), it says so instead.",
        "- At one dataset and model, a claim's k comparisons combine by its rule (`combine`), which needs r "
        "of them: `all` r = k, `any` r = 1, `most` r = ⌊k/2⌋ + 1. The line is **supported** when at least r "
        "comparisons are supported, **not supported** when more than k − r are not supported (fewer than r "
        "can then hold), **inconclusive** otherwise; a comparison not run counts as neither.",
        "- A claim holds at every dataset and model it names: **not supported** if any line is, **supported** "
        "if every run line is, **inconclusive** otherwise; **not run in this config** when no line was run; "
        f"it is {DECIDED} only when every line that gives its verdict is, on {REDUCED} when each is decided or on "
        "reduced data.",
        f"- C10 (Figure 2) is **a fixed rule, not a statistical test**: a pair passes when each class ranks in the "
        f"top {TOP} of the other's row of the class-by-class explanation similarity averaged over the test set and "
        "over the explained row's seeds (the mean of one matrix per seed, as Figure 2 draws it); supported when "
        "every applicable pair passes on that mean. Each pair also says in how many of the seeds it passes alone.\n"])


def _rule_line(claim: dict, lines: list[Line]) -> str:
    rule, margin = rule_of_lines(lines)
    if not rule:
        return ""
    k = len(lines[0].tests)
    text = f"Combine: `{rule}` ({RULE_TEXT[rule]}; {k} comparison{'s' if k > 1 else ''} at each)"
    if claim.get("metric", METRIC) != METRIC:
        text = f"Metric: `{claim['metric']}` per seed. " + text
    return text + (f"; margin {margin:g} points of accuracy.\n" if margin is not None else ".\n")


def _pcell(raw: float, adjusted: float) -> str:
    return f"{fmt.pvalue(raw)} ({fmt.pvalue(adjusted)})"


def _rows(line: Line, bases: Bases) -> list[list[str]]:
    where = [line.paper_dataset, line.dataset or fmt.DASH, line.model]
    rows = [[*where, f"{t.a} {t.op} {t.b}", t.test, fmt.num(t.a_stat.mean), fmt.num(t.b_stat.mean), diff_cell(t),
             f"{t.a_stat.n}, {t.b_stat.n} ({t.n_pairs})", _pcell(t.pvalues[0], t.p_support_adj),
             _pcell(t.pvalues[1], t.p_against_adj), fmt.pvalue(t.welch_pvalues[0]), shown(t.verdict, line.status),
             t.row_text] for t in line.tests if t.run]
    rows += [[*where, f"pair ({c.pair[0]}, {c.pair[1]}): {line.pair_text(c)}", line.rule_text, "", "", "", "", "", "", "",
              shown(line.pair_verdict(c), line.status), ""] for c in getattr(line, "checks", [])]
    rows.append([*where, "**at this dataset and model**", "", "", "", "", "", "", "", "",
                 f"**{shown(line.verdict, line.status)}**" + (f" ({line.note})" if line.note else ""),
                 f"rests on {bases.refs([line])}" if line.basis else ""])
    return rows


def markdown(evaluated: list[tuple[dict, list[Line]]], plan: Plan, other: dict[str, str] | None = None,
             other_protocol: str = "") -> str:
    """claims.md; ``other``: each claim's verdict under the other epoch protocol, shown beside it and
    flagged where it differs."""
    bases = Bases(evaluated)
    mapping = ", ".join(f"{d} → {run_dataset(plan, d)}" for d in sorted({t.paper_dataset for t in plan.tables}))
    aliases = "; ".join(f"`{k}` means " + " and ".join(f"{v} on {d}" for d, v in m.items()) for k, m in ALIASES.items())
    out = ["# Claims\n",
           f"Scale {plan.scale}; paper dataset → dataset run: {mapping}. Each comparison uses per-seed test accuracy "
           f"(%): higher is better; a table reported in test error is compared through accuracy = 100 − error "
           f"(a claim that names another `metric`, such as the beyond-accuracy questions, compares that one). "
           f"Sweep rows use the value chosen on the validation split. {aliases}.\n",
           legend(plan),
           "## Summary\n",
           f"Verdicts use the test accuracy of the **{plan.protocol}** epoch protocol"
           + (f"; the column beside gives each verdict under `{other_protocol}` and flags (⚠) a verdict that differs."
              if other is not None else ".") + "\n",
           fmt.markdown(["claim", "source", "combine", "verdict", *([f"under {other_protocol}"] if other is not None else []),
                         "lines", "data", "claim text"],
                        [[c["id"], c.get("source", ""), rule_of_lines(ls)[0] or fmt.DASH, claim_cell(ls),
                          *([protocol_cell(claim_verdict(ls), other[c["id"]], claim_status(ls))] if other is not None else []),
                          lines_text(ls), bases.refs(ls), c.get("text", "")] for c, ls in evaluated]),
           REST_HEADING, bases.markdown() or "No claim ran.\n"]
    for claim, lines in evaluated:
        out.append(f"## {claim['id']} ({claim.get('source', '')}): {claim_cell(lines)}\n\n{claim.get('text', '')}\n")
        out += [x for x in [_rule_line(claim, lines)] if x]
        if all(ln.verdict == NOT_RUN for ln in lines):
            out.append(f"{NOT_RUN.capitalize()}.\n")
            continue
        rows = [r for line in lines if line.verdict != NOT_RUN for r in _rows(line, bases)]  # unrun models: left out
        out.append(fmt.markdown(["paper dataset", "ours on", "model", "comparison", "test", "mean a", "mean b",
                                 ci_header(plan.significance), "n a, b (paired)", "p support (adjusted)",
                                 "p against (Holm)", "Welch p support", "verdict",
                                 "remarks; to decide (80 % power, our std) / rests on"], rows))
    return "\n".join(out)
