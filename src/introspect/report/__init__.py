"""The report of a plan's results: tables next to the paper's, claim verdicts, figures, summaries.

``make_report(plan, results, reference, out, code_version, config_path)`` writes it all; the modules
are ``results`` (loading and per-seed summaries), ``tables``, ``claims``, ``figures``, ``fmt`` and
``build``.
"""
from .build import make_report

__all__ = ["make_report"]
