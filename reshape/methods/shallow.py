"""Shallow blocks (seed 001, ours): drop a residual block's inner ReLUs and merge it into one conv.

``shallow`` fits the teacher to the budget (and optionally a MAC target) in three stages:

1. ``score_blocks``: per block, the rise in KD loss (KL to the original model) when all
   its inner ReLU layers become identity, divided by the ReLUs that saves; the MACs of
   the merged block are known from shapes before any training (``predicted_macs``).
   ``select`` takes blocks in increasing score order until the targets are met.
2. linearize the chosen blocks in padding-exact form and fine-tune with KD from the
   teacher: ``OUT/linearized/``, a rewritten run of its own (``reshape.train.fit``).
3. merge: ``exact`` (one K x K conv per block, checked against the linearized block to
   1e-4; lossless, raises MACs; the linearized stage gets all the setting's epochs) or
   ``compact`` (one k x k conv per block, least-squares fitted to the exact operator on
   real block inputs, then KD fine-tuned in ``OUT``; lossy, cuts MACs; the two trainings
   split the epochs).

``OUT`` is a rewritten run (spec + graph.json + weights); what was built (block scores,
merges, ReLUs/MACs/depth/top-1 before, linearized and after) is the method's ``built``.

``shallow_senet`` uses stage 1 alone as a spec edit (``linearize_spec``, no merge) down to
``keep`` of the teacher's ReLUs, then SENet takes the rest of the network to the budget.
"""
from __future__ import annotations

import copy
from dataclasses import asdict, dataclass
from typing import Any, Iterable, Sequence

import torch
from torch import nn

from ..budget.sensitivity import linearize_groups
from ..accounting import count
from ..data import probe_batches
from ..errors import BudgetUnreachable, ReshapeError
from ..graph import ModelGraph, Step, block_inputs, merge_blocks, predicted_macs, replay, trace
from ..graph.passes import MODES
from ..io import write_text
from ..runs import save_rewrite_steps, save_rewritten, writes
from ..spec import ArchSpec, ReluLayer
from ..train import METRICS_FILE, evaluate, save_config
from . import senet as _senet
from ..values import COUNT, FRACTION, POSITIVE
from ._registry import Job, check_params, nested, param, register_method

LINEARIZED_DIR = "linearized"
writes("shallow_senet", _senet.PLAN_FILE)  # what a forced rerun may delete beside the run
#: Learning-rate factor of the KD fine-tune after a compact merge (ours; see docs/shallow.md).
COMPACT_LR_SCALE = 0.1


@dataclass(frozen=True)
class BlockScore:
    """What merging one block costs (KD-loss rise) and saves (ReLUs; MACs in ``mode``)."""

    block: str
    sensitivity: float
    relus_saved: int
    macs_before: int
    macs_after: int  # the merged block's MACs in ``mode``, predicted from shapes
    mode: str

    @property
    def mac_change(self) -> int:
        return self.macs_after - self.macs_before

    @property
    def score(self) -> float:
        """Sensitivity per ReLU saved: lower merges first."""
        return self.sensitivity / self.relus_saved

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "mac_change": self.mac_change, "score": self.score}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "BlockScore":
        return cls(**{k: v for k, v in d.items() if k not in ("mac_change", "score")})


def score_blocks(model: nn.Module, mg: ModelGraph, batches: Iterable[torch.Tensor],
                 mode: str = "exact", k: int = 3) -> list[BlockScore]:
    """Score every mergeable block of ``mg`` (the trace of ``model``) with inner ReLUs."""
    if mode not in MODES:
        raise ReshapeError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
    blocks = [b for b in mg.blocks if b.inner_relus and predicted_macs(mg, b.name, mode, k) is not None]
    if not blocks:
        raise ReshapeError("the model has no residual block with inner ReLUs that can merge "
                           "(only conv/BatchNorm/ReLU branches merge)")
    rise = linearize_groups(model, {b.name: b.inner_relu_layers for b in blocks}, batches)
    return [BlockScore(b.name, rise[b.name], b.inner_relus, b.macs, predicted_macs(mg, b.name, mode, k), mode)
            for b in blocks]


