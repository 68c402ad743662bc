"""Seeded comparisons of frontier points: mean and standard error per point, paired
differences between our pipelines and the baselines they change one thing of, the ReLUs
ours needs to match a baseline (iso-accuracy), and whether the rows' training agrees.

Plain functions over the frontier's rows (dicts, ``reshape.frontier``): nothing here
trains or reads files. The pairs are data (``reshape/tables/pairs.json``).

A verdict is a claim about noise, so it needs a standard error: over seeds when there are
two or more (the paired difference's spread, same seed and images on both sides), else
the binomial error of two accuracies on the same ``tests`` images, named as such. A
difference wins only above two standard errors; otherwise it is "within noise".
"""
from __future__ import annotations

import math
import statistics
from typing import Any, Iterable, Mapping, Sequence

from .tables import load as load_table

#: Rows whose training (image-passes) differs by more than this fraction are not compared.
COMPUTE_TOLERANCE = 0.05
#: A difference is a win above this many standard errors.
WIN_SE = 2.0

Row = Mapping[str, Any]


def pairs_table() -> dict[str, list[str]]:
    """Our pipeline -> the baselines it is paired with (``tables/pairs.json``)."""
    out = {}
    for ours, entry in load_table("pairs").items():
        base = entry["baseline"]
        out[ours] = [base] if isinstance(base, str) else list(base)
    return out


def mean_se(values: Sequence[float]) -> tuple[float | None, float | None]:
    """Mean and standard error of the mean (None with fewer than two values)."""
    if not values:
        return None, None
    mean = statistics.fmean(values)
    return mean, (statistics.stdev(values) / math.sqrt(len(values)) if len(values) > 1 else None)


def passes(row: Row) -> int | None:
    """A row's training in image-passes, parents included (None where unrecorded)."""
    return (row.get("compute") or {}).get("image_passes")


def passes_text(value: float | None) -> str:
    """Image-passes as a reader scans them: 7.94k, 0.419M ("-" where unrecorded)."""
    if value is None:
        return "-"
    return f"{value / 1e6:.3g}M" if value >= 1e5 else f"{value / 1e3:.3g}k"


def aggregate(points: Iterable[Row]) -> list[dict[str, Any]]:
    """One row per (budget, method) over its seeds: top-1 (and validation top-1) as mean and
    standard error in fractions, ReLUs, MACs and compute as means, in the points' order."""
    groups: dict[tuple[str, str], list[Row]] = {}
    for row in points:
        groups.setdefault((row["label"], row["method"]), []).append(row)
    out = []
    for rows in groups.values():
        ok = [r for r in rows if r["reachable"] and r.get("top1") is not None]
        first = ok[0] if ok else rows[0]
        top1, top1_se = mean_se([r["top1"] for r in ok])
        vals = [r["val_top1"] for r in ok if r.get("val_top1") is not None]
        val, val_se = mean_se(vals)
        image_passes = [passes(r) for r in ok]
        out.append({
            "method": first["method"], "family": first["family"], "label": first["label"],
            "run": first["run"], "runs": [r["run"] for r in ok],
            "budget": first["budget"], "fraction": first["fraction"], "seeds": [r["seed"] for r in ok],
            "n": len(ok), "reachable": bool(ok), "why": None if ok else first.get("why"),
            "top1": top1, "top1_se": top1_se, "val_top1": val if len(vals) == len(ok) else None,
            "val_top1_se": val_se if len(vals) == len(ok) else None,
            "relus": _mean_int([r["relus"] for r in ok]), "macs": _mean_int([r["macs"] for r in ok]),
            "depth": first.get("depth"), "pi": first.get("pi") or {},
            "image_passes": None if not ok or None in image_passes else _mean_int(image_passes),
            "seconds": _mean([r["seconds"] for r in ok if r.get("seconds") is not None]),
            "within_budget": all(r["within_budget"] for r in ok) if ok else False})
    return out


def compute_agrees(rows: Iterable[Row], key: str = "image_passes") -> bool:
    """Whether every row's training lies within ``COMPUTE_TOLERANCE`` of every other's
    (False where a row's training is unrecorded)."""
    values = [r.get(key) for r in rows]
    if any(v is None for v in values):
        return False
    return not values or max(values) <= (1 + COMPUTE_TOLERANCE) * min(values)


