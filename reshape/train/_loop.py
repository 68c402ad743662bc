"""The training loop every method shares, and evaluation.

``run_epochs`` runs one recipe (``TrainConfig``) on a model and writes its run directory:
``spec.json``, ``train_config.json``, ``model.safetensors``, ``checkpoint.pt`` and
``metrics.jsonl``, all updated after every epoch. Methods plug in at two points:

* ``extra_loss(step)`` adds a term to each batch's loss (attention transfer, an L1
  penalty on masks); it sees both networks, the batch and both outputs, and reads
  intermediate features through ``FeatureTaps``;
* ``callbacks`` run after each epoch with the model and the epoch's metrics (update
  masks, raise a penalty weight) and may add metrics of their own.

Hooks and callbacks with ``state_dict``/``load_state_dict`` are checkpointed with
the run, so a resumed run continues them too. Shuffling draws from a generator
seeded by ``(seed, epoch)`` and the RNG states are checkpointed: on CPU a resumed run
ends with the same weights, bit for bit, as an uninterrupted one.
"""
from __future__ import annotations

import contextlib
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, Dataset, DistributedSampler, Subset

from ..errors import OwnershipError, ReshapeError
from ..layers import SoftMaskReLU
from ..runs import SPEC_FILE, WEIGHTS_FILE, save_weights
from ..spec import ArchSpec, save_spec
from . import _dist
from ._checkpoint import (CHECKPOINT_FILE, METRICS_FILE, append_metrics, load_checkpoint, read_metrics,
                          rng_state, save_checkpoint, seed_all, set_rng_state, truncate_metrics)
from ._config import TrainConfig, save_config
from ._distill import kd_loss, load_teacher

#: The checkpoint entry holding every process's RNG state, by rank (``rng`` is this process's).
RANKS_RNG = "rng_ranks"


@dataclass
class Step:
    """What an ``extra_loss`` hook sees for one batch (after both forwards)."""

    epoch: int
    index: int
    inputs: torch.Tensor
    targets: torch.Tensor
    student: nn.Module
    teacher: nn.Module | None
    logits: torch.Tensor
    teacher_logits: torch.Tensor | None


@dataclass
class EpochEnd:
    """What a callback sees after epoch ``epoch`` (1-based); entries it adds to ``metrics`` are
    logged. Setting ``stop`` ends training once this epoch is saved (SNL stops at its budget)."""

    epoch: int
    model: nn.Module
    teacher: nn.Module | None
    optimizer: torch.optim.Optimizer
    metrics: dict[str, Any]
    stop: bool = False


ExtraLoss = Callable[[Step], torch.Tensor]
Callback = Callable[[EpochEnd], None]


class TrainingInterrupted(KeyboardInterrupt):
    """Ctrl-C during training; the checkpoint of the last completed epoch is on disk."""

    def __init__(self, run_dir: Path, completed: int, epochs: int) -> None:
        self.run_dir, self.completed, self.epochs = run_dir, completed, epochs
        if completed:
            text = (f"interrupted; epoch {completed}/{epochs} is saved in {run_dir}: "
                    "rerun the same command to continue (reshape's commands and train.fit resume "
                    "by themselves; run_epochs() needs resume=True)")
        else:
            text = f"interrupted before the first epoch finished; nothing saved in {run_dir} to resume"
        super().__init__(text)