def select(scores: Sequence[BlockScore], relu_target: int, mac_target: int | None = None, *,
           relus: int, macs: int) -> list[BlockScore]:
    """The blocks to merge, in increasing score order, for a model with ``relus`` and ``macs``.

    Blocks are taken until the ReLU target is met; with a MAC target, further blocks
    that lower MACs are taken (same order) until it is met too. A target the blocks
    cannot reach is ``BudgetUnreachable`` (a MAC target: ``ReshapeError``) giving the reachable minimum.
    """
    mode = scores[0].mode if scores else "exact"
    floor_relus = relus - sum(s.relus_saved for s in scores)
    if relu_target < floor_relus:
        raise BudgetUnreachable(f"ReLU target {relu_target:,} is out of reach: merging every block leaves "
                           f"{floor_relus:,} of {relus:,} ReLUs; ask for at least that")
    floor_macs = macs + sum(min(s.mac_change, 0) for s in scores)
    if mac_target is not None and mac_target < floor_macs:
        raise ReshapeError(f"MAC target {mac_target:,} is out of reach in {mode} mode: the fewest is "
                           f"{floor_macs:,} of {macs:,} MACs" +
                           ("; exact merges raise MACs, set $mode to compact" if mode == "exact" else ""))
    order = sorted(scores, key=lambda s: (s.score, -s.relus_saved))
    chosen: list[BlockScore] = []
    for s in order:
        if relus <= relu_target:
            break
        chosen.append(s)
        relus, macs = relus - s.relus_saved, macs + s.mac_change
    for s in order:
        if mac_target is None or macs <= mac_target:
            break
        if s not in chosen and s.mac_change < 0:
            chosen.append(s)
            macs += s.mac_change
    if mac_target is not None and macs > mac_target:
        raise ReshapeError(f"the blocks that meet the ReLU target leave {macs:,} MACs, above the "
                           f"target {mac_target:,}; loosen $macs or set $mode to compact")
    return chosen


def linearize_spec(spec: ArchSpec, teacher: nn.Module, relus: int,
                   batches: Sequence[torch.Tensor]) -> tuple[ArchSpec, list[str]]:
    """``spec`` with the inner ReLUs of the least sensitive blocks (``select``'s order) removed
    until at most ``relus`` remain, and those blocks.

    The method's first stage as a spec edit, with no convolution merged, so that a ReLU-budget
    method (SENet) can continue on it; the frontier benchmark's shallow + SENet pipeline.
    """
    mg = trace(teacher, spec.input_shape)
    chosen = select(score_blocks(teacher, mg, batches), relus, relus=mg.relus, macs=mg.macs)
    inner = {b.name: b.inner_relu_layers for b in mg.blocks}
    return (spec.with_relus(ReluLayer(name, "removed") for s in chosen for name in inner[s.block]),
            [s.block for s in chosen])



@dataclass(frozen=True)
class ShallowParams:
    mode: str = param("compact", "exact: one lossless K x K conv per block (more MACs); compact: one k x k "
                      "conv, least-squares fitted and KD fine-tuned (fewer MACs).", choices=MODES)
    k: int = param(3, "Kernel size of a compact merge.", allowed=COUNT)
    lr: float = param(0.05, "Learning rate of the KD fine-tuning after linearizing (the one after a compact "
                      "merge runs at a tenth of it).", allowed=POSITIVE)
    macs: int | None = param(None, "Optional MAC target: mergeable blocks that lower MACs are added until it "
                             "is met.", allowed=COUNT)

    def __post_init__(self) -> None:
        check_params(self, "shallow")


@dataclass(frozen=True)
class ShallowSENetParams:
    keep: float = param(0.75, "Blocks are linearized down to max(budget, this fraction of the teacher's "
                        "ReLUs).", allowed=FRACTION)
    senet: _senet.SENetParams = param(_senet.SENetParams(), "The SENet step (its short preset: SENet's).")

    def __post_init__(self) -> None:
        check_params(self, "shallow_senet")


@register_method("shallow", ShallowParams, family="ours",
                 summary="shallow blocks: the least sensitive blocks lose their inner ReLUs and merge into one conv")