def paired(points: Sequence[Row], tests: int | None = None) -> list[dict[str, Any]]:
    """Each pair of ``tables/pairs.json`` present in ``points``, per budget: the paired difference
    ours - baseline of test top-1 in points (same seed), its standard error and verdict, and the
    ratio of their training (image-passes; equal within ``COMPUTE_TOLERANCE`` or not compared)."""
    by = {(r["label"], r["method"], r["seed"]): r for r in points}
    labels = list(dict.fromkeys(r["label"] for r in points))
    methods = {r["method"] for r in points}
    seeds = sorted({r["seed"] for r in points})
    out = []
    for label in labels:
        for ours, baselines in pairs_table().items():
            for base in (b for b in baselines if ours in methods and b in methods):
                both = [(by[(label, ours, s)], by[(label, base, s)]) for s in seeds
                        if _ok(by.get((label, ours, s))) and _ok(by.get((label, base, s)))]
                out.append(_pair(label, ours, base, both, tests))
    return out


def _pair(label: str, ours: str, base: str, both: list[tuple[Row, Row]], tests: int | None) -> dict[str, Any]:
    diffs = [100 * (a["top1"] - b["top1"]) for a, b in both]
    mean, se = mean_se(diffs)
    kind = "seeds"
    if se is None and len(both) == 1 and tests:
        a, b = both[0]
        se = 100 * math.sqrt((a["top1"] * (1 - a["top1"]) + b["top1"] * (1 - b["top1"])) / tests)
        kind = f"binomial on {tests:,} test images (one seed)"
    ratio = None
    if both and all(passes(a) and passes(b) for a, b in both):
        ratio = statistics.fmean(passes(a) for a, _ in both) / statistics.fmean(passes(b) for _, b in both)
    equal = ratio is not None and abs(ratio - 1) <= COMPUTE_TOLERANCE
    budget = both[0][1]["budget"] if both else None
    return {"label": label, "budget": budget, "fraction": both[0][1]["fraction"] if both else None,
            "ours": ours, "baseline": base, "n": len(both), "seeds": [a["seed"] for a, _ in both],
            "diff": mean, "se": se, "se_kind": kind, "diffs": diffs,
            "compute_ratio": ratio, "compute_equal": equal, "verdict": verdict(mean, se, equal)}


def verdict(diff: float | None, se: float | None, compute_equal: bool = True) -> str:
    """How a paired difference reads: a win needs more than ``WIN_SE`` standard errors."""
    if diff is None:
        return "not measured"
    if not compute_equal:
        return "not compared: unequal training"
    if se is None:
        return "no standard error (one seed)"
    if diff > WIN_SE * se:
        return "ours better"
    if diff < -WIN_SE * se:
        return "baseline better"
    return "within noise"


def iso_relus(summary: Sequence[Row]) -> list[dict[str, Any]]:
    """For each pair and each baseline budget: the ReLUs our pipeline needs to match the
    baseline's mean accuracy there, read off our seeded front (mean top-1 against ReLUs,
    linear in log ReLUs between measured budgets), and that over the baseline's ReLUs.

    ``kind`` says how it was read: ``interpolated``; ``at most`` (our smallest budget
    already matches it: the ratio is a bound); ``not reached`` (no budget of ours does).
    """
    rows = [r for r in summary if r["reachable"] and r["top1"] is not None]
    out = []
    for ours, baselines in pairs_table().items():
        front = sorted((r["relus"], r["top1"]) for r in rows if r["method"] == ours)
        for base in baselines:
            for b in (r for r in rows if r["method"] == base):
                if not front:
                    continue
                relus, kind = _reach(front, b["top1"])
                ratio = None if relus is None else relus / b["relus"]
                out.append({"ours": ours, "baseline": base, "label": b["label"], "baseline_relus": b["relus"],
                            "baseline_top1": b["top1"], "relus": relus, "kind": kind, "ratio": ratio,
                            "fewer": None if not ratio else 1 / ratio})
    return out


def _reach(front: list[tuple[int, float]], target: float) -> tuple[float | None, str]:
    """The fewest ReLUs at which ``front`` (sorted by ReLUs) reaches ``target`` top-1."""
    if front[0][1] >= target:
        return float(front[0][0]), "at most"
    for (r0, a0), (r1, a1) in zip(front, front[1:]):
        if a1 >= target > a0:
            t = (target - a0) / (a1 - a0)
            return math.exp(math.log(r0) + t * (math.log(r1) - math.log(r0))), "interpolated"
    return None, "not reached"


def _ok(row: Row | None) -> bool:
    return row is not None and row["reachable"] and row.get("top1") is not None


def _mean(values: Sequence[float]) -> float | None:
    return statistics.fmean(values) if values else None


def _mean_int(values: Sequence[int]) -> int | None:
    return None if not values else round(statistics.fmean(values))
