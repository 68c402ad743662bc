"""DeepReDuce (baseline): culling, thinning, stem stride and width scaling for any budget.

The teacher's architecture goes down the ladder in ``tables/deepreduce_ladder.json``
(``reshape.deepreduce.fit_budget``): whole stages lose their ReLUs in ``ranking`` order
(least critical first), post-add ReLUs go, the stem downsamples, and widths shrink until
the network fits. The result trains from scratch with KD from the teacher, for the
teacher's epochs plus the setting's (``Job.scratch_config``: equal compute with a reducer
that starts from the teacher's weights).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..deepreduce import fit_budget
from ..values import POSITIVE
from ._registry import Job, check_params, param, register_method


@dataclass(frozen=True)
class DeepReDuceParams:
    ranking: tuple[int, ...] = param((1, 4, 2, 3), "Stages least to most critical, the culling order "
                                     "(DeepReDuce's ResNet18 ranking; `reshape criticality` measures one).")
    lr: float = param(0.1, "Learning rate of the training from scratch (with KD).", allowed=POSITIVE)

    def __post_init__(self) -> None:
        check_params(self, "deepreduce")


@register_method("deepreduce", DeepReDuceParams, family="baseline",
                 summary="DeepReDuce culling/thinning/stem-stride/width ladder, trained with KD")
def run(job: Job, p: DeepReDuceParams) -> dict[str, Any]:
    spec, edits = fit_budget(job.teacher.spec, job.budget, p.ranking)
    spec = spec.replace(name=f"{job.teacher.spec.name or 'net'}_deepreduce")
    job.train(spec, job.scratch_config(p.lr))
    return {"edits": edits, "widths": list(spec.widths)}
