"""DeepReDuce (Jha et al., ICML 2021) operators: coarse ReLU removal as spec edits.

Each operator takes an ``ArchSpec`` and returns a new one; nothing is built or
trained. Culling removes every ReLU of a stage (the stem ReLU goes with stage 1; a
pre-activation network's final ReLU, on the last stage's output, with the last stage),
thinning removes the post-add ReLU of every block (``act2`` of a BasicBlock,
``act3`` of a Bottleneck; a pre-activation block has none, so it is refused there), ``scale_width`` (``reshape.analytic``) multiplies all widths
(stem included) by alpha, ``set_stem_stride`` downsamples in the stem (ReLUs / stride^2) and
``set_depths`` changes blocks per stage. The published CIFAR-100 ResNet18 models are
named configurations in ``tables/deepreduce_configs.json``; ``apply`` replays one.
``fit_budget`` picks the edits for any budget by the ladder in ``tables/deepreduce_ladder.json``,
and ``widest`` is the plain width-scaling baseline.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Iterable, Mapping, Sequence

from . import tables
from .analytic import require_unmasked, scale_width, total_relus
from .errors import BudgetUnreachable, ReshapeError
from .spec import ACTS_PER_BLOCK, FINAL_ACT, STEM_ACT, ArchSpec, ReluLayer, Stage

#: The spec edits ``apply`` takes, in the order it runs them.
EDIT_KEYS = ("depths", "cull", "thin", "alpha", "stem_stride")


def stage_relu_names(spec: ArchSpec, stage: int) -> list[str]:
    """ReLU layers of stage ``stage`` (1-based); stage 1 owns the stem ReLU as well, the last
    stage a pre-activation network's final ReLU."""
    _check_stages(spec, [stage])
    prefix = f"layer{stage}."
    names = [n for n in spec.relu_names() if n.startswith(prefix)]
    if spec.preact:
        return [*names, FINAL_ACT] if stage == len(spec.stages) else names
    return [STEM_ACT, *names] if stage == 1 else names


def cull(spec: ArchSpec, stages: Iterable[int]) -> ArchSpec:
    """Remove every ReLU of ``stages`` (1-based), the stem ReLU with stage 1."""
    return spec.with_relus(ReluLayer(name, "removed") for s in stages
                           for name in stage_relu_names(spec, s))


def thin(spec: ArchSpec, stages: Iterable[int] | None = None) -> ArchSpec:
    """Remove the post-add ReLU of each block in ``stages`` (default: all stages)."""
    if spec.preact:
        raise ReshapeError("DeepReDuce's thinning removes each block's post-add ReLU; a pre-activation "
                           "block (WRN) has none: both its ReLUs are on the residual branch")
    stages = range(1, len(spec.stages) + 1) if stages is None else list(stages)
    _check_stages(spec, stages)
    last = f".act{ACTS_PER_BLOCK[spec.block]}"
    return spec.with_relus(ReluLayer(name, "removed") for s in stages
                           for name in stage_relu_names(spec, s) if name.endswith(last))


def set_stem_stride(spec: ArchSpec, stride: int) -> ArchSpec:
    """Stem conv stride ``stride``: every later activation map shrinks by stride^2."""
    require_unmasked(spec, "change the stem stride")
    return spec.replace(stem=dataclasses.replace(spec.stem, stride=stride))


def set_depths(spec: ArchSpec, depths: Sequence[int]) -> ArchSpec:
    """Blocks per stage; ReLU states of blocks that no longer exist are dropped."""
    if len(depths) != len(spec.stages):
        raise ReshapeError(f"{len(depths)} depths given for a {len(spec.stages)}-stage network")
    require_unmasked(spec, "change depths")
    resized = spec.replace(stages=tuple(Stage(s.width, d) for s, d in zip(spec.stages, depths)),
                           relus=())
    known = set(resized.relu_names())
    return resized.with_relus([layer for layer in spec.relus if layer.name in known])


