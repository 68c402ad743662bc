"""Reporting: results against the literature (Pareto fronts, plots) and export of a run.

``anchors`` reads the published results shipped in ``reshape/tables/anchors.csv``,
``sources`` reads our results (run directories, result CSVs, Optuna studies) as
points, ``pareto`` marks the non-dominated ones, ``plot`` draws them (matplotlib is
imported only there), ``export`` writes a run in portable forms (spec, safetensors,
ONNX, timm config). ``views`` and ``run_views`` build what each command prints (rich
tables and lines, returned for the command line to print).
"""
from __future__ import annotations

from .anchors import Anchor, anchor_datasets, load_anchors
from .pareto import Point, mark_fronts, pareto_front

__all__ = ["Anchor", "anchor_datasets", "load_anchors", "Point", "mark_fronts", "pareto_front"]
