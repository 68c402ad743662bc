"""``reshape senet``: SENet for a ReLU budget from a trained all-ReLU teacher."""
from __future__ import annotations

import click

from ._budget import budget_options
from ._common import user_errors
from ._training import pop_training, train_config, training_options


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
def command(run_dir: str, budget: int, data: str, root: str | None, out: str, estimator: str,
            allocation: str, granularity: str, at_weight: float, as_json: bool, **opts) -> None:
    """Fit the teacher in RUN_DIR to a ReLU --budget with SENet and write the result to --out.

    \b
    Stages (each resumable: rerun the same command after an interruption):
    1. per-layer ReLU sensitivity -> per-layer counts summing to the budget (senet.json);
    2. ReLU locations: masks move each epoch to where student and teacher activations
       differ most (OUT/locate/);
    3. final training with KD and attention transfer (OUT is the final run directory).

    --epochs sets the epochs of stages 2 and 3 each.

    \b
    Example:
      reshape train resnet18 --data fashion-mnist-mini --width 16 --out runs/teacher
      reshape senet runs/teacher --budget 20k --data fashion-mnist-mini --epochs 3 --out runs/senet20k
    """
    from reshape.budget import senet
    from reshape.data import probe_batches

    from ._budget import final_report, teacher_and_data

    shared = pop_training(opts)
    cfg = train_config(shared, dataset=data)
    t = teacher_and_data(run_dir, data, root, limit=shared["limit"], seed=shared["seed"])
    batches = probe_batches(t.train_set) if estimator == "linearize" and allocation == "sensitivity" else None
    metrics = senet.run(t.spec, t.model, budget, out, t.train_set, t.test_set, cfg, cfg,
                        estimator=estimator, granularity=granularity, allocation=allocation,
                        at_weight=at_weight, batches=batches)
    final_report(out, metrics, as_json, {"method": "senet", "allocation": allocation,
                                         "sensitivity": estimator, "budget": budget})
