"""SENet (seed 000): sensitivity -> per-layer budgets -> ReLU locations -> distillation.

Three stages for a ReLU budget B, each resumable and each runnable alone:

1. ``plan``: per-layer ReLU sensitivity (a pluggable estimator, ``sensitivity.py``),
   turned into per-layer counts by water-filling (``allocate.py``) that sum to B
   (exactly for neuron masks; the largest sum <= B for channel masks). ``uniform``
   allocation (the same keep fraction everywhere) is the baseline.
2. ``locate``: the student (teacher weights, masks at the planned counts, seeded
   positions) trains with logit KD; after each epoch each masked layer keeps its
   ReLUs at the top-r_l positions of D_l = sum over the epoch of |A_teacher - A_student|
   (post-ReLU activations). No L1 penalty.
3. ``finetune``: masks fixed, CE + KD + ``at_weight`` x attention transfer between
   teacher and student block outputs (a = normalize(mean_c F^2)).

Ours (documented in docs/senet.md): the student starts from the teacher's weights
rather than from scratch, which is what makes short CPU runs useful.
"""
from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import Dataset

from ..errors import ReshapeError
from ..io import read_json, write_json
from ..models import build
from ..runs import WEIGHTS_FILE, load_weights
from ..spec import ArchSpec
from ..train import (EpochEnd, FeatureTaps, Step, TrainConfig, completed_epochs, has_checkpoint,
                     read_metrics, train)
from .allocate import allocate
from .masks import Site, copy_weights, masked_modules, masked_spec, sites, topk_mask
from .sensitivity import sensitivity

PLAN_FILE = "senet.json"
LOCATE_DIR = "locate"
ALLOCATIONS = ("sensitivity", "uniform")


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


def check_budget(budget: int, total: int) -> None:
    if budget < 1:
        raise ReshapeError(f"the ReLU budget must be at least 1, got {budget}")
    if budget > total:
        raise ReshapeError(f"budget {budget:,} exceeds the teacher's {total:,} optimisable ReLUs; "
                           "pick a smaller --budget")


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
    the top-r_l positions of the accumulated difference."""

    def __init__(self, student: nn.Module, teacher: nn.Module) -> None:
        self.layers = masked_modules(student)
        self.student = FeatureTaps(student, self.layers)
        self.teacher = FeatureTaps(teacher, self.layers)
        self.diff: dict[str, torch.Tensor] = {}

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
        self.student.remove()
        self.teacher.remove()


class AttentionTransfer:
    """``weight`` x sum over blocks of mean((a_s - a_t)^2), a = normalize(mean_c(F^2))."""

    def __init__(self, student: nn.Module, teacher: nn.Module, blocks: list[str], weight: float) -> None:
        self.student = FeatureTaps(student, blocks)
        self.teacher = FeatureTaps(teacher, blocks)
        self.blocks, self.weight = blocks, weight

    @staticmethod
    def attention(features: torch.Tensor) -> torch.Tensor:
        return F.normalize(features.float().pow(2).mean(1).flatten(1), dim=1)

    def __call__(self, step: Step) -> torch.Tensor:
        loss = sum((self.attention(self.student[b]) - self.attention(self.teacher[b])).pow(2).mean()
                   for b in self.blocks)
        return self.weight * loss

    def remove(self) -> None:
        self.student.remove()
        self.teacher.remove()


def block_names(spec: ArchSpec) -> list[str]:
    return [f"layer{s}.{b}" for s, stage in enumerate(spec.stages, 1) for b in range(stage.depth)]


def locate(p: Plan, teacher: nn.Module, cfg: TrainConfig, train_set: Dataset, test_set: Dataset | None,
           out_dir: Path, progress: bool = True) -> None:
    """Stage 2 into ``out_dir`` (resumes a partial run found there)."""
    student = build(p.spec)
    copy_weights(student, teacher)
    locator = MaskLocator(student, teacher)
    try:
        train(student, p.spec, cfg, train_set, test_set, out_dir, teacher=teacher,
              extra_loss=locator, callbacks=[locator.end_epoch],
              resume=has_checkpoint(out_dir), progress=progress)
    finally:
        locator.remove()


def finetune(spec: ArchSpec, start_weights: Path, teacher: nn.Module, cfg: TrainConfig,
             train_set: Dataset, test_set: Dataset | None, out_dir: Path, at_weight: float,
             progress: bool = True) -> dict[str, Any]:
    """Stage 3 into ``out_dir``: masks fixed, KD + attention transfer."""
    student = build(spec)
    load_weights(student, start_weights)
    at = AttentionTransfer(student, teacher, block_names(spec), at_weight)
    try:
        return train(student, spec, cfg, train_set, test_set, out_dir, teacher=teacher,
                     extra_loss=at if at_weight > 0 else None,
                     resume=has_checkpoint(out_dir), progress=progress)
    finally:
        at.remove()


def run(teacher_spec: ArchSpec, teacher: nn.Module, budget: int, out_dir: str | os.PathLike[str],
        train_set: Dataset, test_set: Dataset | None, locate_cfg: TrainConfig, final_cfg: TrainConfig,
        estimator: str = "pruning", granularity: str = "neuron", allocation: str = "sensitivity",
        at_weight: float = 1000.0, batches: list[torch.Tensor] | None = None,
        density: float = 0.1, progress: bool = True) -> dict[str, Any]:
    """All three stages from a trained all-ReLU ``teacher``; each stage is skipped when its
    result is already in ``out_dir``."""
    out = Path(out_dir)
    teacher.eval().requires_grad_(False)
    plan_file = out / PLAN_FILE
    if plan_file.is_file():
        p = Plan.from_dict(read_json(plan_file, "SENet plan"))
        if p.budget != budget:
            raise ReshapeError(f"{out} holds a SENet run for budget {p.budget:,}, not {budget:,}; "
                               "pick another --out")
    else:
        p = plan(teacher_spec, teacher, budget, estimator, granularity, allocation, batches, density)
        write_json(plan_file, p.to_dict())
    located = out / LOCATE_DIR
    if completed_epochs(located) < locate_cfg.epochs:
        locate(p, teacher, locate_cfg, train_set, test_set, located, progress)
    if completed_epochs(out) >= final_cfg.epochs:
        return read_metrics(out)[-1]
    return finetune(p.spec, located / WEIGHTS_FILE, teacher, final_cfg, train_set, test_set, out,
                    at_weight, progress)
