"""What the verdicts rest on, stated once per dataset and referred to from every row.

Each line of a claim rests on a :class:`~.judge.Basis`: its data against the paper's, its seeds and its
training against the paper's recipe (:func:`.evidence.assess`). The same data sentence would otherwise
be repeated on every row of every table (the quick scale's 22 claims share two datasets), so the
report gives each dataset run one reference, ``D1``, ``D2``, ..., in one small table per page, and a
row names the references of its lines (:meth:`Bases.refs`). The table's row says, once, the data, the
seeds (with the lines that have other counts) and the training of each model family.
"""
from __future__ import annotations

from collections import Counter

from . import fmt
from .judge import Line, counted

HEADER = ["data", "paper's dataset", "run on, against the paper's", "seeds", "training, against the paper's recipe"]


def _key(line: Line) -> tuple[str, str, str]:
    return line.paper_dataset, line.dataset or "", line.basis.data


class Bases:
    """The references of every counted line of ``evaluated`` ([(claim, lines)]) with a basis."""

    def __init__(self, evaluated: list[tuple[dict, list[Line]]]):
        self.lines = [(claim["id"], ln) for claim, lines in evaluated for ln in counted(lines) if ln.basis]
        keys = sorted({_key(ln) for _, ln in self.lines})
        self.ref = {key: f"D{i}" for i, key in enumerate(keys, 1)}

    def refs(self, lines: list[Line]) -> str:
        """"D1, D2": the references of the counted lines among ``lines``; "—" when none has a basis."""
        found = sorted({self.ref[_key(ln)] for ln in counted(lines) if ln.basis and _key(ln) in self.ref},
                       key=lambda r: int(r[1:]))
        return ", ".join(found) or fmt.DASH

    def _seeds(self, lines: list[tuple[str, Line]]) -> str:
        """The seeds phrases of one dataset's lines: the most common plain, each other with its lines."""
        counts = Counter(ln.basis.seeds for _, ln in lines)
        common = max(counts, key=counts.get)
        parts = [common]
        for phrase in sorted(set(counts) - {common}):
            where = sorted({f"{cid} {ln.where}" for cid, ln in lines if ln.basis.seeds == phrase})
            parts.append(f"{phrase} ({', '.join(where)})")
        return "; ".join(parts)

    @staticmethod
    def _training(lines: list[tuple[str, Line]]) -> str:
        """Each distinct training, with the models it applies to when they differ."""
        models: dict[str, set[str]] = {}
        for _, ln in lines:
            models.setdefault(ln.basis.training, set()).add(ln.model)
        if len(models) == 1:
            return next(iter(models))
        return "; ".join(f"{', '.join(sorted(ms))}: {training}" for training, ms in sorted(models.items(), key=lambda kv: sorted(kv[1])))

    def markdown(self) -> str:
        """The table of references: one row per dataset run (nothing when no line has a basis)."""
        if not self.ref:
            return ""
        rows = []
        for key, ref in self.ref.items():
            mine = [(cid, ln) for cid, ln in self.lines if _key(ln) == key]
            rows.append([ref, key[0], key[2], self._seeds(mine), self._training(mine)])
        return fmt.markdown(HEADER, rows)
