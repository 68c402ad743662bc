"""DeepReShape synthesis: a HybReNet spec for a ReLU budget, no training, no search.

The rules are data (``tables/deepreshape_rules.json``, ``tables/stage_criticality.json``)
and read like this, for backbone ``b`` (a timm name at full width, or any 4-stage spec,
e.g. a narrow teacher's own), dataset preset ``d`` and budget ``B``:

1. **Regime**: ``B / ReLUs(b at d)`` picks a family and the DeepReDuce operators that go
   with it (culling the least-critical stage, thinning).
2. **Multipliers from criticality** (ReLU equalization): the family's published
   multipliers fix a set of stage ReLU shares; the criticality ranking assigns them to
   the stages (least critical, least share; a culled stage keeps its published share)
   and the multipliers are solved from the shares. The published ranking gives the
   published multipliers exactly; another ranking gives non-integer ones.
3. **Base width**: on a unit of ``w/64`` channels (``w`` = the backbone's stage-1 width),
   widths rounded half up. Counts are monotone in the width, so the largest base width
   meeting the ReLU (and MAC) budget is found by bisection over a few spec counts.
4. **Rounding**: the base width is rounded down to the coarsest grid (``round_to``
   units, halved down to 1 unit) that still lands within the tolerance of ``B``.
5. **Top-up**: if even a grid of 1 unit misses the tolerance, the leftover budget widens
   the most critical stage by whole channels (solved in closed form).

Counts come from the spec alone (``reshape.analytic``: ``total_relus``, ``spec_macs``):
a few integer products per block, so synthesis takes milliseconds.
"""
from __future__ import annotations

import dataclasses
import functools
import math
from dataclasses import dataclass
from fractions import Fraction
from typing import Any, Callable, Sequence

from . import tables
from .analytic import largest_within, spec_macs, stage_relus, total_relus
from .deepreduce import cull, set_depths, thin
from .errors import BudgetUnreachable, ReshapeError
from .spec import ArchSpec, Stage


# -- rules --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Explanation:
    """Why ``synthesize`` chose its spec: the rule applied at each step and the exact counts.

    ``base_width`` is the (possibly fractional) m of ``HRN-...-m``; ``unit`` the width step
    (``w/64`` channels for a backbone of stage-1 width ``w``) and ``grid`` the rounding grid, in
    channels; ``multipliers`` are those of the family after the criticality rule.
    """

    backbone: str
    dataset: str
    budget: int
    macs_budget: int | None
    regime: str
    multipliers: tuple[float, ...]
    published_multipliers: tuple[int, ...]
    base_width: float
    unit: float
    grid: float
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

    def shape(self, depths: Sequence[int]) -> Shape:
        """The family chosen, as a ``Shape`` with the network's ``depths``: given to
        ``synthesize`` for the same budget it makes the same network (a search's warm start)."""
        plain = tuple(int(m) if float(m).is_integer() else m for m in self.multipliers)
        return Shape(plain, tuple(self.culled), self.thinned, tuple(depths))


@dataclass(frozen=True)
class Shape:
    """A HybReNet family given instead of chosen by the budget's regime (a search trial's, or a
    user's): stage multipliers used as given, the culled stages, thinning, and blocks per stage
    (None: the backbone's). The base width is still solved for the budget as the rules solve it,
    so the shape the rules would choose gives exactly their network (``Explanation.shape``)."""

    multipliers: tuple[float, ...]
    culled: tuple[int, ...] = ()
    thin: bool = False
    depths: tuple[int, ...] | None = None

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


#: The regime entry of a given ``Shape`` (``Explanation.regime`` says "given").
GIVEN = "given"


def _rules() -> dict[str, Any]:
    return tables.load("deepreshape_rules")


def _tolerance() -> float:
    return _rules()["tolerance"]["value"]


def _exact(x: Fraction) -> int | Fraction:
    """An integral Fraction as an int (integer widths take the exact, fast path)."""
    return x.numerator if x.denominator == 1 else x


def _exact_number(x: float) -> int | Fraction:
    """A given multiplier as the exact number the rules compute with (2.5 -> 5/2)."""
    return _exact(Fraction(x).limit_denominator(10**6))


