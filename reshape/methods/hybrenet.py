"""HybReNet (DeepReShape, ours): a network synthesized for the budget, alone or as the base of SENet/SNL.

* ``hybrenet``: the HybReNet that ``reshape.deepreshape.synthesize`` makes for the budget
  from the teacher's own spec, trained from scratch with KD from the teacher for the
  teacher's epochs plus the setting's (``Job.scratch_config``).
* ``hybrenet_senet`` / ``hybrenet_snl``: a HybReNet base with ``factor`` times the budget's
  ReLUs (at least the smallest network the family allows; published: the 180K network
  carries 1.9x), trained as the teacher was (its recipe, epochs and images, no KD, as the
  teacher had none), then reduced to the budget by SENet or SNL with the base as their
  teacher, exactly as those reduce the teacher: the pair (``hybrenet_snl``, ``snl``) differs
  in the parent network alone. One stage-criticality ranking serves the whole pipeline.

Everything is synthesized against the teacher's own spec: the regime is the budget as a
fraction of the teacher's ReLUs, and widths move on a unit of the teacher's stage-1
width / 64, so a narrow teacher gets the same families, at the same fractions, as a
full-width ResNet. With no MAC cap (the default) the base grows with the budget.

The base is a run of its own in ``job.shared_dir("hybrenet-base-NAME-DIGEST")``, the
digest being that of its training (spec, recipe, data, teacher): every budget and both
pipelines that synthesize the same base train it once and read it back, and a base
trained otherwise gets a folder of its own. Where a MAC cap leaves the base within the
budget there is nothing to reduce: the base itself, fine-tuned for the student epochs,
is the network.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Callable

from ..analytic import spec_macs, total_relus
from ..deepreshape import Explanation, Shape, smallest, synthesize
from ..errors import ReshapeError
from ..io import fingerprint
from ..runs import WEIGHTS_FILE, TrainedRun, load_trained, load_weights, writes
from ..spec import ArchSpec
from ..train import training_key
from . import senet as _senet
from . import snl as _snl
from ..values import POSITIVE
from ._registry import Job, check_params, nested, param, parent_config, register_method

BASE_METHOD = "hybrenet-base"
# What a forced rerun may delete beside the run: the base (without Setting.shared) and the second method's files.
writes("hybrenet", f"{BASE_METHOD}-*")
writes("hybrenet_senet", f"{BASE_METHOD}-*", _senet.PLAN_FILE)
writes("hybrenet_snl", f"{BASE_METHOD}-*", _snl.RESULT_FILE, _snl.BINARIZED_FILE)


#: The params that fix the HybReNet family (``reshape.deepreshape.Shape``), in its field order.
SHAPE_FIELDS = ("multipliers", "cull", "thin", "depths")


@dataclass(frozen=True)
class HybReNetParams:
    #: This published CIFAR-100 ranking gives HRN-5x5x3x / 2x5x3x exactly.
    ranking: tuple[int, ...] = param((1, 4, 2, 3), "Stages least to most critical: the culling order and, by "
                                     "ReLU equalization, the stage multipliers; a pipeline's SENet step ranks "
                                     "the stages by it too (one ranking per pipeline).")
    macs: float | None = param(None, "At most this many times the teacher's MACs (default: no cap, so the "
                               "network grows with the budget; every result reports its MACs and PI cost).",
                               allowed=POSITIVE)
    lr: float = param(0.1, "Learning rate of the training from scratch (with KD).", allowed=POSITIVE)
    # The family, fixed instead of chosen by the budget's regime (a search explores these); None
    # is the rules' choice for the budget (DeepReShape's O(1) design), field by field.
    multipliers: tuple[float, ...] | None = param(None, "Stage multipliers [a, b, c], used as given (default: "
                                                  "the rules' for the budget).", omit_default=True)
    cull: tuple[int, ...] | None = param(None, "Stages whose ReLUs are culled (default: the rules' for the "
                                         "budget).", omit_default=True)
    thin: bool | None = param(None, "Thin every block's post-add ReLU (default: the rules' choice for the "
                              "budget).", omit_default=True)
    depths: tuple[int, ...] | None = param(None, "Blocks per stage (default: the teacher's).", omit_default=True)

    def __post_init__(self) -> None:
        check_params(self, "hybrenet", HybReNetParams)
        for name in SHAPE_FIELDS:  # lists (JSON, a search space) become tuples: params are hashable data
            value = getattr(self, name)
            if isinstance(value, list):
                object.__setattr__(self, name, tuple(value))

    def given(self) -> dict[str, Any]:
        """The shape fields set (not None)."""
        return {name: getattr(self, name) for name in SHAPE_FIELDS if getattr(self, name) is not None}


@dataclass(frozen=True)
class BaseParams(HybReNetParams):
    """A HybReNet base with ``factor`` times the budget's ReLUs (published: about 2x), trained
    by the teacher's recipe."""

    factor: float = param(2.0, "The base's ReLUs over the budget's (published: about 2).", allowed=POSITIVE)

    def __post_init__(self) -> None:
        super().__post_init__()
        check_params(self, "hybrenet base", BaseParams)