def run_epochs(model: nn.Module, spec: ArchSpec, cfg: TrainConfig, train_set: Dataset,
               test_set: Dataset | None, out_dir: str | os.PathLike[str],
               teacher: nn.Module | str | os.PathLike[str] | None = None,
               extra_loss: ExtraLoss | None = None, callbacks: Sequence[Callback] = (),
               resume: bool = False, progress: bool = True, val_set: Dataset | None = None) -> dict[str, Any]:
    """Train ``model`` (built from ``spec``) by ``cfg``, writing the run to ``out_dir``.

    ``teacher`` is a model or a run directory; with one, the loss mixes in logit KD.
    Every epoch's row records the images and optimizer steps it trained (the compute a
    run's weights received) and, with ``val_set``, validation metrics (``val_top1``)
    beside the test ones.
    Returns the metrics of the last epoch. Raises ``ReshapeError`` on a bad run
    directory or a non-finite loss (the last good checkpoint stays), and
    ``TrainingInterrupted`` on Ctrl-C.
    """
    out = Path(out_dir)
    ctx = _dist.context(cfg.device)
    checkpoint = _open_run_dir(out, spec, cfg, resume)
    if isinstance(teacher, (str, os.PathLike)):
        teacher = load_teacher(teacher, spec, cfg.dataset)
    stateful = [h for h in (extra_loss, *callbacks) if hasattr(h, "state_dict")]
    fast = ctx.cuda and cfg.channels_last
    model.to(ctx.device, memory_format=torch.channels_last if fast else torch.preserve_format)
    if teacher is not None:
        teacher.to(ctx.device).eval().requires_grad_(False)
    loader, generator = _train_loader(train_set, cfg, ctx)
    optimizer = make_optimizer(model, cfg)
    scheduler = make_scheduler(optimizer, cfg, len(loader))
    start = 0
    if checkpoint is None:
        seed_all(cfg.seed + ctx.rank)
        if ctx.is_main:
            save_spec(spec, out / SPEC_FILE)
            save_config(cfg, out)
            (out / METRICS_FILE).unlink(missing_ok=True)
    else:
        start = _restore(checkpoint, model, optimizer, scheduler, stateful, ctx)
        if ctx.is_main:
            truncate_metrics(out, start)
    net = _dist.wrap(model, ctx)
    if cfg.compile:
        net = torch.compile(net)
    done_rows = read_metrics(out) if start else []
    row: dict[str, Any] = done_rows[-1] if done_rows else {}  # a finished run returns its last epoch
    show = progress and ctx.is_main
    done = start
    with _progress(show) as bar:
        try:
            for epoch in range(start, cfg.epochs):
                generator.manual_seed(_shuffle_seed(cfg.seed, epoch))
                if isinstance(loader.sampler, DistributedSampler):
                    loader.sampler.set_epoch(epoch)
                row = {"epoch": epoch + 1, "lr": optimizer.param_groups[0]["lr"]}
                row.update(_train_epoch(net, model, teacher, loader, optimizer, scheduler, cfg,
                                        ctx, epoch, extra_loss, bar, out))
                _dist.sync_buffers(model, ctx)
                for split, dataset in (("val", val_set), ("test", test_set)):
                    if dataset is not None:
                        scores = evaluate(model, dataset, cfg.batch_size, ctx.device, cfg.workers, cfg.amp, ctx)
                        row.update({f"{split}_{k}": v for k, v in scores.items()})
                end = EpochEnd(epoch + 1, model, teacher, optimizer, row)
                for callback in callbacks:
                    callback(end)
                rngs = _dist.gather(rng_state(), ctx)  # every rank's: each resumes its own stream
                if ctx.is_main:
                    _save_epoch(out, model, optimizer, scheduler, stateful, spec, cfg, epoch + 1, row, rngs)
                done = epoch + 1
                if show:
                    bar.console.print(_summary(row, cfg.epochs))
                if end.stop:
                    break
        except KeyboardInterrupt:
            raise TrainingInterrupted(out, done, cfg.epochs) from None
    return row


