"""SENet (seed 000): sensitivity -> per-layer budgets -> ReLU locations -> distillation.

Three stages for a ReLU budget B (``stages``), each resumable:

1. ``plan``: per-layer ReLU sensitivity (a pluggable estimator, ``reshape.budget.sensitivity``;
   default ``criticality``: weight-pruning sensitivity weighted by the stage-criticality
   ranking), turned into per-layer counts by water-filling (``reshape.budget.allocate``)
   that sum to B (exactly for neuron masks; the largest sum <= B for channel masks).
   ``uniform`` allocation (the same keep fraction everywhere) is the baseline
   (``senet_uniform``). Written to ``OUT/senet.json`` with its per-stage split.
2. ``locate`` (``OUT/locate/``, a run of its own): the student (teacher weights, masks at
   the planned counts, seeded positions) trains with the setting's CE + KD mix (released:
   0.5 + 0.5); after each epoch but the last, each masked layer keeps its ReLUs at the
   top-r_l positions of D_l = sum over the epoch of |A_teacher - A_student| (post-ReLU
   activations). No L1 penalty. The last epoch trains the mask the final stage keeps.
3. final (``OUT``): masks fixed, ``ce_weight`` x CE + ``kd_weight`` x KD + ``at_weight`` x
   attention transfer between teacher and student stage outputs (``layer1`` .. ``layer4``;
   a = normalize(mean_c F^2)), the released weights by default (0.1, 0.5, 1000).

Deviations from the released code (docs/senet.md lists each with its reason): the student
starts from the teacher's weights rather than from scratch, which is what makes short CPU
runs useful; no relocation after the last locate epoch; the estimator (none is released).

The run folder is owned by the method registry, whose fingerprint covers every
parameter here, the budget, the teacher and the setting; each training stage is a
``reshape.train.fit`` run with its own fingerprint. So a rerun with other settings is
refused, never answered from an earlier run's files.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ..budget.allocate import allocate
from ..budget.masks import check_budget, copy_weights, masked_modules, masked_spec, sites, stage_of, topk_mask
from ..budget.sensitivity import ESTIMATORS, sensitivity, stage_weights
from ..data import load, probe_batches
from ..deepreshape import criticality_ranking
from ..errors import ReshapeError
from ..io import read_json, write_json
from ..runs import WEIGHTS_FILE, TrainedRun, load_weights, variant, writes
from ..spec import GRANULARITIES, ArchSpec
from ..train import EpochEnd, FeatureTaps, Step, read_metrics
from ..values import FRACTION, NON_NEGATIVE, POSITIVE, UNIT
from ._recipe import Recipe
from ._registry import Job, check_params, param, register_method

PLAN_FILE = "senet.json"
LOCATE_DIR = "locate"
for _name in ("senet", "senet_uniform"):  # what a forced rerun may delete beside the run (locate/ is a stage run)
    writes(_name, PLAN_FILE)
ALLOCATIONS = ("sensitivity", "uniform")


@dataclass(frozen=True)
class SENetParams(Recipe):
    """Every SENet knob that changes the result (plus the training recipe, ``Recipe``)."""

    estimator: str = param("criticality", "Per-layer ReLU sensitivity estimator (docs/senet.md).",
                           choices=tuple(ESTIMATORS), option="sensitivity")
    ranking: tuple[int, ...] | None = param(None, "Stages least to most critical for the criticality "
                                            "estimator, e.g. 4,1,2,3 (measured by `reshape criticality`; "
                                            "default: the dataset's, tables/stage_criticality.json).")
    allocation: str = param("sensitivity", "Per-layer ReLU counts by sensitivity, or uniform: the same keep "
                            "fraction in every layer (the senet_uniform baseline).", choices=ALLOCATIONS)
    granularity: str = param("neuron", "A mask per neuron (C x H x W) or per channel.", choices=GRANULARITIES)
    at_weight: float = param(1000.0, "Weight of the attention-transfer loss in the final stage (published "
                             "1000, for 240-epoch final stages; it dominates short runs, docs/senet.md).",
                             allowed=NON_NEGATIVE)
    #: Final-stage CE and KD weights: the released 0.1 CE + 0.5 KD (rlnet README.md, natural
    #: CIFAR-10 stage 2; 0.5 CE is only the argparse default and the robust-training command).
    #: ``ce_weight`` None: 1 - ``kd_weight``, as in ``TrainConfig``.
    ce_weight: float | None = param(0.1, "Weight of the CE loss in the final stage (released 0.1).",
                                    allowed=NON_NEGATIVE)
    kd_weight: float = param(0.5, "Weight of the KD loss in the final stage (released 0.5).", allowed=UNIT)
    lr: float = param(0.05, "SGD lr of the location and final stages.", allowed=POSITIVE)
    move_in_last_epoch: bool = param(False, "Ours: also move the masks once halfway through the last "
                                     "location epoch, so that a one-epoch location stage places them.")
    density: float = param(0.1, "Global magnitude-pruning density of the pruning and criticality estimators.",
                           allowed=FRACTION)

    def __post_init__(self) -> None:
        super().__post_init__()
        check_params(self, "SENet")
        if self.ranking is not None:
            object.__setattr__(self, "ranking", tuple(self.ranking))
            stage_weights(self.ranking)


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
    #: The criticality ranking the ``criticality`` estimator used (None for the others).
    ranking: tuple[int, ...] | None = None

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["spec"] = self.spec.to_dict()
        d["total"] = self.total
        d["per_stage"] = self.per_stage()
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Plan":
        d = {k: v for k, v in d.items() if k not in ("total", "per_stage")}
        ranking = d.get("ranking")
        return cls(**{**d, "spec": ArchSpec.from_dict(d["spec"]),
                      "ranking": None if ranking is None else tuple(ranking)})

    def per_stage(self) -> dict[str, int]:
        """Planned ReLUs per network stage (``stem``, ``layer1``, ...): the plan in brief."""
        out: dict[str, int] = {}
        for name, n in self.counts.items():
            out[stage_of(name)] = out.get(stage_of(name), 0) + n
        return out


def resolve_ranking(dataset: str, spec: ArchSpec, ranking: Sequence[int] | None = None) -> tuple[int, ...]:
    """``ranking``, or the dataset's default stage-criticality ranking (least critical first)."""
    try:
        return criticality_ranking(dataset, len(spec.stages), ranking)[0]
    except ReshapeError as exc:
        raise ReshapeError(f"{exc.template}; or pick another sensitivity estimator (pruning)") from None


