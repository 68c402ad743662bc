"""Shallow blocks (seed 001): drop a residual block's inner ReLUs and merge it into one conv.

Four stages for a ReLU target (and optionally a MAC target), each resumable:

1. ``score_blocks``: per block, the rise in KD loss (KL to the original model) when all
   its inner ReLU layers become identity, divided by the ReLUs that saves; the MACs of
   the merged block are known from shapes before any training (``predicted_macs``).
   ``select`` takes blocks in increasing score order until the targets are met.
   Saved as the plan in ``OUT/shallow.json``.
2. linearize the chosen blocks in padding-exact form and fine-tune with KD from the
   original model (``OUT/linearized/``, itself a loadable rewritten run).
3. merge: ``exact`` (one K x K conv per block, checked against the linearized block to
   1e-4; lossless, raises MACs) or ``compact`` (one k x k conv per block, least-squares
   fitted to the exact operator on real block inputs, then KD fine-tuned in ``OUT``;
   lossy, cuts MACs).
4. record ReLUs, MACs, nonlinear depth and accuracy before, linearized and after in
   ``OUT/shallow.json``; ``OUT`` is a rewritten run (spec + graph.json + weights).
"""
from __future__ import annotations

import copy
import dataclasses
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Iterable, Sequence

import torch
from torch import nn
from torch.utils.data import Dataset

from .budget.sensitivity import linearize_groups
from .count import count
from .errors import ReshapeError
from .graph import ModelGraph, Step, block_inputs, linearize, merge_blocks, predicted_macs, trace
from .graph.passes import MODES
from .io import read_json, write_json, write_text
from .runs import WEIGHTS_FILE, load_recipe, load_weights, save_recipe, save_rewritten
from .spec import ArchSpec, ReluLayer
from .train import (METRICS_FILE, TrainConfig, completed_epochs, evaluate, has_checkpoint, read_metrics,
                    save_config, train)