@dataclass(frozen=True)
class HybReNetSENetParams(BaseParams):
    senet: _senet.SENetParams = param(_senet.SENetParams(), "The SENet step (its short preset: SENet's); its "
                                      "ranking is the pipeline's, another one is refused.")

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.senet.ranking is not None and tuple(self.ranking) != tuple(self.senet.ranking):
            raise ReshapeError(f"one criticality ranking per pipeline: hybrenet_senet's base ranks the stages "
                               f"{','.join(map(str, self.ranking))} and its SENet step "
                               f"{','.join(map(str, self.senet.ranking))}; set ranking alone (its SENet step uses it)")


@dataclass(frozen=True)
class HybReNetSNLParams(BaseParams):
    snl: _snl.SNLParams = param(_snl.SNLParams(), "The SNL step (its short preset: SNL's).")


def synthesize_for(teacher: ArchSpec, dataset: str, relus: int, p: HybReNetParams,
                   shape: Shape | None = None) -> tuple[ArchSpec, Explanation]:
    """The HybReNet for ``relus`` ReLUs, synthesized against the teacher's own spec (in the
    family ``p`` fixes, if any: ``shape`` when the caller has it already)."""
    cap = None if p.macs is None else int(p.macs * spec_macs(teacher))
    shape = shape if shape is not None else shape_for(teacher, dataset, relus, p)
    return synthesize(teacher, dataset, relus, macs=cap, criticality=p.ranking, shape=shape)


def shape_for(teacher: ArchSpec, dataset: str, relus: int, p: HybReNetParams) -> Shape | None:
    """The family ``p`` fixes: None when it sets no shape field (the rules choose), else the
    rules' choice for ``relus`` with the fields ``p`` sets replaced."""
    given = p.given()
    if not given:
        return None
    spec, why = synthesize(teacher, dataset, max(relus, total_relus(smallest(teacher, dataset, p.ranking))),
                           criticality=p.ranking)
    changes = {("culled" if name == "cull" else name): value for name, value in given.items()}
    return replace(why.shape(spec.depths), **changes)


def base_spec(teacher: ArchSpec, dataset: str, budget: int, p: BaseParams) -> tuple[ArchSpec, Explanation]:
    """The base for ``budget``: ``factor`` x the budget's ReLUs, or the smallest network the
    family allows on the teacher's spec where that is more (spec only, nothing trained)."""
    target = round(p.factor * budget)
    shape = shape_for(teacher, dataset, target, p)
    floor = total_relus(smallest(teacher, dataset, p.ranking, shape))
    return synthesize_for(teacher, dataset, max(target, floor), p, shape)  # the family whose floor this is


def _explain(spec: ArchSpec, why: Explanation) -> dict[str, Any]:
    return {"spec": spec.name, "regime": why.regime, "widths": list(spec.widths), "base_width": why.base_width,
            "multipliers": list(why.multipliers), "ranking": list(why.criticality), "relus": why.relus,
            "stage_relus": why.stage_relus, "macs": why.macs, "reasons": list(why.reasons)}


@register_method("hybrenet", HybReNetParams, family="ours",
                 summary="DeepReShape: the HybReNet synthesized for the budget, trained with KD")