def run(job: Job, p: ShallowParams) -> dict[str, Any]:
    teacher, spec = job.teacher.model, job.teacher.spec
    if spec.preact:
        raise ReshapeError("shallow blocks cannot merge pre-activation (WRN) blocks: their BN runs before "
                           "a zero-padded conv and does not fold into it exactly; use shallow_senet, which "
                           "only removes block ReLUs")
    shape = spec.input_shape
    batches = probe_batches(job.data.train)
    mg = trace(teacher, shape)
    scores = score_blocks(teacher, mg, batches, p.mode, p.k)
    chosen = select(scores, job.budget, p.macs, relus=mg.relus, macs=mg.macs)
    if not chosen:
        raise ReshapeError(f"the model already meets the targets ({mg.relus:,} ReLUs, {mg.macs:,} MACs); "
                           "nothing to merge")
    blocks = tuple(s.block for s in chosen)
    steps = [Step("linearize", blocks, padding="exact")]
    first, second = (job.setting.epochs, 0) if p.mode == "exact" else job.setting.stages()
    lin_dir = job.out / LINEARIZED_DIR
    lin_cfg = job.config(first, p.lr)
    linearized = job.train(spec, lin_cfg, out=lin_dir, init_key=job.teacher.digest, params=_rewrite_params(steps),
                           inherits=job.teacher.path,
                           model_fn=lambda: replay(copy.deepcopy(teacher).requires_grad_(True), shape,
                                                   steps).to_module())
    save_rewrite_steps(lin_dir, steps)
    lin = ModelGraph.of(linearized.model.cpu(), shape)
    stats = {"linearized": _stats(lin.module, shape, linearized.top1)}
    steps = [*steps, Step("merge", blocks, mode=p.mode, k=p.k)]
    inputs = block_inputs(lin, blocks, torch.cat(list(batches))) if p.mode == "compact" else None
    merged, reports = merge_blocks(lin, blocks, p.mode, p.k, inputs)
    if p.mode == "compact":
        # The fitted kernels start close to the fine-tuned block but without the BatchNorms
        # that steadied it: fine-tune them gently (full lr diverged in the demo).
        tuned = job.train(spec, job.config(second, p.lr * COMPACT_LR_SCALE),
                          init_key=linearized.fingerprint, params=_rewrite_params(steps), model_fn=merged.to_module,
                          inherits=linearized.run)
        save_rewrite_steps(job.out, steps)
        tuned.model.cpu()
        top1 = tuned.top1
    else:
        save_rewritten(job.out, spec, steps, merged)
        save_config(lin_cfg, job.out)  # the recipe that trained these weights; names the dataset for `reshape eval`
        # An exact merge computes the fine-tuned linearized model's function (checked to 1e-4),
        # so its training history is this run's too: every finished run then has metrics.
        write_text(job.out / METRICS_FILE, (lin_dir / METRICS_FILE).read_text(encoding="utf-8"))
        top1 = linearized.top1
    trained = {} if p.mode == "compact" else {"trained_in": str(lin_dir)}  # an exact merge adds no training
    before = evaluate(teacher, job.data.test)["top1"] if job.data.test is not None else None
    return {"mode": p.mode, "k": p.k, "relu_target": job.budget, "mac_target": p.macs, "blocks": list(blocks),
            "scores": [s.to_dict() for s in scores], "merges": [r.to_dict() for r in reports],
            "before": _stats(teacher, shape, before), **stats, "after": _stats(merged.module, shape, top1),
            "top1": top1, **trained}


@register_method("shallow_senet", ShallowSENetParams, family="ours", presets={"short": nested("senet", _senet.SHORT_RUN)},
                 summary="shallow blocks linearized down to keep x the teacher's ReLUs, then SENet to the budget")
def run_senet(job: Job, p: ShallowSENetParams) -> dict[str, Any]:
    relus = count(job.teacher.model, job.teacher.spec.input_shape).relus
    keep = max(job.budget, int(p.keep * relus))
    spec, blocks = linearize_spec(job.teacher.spec, job.teacher.model, keep, probe_batches(job.data.train))
    return {"linearized_blocks": blocks, **_senet.stages(job, job.teacher, p.senet, spec=spec)}


def _rewrite_params(steps: list[Step]) -> dict[str, Any]:
    """A rewrite stage's parameters, for its fingerprint: the graph steps it applies."""
    return {"graph": [s.to_dict() for s in steps]}


def _stats(model: nn.Module, input_shape: tuple[int, ...], top1: float | None) -> dict[str, Any]:
    """ReLUs, MACs, nonlinear depth and the given test top-1 of one stage's network."""
    c = count(model, input_shape)
    return {"relus": c.relus, "macs": c.macs, "nonlinear_depth": c.nonlinear_depth, "top1": top1}
