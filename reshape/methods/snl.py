"""SNL, Selective Network Linearization (Cho et al., ICML 2022): the main baseline.

As published (public code: docs/senet.md lists every deviation and why):

1. every ReLU site becomes ``SoftMaskReLU`` (``y = a*relu(x) + (1-a)*x``, ``a`` from 1),
   trained jointly with the weights, with KD from the all-ReLU teacher and an L1
   penalty ``lambda * sum(a)`` on every batch; Adam without weight decay at a constant
   lr, 1e-3 for the weights (``mask_lr``) and ``gate_lr`` for the gates (published: the
   same 1e-3) (``OUT/masks/``, a run of its own);
2. ``lambda`` starts at ``lam`` (published 1e-5) and is multiplied by ``growth`` (1.1)
   at every check where the ReLU count (``a > threshold``, 0.01) is not a new minimum,
   after ``warmup`` checks (published: one check per epoch, 5). Short runs check every
   ``check_every`` steps and, with ``reach_by``, also grow lambda while the count is
   above a log-linear path to the budget (``SHORT_RUN``, the frontier's settings);
3. at the first check within the budget B the gates are fixed at a binary mask: the
   positions above the threshold, filled up to B with the largest gates below it (raw
   gate value first; ties in an order seeded by the setting, never layer order); the
   phase ends with that epoch. If the mask epochs run out first, the B largest gates
   are kept (whole channels for channel masks): ``OUT/snl.json`` says which
   (``reached``), ``OUT/masks/binarized.safetensors`` holds the weights;
4. masks frozen, fine-tuning with KD (SGD lr 1e-3, cosine) into ``OUT`` for the epochs the
   mask phase left of the setting's (ours: equal compute with every other method).

One global budget: the network decides its per-layer counts itself.
"""
from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field, replace
from typing import Any

import torch
from torch import nn

from ..budget.masks import Site, check_budget, copy_weights, masked_modules, masked_spec, sites
from ..errors import ReshapeError
from ..io import write_json
from ..layers import SoftMaskReLU
from ..models import build
from ..runs import TrainedRun, load_weights, save_weights, writes
from ..spec import GRANULARITIES, ArchSpec
from ..train import EpochEnd, Step, TrainConfig, load_checkpoint
from ..values import AT_LEAST_ONE, COUNT, COUNT_OR_ZERO, FRACTION, NON_NEGATIVE, POSITIVE, Range
from ._recipe import Recipe
from ._registry import Job, check_params, param, register_method

RESULT_FILE = "snl.json"
MASK_DIR = "masks"
BINARIZED_FILE = "binarized.safetensors"
writes("snl", RESULT_FILE, BINARIZED_FILE)  # what a forced rerun may delete beside the run


@dataclass(frozen=True)
class SNLParams(Recipe):
    """Every SNL knob that changes the result (plus the fine-tuning recipe, ``Recipe``)."""

    lam: float = param(1e-5, "Initial L1 weight on the masks (published 1e-5, for 100+ mask epochs).",
                       allowed=NON_NEGATIVE, option="lambda")
    growth: float = param(1.1, "Factor on lambda at each check where the ReLU count did not fall (or is "
                          "behind the path to the budget, with a deadline).", allowed=AT_LEAST_ONE,
                          option="lambda-growth")
    warmup: int = param(5, "Checks before lambda may grow (published: 5 epochs, one check each).",
                        allowed=COUNT_OR_ZERO, option="lambda-warmup")
    mask_lr: float = param(1e-3, "Adam lr of the weights in the mask phase (published 1e-3, constant, no "
                           "weight decay).", allowed=POSITIVE)
    gate_lr: float = param(1e-3, "Adam lr of the masks in the mask phase (published: the weights' 1e-3).",
                           allowed=POSITIVE)
    check_every: int | None = param(None, "Check the ReLU count every this many steps (default: once per "
                                    "epoch, as published).", allowed=COUNT)
    reach_by: float | None = param(None, "A deadline, with a check every few steps: the fraction of the mask "
                                   "phase by which the count should be within the budget; lambda also grows "
                                   "while the count is above the log-linear path there (default: none, the "
                                   "published rule only).", allowed=FRACTION)
    mask_epochs: int | None = param(None, "Epochs of the mask phase, fewer than the setting's (default: "
                                    "half); the fine-tuning gets the rest.", allowed=COUNT)
    granularity: str = param("neuron", "A mask per neuron (C x H x W) or per channel.", choices=GRANULARITIES)
    final_lr: float = param(1e-3, "SGD lr of the fine-tuning (cosine, KD).", allowed=POSITIVE, option="lr")
    threshold: float = param(1e-2, "A mask above this counts (and is kept) as a ReLU.",
                             allowed=Range(0, 1, low_open=True, high_open=True))

    def __post_init__(self) -> None:
        super().__post_init__()
        check_params(self, "SNL")
        if self.reach_by is not None and self.check_every is None:
            raise ReshapeError(f"SNL reach_by needs check_every; got reach_by={self.reach_by}, check_every=None")


