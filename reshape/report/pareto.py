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
    """One result: ``top1`` in percent, ``relus`` per input image.

    ``cost`` is a measured cost (bytes or seconds, ``reshape measure``) when the x axis
    is not the ReLU count; ``x`` is what fronts and plots use.
    """

    method: str
    relus: int
    top1: float
    source: str
    ours: bool = True
    on_front: bool = False
    cost: float | None = None

    @property
    def x(self) -> float:
        return self.relus if self.cost is None else self.cost

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def pareto_front(points: Sequence[Point]) -> list[bool]:
    """For each point, whether it is non-dominated among ``points`` (lower cost ``Point.x``:
    ReLUs or a measured cost, higher top-1)."""
    return front_flags([(p.x, p.top1) for p in points])


def front_flags(pairs: Sequence[tuple[float, float]]) -> list[bool]:
    """For each (cost, accuracy) pair, whether no other pair has at most its cost and at least
    its accuracy, one of them strictly: the cost may be ReLUs or an estimated PI latency.

    Sorted by cost (ties: best accuracy first), a pair is on the front exactly when it
    beats the best accuracy seen at lower or equal cost; equal duplicates both stay.
    """
    order = sorted(range(len(pairs)), key=lambda i: (pairs[i][0], -pairs[i][1]))
    flags = [False] * len(pairs)
    best: tuple[float, float] | None = None  # (cost, accuracy) of the last front pair
    for i in order:
        if best is None or pairs[i][1] > best[1] or tuple(pairs[i]) == best:
            flags[i] = True
            best = (pairs[i][0], pairs[i][1])
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
