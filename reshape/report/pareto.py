"""Pareto fronts of accuracy (up) against ReLU count (down).

A point is on the front when no other point of its group has at most its ReLUs and
at least its accuracy with one of the two strictly better. Fronts are computed per
method, so each method's best trade-off curve can be drawn as a step line: the best
accuracy reachable within a ReLU budget.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Iterable, Sequence


@dataclass(frozen=True)
class Point:
    """One result: ``top1`` in percent, ``relus`` per input image."""

    method: str
    relus: int
    top1: float
    source: str
    ours: bool = True
    on_front: bool = False

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def pareto_front(points: Sequence[Point]) -> list[bool]:
    """For each point, whether it is non-dominated among ``points``.

    Sorted by ReLUs (ties: best accuracy first), a point is on the front exactly when
    it beats the best accuracy seen at fewer or equal ReLUs; equal duplicates both stay.
    """
    order = sorted(range(len(points)), key=lambda i: (points[i].relus, -points[i].top1))
    flags = [False] * len(points)
    best: tuple[int, float] | None = None  # (relus, top1) of the last front point
    for i in order:
        p = points[i]
        if best is None or p.top1 > best[1] or (p.relus, p.top1) == best:
            flags[i] = True
            best = (p.relus, p.top1)
    return flags


def mark_fronts(points: Iterable[Point]) -> list[Point]:
    """``points`` with ``on_front`` set within each (method, ours) group, order kept."""
    points = list(points)
    groups: dict[tuple[str, bool], list[int]] = {}
    for i, p in enumerate(points):
        groups.setdefault((p.method, p.ours), []).append(i)
    marked = list(points)
    for members in groups.values():
        for i, flag in zip(members, pareto_front([points[i] for i in members])):
            marked[i] = dataclasses.replace(points[i], on_front=flag)
    return marked
