"""``reshape sensitivity``: per-layer ReLU sensitivity and the allocation for a budget."""
from __future__ import annotations

import click

from reshape.report import run_views
from reshape.report.views import stdout_console
from reshape.spec import GRANULARITIES

from ._budget import ESTIMATORS, teacher_run
from ._common import RUN_DIR, Count, Dataset, echo_json, user_errors
from ._params import IntList


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
    from reshape.budget.masks import sites
    from reshape.data import load, probe_batches
    from reshape.methods import senet

    t = teacher_run(run_dir, data, root)
    batches = probe_batches(load(data, "train", root)) if estimator == "linearize" else None
    total = sum(s.size for s in sites(t.spec, t.model))
    order = senet.resolve_ranking(data, t.spec, ranking) if estimator == "criticality" else None
    p = senet.plan(t.spec, t.model, total if budget is None else budget, estimator, granularity, batches=batches,
                   ranking=order)
    rows = [{"layer": n, "size": p.sizes[n], "sensitivity": p.weights[n],
             **({"relus": p.counts[n]} if budget else {})} for n in p.sizes]
    if as_json:
        echo_json({"estimator": estimator, "ranking": order and list(order), "budget": budget, "layers": rows,
                   **({"per_stage": p.per_stage()} if budget else {})})
        return
    title = f"{run_dir}: ReLU sensitivity ({estimator})"
    stdout_console(pipe_width=None).print(run_views.sensitivity_table(title, rows, budget is not None))
    if budget:
        click.echo(run_views.per_stage_line(p.per_stage()))