def plan(spec: ArchSpec, model: nn.Module, budget: int, estimator: str = "criticality",
         granularity: str = "neuron", allocation: str = "sensitivity",
         batches: list[torch.Tensor] | None = None, density: float = 0.1,
         ranking: Sequence[int] | None = None) -> Plan:
    """Stage 1: per-layer counts summing to ``budget`` (no training).

    ``ranking`` (stages least to most critical) is what the ``criticality`` estimator weights
    stages by (``resolve_ranking`` gives a dataset's default); the other estimators ignore it.
    """
    if allocation not in ALLOCATIONS:
        raise ReshapeError(f"unknown allocation '{allocation}'; choose {', '.join(ALLOCATIONS)}")
    layer_sites = sites(spec, model)
    sizes = [s.size for s in layer_sites]
    check_budget(budget, sum(sizes))
    uses_ranking = allocation == "sensitivity" and estimator == "criticality"
    if uses_ranking and ranking is None:
        raise ReshapeError("the criticality estimator needs a stage ranking (e.g. 1,4,2,3)")
    if allocation == "uniform":
        weights = {s.name: float(s.size) for s in layer_sites}
    else:
        weights = sensitivity(estimator, model, layer_sites, batches=batches or [], density=density,
                              ranking=ranking, feeding=spec.feeding_convs())
    counts = allocate([weights[s.name] for s in layer_sites], sizes, budget,
                      [s.unit(granularity) for s in layer_sites])
    by_name = dict(zip((s.name for s in layer_sites), counts))
    return Plan(budget, estimator if allocation == "sensitivity" else "-", allocation, granularity,
                weights, by_name, {s.name: s.size for s in layer_sites},
                masked_spec(spec, layer_sites, by_name, granularity),
                tuple(ranking) if uses_ranking else None)


