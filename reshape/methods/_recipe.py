"""The training-recipe knobs a method's params carry beyond the shared ``Setting``.

``reshape senet`` and ``reshape snl`` take the trainer's recipe options (the optimizer,
the schedule, ...; the recipes ask for the step schedule for SENet as published). They
change the result, so they belong in the params, whose fingerprint guards the run
folder: a rerun with another schedule is refused instead of read back. The defaults are
``TrainConfig``'s.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from ..train import OPTIMIZERS, SCHEDULES, TrainConfig
from ..values import COUNT_OR_ZERO, NON_NEGATIVE, POSITIVE, SMOOTHING
from ._registry import param


@dataclass(frozen=True)
class Recipe:
    """Mixed into a params dataclass (as its base) for methods whose CLI exposes the recipe."""

    optimizer: str = param(TrainConfig.optimizer, "Optimizer (SNL's mask phase: Adam).", choices=OPTIMIZERS)
    schedule: str = param(TrainConfig.schedule, "Learning-rate schedule (SNL's mask phase: constant).",
                          choices=SCHEDULES)
    weight_decay: float = param(TrainConfig.weight_decay, "Weight decay (SNL's mask phase: none).",
                                allowed=NON_NEGATIVE)
    warmup_epochs: int = param(TrainConfig.warmup_epochs, "Epochs of linear learning-rate warm-up.",
                               allowed=COUNT_OR_ZERO)
    label_smoothing: float = param(TrainConfig.label_smoothing, "Label smoothing of the CE loss.",
                                   allowed=SMOOTHING)
    kd_temperature: float = param(TrainConfig.kd_temperature, "Temperature of the KD loss.", allowed=POSITIVE)

    def __post_init__(self) -> None:
        TrainConfig(epochs=max(self.warmup_epochs, 0) + 1, **self.recipe())  # its checks, before any run starts

    def recipe(self) -> dict[str, Any]:
        """The ``TrainConfig`` overrides (for ``Setting.config(epochs, lr, **recipe)``)."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(Recipe)}
