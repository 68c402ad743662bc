"""Width scaling (baseline): the teacher's architecture, uniformly narrowed into the budget.

The widest network of the teacher's shape whose ReLUs fit the budget (stage-1 width w of
W, every stage scaled by w / W; ``reshape.deepreduce.widest``), trained from scratch with
KD from the teacher for the teacher's epochs plus the setting's (``Job.scratch_config``). Below the width-1 network the
budget is unreachable, and ``run`` says so.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..deepreduce import widest
from ..values import POSITIVE
from ._registry import Job, check_params, param, register_method


@dataclass(frozen=True)
class WidthParams:
    lr: float = param(0.1, "Learning rate of the training from scratch (with KD).", allowed=POSITIVE)

    def __post_init__(self) -> None:
        check_params(self, "width")


@register_method("width", WidthParams, family="baseline",
                 summary="the teacher uniformly width-scaled into the budget, trained with KD")
def run(job: Job, p: WidthParams) -> dict[str, Any]:
    spec, alpha = widest(job.teacher.spec, job.budget)
    spec = spec.replace(name=f"{job.teacher.spec.name or 'net'}_a{alpha:g}")
    job.train(spec, job.scratch_config(p.lr))
    return {"alpha": alpha, "widths": list(spec.widths)}