#: The ``short`` preset (one or a few mask epochs of ~50-500 steps; docs/senet.md): the count
#: checked every step, gates fast enough to cross the threshold in a tenth of a quick phase
#: (then lambda may grow), and lambda kept on a path to the budget by 60% of the phase.
#: Chosen over the published schedule on a validation split (docs/results.md, issue 22).
SHORT_RUN: dict[str, Any] = {"lam": 1e-4, "growth": 1.2, "warmup": 10, "gate_lr": 0.1, "check_every": 1,
                             "reach_by": 0.6}


@dataclass
class LambdaSchedule:
    """The L1 penalty on the soft masks, with SNL's lambda schedule and stopping rule.

    Use the object as ``extra_loss`` and ``end_epoch`` as the epoch callback; its state
    is checkpointed with the run, so a resumed mask phase continues the schedule.
    ``layers`` may be filled in after construction (once the soft model is built).

    At each check (every ``check_every`` steps, or at each epoch end when None, as
    published) the count is compared with ``best``, the lowest so far (at first the
    network's total): after ``warmup`` checks, lambda grows by ``growth`` when the count
    is not below it, or (with a ``deadline``) above ``path()``. The first check with the
    count within ``budget`` fixes the gates at a binary mask of at most ``budget`` ReLUs
    (``largest_gates``, ``SoftMaskReLU.fix``) and the phase ends with that epoch.
    """

    layers: dict[str, SoftMaskReLU]
    units: dict[str, int]  # ReLUs per mask entry: 1 (neuron) or H*W (channel)
    budget: int
    lam: float = 1e-5
    growth: float = 1.1
    warmup: int = 5
    check_every: int | None = None
    #: With ``check_every``: the step by which the count should be within budget.
    deadline: int | None = None
    total: int = 0
    seed: int = 0
    best: int | None = None
    steps: int = 0
    checks: int = 0
    #: The training step at which the count was first within budget (None: not reached).
    reached_at: int | None = None
    #: The count (gates above the threshold) at that step; the fixed mask fills up to the budget.
    reached_relus: int | None = None
    fixed: dict[str, torch.Tensor] = field(default_factory=dict)

    @property
    def reached(self) -> bool:
        return self.reached_at is not None

    def count(self) -> int:
        return sum(layer.kept * self.units[name] for name, layer in self.layers.items())

    def __call__(self, step: Step) -> torch.Tensor:
        if self.check_every is not None and not self.reached and self.steps and self.steps % self.check_every == 0:
            self.check()
        self.steps += 1
        if self.reached:  # gates fixed: the weights train under the binary mask
            return next(iter(self.layers.values())).alpha.new_zeros(())
        # SNL's penalty, the L1 norm of the gates, on every batch. The gates are kept >= 0, so it
        # is their sum, whose gradient (unlike abs's, 0 at 0) keeps a removed gate pressed down:
        # Adam would turn the task's tiny pull at 0 into a full step back over the threshold.
        return self.lam * sum(layer.alpha.sum() for layer in self.layers.values())

    def check(self) -> int:
        """Count the ReLUs; fix the gates when within budget, else apply the lambda rule."""
        relus = self.count()
        self.checks += 1
        if self._reach(relus):
            return relus
        stalled = self.best is not None and relus >= self.best
        self.best = relus if self.best is None else min(self.best, relus)
        if self.checks > self.warmup and (stalled or relus > self.path()):
            self.lam *= self.growth
        return relus

    def path(self) -> float:
        """The count to be at now to reach the budget by step ``deadline``: log-linear from the
        total at the end of the warm-up; no target (inf) without a deadline or in the warm-up."""
        start = self.warmup * (self.check_every or 0)
        if self.deadline is None or self.check_every is None or not self.total or self.steps <= start:
            return math.inf
        done = min(1.0, (self.steps - start) / max(1, self.deadline - start))
        return self.total * (self.budget / self.total) ** done

    def _reach(self, relus: int) -> bool:
        """Within budget: fix every gate at its binary mask (kept in the state, for resume and read-back)."""
        if relus > self.budget:
            return False
        self.reached_at, self.reached_relus = self.steps, relus
        for name, mask in largest_gates(self.layers, self.units, self.budget, self.seed).items():
            self.layers[name].fix(mask)
        self.fixed = {name: layer.fixed.clone() for name, layer in self.layers.items()}
        return True

    def end_epoch(self, end: EpochEnd) -> None:
        if not self.reached and self.check_every is None:  # published: one check per epoch
            self.check()
        elif not self.reached:  # the steps since the last check may have reached it
            self._reach(self.count())
        end.metrics.update(relus=self.count(), lam=self.lam, reached_at=self.reached_at)
        end.stop = self.reached

    def state_dict(self) -> dict[str, Any]:
        return {"lam": self.lam, "best": self.best, "steps": self.steps, "checks": self.checks,
                "reached_at": self.reached_at, "reached_relus": self.reached_relus, "fixed": self.fixed}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.lam, self.best, self.steps = float(state["lam"]), state["best"], int(state["steps"])
        self.checks = int(state["checks"])
        self.reached_at, self.reached_relus = state["reached_at"], state["reached_relus"]
        self.fixed = dict(state["fixed"])
        for name, mask in self.fixed.items():
            self.layers[name].fix(mask)


