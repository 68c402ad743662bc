"""Our results beside the published ones, as Pareto fronts: what ``reshape pareto`` runs.

``read_source`` reads each SOURCE (a run directory, a results CSV, a frontier folder, an
Optuna study) as points, ``load_anchors`` adds the published results, ``mark_fronts`` flags
each method's front and ``plot_front`` draws it all.
"""
from __future__ import annotations

import os
from typing import Callable, Sequence

from ..errors import ReshapeError
from ..runs import file_target
from .anchors import load_anchors
from .pareto import Point, mark_fronts
from .plot import plot_front
from .sources import read_source

#: The unit of each measured x axis (what ``reshape measure`` recorded); the ReLU axis has none.
UNITS = {"measured-bytes": "bytes", "measured-seconds": "s"}


def fronts(sources: Sequence[str], dataset: str, *, anchors: bool = False, methods: Sequence[str] | None = None,
           out: str | os.PathLike[str] | None = None, x: str = "relus", protocol: str = "cheetah",
           on_source: Callable[[str], None] | None = None) -> list[Point]:
    """The points of ``sources`` on ``dataset`` with each method's front flagged, plotted at
    ``out`` when given (checked first: never a file inside a run). ``anchors`` adds the
    published results (``methods``: those published methods only). A measured ``x``
    (``measured-bytes``, ``measured-seconds``) reads the cost ``reshape measure`` recorded
    under ``protocol``; published results have none, so they are refused there.
    ``on_source`` is told each source once it is read."""
    unit = UNITS.get(x)
    if unit and (anchors or methods):
        raise ReshapeError("published results have no measured cost: leave them out or plot against ReLUs")
    if out is not None:
        file_target(out)
    published = load_anchors(dataset, list(methods) if methods else None) if anchors or methods else []
    points = []
    for source in sources:
        points += read_source(source, dataset, x, protocol)
        if on_source is not None:
            on_source(source)
    marked = mark_fronts(points + [Point(a.label, a.relus, a.top1, a.source, ours=False)
                                   for a in published if a.top1 is not None])
    if out is not None:
        plot_front(marked, published, dataset, out,
                   xlabel=f"measured online {unit} per image, SPU {protocol} (log scale)" if unit else None)
    return marked
