"""SENet (seed 000): sensitivity -> per-layer budgets -> ReLU locations -> distillation.

Three stages for a ReLU budget B (``stages``), each resumable:

1. ``plan``: per-layer ReLU sensitivity (a pluggable estimator, ``reshape.budget.sensitivity``),
   turned into per-layer counts by water-filling (``reshape.budget.allocate``) that sum to B
   (exactly for neuron masks; the largest sum <= B for channel masks). ``uniform``
   allocation (the same keep fraction everywhere) is the baseline (``senet_uniform``).
   Written to ``OUT/senet.json``.
2. ``locate`` (``OUT/locate/``, a run of its own): the student (teacher weights, masks at
   the planned counts, seeded positions) trains with logit KD; after each epoch each masked
   layer keeps its ReLUs at the top-r_l positions of D_l = sum over the epoch of
   |A_teacher - A_student| (post-ReLU activations). No L1 penalty.
3. final (``OUT``): masks fixed, CE + KD + ``at_weight`` x attention transfer between
   teacher and student block outputs (a = normalize(mean_c F^2)).

Ours (documented in docs/senet.md): the student starts from the teacher's weights
rather than from scratch, which is what makes short CPU runs useful.

The run folder is owned by the method registry, whose fingerprint covers every
parameter here, the budget, the teacher and the setting; each training stage is a
``reshape.train.fit`` run with its own fingerprint. So a rerun with other settings is
refused, never answered from an earlier run's files.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ..budget.allocate import allocate
from ..budget.masks import check_budget, copy_weights, masked_modules, masked_spec, sites, topk_mask
from ..budget.sensitivity import ESTIMATORS, sensitivity
from ..data import probe_batches
from ..errors import ReshapeError
from ..io import read_json, write_json
from ..runs import WEIGHTS_FILE, TrainedRun, load_weights
from ..spec import GRANULARITIES, ArchSpec
from ..train import EpochEnd, FeatureTaps, Step
from ._recipe import Recipe
from ._registry import Job, register_method

PLAN_FILE = "senet.json"
LOCATE_DIR = "locate"
ALLOCATIONS = ("sensitivity", "uniform")


@dataclass(frozen=True)
class SENetParams(Recipe):
    """Every SENet knob that changes the result (plus the training recipe, ``Recipe``)."""

    estimator: str = "pruning"
    allocation: str = "sensitivity"
    granularity: str = "neuron"
    #: Published 1000 (for 240-epoch final stages; it dominates short runs, docs/senet.md).
    at_weight: float = 1000.0
    lr: float = 0.05
    #: Global magnitude-pruning density of the ``pruning`` estimator.
    density: float = 0.1

    def __post_init__(self) -> None:
        super().__post_init__()
        for name, value, allowed in (("estimator", self.estimator, tuple(ESTIMATORS)),
                                     ("allocation", self.allocation, ALLOCATIONS),
                                     ("granularity", self.granularity, GRANULARITIES)):
            if value not in allowed:
                raise ReshapeError(f"unknown SENet {name} '{value}'; choose {', '.join(allowed)}")
        if self.at_weight < 0 or self.lr <= 0 or not 0 < self.density <= 1:
            raise ReshapeError(f"SENet needs at_weight >= 0, lr > 0 and density in (0, 1]; got "
                               f"{self.at_weight}, {self.lr}, {self.density}")


@dataclass(frozen=True)
class Plan:
    """Stage 1's result: per-layer sensitivity weights and ReLU counts for the budget."""

    budget: int
    estimator: str
    allocation: str
    granularity: str
    weights: dict[str, float]
    counts: dict[str, int]
    sizes: dict[str, int]
    spec: ArchSpec = field(compare=False)

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["spec"] = self.spec.to_dict()
        d["total"] = self.total
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Plan":
        d = {k: v for k, v in d.items() if k != "total"}
        return cls(**{**d, "spec": ArchSpec.from_dict(d["spec"])})

    def per_stage(self) -> dict[str, int]:
        """Planned ReLUs per network stage (``stem``, ``layer1``, ...): the plan in brief."""
        out: dict[str, int] = {}
        for name, n in self.counts.items():
            stage = name.split(".")[0] if "." in name else "stem"
            out[stage] = out.get(stage, 0) + n
        return out