def mask_config(final: TrainConfig, lr: float = 1e-3, gate_lr: float | None = None,
                epochs: int | None = None) -> TrainConfig:
    """The mask phase's recipe: ``final``'s, with Adam at a constant ``lr`` for the weights and
    ``gate_lr`` for the gates, no weight decay, no warm-up (the public code's single Adam)."""
    return replace(final, lr=lr, gate_lr=gate_lr, epochs=epochs or final.epochs, optimizer="adamw",
                   weight_decay=0.0, warmup_epochs=0, schedule="constant")


def soften(teacher: nn.Module, layer_sites: list[Site], granularity: str,
           threshold: float = 1e-2) -> tuple[nn.Module, dict[str, SoftMaskReLU]]:
    """Make a copy of ``teacher`` whose every site is a ``SoftMaskReLU``; returns its soft layers."""
    model = copy.deepcopy(teacher).train().requires_grad_(True)
    layers = {}
    for site in layer_sites:
        mask_shape = site.shape if granularity == "neuron" else site.shape[:1]
        layers[site.name] = SoftMaskReLU(mask_shape, granularity, threshold)
        model.set_submodule(site.name, layers[site.name])
    return model, layers


def largest_gates(layers: dict[str, SoftMaskReLU], units: dict[str, int], budget: int,
                  seed: int = 0) -> dict[str, torch.Tensor]:
    """Binary masks keeping the largest positive gates while they fit in ``budget`` ReLUs.

    Entries are ranked by their raw gate value; equal values (e.g. gates never moved from
    1, or fixed ones) are ordered by a permutation seeded with ``seed``, never by layer
    order, which would fill the budget stem first.
    """
    names = list(layers)
    gates = [layers[n].gate().detach().flatten().float() for n in names]
    values = torch.cat(gates)
    owner = torch.cat([torch.full(g.shape, i, dtype=torch.long) for i, g in enumerate(gates)])
    index = torch.cat([torch.arange(g.numel()) for g in gates])
    shuffle = torch.randperm(len(values), generator=torch.Generator().manual_seed(seed))
    order = shuffle[torch.sort(values[shuffle], descending=True, stable=True).indices]
    keep = [torch.zeros_like(g) for g in gates]
    left = budget
    for i in order.tolist():
        if values[i] <= 0 or left <= 0:
            break
        layer = int(owner[i])
        if units[names[layer]] <= left:
            keep[layer][index[i]] = 1
            left -= units[names[layer]]
    return {n: k.view(layers[n].alpha.shape) for n, k in zip(names, keep)}


