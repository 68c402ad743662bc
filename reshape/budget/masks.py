"""ReLU masks on specs and models: sites, top-k selection, and mask specs.

A *site* is a ReLU layer that can still be optimised (kept or masked in the spec).
SENet, SNL and the uniform baseline all express their result the same way: a
per-layer kept count in the spec (``masked``, or ``removed`` at 0, ``kept`` when whole)
and the mask itself in the weights.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from .._probe import output_shapes
from ..errors import BudgetUnreachable, ReshapeError
from ..layers import MaskedReLU
from ..spec import FINAL_ACT, ArchSpec, ReluLayer


@dataclass(frozen=True)
class Site:
    name: str
    shape: tuple[int, ...]  # per-image activation shape (C, H, W)

    @property
    def size(self) -> int:
        return int(torch.Size(self.shape).numel())

    def unit(self, granularity: str) -> int:
        """ReLUs per mask entry: 1 for neuron masks, H*W for channel masks."""
        return 1 if granularity == "neuron" else self.size // self.shape[0]


def stage_of(site: str) -> str:
    """The network stage a ReLU layer belongs to: ``layer<k>`` for block layers, ``head`` for a
    pre-activation network's final ReLU, ``stem`` otherwise."""
    return site.split(".")[0] if "." in site else "head" if site == FINAL_ACT else "stem"


def sites(spec: ArchSpec, model: nn.Module) -> list[Site]:
    """The optimisable ReLU layers of ``model`` (built from ``spec``), in forward order."""
    names = [n for n in spec.relu_names() if spec.relu_state(n).state != "removed"]
    modules = dict(model.named_modules())
    missing = [n for n in names if n not in modules]
    if missing:
        raise ReshapeError(f"the model has no ReLU layer '{missing[0]}' that its spec names: a rewritten "
                           "(shallow-block) run cannot be a teacher here; use the spec-built run it came from")
    shapes = output_shapes(model, spec.input_shape, names)
    return [Site(n, tuple(shapes[n])) for n in names]


def masked_spec(spec: ArchSpec, layer_sites: list[Site], counts: dict[str, int], granularity: str) -> ArchSpec:
    """``spec`` with each site keeping ``counts[name]`` ReLUs (whole -> kept, 0 -> removed)."""
    layers = []
    for s in layer_sites:
        n = counts[s.name]
        if n >= s.size:
            layers.append(ReluLayer(s.name, "kept"))
        elif n == 0:
            layers.append(ReluLayer(s.name, "removed"))
        else:
            layers.append(ReluLayer(s.name, "masked", kept=n, granularity=granularity))
    return spec.with_relus(layers)


def topk_mask(scores: torch.Tensor, k: int) -> torch.Tensor:
    """A 0/1 tensor shaped like ``scores`` with exactly ``k`` ones at the largest scores.

    Ties go to the lower flat index, so the result is deterministic.
    """
    flat = scores.detach().flatten().float()
    if not 0 <= k <= flat.numel():
        raise ValueError(f"k={k} outside 0..{flat.numel()}")
    order = torch.sort(flat, descending=True, stable=True).indices
    mask = torch.zeros_like(flat)
    mask[order[:k]] = 1
    return mask.view(scores.shape)


def masked_modules(model: nn.Module) -> dict[str, MaskedReLU]:
    return {n: m for n, m in model.named_modules() if isinstance(m, MaskedReLU)}


#: State-dict suffixes of mask state (hard masks, SNL's soft gates): never copied between networks.
MASK_KEYS = (".mask", ".alpha")


def copy_weights(student: nn.Module, source: nn.Module) -> None:
    """Start ``student`` from ``source``'s weights; each network's masks stay its own."""
    state = {k: v for k, v in source.state_dict().items() if not k.endswith(MASK_KEYS)}
    missing, unexpected = student.load_state_dict(state, strict=False)
    missing = [k for k in missing if not k.endswith(MASK_KEYS)]
    if missing or unexpected:
        raise ValueError(f"the networks differ beyond masks: {missing[:3]} {unexpected[:3]}")


def check_budget(budget: int, total: int) -> None:
    """Refuse a ReLU budget outside 1..``total`` (the teacher's optimisable ReLUs)."""
    if budget < 1:
        raise ReshapeError(f"the ReLU budget must be at least 1, got {budget}")
    if budget > total:
        raise BudgetUnreachable(f"budget {budget:,} exceeds the teacher's {total:,} optimisable ReLUs; "
                           "pick a smaller $budget", param="budget")
