"""``reshape senet``: SENet for a ReLU budget from a trained all-ReLU teacher."""
from __future__ import annotations

from typing import Any

import click

from reshape.report import run_views

from ._common import user_errors
from ._params import MethodCommand, fit_method, method_arguments, report, teacher_run


@click.command("senet", cls=MethodCommand, method="senet")
@method_arguments()
@user_errors
def command(run_dir: str, budget: int, data: str, root: str | None, out: str, force: bool, as_json: bool,
            **opts: Any) -> None:
    """Fit the teacher in RUN_DIR to a ReLU --budget with SENet and write the result to --out.

    \b
    Stages:
    1. per-layer ReLU sensitivity -> per-layer counts summing to the budget (senet.json);
    2. ReLU locations: masks move each epoch to where student and teacher activations
       differ most (OUT/locate/);
    3. final training with KD and attention transfer (OUT is the final run directory).

    --epochs is stages 2 and 3 together (half each), as in `reshape frontier`; --kd-alpha
    is stage 2's KD weight. The plan's ReLUs per stage are printed (and in --json under
    built.per_stage). --allocation uniform runs the `senet_uniform` baseline.

    \b
    Example:
      reshape train resnet18 --data fashion-mnist-mini --width 16 --out runs/teacher
      reshape senet runs/teacher --budget 20k --data fashion-mnist-mini --epochs 6 --out runs/senet20k
    """
    name = "senet_uniform" if opts["allocation"] == "uniform" else "senet"
    result = fit_method(name, teacher_run(run_dir, data, root), budget, data, root, out, force, opts)
    report(result, as_json)
    if not as_json:
        click.echo(run_views.per_stage_line(result.built["per_stage"]))