def binarize(spec: ArchSpec, layer_sites: list[Site], layers: dict[str, SoftMaskReLU], budget: int,
             granularity: str, seed: int = 0) -> tuple[ArchSpec, dict[str, torch.Tensor]]:
    """The student's spec and per-layer binary masks: the largest gates within ``budget``."""
    units = {s.name: s.unit(granularity) for s in layer_sites}
    masks = largest_gates(layers, units, budget, seed)
    counts = {n: int(masks[n].sum()) * units[n] for n in masks}
    return masked_spec(spec, layer_sites, counts, granularity), masks


@register_method("snl", SNLParams, family="baseline", presets={"short": SHORT_RUN},
                 summary="SNL: L1-driven soft ReLU masks, binarized to the budget, KD fine-tune")
def run(job: Job, p: SNLParams) -> dict[str, Any]:
    return stages(job, job.teacher, p)


def stages(job: Job, teacher: TrainedRun, p: SNLParams) -> dict[str, Any]:
    """Both SNL phases from ``teacher`` (the job's, or a HybReNet base) into ``job.out``, distilled
    from that teacher; returns what the mask phase reached."""
    spec = teacher.spec
    layer_sites = sites(spec, teacher.model)
    total = sum(s.size for s in layer_sites)
    check_budget(job.budget, total)
    first, _ = job.setting.stages()
    epochs = p.mask_epochs or first
    if epochs >= job.setting.epochs:
        raise ReshapeError(f"SNL mask_epochs {epochs} leaves no fine-tuning epoch of the setting's "
                           f"{job.setting.epochs}; give fewer mask epochs or more epochs")
    recipe = job.config(1, p.final_lr, **p.recipe())
    steps = len(job.data.train) // job.setting.batch_size * epochs  # the loader drops the last partial batch
    schedule = LambdaSchedule({}, {s.name: s.unit(p.granularity) for s in layer_sites}, job.budget,
                              p.lam, p.growth, p.warmup, p.check_every,
                              None if p.reach_by is None else math.ceil(p.reach_by * steps), total,
                              job.setting.seed, best=total)

    def soft_model() -> nn.Module:
        model, schedule.layers = soften(teacher.model, layer_sites, p.granularity, p.threshold)
        return model

    # A run that the schedule stopped early is still done: fit marks it so after train returns.
    masks = job.train(spec, mask_config(recipe, p.mask_lr, p.gate_lr, epochs),
                      out=job.out / MASK_DIR, teacher=teacher, model_fn=soft_model, init_key=teacher.digest,
                      inherits=teacher.path,
                      extra_loss=schedule, callbacks=[schedule.end_epoch],
                      params={"stage": "snl-masks", "lam": p.lam, "growth": p.growth, "warmup": p.warmup,
                              "check_every": p.check_every, "reach_by": p.reach_by,
                              "granularity": p.granularity,
                              "threshold": p.threshold, "budget": job.budget})
    if masks.cached:  # read back: the fixed masks and the schedule's end state are in its checkpoint
        schedule.load_state_dict(load_checkpoint(masks.run)["hooks"][0])
    final_spec, binary = binarize(spec, layer_sites, schedule.layers, job.budget, p.granularity, job.setting.seed)
    student = build(final_spec)
    copy_weights(student, masks.model)
    for name, layer in masked_modules(student).items():
        layer.set_mask(binary[name])
    binarized = masks.run / BINARIZED_FILE
    save_weights(student, binarized)
    built = {"reached": schedule.reached, "reached_at_step": schedule.reached_at, "mask_steps": schedule.steps,
             "relus_at_reach": schedule.reached_relus, "soft_relus": int(masks.metrics["relus"]),
             "lambda": schedule.lam, "mask_epochs": int(masks.metrics["epoch"]), "granularity": p.granularity}
    write_json(job.out / RESULT_FILE, {**built, "budget": job.budget, "spec": final_spec.to_dict()})
    # The mask phase may end early (at the budget): the fine-tuning gets every epoch it left,
    # so SNL's student trains the setting's epochs in all, as every other method's does.
    final_cfg = recipe.replace(epochs=job.setting.epochs - built["mask_epochs"])
    job.train(final_spec, final_cfg, teacher=teacher, init=lambda m: load_weights(m, binarized),
              init_key=masks.fingerprint, inherits=masks.run,
              params={"stage": "snl-final"})
    return built
