"""``reshape sensitivity``: per-layer ReLU sensitivity and the allocation for a budget."""
from __future__ import annotations

import click

from reshape.report import run_views
from reshape.spec import GRANULARITIES

from ._common import RUN_DIR, Count, Dataset, emit, user_errors
from ._params import ESTIMATORS, IntList, teacher_run


@click.command("sensitivity")
@click.argument("run_dir", type=RUN_DIR)
@click.option("--data", required=True, type=Dataset(), help="Dataset the run was trained on.")
@click.option("--root", type=click.Path(file_okay=False), help="Folder holding the dataset files.")
@click.option("--estimator", type=click.Choice(ESTIMATORS), default="criticality", show_default=True)
@click.option("--ranking", type=IntList(), help="Stages least to most critical for the criticality estimator, "
              "e.g. 4,1,2,3; default: the dataset's.")
@click.option("--budget", type=Count(), help="Also show the per-layer ReLU counts for this budget.")
@click.option("--granularity", type=click.Choice(GRANULARITIES), default="neuron", show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print the table as JSON.")
@user_errors
def command(run_dir: str, data: str, root: str | None, estimator: str, ranking: tuple[int, ...] | None,
            budget: int | None, granularity: str, as_json: bool) -> None:
    """Print each ReLU layer's sensitivity (and its ReLU count for --budget) without training.

    \b
    Example:
      reshape sensitivity runs/teacher --data fashion-mnist-mini --budget 20k
    """
    from reshape.methods.senet import sensitivity_report

    report = sensitivity_report(teacher_run(run_dir, data, root), data, root, estimator, granularity, budget, ranking)
    title = f"{run_dir}: ReLU sensitivity ({estimator})"
    emit(as_json, report, run_views.sensitivity_table(title, report["layers"], budget is not None), pipe_width=None)
    if budget and not as_json:
        click.echo(run_views.per_stage_line(report["per_stage"]))
