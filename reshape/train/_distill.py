"""Knowledge distillation: the logit loss, feature taps for feature-level losses, teachers.

Every ReLU-reduction method here trains its student against an all-ReLU teacher.
The logit part is Hinton's KL at a temperature; feature-level losses (SENet's
attention transfer, activation matching) read intermediate outputs, which
``FeatureTaps`` collects with forward hooks on named modules of either network.
"""
from __future__ import annotations

import os
from typing import Iterable

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ReshapeError
from ..data import check_fits
from ..runs import TrainedRun, load_trained
from ..spec import ArchSpec


def kd_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """``T^2 * KL(softmax(t / T) || softmax(s / T))``, averaged over the batch.

    The ``T^2`` keeps the gradient scale independent of ``T`` (Hinton et al., 2015).
    """
    log_p_student = F.log_softmax(student_logits.float() / temperature, dim=1)
    log_p_teacher = F.log_softmax(teacher_logits.float() / temperature, dim=1)
    kl = F.kl_div(log_p_student, log_p_teacher, reduction="batchmean", log_target=True)
    return kl * temperature**2


class FeatureTaps:
    """The latest outputs of named submodules, kept by forward hooks.

    Make one for the student and one for the teacher, then read both inside an
    ``extra_loss``: the trainer has run both forwards before it calls the hook.

        s, t = FeatureTaps(student, names), FeatureTaps(teacher, names)
        extra = lambda step: sum(at_loss(s[n], t[n]) for n in names)
    """

    def __init__(self, model: nn.Module, names: Iterable[str]) -> None:
        self.features: dict[str, torch.Tensor] = {}
        self._handles = []
        for name in names:
            try:
                module = model.get_submodule(name)
            except AttributeError:
                raise ReshapeError(f"no module '{name}' to tap in {type(model).__name__}") from None
            self._handles.append(module.register_forward_hook(self._keep(name)))

    def _keep(self, name: str):
        def hook(_module: nn.Module, _args: object, output: torch.Tensor) -> None:
            self.features[name] = output
        return hook

    def __getitem__(self, name: str) -> torch.Tensor:
        return self.features[name]

    def remove(self) -> None:
        """Detach the hooks (the model then runs untapped)."""
        for handle in self._handles:
            handle.remove()
        self._handles.clear()
        self.features.clear()


def load_teacher(run: str | os.PathLike[str] | TrainedRun, student: ArchSpec, dataset: str = "") -> nn.Module:
    """The trained model of ``run`` (a run directory, or one already loaded with
    ``load_trained``), checked to fit ``student`` and its ``dataset`` (eval mode, frozen)."""
    if not isinstance(run, TrainedRun):
        run = load_trained(run, what=f"teacher {run}", check=False)
    where = f"teacher {run.path}"
    if dataset and run.trained_on and run.trained_on != dataset:
        raise ReshapeError(f"{where} was trained on {run.trained_on} but the student "
                           f"trains on {dataset}; train a teacher on {dataset}")
    check_fits(run.spec, student, where, "the student", "use a teacher trained on the same dataset")
    return run.model.eval().requires_grad_(False)
