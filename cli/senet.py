"""``reshape senet``: SENet for a ReLU budget from a trained all-ReLU teacher."""
from __future__ import annotations

import click

from ._budget import budget_options, fit_method, report
from ._common import user_errors
from ._training import pop_training, training_options


@click.command("senet")
@budget_options
@click.option("--sensitivity", "estimator", type=click.Choice(["pruning", "linearize"]), default="pruning",
              show_default=True, help="Per-layer ReLU sensitivity estimator.")
@click.option("--allocation", type=click.Choice(["sensitivity", "uniform"]), default="sensitivity",
              show_default=True, help="uniform = the same keep fraction in every layer (baseline).")
@click.option("--at-weight", type=float, default=1000.0, show_default=True,
              help="Weight of the attention-transfer loss in the final stage.")
@training_options(epochs=10, lr=0.05, kd_alpha=0.5, batch_size=128)
@user_errors
def command(run_dir: str, budget: int, data: str, root: str | None, out: str, force: bool, estimator: str,
            allocation: str, granularity: str, at_weight: float, as_json: bool, **opts) -> None:
    """Fit the teacher in RUN_DIR to a ReLU --budget with SENet and write the result to --out.

    \b
    Stages (each resumable: rerun the same command after an interruption):
    1. per-layer ReLU sensitivity -> per-layer counts summing to the budget (senet.json);
    2. ReLU locations: masks move each epoch to where student and teacher activations
       differ most (OUT/locate/);
    3. final training with KD and attention transfer (OUT is the final run directory).

    --epochs sets the epochs of stages 2 and 3 each. A finished run is read back; a run
    in --out with other settings is refused (--force starts it over). --allocation
    uniform runs the `senet_uniform` baseline.

    \b
    Example:
      reshape train resnet18 --data fashion-mnist-mini --width 16 --out runs/teacher
      reshape senet runs/teacher --budget 20k --data fashion-mnist-mini --epochs 3 --out runs/senet20k
    """
    name = "senet_uniform" if allocation == "uniform" else "senet"
    result = fit_method(name, run_dir, budget, data, root, out, force, pop_training(opts), estimator=estimator,
                        allocation=allocation, granularity=granularity, at_weight=at_weight)
    report(result, as_json)