def evaluate(model: nn.Module, dataset: Dataset, batch_size: int = 256,
             device: torch.device | str | None = None, workers: int = 0, amp: bool = True,
             ctx: "_dist.Context | None" = None) -> dict[str, float]:
    """Top-1 and top-5 accuracy (fractions) and mean cross-entropy of ``model`` on ``dataset``.

    Under torchrun each process scores its share and the sums are combined, so every
    image counts exactly once. ``amp``: bf16 autocast on CUDA. The model's train/eval
    mode is restored afterwards.
    """
    ctx = ctx or _dist.Context(0, 1, torch.device(device) if device else next(model.parameters()).device)
    share = Subset(dataset, range(ctx.rank, len(dataset), ctx.world)) if ctx.world > 1 else dataset
    loader = DataLoader(share, batch_size=batch_size, num_workers=workers, pin_memory=ctx.cuda)
    sums = torch.zeros(4, dtype=torch.float64, device=ctx.device)  # loss, top1, top5, count
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad(), _autocast(ctx, amp):
            for inputs, targets in loader:
                inputs, targets = _to_device(inputs, targets, ctx, ctx.cuda)
                logits = model(inputs).float()
                k = min(5, logits.shape[1])
                top = logits.topk(k, dim=1).indices
                hits = top.eq(targets[:, None])
                sums += torch.stack([
                    F.cross_entropy(logits, targets, reduction="sum"),
                    hits[:, 0].sum(), hits.any(dim=1).sum(), torch.tensor(len(targets), device=ctx.device),
                ]).double()
    finally:
        model.train(was_training)
    loss, top1, top5, count = _dist.sum_all(sums, ctx).tolist()
    if not count:
        raise ReshapeError("the evaluation dataset is empty")
    return {"top1": top1 / count, "top5": top5 / count, "loss": loss / count}


def make_optimizer(model: nn.Module, cfg: TrainConfig) -> torch.optim.Optimizer:
    """timm's optimizer factory; BatchNorm and bias parameters get no weight decay.

    With ``cfg.gate_lr``, ReLU-gate parameters (``SoftMaskReLU.alpha``) form their own group
    at that lr without weight decay (SNL trains its masks beside the weights).
    """
    from timm.optim import create_optimizer_v2

    name = {"sgd": "momentum", "adamw": "adamw"}[cfg.optimizer]
    kwargs = {"momentum": cfg.momentum} if cfg.optimizer == "sgd" else {}
    gates = [m.alpha for m in model.modules() if isinstance(m, SoftMaskReLU)]
    if cfg.gate_lr is None or not gates:
        return create_optimizer_v2(model, name, lr=cfg.lr, weight_decay=cfg.weight_decay, **kwargs)
    ids = {id(g) for g in gates}
    weights = [(n, p) for n, p in model.named_parameters() if id(p) not in ids]
    groups = _decay_groups(weights, cfg.weight_decay)
    groups.append({"params": gates, "lr": cfg.gate_lr, "weight_decay": 0.0})
    return create_optimizer_v2(groups, name, lr=cfg.lr, weight_decay=0.0, **kwargs)


def _decay_groups(named: list[tuple[str, nn.Parameter]], weight_decay: float) -> list[dict[str, Any]]:
    """timm's rule (no decay on 1-D parameters: BatchNorm, biases) for a list of named parameters."""
    decay = [p for n, p in named if p.requires_grad and p.ndim > 1 and not n.endswith(".bias")]
    no_decay = [p for n, p in named if p.requires_grad and not (p.ndim > 1 and not n.endswith(".bias"))]
    return [{"params": no_decay, "weight_decay": 0.0}, {"params": decay, "weight_decay": weight_decay}]


def make_scheduler(optimizer: torch.optim.Optimizer, cfg: TrainConfig,
                   steps_per_epoch: int) -> torch.optim.lr_scheduler.LambdaLR:
    """Per-step learning-rate factor: linear warm-up, then cosine to zero or step decay."""
    total = cfg.epochs * steps_per_epoch
    warmup = cfg.warmup_epochs * steps_per_epoch
    drops = [round(m * total) for m in cfg.milestones]

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        if cfg.schedule == "constant":
            return 1.0
        if cfg.schedule == "cosine":
            return 0.5 * (1 + math.cos(math.pi * (step - warmup) / max(1, total - warmup)))
        return cfg.gamma ** sum(step >= d for d in drops)

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