def _plain(x: Fraction) -> float:
    """A Fraction as JSON-friendly data: an int when integral, else a float."""
    return int(x) if x.denominator == 1 else float(x)


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
            raise ReshapeError(f"{exc.template}; or pass a measured ranking (stage numbers, least critical "
                               "first, e.g. 1,4,2,3)") from None
        ranking, source = entry["least_to_most"], entry["source"]
        if len(ranking) != stages:
            raise ReshapeError(f"{dataset}'s default criticality ranking {list(ranking)} ranks the "
                               f"{len(ranking)} stages of a ResNet; this network has {stages}: pass a "
                               f"ranking of its stages 1..{stages}, least critical first (measure one "
                               "with `reshape criticality`)")
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


def stage_shares(multipliers: Sequence[Fraction | int]) -> tuple[Fraction, ...]:
    """Block-ReLU share of each stage relative to stage 1 on the reference geometry (equal
    depths, each stage halving H and W): stage k+1 holds ``f_k / 4`` times stage k's ReLUs."""
    shares = [Fraction(1)]
    for f in multipliers:
        shares.append(shares[-1] * Fraction(f) / 4)
    return tuple(shares)


def equalized_multipliers(published: Sequence[int], ranking: Sequence[int], culled: int) -> tuple[Fraction, ...]:
    """DeepReShape's ReLU equalization for ``ranking``: the stage multipliers whose ReLU shares
    follow criticality.

    The published family's shares (``stage_shares``) are the levels. The ``culled`` least
    critical stages take the shares the reference ranking's culled stages have (2x5x3x: the
    largest); the other stages take the remaining shares in ascending order along the ranking
    (least critical, smallest share). Then ``f_k = 4 * share_{k+1} / share_k``. The reference
    ranking (the published one) maps back onto ``published`` exactly.
    """
    reference = tuple(_rules()["reference_ranking"]["value"])
    levels = stage_shares(published)
    level = {s: levels[s - 1] for s in reference}
    share: dict[int, Fraction] = {}
    for mine, theirs in zip(ranking[:culled], reference[:culled]):
        share[mine] = level[theirs]
    rest = sorted(level[s] for s in reference[culled:])
    share.update(zip(ranking[culled:], rest))
    return tuple(4 * share[k + 1] / share[k] for k in range(1, len(ranking)))


def _shaped(base: ArchSpec, multipliers: Sequence[Fraction], regime: dict[str, Any],
            culled: tuple[int, ...], m: Fraction) -> ArchSpec:
    from .models.hybrenet import hybrenet

    spec = cull(hybrenet(base, multipliers, m), culled)
    return thin(spec) if regime["thin"] else spec


def _widen(spec: ArchSpec, stage: int, extra: int) -> ArchSpec:
    stages = list(spec.stages)
    stages[stage - 1] = Stage(stages[stage - 1].width + extra, stages[stage - 1].depth)
    return spec.replace(stages=tuple(stages))


def _top_up(spec: ArchSpec, stage: int, relus: int, macs: int | None) -> int:
    """Whole channels ``stage`` can gain within both budgets (ReLUs are linear in them, MACs quadratic)."""
    extra = largest_within(lambda t: total_relus(_widen(spec, stage, t)), relus, 0)
    if macs is not None and spec_macs(_widen(spec, stage, extra)) > macs:  # only a binding cap is searched
        extra = largest_within(lambda t: spec_macs(_widen(spec, stage, t)), macs, 0)
    return extra


def _largest(f: Callable[[int], int], limit: int, lo: int) -> int:
    """Largest integer ``k >= lo`` with ``f(k) <= limit`` for a non-decreasing, unbounded ``f``
    (``lo - 1`` if none). Rounded widths make the counts steps, not lines, so the closed form
    of ``largest_within`` does not apply: a secant guess, galloping from it, then bisection
    (a handful of spec counts, since the counts are nearly linear or quadratic)."""
    f_lo = f(lo)
    if f_lo > limit:
        return lo - 1
    probe = 2 * lo + 16
    slope = max(1.0, (f(probe) - f_lo) / (probe - lo))
    guess = lo + int((limit - f_lo) / slope)
    step = 1
    if f(guess) <= limit:
        good = guess
        while f(good + step) <= limit:
            good, step = good + step, 2 * step
        bad = good + step
    else:
        bad = guess
        while bad - step > lo and f(bad - step) > limit:
            bad, step = bad - step, 2 * step
        good = max(lo, bad - step)
    while bad - good > 1:
        mid = (good + bad) // 2
        good, bad = (mid, bad) if f(mid) <= limit else (good, mid)
    return good