def plan(spec: ArchSpec, model: nn.Module, budget: int, estimator: str = "pruning",
         granularity: str = "neuron", allocation: str = "sensitivity",
         batches: list[torch.Tensor] | None = None, density: float = 0.1) -> Plan:
    """Stage 1: per-layer counts summing to ``budget`` (no training)."""
    if allocation not in ALLOCATIONS:
        raise ReshapeError(f"unknown allocation '{allocation}'; choose {', '.join(ALLOCATIONS)}")
    layer_sites = sites(spec, model)
    sizes = [s.size for s in layer_sites]
    check_budget(budget, sum(sizes))
    if allocation == "uniform":
        weights = {s.name: float(s.size) for s in layer_sites}
    else:
        weights = sensitivity(estimator, model, layer_sites, batches=batches or [], density=density)
    counts = allocate([weights[s.name] for s in layer_sites], sizes, budget,
                      [s.unit(granularity) for s in layer_sites])
    by_name = dict(zip((s.name for s in layer_sites), counts))
    return Plan(budget, estimator if allocation == "sensitivity" else "-", allocation, granularity,
                weights, by_name, {s.name: s.size for s in layer_sites},
                masked_spec(spec, layer_sites, by_name, granularity))


class MaskLocator:
    """SENet's location search: an ``extra_loss`` that accumulates |A_t - A_s| per masked
    layer (adding nothing to the loss) and an epoch callback that moves each mask to
    the top-r_l positions of the accumulated difference.

    Made before the student exists and ``attach``-ed to it once built (``fit``'s ``init``),
    since ``reshape.train.fit`` builds the student itself, after seeding.
    """

    def __init__(self, teacher: nn.Module) -> None:
        self.teacher_model = teacher
        self.layers: dict[str, Any] = {}
        self.taps: list[FeatureTaps] = []
        self.diff: dict[str, torch.Tensor] = {}

    def attach(self, student: nn.Module) -> None:
        self.layers = masked_modules(student)
        self.student = FeatureTaps(student, self.layers)
        self.teacher = FeatureTaps(self.teacher_model, self.layers)
        self.taps = [self.student, self.teacher]

    def __call__(self, step: Step) -> torch.Tensor:
        with torch.no_grad():
            for name, layer in self.layers.items():
                d = (self.teacher[name].float() - self.student[name].float()).abs().sum(0)
                if layer.granularity == "channel":
                    d = d.flatten(1).sum(1)
                self.diff[name] = self.diff.get(name, 0) + d
        return step.logits.new_zeros(())

    def end_epoch(self, end: EpochEnd) -> None:
        moved = 0
        for name, layer in self.layers.items():
            if name not in self.diff:
                continue
            new = topk_mask(self.diff[name], layer.kept).to(layer.mask)
            moved += int((new != layer.mask).sum()) // 2
            layer.set_mask(new)
        self.diff.clear()
        end.metrics["mask_moves"] = moved

    def remove(self) -> None:
        """Detach the hooks (a no-op when never attached: a finished stage read back)."""
        for taps in self.taps:
            taps.remove()
        self.taps = []