def sensitivity_report(teacher: TrainedRun, data: str, root: str | None, estimator: str = "criticality",
                       granularity: str = "neuron", budget: int | None = None,
                       ranking: Sequence[int] | None = None) -> dict[str, Any]:
    """Stage 1 alone, without training (``reshape sensitivity``): each ReLU layer's size and
    sensitivity and, for a ``budget``, the ReLUs the plan keeps per layer and per stage."""
    batches = probe_batches(load(data, "train", root)) if estimator == "linearize" else None
    total = sum(s.size for s in sites(teacher.spec, teacher.model))
    order = resolve_ranking(data, teacher.spec, ranking) if estimator == "criticality" else None
    p = plan(teacher.spec, teacher.model, total if budget is None else budget, estimator, granularity,
             batches=batches, ranking=order)
    layers = [{"layer": n, "size": p.sizes[n], "sensitivity": p.weights[n],
               **({"relus": p.counts[n]} if budget else {})} for n in p.sizes]
    return {"estimator": estimator, "ranking": order and list(order), "budget": budget, "layers": layers,
            **({"per_stage": p.per_stage()} if budget else {})}


class MaskLocator:
    """SENet's location search: an ``extra_loss`` that accumulates |A_t - A_s| per masked
    layer (adding nothing to the loss) and an epoch callback that moves each mask to
    the top-r_l positions of the accumulated difference.

    Masks move after epochs 1 .. ``epochs`` - 1 only: the last epoch trains the mask that
    the final stage keeps (the released code moves them once more, to positions no weight
    was trained with; docs/senet.md). With ``move_at`` (ours) they also move once inside
    the last epoch, after its first ``move_at`` steps, from the differences of those steps,
    and the rest of the epoch trains under the moved mask: without it a one-epoch location
    stage keeps its seeded random positions.

    Made before the student exists and ``attach``-ed to it once built (the ``init`` of
    ``reshape.train.fit``, which builds the student itself, after seeding).
    """

    def __init__(self, teacher: nn.Module, epochs: int, move_at: int | None = None) -> None:
        self.teacher_model = teacher
        self.epochs = epochs
        self.move_at = move_at
        self.moved_within = 0
        self.layers: dict[str, Any] = {}
        self.taps: list[FeatureTaps] = []
        self.diff: dict[str, torch.Tensor] = {}

    def attach(self, student: nn.Module) -> None:
        self.layers = masked_modules(student)
        self.student = FeatureTaps(student, self.layers)
        self.teacher = FeatureTaps(self.teacher_model, self.layers)
        self.taps = [self.student, self.teacher]

    def __call__(self, step: Step) -> torch.Tensor:
        within = step.epoch == self.epochs and self.move_at is not None
        if step.epoch < self.epochs or (within and step.index < self.move_at):
            with torch.no_grad():
                for name, layer in self.layers.items():
                    d = (self.teacher[name].float() - self.student[name].float()).abs().sum(0)
                    if layer.granularity == "channel":
                        d = d.flatten(1).sum(1)
                    self.diff[name] = self.diff.get(name, 0) + d
            if within and step.index == self.move_at - 1:
                # Safe before this step's backward: set_mask rebuilds the layer's floor as a
                # new tensor, and the one saved for this backward is left as it was.
                self.moved_within = self._move()
        return step.logits.new_zeros(())

    def end_epoch(self, end: EpochEnd) -> None:
        if end.epoch < self.epochs:
            end.metrics["mask_moves"] = self._move()
        else:
            end.metrics["mask_moves"] = self.moved_within
            self.moved_within = 0

    def _move(self) -> int:
        """Move every mask to the top positions of its accumulated difference; how many moved."""
        moved = 0
        for name, layer in self.layers.items():
            if name not in self.diff:
                continue
            new = topk_mask(self.diff[name], layer.kept).to(layer.mask)
            moved += int((new != layer.mask).sum()) // 2
            layer.set_mask(new)
        self.diff.clear()
        return moved

    def remove(self) -> None:
        """Detach the hooks (a no-op when never attached: a finished stage read back)."""
        for taps in self.taps:
            taps.remove()
        self.taps = []


class AttentionTransfer:
    """``weight`` x sum over ``layers`` of mean((a_s - a_t)^2), a = normalize(mean_c(F^2)):
    the released ``Attention(p=2)`` loss (rlnet distiller_zoo/AT.py), summed over the pairs.

    ``attach`` it to the student once built, like ``MaskLocator``.
    """

    def __init__(self, teacher: nn.Module, layers: list[str], weight: float) -> None:
        self.teacher_model = teacher
        self.layers, self.weight = layers, weight
        self.taps: list[FeatureTaps] = []

    def attach(self, student: nn.Module) -> None:
        self.student = FeatureTaps(student, self.layers)
        self.teacher = FeatureTaps(self.teacher_model, self.layers)
        self.taps = [self.student, self.teacher]

    @staticmethod
    def attention(features: torch.Tensor) -> torch.Tensor:
        return F.normalize(features.float().pow(2).mean(1).flatten(1), dim=1)

    def __call__(self, step: Step) -> torch.Tensor:
        loss = sum((self.attention(self.student[n]) - self.attention(self.teacher[n])).pow(2).mean()
                   for n in self.layers)
        return self.weight * loss

    def remove(self) -> None:
        for taps in self.taps:
            taps.remove()
        self.taps = []