def apply(spec: ArchSpec, steps: Mapping[str, Any]) -> ArchSpec:
    """Replay DeepReDuce edits: depths, cull, thin, alpha, stem_stride (in that order)."""
    unknown = set(steps) - set(EDIT_KEYS)
    if unknown:
        raise ReshapeError(f"unknown DeepReDuce step(s) {', '.join(sorted(unknown))}; "
                           f"known: {', '.join(EDIT_KEYS)}")
    if "depths" in steps:
        spec = set_depths(spec, steps["depths"])
    spec = cull(spec, steps.get("cull", ()))
    if steps.get("thin"):
        spec = thin(spec)
    if "alpha" in steps:
        spec = scale_width(spec, steps["alpha"])
    if "stem_stride" in steps:
        spec = set_stem_stride(spec, steps["stem_stride"])
    return spec


def widest(spec: ArchSpec, budget: int) -> tuple[ArchSpec, float]:
    """``spec`` uniformly width-scaled to the most ReLUs within ``budget``, and its alpha.

    Alpha runs over stage-1 widths w / W (W = ``spec``'s stage-1 width, w = W..1), so every
    stage keeps an integer width; a budget below the width-1 network is ``BudgetUnreachable``.
    """
    base = spec.stages[0].width
    for w in range(base, 0, -1):
        scaled = scale_width(spec, w / base)
        if total_relus(scaled) <= budget:
            return scaled, w / base
    raise BudgetUnreachable(f"budget {budget:,} is below the narrowest width-scaled network "
                       f"({total_relus(scale_width(spec, 1 / base)):,} ReLUs at alpha 1/{base})")


def fit_budget(spec: ArchSpec, budget: int, ranking: Sequence[int]) -> tuple[ArchSpec, dict[str, Any]]:
    """A DeepReDuce network for ``budget`` and the edits that made it.

    Each rung of the ladder is width-scaled into the budget; of the rungs that keep
    alpha >= ``min_alpha`` the one spending the most ReLUs wins, else the widest.

    ``ranking`` lists stages from least to most critical; culling takes them in that order.
    A pre-activation network (WRN) skips the thinning rungs: it has no post-add ReLUs.
    """
    n = len(spec.stages)
    if sorted(ranking) != list(range(1, n + 1)):
        raise ReshapeError(f"DeepReDuce ranking {list(ranking)} must list each of the stages 1..{n} once, "
                           f"least critical first (the default 1,4,2,3 is DeepReDuce's ResNet18 ranking; "
                           f"measure one with `reshape criticality`)")
    rules = tables.load("deepreduce_ladder")
    fits: list[tuple[ArchSpec, dict[str, Any]]] = []
    for rung in rules["ladder"]:
        if rung["thin"] and spec.preact:
            continue
        steps = {"cull": sorted(ranking[: rung["cull"]]), "thin": rung["thin"],
                 "stem_stride": rung["stem_stride"]}
        try:
            shaped, alpha = widest(apply(spec, steps), budget)
        except BudgetUnreachable:
            continue
        fits.append((shaped, {**steps, "alpha": alpha}))
    if not fits:
        raise BudgetUnreachable(f"no DeepReDuce edits reach {budget:,} ReLUs; the last rung of "
                           "tables/deepreduce_ladder.json at width 1 is the smallest network")
    wide = [f for f in fits if f[1]["alpha"] >= rules["min_alpha"]]
    if wide:  # max() keeps the first (least structural removal) of equal counts
        return max(wide, key=lambda f: total_relus(f[0]))
    return max(fits, key=lambda f: f[1]["alpha"])


def published(name: str) -> ArchSpec:
    """A published DeepReDuce model (``tables/deepreduce_configs.json``) as a spec."""
    from .models import apply_preset, spec_from_timm

    entry = tables.lookup("deepreduce_configs", name, "DeepReDuce configuration")
    base = apply_preset(spec_from_timm(entry["backbone"]), tables.dataset_preset(entry["dataset"]))
    edits = {k: v for k, v in entry.items() if k in EDIT_KEYS}
    return apply(base, edits).replace(name=f"deepreduce_{entry['backbone']}_{name}")


def _check_stages(spec: ArchSpec, stages: Iterable[int]) -> None:
    n = len(spec.stages)
    bad = [s for s in stages if not (isinstance(s, int) and 1 <= s <= n)]
    if bad:
        raise ReshapeError(f"stage {bad[0]!r} does not exist; stages are numbered 1..{n}")

