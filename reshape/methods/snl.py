"""SNL, Selective Network Linearization (Cho et al., ICML 2022): the main baseline.

As published (methods.md section 2):

1. every ReLU site becomes ``SoftMaskReLU`` (``y = a*relu(x) + (1-a)*x``, ``a`` from 1),
   trained jointly with the weights, with KD from the all-ReLU teacher and an L1
   penalty ``lambda * sum(a)``; Adam, lr 1e-3 (``OUT/masks/``, a run of its own);
2. ``lambda`` starts at 1e-5 and is multiplied by 1.1 whenever the ReLU count
   (``a > threshold``, 0.01) stops falling (after a warm-up of 5 epochs); the phase stops
   as soon as the count is within the budget;
3. the masks are binarized: positions with ``a > 0.01`` keep their ReLU; if more than B
   remain (the epoch limit was hit first), the B positions with the largest ``a``
   (whole channels for channel masks) are kept, so the result never exceeds B
   (``OUT/snl.json`` says which, ``OUT/masks/binarized.safetensors`` holds the weights);
4. masks frozen, fine-tuning with KD (SGD lr 1e-3, cosine) into ``OUT``.

One global budget: the network decides its per-layer counts itself.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass, replace
from typing import Any

import torch
from torch import nn

from ..budget.masks import Site, check_budget, copy_weights, masked_modules, masked_spec, sites
from ..errors import ReshapeError
from ..io import write_json
from ..layers import SoftMaskReLU
from ..models import build
from ..runs import TrainedRun, load_weights, save_weights
from ..spec import GRANULARITIES, ArchSpec
from ..train import EpochEnd, Step, TrainConfig
from ._recipe import Recipe
from ._registry import Job, register_method

RESULT_FILE = "snl.json"
MASK_DIR = "masks"
BINARIZED_FILE = "binarized.safetensors"


@dataclass(frozen=True)
class SNLParams(Recipe):
    """Every SNL knob that changes the result (plus the fine-tuning recipe, ``Recipe``)."""

    #: Initial L1 weight on the gates (published 1e-5; it assumes 100+ mask epochs).
    lam: float = 1e-5
    growth: float = 1.1
    warmup: int = 5
    mask_lr: float = 1e-3
    #: Mask-phase epochs; None: the setting's first stage (``Setting.stages``).
    mask_epochs: int | None = None
    granularity: str = "neuron"
    final_lr: float = 1e-3
    #: A gate above this counts (and is kept) as a ReLU.
    threshold: float = 1e-2

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.granularity not in GRANULARITIES:
            raise ReshapeError(f"unknown SNL granularity '{self.granularity}'; choose {', '.join(GRANULARITIES)}")
        if self.mask_epochs is not None and self.mask_epochs < 1:
            raise ReshapeError(f"SNL mask_epochs must be at least 1, got {self.mask_epochs}")
        if self.lam < 0 or self.growth < 1 or self.warmup < 0 or self.mask_lr <= 0 or self.final_lr <= 0 \
                or not 0 < self.threshold < 1:
            raise ReshapeError("SNL needs lam >= 0, growth >= 1, warmup >= 0, mask_lr > 0, final_lr > 0 and "
                               f"threshold in (0, 1); got {self.lam}, {self.growth}, {self.warmup}, "
                               f"{self.mask_lr}, {self.final_lr}, {self.threshold}")


@dataclass
class LambdaSchedule:
    """The L1 penalty on the soft masks, with SNL's lambda schedule and stopping rule.

    Use the object as ``extra_loss`` and ``end_epoch`` as the epoch callback; its state
    is checkpointed with the run, so a resumed mask phase continues the schedule.
    ``layers`` may be filled in after construction (once the soft model is built).
    """

    layers: dict[str, SoftMaskReLU]
    units: dict[str, int]  # ReLUs per mask entry: 1 (neuron) or H*W (channel)
    budget: int
    lam: float = 1e-5
    growth: float = 1.1
    warmup: int = 5
    best: int | None = None

    def count(self) -> int:
        return sum(layer.kept * self.units[name] for name, layer in self.layers.items())

    def __call__(self, step: Step) -> torch.Tensor:
        # On a itself (kept in [0, 1] by projection): a clamp would block the gradient at 1.
        return self.lam * sum(layer.alpha.sum() for layer in self.layers.values())

    def end_epoch(self, end: EpochEnd) -> None:
        relus = self.count()
        end.metrics.update(relus=relus, lam=self.lam)
        if relus <= self.budget:
            end.stop = True
            return
        if end.epoch > self.warmup and self.best is not None and relus >= self.best:
            self.lam *= self.growth
        self.best = relus if self.best is None else min(self.best, relus)

    def state_dict(self) -> dict[str, Any]:
        return {"lam": self.lam, "best": self.best}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.lam, self.best = float(state["lam"]), state["best"]


def mask_config(final: TrainConfig, lr: float = 1e-3, epochs: int | None = None) -> TrainConfig:
    """The mask phase's recipe: ``final``'s, with Adam(W) at ``lr``, no weight decay, no warm-up."""
    return replace(final, lr=lr, epochs=epochs or final.epochs, optimizer="adamw",
                   weight_decay=0.0, warmup_epochs=0)


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


def binarize(spec: ArchSpec, layer_sites: list[Site], layers: dict[str, SoftMaskReLU], budget: int,
             granularity: str) -> tuple[ArchSpec, dict[str, torch.Tensor]]:
    """Per-layer binary masks from the learned gates: thresholded, then cut to the budget."""
    units = {s.name: s.unit(granularity) for s in layer_sites}
    gates = {n: m.gate().detach().flatten() for n, m in layers.items()}
    alive = {n: g > m.threshold for (n, g), m in zip(gates.items(), layers.values())}
    # Rank every live mask entry globally by gate value; keep entries while they fit.
    names = list(gates)
    values = torch.cat([gates[n] for n in names])
    owner = torch.cat([torch.full_like(gates[n], i, dtype=torch.long) for i, n in enumerate(names)])
    index = torch.cat([torch.arange(gates[n].numel()) for n in names])
    live = torch.cat([alive[n] for n in names])
    order = torch.sort(values.masked_fill(~live, -1.0), descending=True, stable=True).indices
    keep = {n: torch.zeros_like(gates[n]) for n in names}
    left = budget
    for i in order.tolist():
        if not live[i] or left <= 0:
            break
        name = names[owner[i]]
        if units[name] <= left:
            keep[name][index[i]] = 1
            left -= units[name]
    masks = {n: keep[n].view(layers[n].alpha.shape) for n in names}
    counts = {n: int(masks[n].sum()) * units[n] for n in names}
    return masked_spec(spec, layer_sites, counts, granularity), masks


@register_method("snl", SNLParams, family="baseline",
                 summary="SNL: L1-driven soft ReLU masks, binarized to the budget, KD fine-tune")
def fit(job: Job, p: SNLParams) -> dict[str, Any]:
    return stages(job, job.teacher, p)


def stages(job: Job, teacher: TrainedRun, p: SNLParams) -> dict[str, Any]:
    """Both SNL phases from ``teacher`` (the job's, or a HybReNet base) into ``job.out``, distilled
    from that teacher; returns what the mask phase reached."""
    spec = teacher.spec
    layer_sites = sites(spec, teacher.model)
    check_budget(job.budget, sum(s.size for s in layer_sites))
    first, second = job.setting.stages()
    final_cfg = job.setting.config(second, p.final_lr, **p.recipe())
    schedule = LambdaSchedule({}, {s.name: s.unit(p.granularity) for s in layer_sites}, job.budget,
                              p.lam, p.growth, p.warmup)

    def soft_model() -> nn.Module:
        model, schedule.layers = soften(teacher.model, layer_sites, p.granularity, p.threshold)
        return model

    # A run that the schedule stopped early is still done: fit marks it so after train returns.
    masks = job.train(spec, mask_config(final_cfg, p.mask_lr, p.mask_epochs or first), out=job.out / MASK_DIR,
                      teacher=teacher, model_fn=soft_model, init_key=teacher.digest, extra_loss=schedule,
                      callbacks=[schedule.end_epoch],
                      params={"stage": "snl-masks", "lam": p.lam, "growth": p.growth, "warmup": p.warmup,
                              "granularity": p.granularity, "threshold": p.threshold, "budget": job.budget})
    final_spec, binary = binarize(spec, layer_sites, schedule.layers, job.budget, p.granularity)
    student = build(final_spec)
    copy_weights(student, masks.model)
    for name, layer in masked_modules(student).items():
        layer.set_mask(binary[name])
    binarized = masks.run / BINARIZED_FILE
    save_weights(student, binarized)
    soft_relus = int(masks.metrics["relus"])
    built = {"reached": soft_relus <= job.budget, "soft_relus": soft_relus, "lambda": masks.metrics["lam"],
             "mask_epochs": int(masks.metrics["epoch"]), "granularity": p.granularity}
    write_json(job.out / RESULT_FILE, {**built, "budget": job.budget, "spec": final_spec.to_dict()})
    job.train(final_spec, final_cfg, teacher=teacher, init=lambda m: load_weights(m, binarized),
              init_key=masks.fingerprint,
              params={"stage": "snl-final"})
    return built