def stage_outputs(spec: ArchSpec) -> list[str]:
    """The stage modules ``layer1`` .. ``layer<n>``, whose outputs the released code transfers
    attention between (``feature_eachlayer_s[1:-1]``, rlnet helper/loops.py): no stem, no pool."""
    return [f"layer{s}" for s in range(1, len(spec.stages) + 1)]


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
    locate_cfg = job.config(first, p.lr, **p.recipe())
    steps = len(job.data.train) // locate_cfg.batch_size  # per epoch, one process (drop_last)
    locator = MaskLocator(teacher.model, first, steps // 2 if p.move_in_last_epoch and steps > 1 else None)

    def start_from_teacher(student: nn.Module) -> None:
        copy_weights(student, teacher.model)
        locator.attach(student)

    try:
        located = job.train(planned.spec, locate_cfg,
                            out=job.out / LOCATE_DIR, teacher=teacher, init=start_from_teacher,
                            init_key=teacher.digest, inherits=teacher.path, params={"stage": "senet-locate"},
                            extra_loss=locator, callbacks=[locator.end_epoch])
    finally:
        locator.remove()
    layers = stage_outputs(planned.spec)
    at = AttentionTransfer(teacher.model, layers, p.at_weight) if p.at_weight > 0 else None

    def start_from_locations(student: nn.Module) -> None:
        load_weights(student, located.run / WEIGHTS_FILE)
        if at is not None:
            at.attach(student)

    final = job.config(second, p.lr, **{**p.recipe(), "ce_weight": p.ce_weight, "kd_alpha": p.kd_weight})
    try:
        job.train(planned.spec, final, teacher=teacher, init=start_from_locations, init_key=located.fingerprint,
                  inherits=located.run,
                  params={"stage": "senet-final", "at_weight": p.at_weight, "at_layers": layers}, extra_loss=at)
    finally:
        if at is not None:
            at.remove()
    return {"allocation": planned.allocation, "estimator": planned.estimator, "ranking": planned.ranking and list(planned.ranking),
            "granularity": planned.granularity, "planned": planned.total,
            "optimisable": sum(planned.sizes.values()), "per_stage": planned.per_stage(),
            "locate_top1": located.top1,
            "mask_moves": [row.get("mask_moves") for row in read_metrics(located.run)]}


def _plan(job: Job, teacher: TrainedRun, spec: ArchSpec, p: SENetParams) -> Plan:
    """Stage 1, or its ``senet.json`` from an interrupted run of this job (same claim, same plan)."""
    file = job.out / PLAN_FILE
    if file.is_file():
        return Plan.from_dict(read_json(file, "SENet plan"))
    sensitive = p.allocation == "sensitivity"
    batches = probe_batches(job.data.train) if sensitive and p.estimator == "linearize" else None
    ranking = resolve_ranking(job.setting.data, spec, p.ranking) if sensitive and p.estimator == "criticality" \
        else None
    planned = plan(spec, teacher.model, job.budget, p.estimator, p.granularity, p.allocation, batches, p.density,
                   ranking)
    write_json(file, planned.to_dict())
    return planned


#: The ``short`` preset: attention transfer at 100, not the published 1000, which dominates
#: the loss of a few-epoch final stage (chosen on a validation split: docs/results.md, issue 22).
SHORT_RUN: dict[str, Any] = {"at_weight": 100.0}


@register_method("senet", SENetParams, family="ours", presets={"short": SHORT_RUN},
                 summary="SENet: sensitivity allocation, learned ReLU locations, KD + attention transfer")
def run(job: Job, p: SENetParams) -> dict[str, Any]:
    return stages(job, job.teacher, p)


register_method("senet_uniform", SENetParams, family="baseline", defaults=SENetParams(allocation="uniform"),
                presets={"short": SHORT_RUN},
                summary="SENet's stages with the same keep fraction in every layer")(run)
variant("senet_uniform", of="senet")  # forcing either replaces the other's run