RESULT_FILE = "shallow.json"
LINEARIZED_DIR = "linearized"
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
    cannot reach is a ``ReshapeError`` giving the reachable minimum.
    """
    mode = scores[0].mode if scores else "exact"
    floor_relus = relus - sum(s.relus_saved for s in scores)
    if relu_target < floor_relus:
        raise ReshapeError(f"ReLU target {relu_target:,} is out of reach: merging every block leaves "
                           f"{floor_relus:,} of {relus:,} ReLUs; ask for at least that")
    floor_macs = macs + sum(min(s.mac_change, 0) for s in scores)
    if mac_target is not None and mac_target < floor_macs:
        raise ReshapeError(f"MAC target {mac_target:,} is out of reach in {mode} mode: the fewest is "
                           f"{floor_macs:,} of {macs:,} MACs" +
                           ("; exact merges raise MACs, try --mode compact" if mode == "exact" else ""))
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
                           f"target {mac_target:,}; loosen --macs or use --mode compact")
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


def run(spec: ArchSpec, teacher: nn.Module, out_dir: str | os.PathLike[str], train_set: Dataset,
        test_set: Dataset | None, relus: int, macs: int | None, mode: str, cfg: TrainConfig,
        batches: Sequence[torch.Tensor], k: int = 3, progress: bool = True,
        graph: ModelGraph | None = None) -> dict[str, Any]:
    """The shallow-block method from a trained ``teacher`` into ``out_dir``; returns shallow.json's content.

    ``batches`` (a few unaugmented training batches) score the blocks and calibrate
    compact merges. ``graph`` is the teacher's trace when the caller has one (traced here
    otherwise). A finished stage found in ``out_dir`` is skipped, a partial one resumed.
    """
    out = Path(out_dir)
    input_shape = spec.input_shape
    teacher.eval().requires_grad_(False)
    result = _plan(out, teacher, input_shape, relus, macs, mode, k, batches, graph)
    if "after" in result:
        return result
    blocks = tuple(result["blocks"])
    steps = [Step("linearize", blocks, padding="exact")]
    student = copy.deepcopy(teacher).requires_grad_(True).train()
    lin = linearize(trace(student, input_shape), blocks)
    lin_dir = out / LINEARIZED_DIR
    _train_stage(lin, spec, steps, cfg, train_set, test_set, lin_dir, teacher, progress)
    lin.module.cpu()
    result["linearized"] = _stats(lin.module, input_shape, test_set, read_metrics(lin_dir))
    steps.append(Step("merge", blocks, mode=mode, k=k))
    inputs = block_inputs(lin, blocks, torch.cat(list(batches))) if mode == "compact" else None
    merged, reports = merge_blocks(lin, blocks, mode, k, inputs)
    if mode == "compact":
        # The fitted kernels start close to the fine-tuned block but without the BatchNorms
        # that steadied it: fine-tune them gently (full lr diverged in the demo).
        gentle = dataclasses.replace(cfg, lr=cfg.lr * COMPACT_LR_SCALE)
        _train_stage(merged, spec, steps, gentle, train_set, test_set, out, teacher, progress)
        merged.module.cpu()
        metrics = read_metrics(out)
    else:
        save_rewritten(out, spec, steps, merged)
        save_config(cfg, out)  # the recipe that trained these weights; names the dataset for `reshape eval`
        # An exact merge computes the fine-tuned linearized model's function (checked to 1e-4),
        # so its training history is this run's too: every finished run then has metrics.
        write_text(out / METRICS_FILE, (lin_dir / METRICS_FILE).read_text(encoding="utf-8"))
        metrics = read_metrics(out)
    result.update(before=_stats(teacher, input_shape, test_set), after=_stats(merged.module, input_shape,
                  test_set, metrics), merges=[r.to_dict() for r in reports])
    write_json(out / RESULT_FILE, result)
    return result


def _plan(out: Path, teacher: nn.Module, input_shape: tuple[int, ...], relus: int, macs: int | None,
          mode: str, k: int, batches: Sequence[torch.Tensor], mg: ModelGraph | None) -> dict[str, Any]:
    """Stage 1: the saved plan (checked to be for the same targets) or a new one, written to shallow.json."""
    targets = {"mode": mode, "k": k, "relu_target": relus, "mac_target": macs}
    if (out / RESULT_FILE).is_file():
        saved = read_json(out / RESULT_FILE, "shallow-block run")
        if {key: saved.get(key) for key in targets} != targets:
            raise ReshapeError(f"{out} holds a shallow-block run for other targets "
                               f"({', '.join(f'{key} {saved.get(key)}' for key in targets)}); pick another --out")
        return saved
    mg = mg if mg is not None else trace(teacher, input_shape)
    scores = score_blocks(teacher, mg, batches, mode, k)
    chosen = select(scores, relus, macs, relus=mg.relus, macs=mg.macs)
    if not chosen:
        raise ReshapeError(f"the model already meets the targets ({mg.relus:,} ReLUs, {mg.macs:,} MACs); "
                           "nothing to merge")
    plan = {**targets, "scores": [s.to_dict() for s in scores], "blocks": [s.block for s in chosen]}
    write_json(out / RESULT_FILE, plan)
    return plan


def _train_stage(mg: ModelGraph, spec: ArchSpec, steps: list[Step], cfg: TrainConfig, train_set: Dataset,
                 test_set: Dataset | None, run_dir: Path, teacher: nn.Module, progress: bool) -> None:
    """KD-train the rewritten model in ``run_dir`` (a rewritten run: its recipe is saved first);
    a finished training is loaded instead, a partial one resumed."""
    model = mg.to_module()
    if completed_epochs(run_dir) >= cfg.epochs:
        if load_recipe(run_dir) != steps:
            raise ReshapeError(f"{run_dir} holds a rewrite of other blocks than {', '.join(steps[0].blocks)}; "
                               "pick another --out")
        load_weights(model, run_dir / WEIGHTS_FILE)
        return
    save_recipe(run_dir, steps)
    train(model, spec, cfg, train_set, test_set, run_dir, teacher=teacher,
          resume=has_checkpoint(run_dir), progress=progress)


def _stats(model: nn.Module, input_shape: tuple[int, ...], test_set: Dataset | None,
           metrics: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """ReLUs, MACs, nonlinear depth and test top-1 (the last training epoch's, else evaluated)."""
    c = count(model, input_shape)
    if metrics and "test_top1" in metrics[-1]:
        top1 = metrics[-1]["test_top1"]
    else:
        top1 = evaluate(model, test_set)["top1"] if test_set is not None else None
    return {"relus": c.relus, "macs": c.macs, "nonlinear_depth": c.nonlinear_depth, "top1": top1}
