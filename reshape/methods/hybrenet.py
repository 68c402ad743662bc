"""HybReNet (DeepReShape, ours): a network synthesized for the budget, alone or as the base of SENet/SNL.

* ``hybrenet``: the HybReNet that ``reshape.deepreshape.synthesize`` makes for the budget
  (at most ``macs`` times the teacher's MACs), trained with KD from the teacher.
* ``hybrenet_senet`` / ``hybrenet_snl``: a HybReNet with ``factor`` times the budget's
  ReLUs (capped at the teacher's; doubled until the family has a network that small),
  trained once from scratch like a teacher, then reduced to the budget by SENet or SNL
  with the base as their teacher. The base is a run of its own in
  ``job.shared_dir("hybrenet-base-NAME")``: budgets that synthesize the same base share
  it (its fingerprint covers spec, recipe and data, so a shared folder never mixes
  settings). Where the MAC cap leaves the base within the budget there is nothing to
  reduce, and the base is trained like ``hybrenet``.

The family and its regime come from ``backbone`` (a timm plain ResNet): the regime is
picked from the budget as a fraction of that backbone's ReLUs at full width. The
teacher's own spec is not used: for a narrow teacher every budget is a large fraction
of its ReLUs, whose regime (no culling, 5x widths) has no network within the teacher's
ReLUs, so every budget would be unreachable (issue #13 revisits the regime choice).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from ..count import Count, count
from ..deepreshape import Explanation, synthesize
from ..errors import ReshapeError
from ..runs import TrainedRun, load_trained
from ..spec import ArchSpec
from . import senet as _senet
from . import snl as _snl
from ._registry import Job, register_method

BASE_METHOD = "hybrenet-base"


@dataclass(frozen=True)
class HybReNetParams:
    #: Stages least to most critical (culling order; DeepReDuce's ResNet18 ranking).
    ranking: tuple[int, ...] = (1, 4, 2, 3)
    #: The synthesized network has at most this many times the teacher's MACs (training cost).
    macs: float = 2.0
    #: The timm plain ResNet whose family and regime rules synthesize the network.
    backbone: str = "resnet18"
    lr: float = 0.1


@dataclass(frozen=True)
class BaseParams(HybReNetParams):
    """A HybReNet base with ``factor`` times the budget's ReLUs, trained at ``base_lr``."""

    factor: int = 4
    base_lr: float = 0.1


@dataclass(frozen=True)
class HybReNetSENetParams(BaseParams):
    #: SENet with the short-run attention-transfer weight (docs/senet.md: 1000 cost 4-12 points in 2 epochs).
    senet: _senet.SENetParams = _senet.SENetParams(at_weight=100.0)


@dataclass(frozen=True)
class HybReNetSNLParams(BaseParams):
    #: SNL with the frontier's short-run settings (the published lambda assumes 100+ epochs).
    snl: _snl.SNLParams = _snl.SNLParams(lam=1e-3, mask_lr=1e-2, warmup=0, final_lr=1e-3)


def _synthesize(job: Job, p: HybReNetParams, relus: int, teacher: Count) -> tuple[ArchSpec, Explanation]:
    return synthesize(p.backbone, job.setting.data, relus, criticality=p.ranking, macs=int(p.macs * teacher.macs))


def _count_teacher(job: Job) -> Count:
    return count(job.teacher.model, job.teacher.spec.input_shape)


def _explain(spec: ArchSpec, why: Explanation) -> dict[str, Any]:
    return {"spec": spec.name, "regime": why.regime, "relus": why.relus, "macs": why.macs,
            "reasons": list(why.reasons)}


@register_method("hybrenet", HybReNetParams, family="ours",
                 summary="DeepReShape: the HybReNet synthesized for the budget, trained with KD")
def fit(job: Job, p: HybReNetParams) -> dict[str, Any]:
    spec, why = _synthesize(job, p, job.budget, _count_teacher(job))
    job.train(spec, job.setting.config(job.setting.epochs, p.lr))
    return _explain(spec, why)


def base_spec(job: Job, p: BaseParams) -> tuple[ArchSpec, Explanation]:
    """The base for ``job.budget``: ``factor`` x budget ReLUs capped at the teacher's; below the
    family's smallest network, the target doubles until one exists (or the cap is reached)."""
    teacher = _count_teacher(job)
    relus = min(p.factor * job.budget, teacher.relus)
    while True:
        try:
            return _synthesize(job, p, relus, teacher)
        except ReshapeError:
            if relus >= teacher.relus:
                raise
            relus = min(2 * relus, teacher.relus)


def _base_then(job: Job, p: BaseParams, reduce: Callable[[TrainedRun], dict[str, Any]]) -> dict[str, Any]:
    """Train the base once (or, within the budget, as the network itself), then ``reduce`` it."""
    spec, why = base_spec(job, p)
    how = {"base": _explain(spec, why)}
    if why.relus <= job.budget:  # the MAC cap binds: the base itself fits, nothing to reduce
        job.train(spec, job.setting.config(job.setting.epochs, p.lr))
        return {**how, "reduced": False}
    epochs = job.setting.teacher_epochs
    out = job.shared_dir(f"hybrenet-base-{spec.name}")
    # trained like a teacher (from scratch, no KD, warm-up when it has the epochs)
    trained = job.train(spec, job.setting.config(epochs, p.base_lr, warmup_epochs=int(epochs > 1)), out=out,
                        teacher=None, method=BASE_METHOD, parent=job.teacher.path)
    base = load_trained(out, job.setting.data, job.setting.root, what=f"HybReNet base {out}")
    base.model.eval().requires_grad_(False)
    return {**how, "reduced": True, "base_run": str(out), "base_top1": trained.top1, **reduce(base)}


@register_method("hybrenet_senet", HybReNetSENetParams, family="ours",
                 summary="a HybReNet base with factor x the budget's ReLUs, trained once, then SENet to the budget")
def fit_senet(job: Job, p: HybReNetSENetParams) -> dict[str, Any]:
    return _base_then(job, p, lambda base: _senet.stages(job, base, p.senet))


@register_method("hybrenet_snl", HybReNetSNLParams, family="ours",
                 summary="a HybReNet base with factor x the budget's ReLUs, trained once, then SNL to the budget")
def fit_snl(job: Job, p: HybReNetSNLParams) -> dict[str, Any]:
    return _base_then(job, p, lambda base: _snl.stages(job, base, p.snl))