# -- one epoch ----------------------------------------------------------------------------
def _train_epoch(net: nn.Module, model: nn.Module, teacher: nn.Module | None, loader: DataLoader,
                 optimizer: torch.optim.Optimizer, scheduler: torch.optim.lr_scheduler.LRScheduler,
                 cfg: TrainConfig, ctx: "_dist.Context", epoch: int, extra_loss: ExtraLoss | None,
                 bar: Any, out: Path) -> dict[str, float]:
    net.train()
    fast = ctx.cuda and cfg.channels_last
    task = bar.add_task(f"epoch {epoch + 1}/{cfg.epochs}", total=len(loader), ips=0.0, loss=float("nan"))
    loss_sum, correct, seen = 0.0, 0, 0
    start = time.perf_counter()
    for index, (inputs, targets) in enumerate(loader):
        inputs, targets = _to_device(inputs, targets, ctx, fast)
        with _autocast(ctx, cfg.amp):
            logits = net(inputs)
            loss = F.cross_entropy(logits, targets, label_smoothing=cfg.label_smoothing)
            teacher_logits = None
            if teacher is not None:
                with torch.no_grad():
                    teacher_logits = teacher(inputs)
                ce_weight = 1 - cfg.kd_alpha if cfg.ce_weight is None else cfg.ce_weight
                loss = ce_weight * loss + cfg.kd_alpha * kd_loss(logits, teacher_logits, cfg.kd_temperature)
            if extra_loss is not None:
                loss = loss + extra_loss(Step(epoch + 1, index, inputs, targets, model, teacher,
                                              logits, teacher_logits))
        value = _finite(loss, ctx, epoch, index, out)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        scheduler.step()
        loss_sum += value * len(targets)
        correct += int((logits.argmax(1) == targets).sum())
        seen += len(targets)
        bar.update(task, advance=1, loss=loss_sum / seen, ips=seen / (time.perf_counter() - start))
    elapsed = time.perf_counter() - start
    bar.remove_task(task)
    loss_sum, correct, seen = _dist.sum_all(
        torch.tensor([loss_sum, correct, seen], dtype=torch.float64, device=ctx.device), ctx).tolist()
    return {"train_loss": loss_sum / seen, "train_top1": correct / seen,
            "images_per_s": seen / elapsed, "epoch_s": elapsed, "train_images": int(seen), "steps": len(loader)}


def _finite(loss: torch.Tensor, ctx: "_dist.Context", epoch: int, index: int, out: Path) -> float:
    """The loss as a float, or stop every process before a non-finite value reaches the weights."""
    value = loss.detach().float()
    if ctx.world > 1:  # every process must stop together, or the others hang in all-reduce
        value = _dist.sum_all(value.clone(), ctx)
    value = value.item()
    if not math.isfinite(value):
        where = f"the checkpoint of epoch {epoch} in {out} is kept" if epoch else "no epoch had finished"
        raise ReshapeError(f"loss became {value} at epoch {epoch + 1}, batch {index + 1}; "
                           f"training stopped and {where}; lower $lr or add $warmup_epochs")
    return value / ctx.world


def _train_loader(dataset: Dataset, cfg: TrainConfig,
                  ctx: "_dist.Context") -> tuple[DataLoader, torch.Generator]:
    per_process = len(dataset) // ctx.world
    if per_process < cfg.batch_size:
        raise ReshapeError(f"the training set has {len(dataset)} images, fewer than one batch of "
                           f"{cfg.batch_size} per process; lower $batch_size")
    generator = torch.Generator()
    sampler = (DistributedSampler(dataset, ctx.world, ctx.rank, shuffle=True, seed=cfg.seed)
               if ctx.world > 1 else None)
    loader = DataLoader(dataset, batch_size=cfg.batch_size, shuffle=sampler is None, sampler=sampler,
                        generator=generator, num_workers=cfg.workers, pin_memory=ctx.cuda,
                        drop_last=True)
    return loader, generator


def _shuffle_seed(seed: int, epoch: int) -> int:
    """The data-order seed of an epoch: fixed by (seed, epoch), never equal to the global ``seed``."""
    return seed * 65536 + epoch + 1


def _to_device(inputs: torch.Tensor, targets: torch.Tensor, ctx: "_dist.Context",
               channels_last: bool) -> tuple[torch.Tensor, torch.Tensor]:
    inputs = inputs.to(ctx.device, non_blocking=True)
    if channels_last:
        inputs = inputs.contiguous(memory_format=torch.channels_last)
    return inputs, targets.to(ctx.device, non_blocking=True)


