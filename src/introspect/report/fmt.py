"""Text formatting shared by the report: numbers, Markdown tables and LaTeX (booktabs) tables.

Cells are built once as Unicode text (±, —, α, Δ, −) and each renderer turns them into its format.
"""
from __future__ import annotations

import math

from .results import Stat

DASH = "—"
TEX_SYMBOLS = {"±": r"$\pm$", "—": "---", "−": "$-$", "Δ": r"$\Delta$", "α": r"$\alpha$", "β": r"$\beta$",
               "≥": r"$\geq$", "≤": r"$\leq$", "<": r"$<$", ">": r"$>$"}
TEX_SPECIAL = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
               "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}"}


def missing(x) -> bool:
    return x is None or (isinstance(x, float) and math.isnan(x))


def num(x, digits: int = 2) -> str:
    return DASH if missing(x) else f"{x:.{digits}f}"


def signed(x, digits: int = 2) -> str:
    return DASH if missing(x) else f"{x:+.{digits}f}"


def pvalue(p) -> str:
    return DASH if missing(p) else f"{p:.2g}"


def seeds(stat: Stat) -> str:
    return f"{stat.n}" if stat.n == stat.expected else f"{stat.n} of {stat.expected}"


def mean_std(stat: Stat) -> str:
    """``mean ± std (n)``; ``n of N`` when seeds are missing; ``missing`` when none is present."""
    if not stat.n:
        return f"missing (0 of {stat.expected})"
    return f"{num(stat.mean)} ± {num(stat.std)} ({seeds(stat)})"


def markdown(header: list[str], rows: list[list[str]]) -> str:
    def line(cells):
        return "| " + " | ".join(str(c).replace("|", "\\|") for c in cells) + " |"

    return "\n".join([line(header), "|" + "|".join("---" for _ in header) + "|", *map(line, rows)]) + "\n"


def tex(text: str) -> str:
    return "".join(TEX_SYMBOLS.get(ch) or TEX_SPECIAL.get(ch) or ch for ch in str(text))


def latex(header: list[str], sections: list[list[list[str]]], caption: str, label: str,
          groups: list[tuple[str, int]] | None = None) -> str:
    """A booktabs table; ``groups`` spans a first header row over columns, ``sections`` are split by rules."""
    def line(cells):
        return " & ".join(tex(c) for c in cells) + r" \\"

    out = [r"\begin{table}[t]", r"\centering", rf"\caption{{{tex(caption)}}}", rf"\label{{{label}}}",
           rf"\begin{{tabular}}{{l{'r' * (len(header) - 1)}}}", r"\toprule"]
    if groups:
        cells, rules, col = [], [], 1
        for name, span in groups:
            cells.append(rf"\multicolumn{{{span}}}{{c}}{{{tex(name)}}}" if span > 1 else tex(name))
            if name:
                rules.append(rf"\cmidrule(lr){{{col}-{col + span - 1}}}")
            col += span
        out += [" & ".join(cells) + r" \\", " ".join(rules)]
    out += [line(header), r"\midrule"]
    for i, section in enumerate(s for s in sections if s):
        if i:
            out.append(r"\midrule")
        out += [line(r) for r in section]
    out += [r"\bottomrule", r"\end{tabular}", r"\end{table}"]
    return "\n".join(out) + "\n"
