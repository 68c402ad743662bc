"""Per-layer ReLU sensitivity: how much each ReLU layer's ReLUs are worth (SENet stage 1).

Estimators are pluggable (``ESTIMATORS``); each returns one non-negative weight per
site, and the allocation gives layer l a ReLU count proportional to its weight (capped
at the layer size). Definitions ("Ours", methods.md section 3):

* ``pruning`` (SENet-style): globally magnitude-prune every conv of the trained model
  to density ``d`` (one threshold for all layers), read the kept-weight density of the
  conv feeding each ReLU layer, and take ``1 / density`` as the sensitivity: layers
  whose weights survive pruning (stem, early layers) need few ReLUs, layers pruned
  hard (deep, wide) need many, which is the profile SENet reports.
* ``criticality`` (the default of ``reshape senet``): ``pruning`` times a per-stage weight
  from a stage-criticality ranking (least critical first, as ``reshape criticality`` measures
  it and DeepReDuce publishes it): the stage at position r of n gets r / n, the stem goes with
  stage 1 (DeepReDuce culls it with stage 1). Of the estimators here it matches the shape of
  SENet's released per-layer keep lists best (docs/senet.md, "Which estimator").
* ``linearize``: the rise in KD loss (KL to the all-ReLU model's logits, T = 1) on a few
  batches when that one layer's ReLUs become identity; one evaluation per layer
  (``linearize_groups``: several layers at once, e.g. all inner ReLUs of a residual block).
"""
from __future__ import annotations

from typing import Callable, Iterable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ReshapeError
from .masks import Site, stage_of


def feeding_conv(site: str) -> str:
    """The conv whose output a ResNet ReLU layer activates: ``act<k>`` <- ``conv<k>``."""
    head, _, act = site.rpartition(".")
    conv = "conv" + act.removeprefix("act")
    return f"{head}.{conv}" if head else conv


def pruning(model: nn.Module, layer_sites: list[Site], density: float = 0.1,
            feeding: dict[str, str] | None = None, **_: object) -> dict[str, float]:
    """``feeding`` maps sites to their conv (``ArchSpec.feeding_convs``; default: the ResNet rule)."""
    if not 0 < density < 1:
        raise ReshapeError(f"pruning density must be in (0, 1), got {density}")
    convs = {n: m for n, m in model.named_modules() if isinstance(m, nn.Conv2d)}
    magnitudes = torch.cat([m.weight.detach().abs().flatten() for m in convs.values()])
    keep = max(1, int(density * magnitudes.numel()))
    threshold = torch.topk(magnitudes, keep).values.min()
    out = {}
    for s in layer_sites:
        name = (feeding or {}).get(s.name) or feeding_conv(s.name)
        conv = convs.get(name)
        if conv is None:
            raise ReshapeError(f"no conv '{name}' feeds ReLU layer '{s.name}'")
        kept = (conv.weight.detach().abs() >= threshold).float().mean().item()
        out[s.name] = 1.0 / max(kept, 1e-6)
    return out


def stage_weights(ranking: Sequence[int]) -> dict[int, float]:
    """Stage number -> r / n for the stage at position r (1-based) of a least-to-most-critical ranking."""
    ranking = list(ranking)
    if sorted(ranking) != list(range(1, len(ranking) + 1)):
        raise ReshapeError(f"criticality ranking {ranking} must list each stage 1..n once, least "
                           "critical first (e.g. 1,4,2,3)")
    return {stage: (position + 1) / len(ranking) for position, stage in enumerate(ranking)}


def stage_number(site: str, stages: int) -> int:
    """1-based stage of a ResNet ReLU layer; the stem counts as stage 1, a pre-activation
    network's final ReLU (``head``) as the last of ``stages``."""
    stage = stage_of(site)
    return {"stem": 1, "head": stages}.get(stage) or int(stage.removeprefix("layer"))


def criticality(model: nn.Module, layer_sites: list[Site], ranking: Sequence[int] = (), density: float = 0.1,
                feeding: dict[str, str] | None = None, **_: object) -> dict[str, float]:
    weights = stage_weights(ranking)
    missing = sorted({stage_number(s.name, len(weights)) for s in layer_sites} - set(weights))
    if missing:
        raise ReshapeError(f"criticality ranking {list(ranking)} has no stage {missing[0]}; "
                           "rank every stage of the network")
    base = pruning(model, layer_sites, density, feeding)
    return {s.name: base[s.name] * weights[stage_number(s.name, len(weights))] for s in layer_sites}


def linearize(model: nn.Module, layer_sites: list[Site], batches: Iterable[torch.Tensor] = (),
              **_: object) -> dict[str, float]:
    return linearize_groups(model, {s.name: [s.name] for s in layer_sites}, batches)


@torch.no_grad()
def linearize_groups(model: nn.Module, groups: dict[str, Sequence[str]],
                     batches: Iterable[torch.Tensor] = ()) -> dict[str, float]:
    """Per group: the rise in KD loss when all its ReLU layers (module names) become identity at once.

    One layer per group is the ``linearize`` estimator; a residual block's inner ReLU
    layers as one group score the block for the shallow-block method.
    """
    batches = list(batches)
    if not batches:
        raise ReshapeError("the linearize estimator needs input batches (a dataset's images); none were given")
    was_training = model.training
    model.eval()
    try:
        reference = [F.log_softmax(model(x), dim=1) for x in batches]
        out = {}
        for group, layers in groups.items():
            originals = {name: model.get_submodule(name) for name in layers}
            for name in layers:
                model.set_submodule(name, nn.Identity())
            try:
                rise = sum(F.kl_div(F.log_softmax(model(x), dim=1), ref, log_target=True,
                                    reduction="batchmean").item() for x, ref in zip(batches, reference))
            finally:
                for name, original in originals.items():
                    model.set_submodule(name, original)
            out[group] = max(rise / len(batches), 0.0)
    finally:
        model.train(was_training)
    return out


ESTIMATORS: dict[str, Callable[..., dict[str, float]]] = {"criticality": criticality, "pruning": pruning,
                                                           "linearize": linearize}


def sensitivity(name: str, model: nn.Module, layer_sites: list[Site], **kwargs: object) -> dict[str, float]:
    if name not in ESTIMATORS:
        raise ReshapeError(f"unknown sensitivity estimator '{name}'; choose {', '.join(ESTIMATORS)}")
    return ESTIMATORS[name](model, layer_sites, **kwargs)
