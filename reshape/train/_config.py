"""Training hyper-parameters as one frozen, JSON-serialisable record.

The config is written into the run directory (``train_config.json``) and into every
checkpoint, so a resumed run can prove it continues the same recipe.
"""
from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from ..errors import ReshapeError
from ..io import read_json, write_json
from ..runs import CONFIG_FILE
from ..values import COUNT, COUNT_OR_ZERO, NON_NEGATIVE, POSITIVE, SMOOTHING, UNIT, Range, check_fields

OPTIMIZERS: tuple[str, ...] = ("sgd", "adamw")
SCHEDULES: tuple[str, ...] = ("cosine", "step", "constant")
#: Fields that change how a run executes, not what it computes: they may differ on resume.
RUNTIME_FIELDS = frozenset({"workers", "device", "compile"})
#: A step schedule's milestones: fractions of training in (0, 1).
MILESTONE = Range(0, 1, low_open=True, high_open=True)


@dataclass(frozen=True)
class TrainConfig:
    """One training recipe.

    ``sgd`` is momentum SGD without Nesterov, as the PI papers train. The learning rate
    rises linearly over ``warmup_epochs`` and then follows ``schedule``: ``cosine`` to
    zero at the last step, or ``step``: times ``gamma`` at each fraction of training in
    ``milestones``, or ``constant`` (SNL's mask phase). Teacher loss: ``ce_weight * CE +
    kd_alpha * KD(kd_temperature)``, ``ce_weight`` defaulting to ``1 - kd_alpha`` (SENet's
    released final stage uses 0.1 CE + 0.5 KD, not a convex mix). ``gate_lr`` is the
    learning rate of ReLU-gate parameters (SNL's soft masks), when they differ from the
    weights'; gates never get weight decay.
    ``amp`` (bf16 autocast) and ``channels_last`` apply on CUDA only. ``batch_size`` is
    per process under torchrun. ``dataset`` records the data's name for eval and
    teacher checks.
    """

    epochs: int = 10
    batch_size: int = 128
    lr: float = 0.1
    optimizer: Literal["sgd", "adamw"] = "sgd"
    momentum: float = 0.9
    weight_decay: float = 5e-4
    schedule: Literal["cosine", "step", "constant"] = "cosine"
    milestones: tuple[float, ...] = (0.5, 0.75)
    gamma: float = 0.1
    warmup_epochs: int = 0
    label_smoothing: float = 0.0
    kd_temperature: float = 4.0
    kd_alpha: float = 0.9
    ce_weight: float | None = None
    gate_lr: float | None = None
    amp: bool = True
    channels_last: bool = True
    compile: bool = False
    seed: int = 0
    workers: int = 0
    device: str = "auto"
    dataset: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "milestones", tuple(self.milestones))
        _check(self)

    def replace(self, **changes: Any) -> "TrainConfig":
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "milestones": list(self.milestones)}

    @classmethod
    def from_dict(cls, data: Any) -> "TrainConfig":
        if not isinstance(data, dict):
            raise ReshapeError(f"a training config must be a JSON object, got {type(data).__name__}")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ReshapeError(f"unknown training config field '{unknown[0]}'; "
                               f"allowed: {', '.join(sorted(known))}")
        return cls(**data)

    def resume_conflict(self, saved: "TrainConfig") -> str | None:
        """The first field (other than runtime ones) where ``saved`` differs, as a message."""
        for f in dataclasses.fields(self):
            mine, theirs = getattr(self, f.name), getattr(saved, f.name)
            if f.name not in RUNTIME_FIELDS and mine != theirs:
                return f"{f.name} is {theirs!r} in the checkpoint but {mine!r} now"
        return None


def save_config(cfg: TrainConfig, run_dir: str | os.PathLike[str]) -> None:
    write_json(Path(run_dir, CONFIG_FILE), cfg.to_dict())


def load_config(run_dir: str | os.PathLike[str]) -> TrainConfig | None:
    """The config a run directory was trained with, or None when it holds none."""
    path = Path(run_dir, CONFIG_FILE)
    return TrainConfig.from_dict(read_json(path, "training config")) if path.is_file() else None


def _check(cfg: TrainConfig) -> None:
    def need(ok: bool, field: str, rule: str) -> None:
        if not ok:
            raise ReshapeError(f"training config {field} {rule}, got {getattr(cfg, field)!r}")

    check_fields(cfg, "training config", epochs=COUNT, batch_size=COUNT, warmup_epochs=COUNT_OR_ZERO,
                 workers=COUNT_OR_ZERO, lr=POSITIVE, momentum=NON_NEGATIVE, weight_decay=NON_NEGATIVE,
                 gamma=POSITIVE, label_smoothing=SMOOTHING, kd_temperature=POSITIVE, kd_alpha=UNIT,
                 ce_weight=NON_NEGATIVE, gate_lr=POSITIVE)
    need(cfg.optimizer in OPTIMIZERS, "optimizer", f"must be one of {', '.join(OPTIMIZERS)}")
    need(cfg.schedule in SCHEDULES, "schedule", f"must be one of {', '.join(SCHEDULES)}")
    need(all(MILESTONE.problem(m) is None for m in cfg.milestones), "milestones",
         "must be fractions of training in (0, 1)")
    need(cfg.warmup_epochs < cfg.epochs, "warmup_epochs", "must be below epochs")
