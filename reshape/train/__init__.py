"""Training engine: one loop with distillation, checkpoints and resume for every method.

    from reshape.train import TrainConfig, run_epochs, evaluate
    metrics = run_epochs(model, spec, TrainConfig(epochs=30), train_set, test_set, "runs/r18",
                         teacher="runs/teacher")

See docs/training.md for the run directory, resume, hooks and multi-GPU use.
"""
from __future__ import annotations

from ._checkpoint import (CHECKPOINT_FILE, METRICS_FILE, has_checkpoint, load_checkpoint,
                          read_metrics, seed_all)
from ._config import CONFIG_FILE, OPTIMIZERS, RUNTIME_FIELDS, SCHEDULES, TrainConfig, load_config, save_config
from ._dist import is_main, resolve_device, shutdown
from ._distill import FeatureTaps, kd_loss, load_teacher
from ._fit import FitResult, Teacher, fit, training_key
from ._loop import (Callback, EpochEnd, ExtraLoss, Step, TrainingInterrupted, evaluate,
                    make_optimizer, make_scheduler, run_epochs)
from ._model import evaluate_run, train_model

__all__ = [
    "fit", "FitResult", "train_model", "evaluate_run", "Teacher", "training_key", "has_checkpoint",
    "TrainConfig", "run_epochs", "evaluate", "kd_loss", "FeatureTaps", "load_teacher", "Step",
    "EpochEnd", "ExtraLoss", "Callback", "TrainingInterrupted", "make_optimizer", "make_scheduler",
    "seed_all", "is_main", "resolve_device", "load_checkpoint", "read_metrics", "load_config", "save_config", "shutdown",
    "CHECKPOINT_FILE", "METRICS_FILE", "CONFIG_FILE", "RUNTIME_FIELDS", "OPTIMIZERS", "SCHEDULES",
]