def _autocast(ctx: "_dist.Context", enabled: bool) -> contextlib.AbstractContextManager:
    """bf16 autocast on CUDA; on CPU training stays in float32."""
    return torch.autocast("cuda", dtype=torch.bfloat16, enabled=enabled and ctx.cuda)


# -- run directory ------------------------------------------------------------------------
def _open_run_dir(out: Path, spec: ArchSpec, cfg: TrainConfig, resume: bool) -> dict[str, Any] | None:
    """Check ``out`` before anything is written: the checkpoint to resume, or None for a new run."""
    if not resume:
        if (out / CHECKPOINT_FILE).exists():
            raise OwnershipError(f"{out} already holds a training run; pass $resume to continue it "
                                 "or pick another $out")
        return None
    checkpoint = load_checkpoint(out)
    if checkpoint.get("spec") != spec.to_dict():
        raise OwnershipError(f"the checkpoint in {out} was trained for another network; "
                             "resume with the same model/spec, or pick another $out")
    conflict = cfg.resume_conflict(TrainConfig.from_dict(checkpoint["config"]))
    if conflict:
        raise ReshapeError(f"cannot resume {out} with a different recipe: {conflict}")
    return checkpoint


def _restore(checkpoint: dict[str, Any], model: nn.Module, optimizer: torch.optim.Optimizer,
             scheduler: torch.optim.lr_scheduler.LRScheduler, stateful: list[Any], ctx: "_dist.Context") -> int:
    """Load the checkpoint's states; each process takes its own rank's RNG state (rank 0's when
    the checkpoint has none for this world size: an older checkpoint or another world)."""
    if len(checkpoint["hooks"]) != len(stateful):
        raise ReshapeError(f"the checkpoint saved {len(checkpoint['hooks'])} stateful hooks/callbacks "
                           f"but this run has {len(stateful)}; resume with the same method")
    model.load_state_dict(checkpoint["model"])
    optimizer.load_state_dict(checkpoint["optimizer"])
    scheduler.load_state_dict(checkpoint["scheduler"])
    for hook, state in zip(stateful, checkpoint["hooks"]):
        hook.load_state_dict(state)
    ranks = checkpoint.get(RANKS_RNG, [])
    set_rng_state(ranks[ctx.rank] if len(ranks) == ctx.world else checkpoint["rng"])
    return int(checkpoint["epoch"])


def _save_epoch(out: Path, model: nn.Module, optimizer: torch.optim.Optimizer,
                scheduler: torch.optim.lr_scheduler.LRScheduler, stateful: list[Any],
                spec: ArchSpec, cfg: TrainConfig, epoch: int, row: dict[str, Any],
                rngs: list[dict[str, Any]]) -> None:
    """Metrics first, then weights, then the checkpoint that marks the epoch complete
    (with ``rngs``, every process's RNG state by rank)."""
    append_metrics(out, row)
    save_weights(model, out / WEIGHTS_FILE)
    save_checkpoint(out, {
        "epoch": epoch, "spec": spec.to_dict(), "config": cfg.to_dict(),
        "model": model.state_dict(), "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(), "hooks": [h.state_dict() for h in stateful], RANKS_RNG: rngs,
    })


def _summary(row: dict[str, Any], epochs: int) -> str:
    text = (f"epoch {row['epoch']}/{epochs}  loss {row['train_loss']:.3f}  "
            f"train {100 * row['train_top1']:.1f}%  {row['images_per_s']:.0f} img/s")
    if "test_top1" in row:
        text += f"  test {100 * row['test_top1']:.2f}% (top-5 {100 * row['test_top5']:.1f}%)"
    return text


@contextlib.contextmanager
def _progress(enabled: bool) -> Iterator[Any]:
    from rich.console import Console
    from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn,
                               TimeElapsedColumn, TimeRemainingColumn)

    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
               TextColumn("{task.fields[ips]:.0f} img/s  loss {task.fields[loss]:.4f}"),
               TimeElapsedColumn(), TimeRemainingColumn())
    with Progress(*columns, console=Console(stderr=True), disable=not enabled) as bar:
        yield bar