def _grid(k_max: int, round_to: int, min_k: int, reaches: Callable[[int], bool]) -> int:
    """The coarsest grid (round_to, halved down to 1) whose rounded-down width ``reaches`` the target.

    If none does, the coarsest grid that keeps ``k_max`` itself (1 always does).
    """
    grids = [round_to]
    while grids[-1] > 1:
        grids.append(grids[-1] // 2)
    usable = [g for g in grids if k_max // g * g >= min_k]
    return next((g for g in usable if reaches(k_max // g * g)),
                next(g for g in usable if k_max % g == 0))


def first_relu_width(spec: ArchSpec) -> int:
    """Width of the first layer that keeps ReLUs: the stem (it goes with stage 1), else the
    first stage that is not culled (0 for an all-linear spec)."""
    counts = stage_relus(spec)
    if counts.get("stem", 0) or counts.get("layer1", 0):
        return spec.stem.width if counts.get("stem", 0) else spec.stages[0].width
    return next((s.width for i, s in enumerate(spec.stages, start=1) if counts.get(f"layer{i}", 0)), 0)


@dataclass(frozen=True)
class _Family:
    """One regime's network family on one backbone: ``shape(k)`` at base width ``k * unit``."""

    regime: dict[str, Any]
    culled: tuple[int, ...]
    multipliers: tuple[Fraction, ...]
    base: ArchSpec
    unit: Fraction

    def shape(self, k: int) -> ArchSpec:
        return _shaped(self.base, self.multipliers, self.regime, self.culled, _exact(k * self.unit))

    def min_k(self) -> int:
        """The narrowest base width allowed: ``min_base_width`` units, and wide enough that the
        first ReLU layer has 2 channels per input channel (x = ReLU(x) - ReLU(-x): fewer
        discard part of the input at the first nonlinearity)."""
        rule = _rules()["min_base_width"]
        need = rule["relu_channels_per_input_channel"] * self.base.in_chans
        return max(rule["value"], _largest(lambda k: first_relu_width(self.shape(k)), need - 1, 1) + 1)

    def text(self) -> str:
        from .models.hybrenet import hrn_shape

        ops = [f"stage {', '.join(map(str, self.culled))} culled"] if self.culled else []
        ops += ["thinned"] if self.regime["thin"] else []
        return ", ".join([hrn_shape(self.multipliers), *ops])


def _families(base: ArchSpec, ranking: tuple[int, ...], fraction: float,
              shape: Shape | None = None) -> list[_Family]:
    """The regime the budget fraction reaches, then each lower one (the fallbacks); a given
    ``shape`` is the one family, without fallback."""
    regimes = _rules()["regimes"]
    unit = Fraction(base.widths[0], _rules()["min_base_width"]["reference_width"])
    if shape is not None:
        regime = {"name": GIVEN, "multipliers": list(shape.multipliers), "cull": len(shape.culled),
                  "thin": shape.thin, "reason": "the family was given (a search trial's or the user's), "
                  "not chosen by the budget's regime; only the base width is solved for the budget"}
        return [_Family(regime, tuple(sorted(shape.culled)), tuple(map(_exact_number, shape.multipliers)),
                        base, unit)]
    first = regimes.index(pick_regime(fraction))
    return [_Family(r, tuple(sorted(ranking[: r["cull"]])),
                    tuple(map(_exact, equalized_multipliers(r["multipliers"], ranking, r["cull"]))), base, unit)
            for r in regimes[first:]]


def _backbone(backbone: str | ArchSpec) -> ArchSpec:
    return backbone_spec(backbone) if isinstance(backbone, str) else backbone


def _setup(backbone: str | ArchSpec, dataset: str, criticality: Sequence[int] | None,
           shape: Shape | None = None) -> tuple[str, ArchSpec, tuple[int, ...], str]:
    """The backbone's label, its spec at the dataset preset (at ``shape``'s depths), and the
    criticality ranking with its source."""
    from .models import apply_preset

    label = backbone if isinstance(backbone, str) else backbone.name or "spec"
    base = _backbone(backbone)
    shape_stages = len(_rules()["regimes"][0]["multipliers"]) + 1
    if base.preact or len(base.stages) != shape_stages:
        raise ReshapeError(f"DeepReShape synthesis does not apply to '{label}': its rules (HRN-axbxcx "
                           f"widths, stage culling and thinning of post-add ReLUs) are for {shape_stages}-stage "
                           f"timm ResNets, and this is a {len(base.stages)}-stage {base.block} network")
    base = apply_preset(base.replace(relus=()), tables.dataset_preset(dataset))
    ranking, source = criticality_ranking(dataset, len(base.stages), criticality)
    if shape is not None:
        _check_shape(shape, len(base.stages))
        base = set_depths(base, shape.depths) if shape.depths is not None else base
    return label, base, ranking, source


def _check_shape(shape: Shape, stages: int) -> None:
    """A given family must fit the backbone: one multiplier per stage after the first, stage
    numbers in range, positive depths."""
    problems = []
    if len(shape.multipliers) != stages - 1 or not all(m > 0 for m in shape.multipliers):
        problems.append(f"multipliers {list(shape.multipliers)} must be {stages - 1} positive numbers")
    if len(set(shape.culled)) != len(shape.culled) or not all(1 <= c <= stages for c in shape.culled):
        problems.append(f"culled stages {list(shape.culled)} must be distinct stage numbers in 1..{stages}")
    if shape.depths is not None and (len(shape.depths) != stages or not all(d >= 1 for d in shape.depths)):
        problems.append(f"depths {list(shape.depths)} must be {stages} positive block counts")
    if problems:
        raise ReshapeError(f"HybReNet shape: {'; '.join(problems)}")


def smallest(backbone: str | ArchSpec, dataset: str, criticality: Sequence[int] | None = None,
             shape: Shape | None = None) -> ArchSpec:
    """The smallest network ``synthesize`` can make for ``backbone`` (with ``shape``: of that
    family): the lowest regime's family at its minimum base width (a budget below its ReLUs is
    unreachable)."""
    _, base, ranking, _ = _setup(backbone, dataset, criticality, shape)
    family = _families(base, ranking, 0.0, shape)[-1]
    return family.shape(family.min_k())


def synthesize(backbone: str | ArchSpec, dataset: str, relus: int, macs: int | None = None,
               criticality: Sequence[int] | None = None, round_to: int = 8,
               shape: Shape | None = None) -> tuple[ArchSpec, Explanation]:
    """A HybReNet spec with at most ``relus`` ReLUs (and ``macs`` MACs) for ``dataset``.

    ``backbone`` is a timm plain ResNet name (resnet18/34/50, ...: full width) or a 4-stage
    spec at any width (e.g. a teacher's own): its block, depths and stage-1 width are kept,
    the dataset preset sets input, classes and stem. The regime is chosen against its
    ReLUs, and its stage-1 width ``w`` sets the width unit ``w/64``. ``criticality`` lists
    stages from least to most critical (default: the table's ranking for the dataset).
    ``shape`` fixes the family (multipliers, culling, thinning, depths) instead of the regime:
    a search explores families, the base width is still solved here.
    """
    from .models.hybrenet import hrn_shape, number_text

    for name, value in (("ReLU budget", relus), ("MAC budget", macs), ("round_to", round_to)):
        if value is not None and value < 1:
            raise ReshapeError(f"the {name} must be at least 1, got {value:,}")
    label, base, ranking, source = _setup(backbone, dataset, criticality, shape)
    rules, tol = _rules(), _tolerance()
    base_relus = total_relus(base)
    reasons = [f"budget {relus:,} = {relus / base_relus:.1%} of {label}'s {base_relus:,} ReLUs at {dataset} "
               f"-> regime '{pick_regime(relus / base_relus)['name']}'"]
    for family in _families(base, ranking, relus / base_relus, shape):
        min_k = family.min_k()
        k_relus = _largest(lambda k: total_relus(family.shape(k)), relus, 1)
        # A MAC cap that the ReLU width already meets does not bind (and a search for the largest
        # width under a loose cap would probe widths no spec allows).
        loose = macs is None or (k_relus >= 1 and spec_macs(family.shape(k_relus)) <= macs)
        k_macs = k_relus if loose else _largest(lambda k: spec_macs(family.shape(k)), macs, 1)
        k_max = min(k_relus, k_macs)
        if k_max >= min_k:
            break
        smallest = family.shape(min_k)
        floor = (f"the smallest network of its family ({family.text()}, base width "
                 f"{number_text(min_k * family.unit)}) has {total_relus(smallest):,} ReLUs and "
                 f"{spec_macs(smallest):,} MACs")
        reasons.append(f"{floor}: too many for the budget, so the next regime is tried")
    else:
        raise BudgetUnreachable(f"budget too small for {label} on {dataset}: {floor}; raise the budget "
                                "to at least that")
    regime, culled, multipliers, unit = family.regime, family.culled, family.multipliers, family.unit
    published = tuple(regime["multipliers"])
    target = math.ceil((1 - tol) * relus)
    grid = _grid(k_max, round_to, min_k, lambda k: total_relus(family.shape(k)) >= target)
    k = k_max // grid * grid
    m = k * unit
    spec = family.shape(k)
    shares = stage_shares(multipliers)
    reasons += [
        f"regime '{regime['name']}': {regime['reason']}",
        f"criticality (least -> most critical stage) {list(ranking)}: {source}",
        (f"multipliers: given, {hrn_shape(published)}" if regime["name"] == GIVEN else
         "multipliers: the published " + hrn_shape(published) + " (the ranking orders its stage ReLU shares)"
         if multipliers == published else
         f"multipliers: ReLU equalization of {hrn_shape(published)} for this ranking -> {hrn_shape(multipliers)} "
         f"(block-ReLU shares S1:S2:S3:S4 relative to stage 1 = {' : '.join(f'{float(x):.3g}' for x in shares)}; widths rounded "
         "half up)"),
        f"base width on a unit of {number_text(unit)} channel(s) (stage-1 width {base.widths[0]} / "
        f"{rules['min_base_width']['reference_width']}): largest m with ReLUs <= {relus:,}"
        + (f" and MACs <= {macs:,}" if macs is not None else "")
        + f" is {number_text(k_max * unit)}; rounded down on a grid of {number_text(grid * unit)} -> m = "
        + number_text(m)
        + ("" if grid == round_to else
           f" (coarser grids fall short of {1 - tol:.0%} of the budget or of the minimum width "
           f"{number_text(min_k * unit)})"),
    ]
    topup = None
    if k_macs < k_relus:
        reasons.append(f"the MAC budget binds (m <= {number_text(k_macs * unit)}): the ReLU budget cannot "
                       "be spent, so no top-up")
    elif total_relus(spec) < target:
        stage = ranking[-1]
        extra = _top_up(spec, stage, relus, macs)
        if extra > 0:
            reasons.append(f"top-up: the base-width grid leaves {relus - total_relus(spec):,} ReLUs "
                           f"unspent; the most critical stage {stage} gets {extra} more channels")
            spec, topup = _widen(spec, stage, extra), (stage, extra)
    suffix = (f"+s{topup[0]}c{topup[1]}" if topup else "") + "".join(f"-cull{s}" for s in culled)
    given_depths = shape is not None and shape.depths is not None
    if given_depths and tuple(shape.depths) != tuple(_backbone(backbone).depths):
        suffix += "-d" + "".join(map(str, shape.depths))
    spec = spec.replace(name=spec.name + suffix + ("-thin" if regime["thin"] else ""))
    explanation = Explanation(
        backbone=label, dataset=dataset, budget=relus, macs_budget=macs, regime=regime["name"],
        multipliers=tuple(_plain(f) for f in multipliers), published_multipliers=published,
        base_width=_plain(m), unit=_plain(unit), grid=_plain(grid * unit), culled=culled,
        thinned=regime["thin"], topup=topup, criticality=ranking, criticality_source=source,
        backbone_relus=base_relus, relus=total_relus(spec), stage_relus=stage_relus(spec),
        macs=spec_macs(spec), reasons=tuple(reasons),
    )
    return spec, explanation
