"""The report of a plan's results: tables next to the paper's, claim verdicts, figures, summaries.

``make_report(plan, results, reference, out, code_version, config_path)`` writes it all, in three
steps, each once: **read** (:mod:`.read`: the runs through :mod:`.results`, the paper's numbers,
the explanation files, the claims through :mod:`.claims_read`), **judge** (:mod:`.claims`: each
comparison by :mod:`.judge` and :mod:`.stats`, what it rests on by :mod:`.evidence`, C10 by
:mod:`.rank_check`) and **render** (:mod:`.tables`, :mod:`.render` for claims.md and claims.csv,
:mod:`.beyond`, :mod:`.figures`, :mod:`.forest` and :mod:`.paper_figure`, :mod:`.index_page` with
:mod:`.glance` and :mod:`.rests_on` for index.md and the summary; :mod:`.fmt` formats numbers).
:mod:`.build` runs the three.
"""
from .build import make_report

__all__ = ["make_report"]