def run(job: Job, p: HybReNetParams) -> dict[str, Any]:
    spec, why = synthesize_for(job.teacher.spec, job.setting.data, job.budget, p)
    job.train(spec, job.scratch_config(p.lr))
    return _explain(spec, why)


def train_base(job: Job, spec: ArchSpec) -> tuple[TrainedRun, float | None]:
    """Train ``spec`` as a base, exactly as the teacher was trained (its recipe and epochs on the
    setting's images, no KD: the teacher had none), or read it back: one shared run per distinct
    training. Returns it and its top-1."""
    cfg = parent_config(job.teacher, job.setting)
    digest = fingerprint(training_key(spec, cfg, job.data))[:8]
    out = job.shared_dir(f"hybrenet-base-{spec.name}-{digest}")
    trained = job.train(spec, cfg, out=out, teacher=None, method=BASE_METHOD, parent=job.teacher.path)
    base = load_trained(out, job.setting.data, job.setting.root, what=f"HybReNet base {out}")
    base.model.eval().requires_grad_(False)
    return base, trained.top1


def _base_then(job: Job, p: BaseParams,
               reduce: Callable[[TrainedRun, tuple[int, ...]], dict[str, Any]]) -> dict[str, Any]:
    """Train the base once (shared), then ``reduce`` it to the budget with the pipeline's one
    criticality ranking (or, within the budget, fine-tune it as the network itself)."""
    spec, why = base_spec(job.teacher.spec, job.setting.data, job.budget, p)
    base, top1 = train_base(job, spec)
    how = {"base": _explain(spec, why), "base_run": str(base.path), "base_top1": top1, "factor": p.factor,
           "macs_cap": p.macs, "ranking": list(why.criticality)}
    if why.relus <= job.budget:  # a MAC cap binds: the base itself fits, nothing to reduce
        job.train(spec, job.config(job.setting.epochs, p.lr),
                  init=lambda model: load_weights(model, base.path / WEIGHTS_FILE), init_key=base.digest,
                  inherits=base.path)
        return {**how, "reduced": False}
    return {**how, "reduced": True, **reduce(base, tuple(why.criticality))}


@register_method("hybrenet_senet", HybReNetSENetParams, family="ours",
                 presets={"short": nested("senet", _senet.SHORT_RUN)},
                 summary="a HybReNet base with factor x the budget's ReLUs, trained once, then SENet to the budget")
def run_senet(job: Job, p: HybReNetSENetParams) -> dict[str, Any]:
    return _base_then(job, p, lambda base, ranking: _senet.stages(job, base, replace(p.senet, ranking=ranking)))


@register_method("hybrenet_snl", HybReNetSNLParams, family="ours", presets={"short": nested("snl", _snl.SHORT_RUN)},
                 summary="a HybReNet base with factor x the budget's ReLUs, trained once, then SNL to the budget")
def run_snl(job: Job, p: HybReNetSNLParams) -> dict[str, Any]:
    return _base_then(job, p, lambda base, _: _snl.stages(job, base, p.snl))


def network_for(teacher: ArchSpec, dataset: str, budget: int, p: HybReNetParams) -> tuple[ArchSpec, Explanation]:
    """The network ``p`` synthesizes for ``budget`` (a pipeline's: its base), spec only."""
    return base_spec(teacher, dataset, budget, p) if isinstance(p, BaseParams) else \
        synthesize_for(teacher, dataset, budget, p)


def synthesized_shape(teacher: ArchSpec, dataset: str, budget: int, p: HybReNetParams) -> dict[str, Any]:
    """The shape fields (``SHAPE_FIELDS``) of the network the rules choose for ``budget`` under
    ``p``: ``p`` with these set fits the same network. What a search's warm start enqueues."""
    return shape_fields(*network_for(teacher, dataset, budget, p))


def shape_fields(spec: ArchSpec, why: Explanation) -> dict[str, Any]:
    """The family of a synthesized network as the params that fix it (``SHAPE_FIELDS``)."""
    shape = why.shape(spec.depths)
    return {"multipliers": shape.multipliers, "cull": shape.culled, "thin": shape.thin, "depths": shape.depths}
