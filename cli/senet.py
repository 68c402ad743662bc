"""``reshape senet``: SENet for a ReLU budget from a trained all-ReLU teacher."""
from __future__ import annotations

import click

from ._budget import ESTIMATORS, budget_options, fit_method, per_stage_line, report
from ._common import NON_NEGATIVE_FLOAT, UNIT, user_errors
from reshape.setting import EPOCHS

from ._training import pop_training, training_options


@click.command("senet")
@budget_options
@click.option("--sensitivity", "estimator", type=click.Choice(ESTIMATORS), default="criticality",
              show_default=True, help="Per-layer ReLU sensitivity estimator (docs/senet.md).")
@click.option("--ranking", help="Stages least to most critical for --sensitivity criticality, e.g. 4,1,2,3 "
              "(from `reshape criticality`); default: the dataset's.")
@click.option("--allocation", type=click.Choice(["sensitivity", "uniform"]), default="sensitivity",
              show_default=True, help="uniform = the same keep fraction in every layer (baseline).")
@click.option("--at-weight", type=NON_NEGATIVE_FLOAT, default=1000.0, show_default=True,
              help="Weight of the attention-transfer loss in the final stage (published 1000).")
@click.option("--ce-weight", type=NON_NEGATIVE_FLOAT, default=0.1, show_default=True,
              help="Weight of the CE loss in the final stage (released 0.1).")
@click.option("--kd-weight", type=UNIT, default=0.5, show_default=True,
              help="Weight of the KD loss in the final stage (released 0.5; --kd-alpha is the locate stage's).")
@training_options(epochs=EPOCHS, lr=0.05)
@user_errors
def command(run_dir: str, budget: int, data: str, root: str | None, out: str, force: bool, estimator: str,
            ranking: str | None, allocation: str, granularity: str, at_weight: float, ce_weight: float,
            kd_weight: float, as_json: bool, **opts) -> None:
    """Fit the teacher in RUN_DIR to a ReLU --budget with SENet and write the result to --out.

    \b
    Stages (each resumable: rerun the same command after an interruption):
    1. per-layer ReLU sensitivity -> per-layer counts summing to the budget (senet.json);
    2. ReLU locations: masks move each epoch to where student and teacher activations
       differ most (OUT/locate/);
    3. final training with KD and attention transfer (OUT is the final run directory).

    --epochs is stages 2 and 3 together (half each), as in `reshape frontier`. The plan's ReLUs per stage are printed
    (and in --json under built.per_stage). A finished run is read back; a run
    in --out with other settings is refused (--force starts it over). --allocation
    uniform runs the `senet_uniform` baseline.

    \b
    Example:
      reshape train resnet18 --data fashion-mnist-mini --width 16 --out runs/teacher
      reshape senet runs/teacher --budget 20k --data fashion-mnist-mini --epochs 6 --out runs/senet20k
    """
    name = "senet_uniform" if allocation == "uniform" else "senet"
    chosen = {"ranking": ranking} if ranking else {}
    result = fit_method(name, run_dir, budget, data, root, out, force, pop_training(opts), estimator=estimator,
                        allocation=allocation, granularity=granularity, at_weight=at_weight,
                        ce_weight=ce_weight, kd_weight=kd_weight, **chosen)
    report(result, as_json)
    if not as_json:
        click.echo(per_stage_line(result.built["per_stage"]))

