"""DeepReShape synthesis: a HybReNet spec for a ReLU budget in O(1), no training, no search.

The rules are data (``tables/deepreshape_rules.json``, ``tables/stage_criticality.json``)
and read like this, for backbone ``b``, dataset preset ``d`` and budget ``B``:

1. **Regime**: ``B / ReLUs(b at d)`` picks a stage-multiplier family and the DeepReDuce
   operators that go with it (culling the least-critical stages, thinning).
2. **Base width in closed form**: every ReLU layer's size is a width times an area, so
   the count of the shaped network is ``R(m) = m * R(1)`` and MACs are quadratic in
   ``m``; the largest ``m`` meeting both budgets is solved directly.
3. **Rounding**: ``m`` is rounded down to the coarsest grid (``round_to``, halved down
   to 1) that still lands within the tolerance of ``B``.
4. **Top-up**: if even a grid of 1 misses the tolerance, the leftover budget widens the
   most critical stage by whole channels (again solved in closed form).

Counts come from the spec alone (``reshape.analytic``: ``total_relus``, ``spec_macs``,
``largest_within``): a few integer products per block, which is what makes synthesis O(1).
"""
from __future__ import annotations

import dataclasses
import functools
import math
from dataclasses import dataclass
from typing import Any, Callable, Sequence

from . import tables
from .analytic import largest_within, spec_macs, stage_relus, total_relus
from .deepreduce import cull, thin
from .errors import BudgetUnreachable, ReshapeError
from .spec import ArchSpec, Stage


# -- rules --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Explanation:
    """Why ``synthesize`` chose its spec: the rule applied at each step and the exact counts."""

    backbone: str
    dataset: str
    budget: int
    macs_budget: int | None
    regime: str
    multipliers: tuple[int, ...]
    base_width: int
    grid: int
    culled: tuple[int, ...]
    thinned: bool
    topup: tuple[int, int] | None  # (stage, extra channels)
    criticality: tuple[int, ...]
    criticality_source: str
    backbone_relus: int
    relus: int
    stage_relus: dict[str, int]
    macs: int
    reasons: tuple[str, ...]

    @property
    def within_tolerance(self) -> bool:
        return self.relus >= (1 - _tolerance()) * self.budget

    def to_dict(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "within_tolerance": self.within_tolerance}


def _rules() -> dict[str, Any]:
    return tables.load("deepreshape_rules")


def _tolerance() -> float:
    return _rules()["tolerance"]["value"]


@functools.cache
def backbone_spec(name: str) -> ArchSpec:
    """The timm plain ResNet ``name`` as a spec (cached: reading timm costs a meta build)."""
    from .models import require_plain_resnet

    return require_plain_resnet(name)


def criticality_ranking(dataset: str, stages: int,
                        ranking: Sequence[int] | None = None) -> tuple[tuple[int, ...], str]:
    """Stage numbers from least to most critical, and where the ranking comes from."""
    if ranking is None:
        try:
            entry = tables.lookup("stage_criticality", dataset, "dataset with a default criticality")
        except ReshapeError as exc:
            raise ReshapeError(f"{exc}; or pass a measured ranking (stage numbers, least critical "
                               "first, e.g. 1,4,2,3)") from None
        ranking, source = entry["least_to_most"], entry["source"]
    else:
        source = "given by the caller"
    ranking = tuple(ranking)
    if sorted(ranking) != list(range(1, stages + 1)):
        raise ReshapeError(f"criticality ranking {list(ranking)} must list each of the stages "
                           f"1..{stages} once, least critical first (e.g. 1,4,2,3)")
    return ranking, source


def pick_regime(fraction: float) -> dict[str, Any]:
    """The first regime (ordered high to low) whose ``min_budget_fraction`` the budget reaches."""
    return next(r for r in _rules()["regimes"] if fraction >= r["min_budget_fraction"])


def _shaped(base: ArchSpec, regime: dict[str, Any], culled: tuple[int, ...], m: int) -> ArchSpec:
    from .models.hybrenet import hybrenet

    spec = cull(hybrenet(base, regime["multipliers"], m), culled)
    return thin(spec) if regime["thin"] else spec


def _widen(spec: ArchSpec, stage: int, extra: int) -> ArchSpec:
    stages = list(spec.stages)
    stages[stage - 1] = Stage(stages[stage - 1].width + extra, stages[stage - 1].depth)
    return spec.replace(stages=tuple(stages))


def _top_up(spec: ArchSpec, stage: int, relus: int, macs: int | None) -> int:
    """Whole channels ``stage`` can gain within both budgets (ReLUs are linear in them, MACs quadratic)."""
    extra = largest_within(lambda t: total_relus(_widen(spec, stage, t)), relus, 0)
    if macs is not None:
        extra = min(extra, largest_within(lambda t: spec_macs(_widen(spec, stage, t)), macs, 0))
    return extra


