"""Published results to compare against: one row per (dataset, method, ReLU count).

The table is ``reshape/tables/anchors.csv`` (provenance in docs/report.md). ReLU
counts are the published values (often rounded to 0.1K); ``relu_convention`` says
whether the source counts the stem ReLU (``with_stem``: SENet, as ``reshape count``
does), omits it (``without_stem``: SNL) or does not say (``unknown``). A row without
``top1`` is a claim, kept for its note and never plotted as a measurement.
"""
from __future__ import annotations

import csv
import functools
import io
from dataclasses import dataclass
from importlib import resources
from typing import Sequence

from ..errors import ReshapeError

TABLE = "anchors.csv"
CONVENTIONS = ("with_stem", "without_stem", "unknown")


@dataclass(frozen=True)
class Anchor:
    dataset: str
    method: str
    backbone: str
    relus: int
    top1: float | None  # percent; None for a claim without a measured accuracy
    source: str
    relu_convention: str
    note: str = ""

    @property
    def label(self) -> str:
        return f"{self.method} {self.backbone}"


@functools.cache
def _all() -> tuple[Anchor, ...]:
    text = resources.files("reshape.tables").joinpath(TABLE).read_text(encoding="utf-8")
    rows = []
    for row in csv.DictReader(io.StringIO(text)):
        rows.append(Anchor(
            dataset=row["dataset"], method=row["method"], backbone=row["backbone"],
            relus=int(row["relus"]), top1=float(row["top1"]) if row["top1"] else None,
            source=row["source"], relu_convention=row["relu_convention"], note=row["note"]))
    return tuple(rows)


def anchor_datasets() -> list[str]:
    """Datasets with published results, in table order."""
    return list(dict.fromkeys(a.dataset for a in _all()))


def load_anchors(dataset: str, methods: Sequence[str] | None = None) -> list[Anchor]:
    """Published results on ``dataset``, optionally only those of ``methods`` (case-insensitive)."""
    rows = [a for a in _all() if a.dataset == dataset]
    if not rows:
        raise ReshapeError(f"no published results for dataset '{dataset}'; "
                           f"anchors exist for: {', '.join(anchor_datasets())}")
    if methods:
        known = {a.method.lower(): a.method for a in rows}
        unknown = [m for m in methods if m.lower() not in known]
        if unknown:
            raise ReshapeError(f"no published results for method '{unknown[0]}' on {dataset}; "
                               f"choose from: {', '.join(dict.fromkeys(known.values()))}")
        wanted = {m.lower() for m in methods}
        rows = [a for a in rows if a.method.lower() in wanted]
    return rows
