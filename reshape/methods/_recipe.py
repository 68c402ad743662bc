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

from ..train import TrainConfig


@dataclass(frozen=True)
class Recipe:
    """Mixed into a params dataclass (as its base) for methods whose CLI exposes the recipe."""

    optimizer: str = "sgd"
    schedule: str = "cosine"
    weight_decay: float = 5e-4
    warmup_epochs: int = 0
    label_smoothing: float = 0.0
    kd_temperature: float = 4.0

    def __post_init__(self) -> None:
        TrainConfig(epochs=max(self.warmup_epochs, 0) + 1, **self.recipe())  # its checks, before any run starts

    def recipe(self) -> dict[str, Any]:
        """The ``TrainConfig`` overrides (for ``Setting.config(epochs, lr, **recipe)``)."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(Recipe)}