def _grid(m_max: int, round_to: int, min_m: int, reaches: Callable[[int], bool]) -> int:
    """The coarsest grid (round_to, halved down to 1) whose rounded-down width ``reaches`` the target.

    If none does, the coarsest grid that keeps ``m_max`` itself (1 always does).
    """
    grids = [round_to]
    while grids[-1] > 1:
        grids.append(grids[-1] // 2)
    usable = [g for g in grids if m_max // g * g >= min_m]
    return next((g for g in usable if reaches(m_max // g * g)),
                next(g for g in usable if m_max % g == 0))


def synthesize(backbone: str | ArchSpec, dataset: str, relus: int, macs: int | None = None,
               criticality: Sequence[int] | None = None,
               round_to: int = 8) -> tuple[ArchSpec, Explanation]:
    """A HybReNet spec with at most ``relus`` ReLUs (and ``macs`` MACs) for ``dataset``.

    ``backbone`` is a timm plain ResNet name (resnet18/34/50, ...) or a 4-stage spec;
    its block and depths are kept, the dataset preset sets input, classes and stem.
    ``criticality`` lists stages from least to most critical (default: the table's
    ranking for the dataset).
    """
    from .models import apply_preset

    if relus < 1 or (macs is not None and macs < 1) or round_to < 1:
        raise ReshapeError("ReLU budget, MAC budget and round_to must be positive integers")
    label = backbone if isinstance(backbone, str) else backbone.name or "spec"
    base = backbone_spec(backbone) if isinstance(backbone, str) else backbone
    base = apply_preset(base.replace(relus=()), tables.dataset_preset(dataset))
    ranking, source = criticality_ranking(dataset, len(base.stages), criticality)
    rules, tol = _rules(), _tolerance()
    base_relus = total_relus(base)
    regime = pick_regime(relus / base_relus)
    culled = tuple(sorted(ranking[: regime["cull"]]))
    shape = functools.partial(_shaped, base, regime, culled)
    min_m = rules["min_base_width"]["value"]
    family = _family_text(regime, culled)

    m_relus = largest_within(lambda m: total_relus(shape(m)), relus, 1)
    m_macs = m_relus if macs is None else largest_within(lambda m: spec_macs(shape(m)), macs, 1)
    m_max = min(m_relus, m_macs)
    if m_max < min_m:
        smallest = shape(min_m)
        raise BudgetUnreachable(
            f"budget too small for {label} on {dataset}: the smallest network of its family "
            f"({family}, base width {min_m}) has {total_relus(smallest):,} ReLUs and "
            f"{spec_macs(smallest):,} MACs; raise the budget to at least that")
    target = math.ceil((1 - tol) * relus)
    grid = _grid(m_max, round_to, min_m, lambda m: total_relus(shape(m)) >= target)
    m = m_max // grid * grid
    spec = shape(m)
    reasons = [
        f"budget {relus:,} = {relus / base_relus:.1%} of {label}'s {base_relus:,} ReLUs at {dataset} "
        f"-> regime '{regime['name']}': {regime['reason']}",
        f"criticality (least -> most critical stage) {list(ranking)}: {source}",
        f"base width in closed form: R(m) = {total_relus(shape(1)):,} * m"
        + (f", MACs(m) <= {macs:,}" if macs is not None else "")
        + f" -> largest m = {m_max}; rounded down on a grid of {grid} -> m = {m}"
        + ("" if grid == round_to else
           f" (coarser grids fall short of {1 - tol:.0%} of the budget or of the minimum width {min_m})"),
    ]
    topup = None
    if m_macs < m_relus:
        reasons.append(f"the MAC budget binds (m <= {m_macs}): the ReLU budget cannot be spent, "
                       "so no top-up")
    elif total_relus(spec) < target:
        stage = ranking[-1]
        extra = _top_up(spec, stage, relus, macs)
        if extra > 0:
            reasons.append(f"top-up: the base-width grid leaves {relus - total_relus(spec):,} ReLUs "
                           f"unspent; the most critical stage {stage} gets {extra} more channels")
            spec, topup = _widen(spec, stage, extra), (stage, extra)
    suffix = (f"+s{topup[0]}c{topup[1]}" if topup else "") + "".join(f"-cull{s}" for s in culled)
    spec = spec.replace(name=spec.name + suffix + ("-thin" if regime["thin"] else ""))
    explanation = Explanation(
        backbone=label, dataset=dataset, budget=relus, macs_budget=macs, regime=regime["name"],
        multipliers=tuple(regime["multipliers"]), base_width=m, grid=grid, culled=culled,
        thinned=regime["thin"], topup=topup, criticality=ranking, criticality_source=source,
        backbone_relus=base_relus, relus=total_relus(spec), stage_relus=stage_relus(spec),
        macs=spec_macs(spec), reasons=tuple(reasons),
    )
    return spec, explanation


def _family_text(regime: dict[str, Any], culled: tuple[int, ...]) -> str:
    ops = [f"stage {', '.join(map(str, culled))} culled"] if culled else []
    ops += ["thinned"] if regime["thin"] else []
    from .models.hybrenet import hrn_shape

    return ", ".join([hrn_shape(regime["multipliers"]), *ops])