class AttentionTransfer:
    """``weight`` x sum over blocks of mean((a_s - a_t)^2), a = normalize(mean_c(F^2)).

    ``attach`` it to the student once built, like ``MaskLocator``.
    """

    def __init__(self, teacher: nn.Module, blocks: list[str], weight: float) -> None:
        self.teacher_model = teacher
        self.blocks, self.weight = blocks, weight
        self.taps: list[FeatureTaps] = []

    def attach(self, student: nn.Module) -> None:
        self.student = FeatureTaps(student, self.blocks)
        self.teacher = FeatureTaps(self.teacher_model, self.blocks)
        self.taps = [self.student, self.teacher]

    @staticmethod
    def attention(features: torch.Tensor) -> torch.Tensor:
        return F.normalize(features.float().pow(2).mean(1).flatten(1), dim=1)

    def __call__(self, step: Step) -> torch.Tensor:
        loss = sum((self.attention(self.student[b]) - self.attention(self.teacher[b])).pow(2).mean()
                   for b in self.blocks)
        return self.weight * loss

    def remove(self) -> None:
        for taps in self.taps:
            taps.remove()
        self.taps = []


def block_names(spec: ArchSpec) -> list[str]:
    return [f"layer{s}.{b}" for s, stage in enumerate(spec.stages, 1) for b in range(stage.depth)]


def stages(job: Job, teacher: TrainedRun, p: SENetParams, spec: ArchSpec | None = None) -> dict[str, Any]:
    """SENet's three stages from ``teacher`` into ``job.out``; returns what it built.

    ``teacher`` may differ from ``job.teacher`` (a pipeline's HybReNet base) and ``spec``
    from ``teacher.spec`` (a spec edit of it, e.g. with linearized blocks; default the
    teacher's own): the student takes that spec, the teacher's weights and KD from it.
    The epochs are ``job.setting.stages()``: locations, then the final stage.
    """
    spec = spec or teacher.spec
    first, second = job.setting.stages()
    planned = _plan(job, teacher, spec, p)
    locator = MaskLocator(teacher.model)

    def start_from_teacher(student: nn.Module) -> None:
        copy_weights(student, teacher.model)
        locator.attach(student)

    try:
        located = job.train(planned.spec, job.setting.config(first, p.lr, **p.recipe()),
                            out=job.out / LOCATE_DIR, teacher=teacher, init=start_from_teacher,
                            init_key=teacher.digest, params={"stage": "senet-locate"},
                            extra_loss=locator, callbacks=[locator.end_epoch])
    finally:
        locator.remove()
    at = AttentionTransfer(teacher.model, block_names(planned.spec), p.at_weight) if p.at_weight > 0 else None

    def start_from_locations(student: nn.Module) -> None:
        load_weights(student, located.run / WEIGHTS_FILE)
        if at is not None:
            at.attach(student)

    try:
        job.train(planned.spec, job.setting.config(second, p.lr, **p.recipe()), teacher=teacher,
                  init=start_from_locations, init_key=located.fingerprint,
                  params={"stage": "senet-final", "at_weight": p.at_weight}, extra_loss=at)
    finally:
        if at is not None:
            at.remove()
    return {"allocation": planned.allocation, "estimator": planned.estimator,
            "granularity": planned.granularity, "planned": planned.total,
            "optimisable": sum(planned.sizes.values()), "per_stage": planned.per_stage(),
            "locate_top1": located.top1, "mask_moves": located.metrics.get("mask_moves")}


def _plan(job: Job, teacher: TrainedRun, spec: ArchSpec, p: SENetParams) -> Plan:
    """Stage 1, or its ``senet.json`` from an interrupted run of this job (same claim, same plan)."""
    file = job.out / PLAN_FILE
    if file.is_file():
        return Plan.from_dict(read_json(file, "SENet plan"))
    batches = probe_batches(job.data.train) if p.estimator == "linearize" and p.allocation == "sensitivity" \
        else None
    planned = plan(spec, teacher.model, job.budget, p.estimator, p.granularity, p.allocation, batches, p.density)
    write_json(file, planned.to_dict())
    return planned


@register_method("senet", SENetParams, family="ours",
                 summary="SENet: sensitivity allocation, learned ReLU locations, KD + attention transfer")
def fit(job: Job, p: SENetParams) -> dict[str, Any]:
    return stages(job, job.teacher, p)


register_method("senet_uniform", SENetParams, family="baseline", defaults=SENetParams(allocation="uniform"),
                summary="SENet's stages with the same keep fraction in every layer")(fit)
