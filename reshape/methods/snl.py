"""SNL, Selective Network Linearization (Cho et al., ICML 2022): the main baseline.

As published (methods.md section 2):

1. every ReLU site becomes ``SoftMaskReLU`` (``y = a*relu(x) + (1-a)*x``, ``a`` from 1),
   trained jointly with the weights, with KD from the all-ReLU teacher and an L1
   penalty ``lambda * sum(a)``; Adam, lr 1e-3;
2. ``lambda`` starts at 1e-5 and is multiplied by 1.1 whenever the ReLU count
   (``a > 0.01``) stops falling (after a warm-up of 5 epochs); the phase stops as soon
   as the count is within the budget;
3. the masks are binarized: positions with ``a > 0.01`` keep their ReLU; if more than B
   remain (the epoch limit was hit first), the B positions with the largest ``a``
   (whole channels for channel masks) are kept, so the result never exceeds B;
4. masks frozen, fine-tuning with KD (SGD lr 1e-3, cosine).

One global budget: the network decides its per-layer counts itself.
"""
from __future__ import annotations

import copy
import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.data import Dataset

from ..errors import ReshapeError
from ..io import read_json, write_json
from ..layers import SoftMaskReLU
from ..models import build
from ..runs import load_weights, save_weights
from ..spec import ArchSpec
from ..train import EpochEnd, Step, TrainConfig, completed_epochs, has_checkpoint, read_metrics, train
from .masks import Site, copy_weights, masked_modules, masked_spec, sites
from .senet import check_budget

RESULT_FILE = "snl.json"
MASK_DIR = "masks"


@dataclass
class LambdaSchedule:
    """The L1 penalty on the soft masks, with SNL's lambda schedule and stopping rule.

    Use the object as ``extra_loss`` and ``end_epoch`` as the epoch callback; its state
    is checkpointed with the run, so a resumed mask phase continues the schedule.
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


def run(spec: ArchSpec, teacher: nn.Module, budget: int, out_dir: str | os.PathLike[str],
        train_set: Dataset, test_set: Dataset | None, mask_cfg: TrainConfig, final_cfg: TrainConfig,
        granularity: str = "neuron", lam: float = 1e-5, growth: float = 1.1, warmup: int = 5,
        progress: bool = True) -> dict[str, Any]:
    """Both SNL phases from a trained all-ReLU ``teacher``; each phase is skipped when its
    result is already in ``out_dir``."""
    out = Path(out_dir)
    teacher.eval().requires_grad_(False)
    layer_sites = sites(spec, teacher)
    check_budget(budget, sum(s.size for s in layer_sites))
    result = out / RESULT_FILE
    if result.is_file():
        saved = read_json(result, "SNL result")
        if saved["budget"] != budget:
            raise ReshapeError(f"{out} holds an SNL run for budget {saved['budget']:,}, not {budget:,}; "
                               "pick another --out")
        final_spec = ArchSpec.from_dict(saved["spec"])
    else:
        soft, layers = soften(teacher, layer_sites, granularity)
        schedule = LambdaSchedule(layers, {s.name: s.unit(granularity) for s in layer_sites},
                                  budget, lam, growth, warmup)
        phase = out / MASK_DIR
        train(soft, spec, mask_cfg, train_set, test_set, phase, teacher=teacher, extra_loss=schedule,
              callbacks=[schedule.end_epoch], resume=has_checkpoint(phase), progress=progress)
        final_spec, masks = binarize(spec, layer_sites, layers, budget, granularity)
        student = build(final_spec)
        copy_weights(student, soft)
        for name, layer in masked_modules(student).items():
            layer.set_mask(masks[name])
        save_weights(student, phase / "binarized.safetensors")
        write_json(result, {"budget": budget, "granularity": granularity,
                            "reached": schedule.count() <= budget, "soft_relus": schedule.count(),
                            "lambda": schedule.lam, "spec": final_spec.to_dict()})
    if completed_epochs(out) >= final_cfg.epochs:
        return read_metrics(out)[-1]
    student = build(final_spec)
    load_weights(student, out / MASK_DIR / "binarized.safetensors")
    return train(student, final_spec, final_cfg, train_set, test_set, out, teacher=teacher,
                 resume=has_checkpoint(out), progress=progress)
