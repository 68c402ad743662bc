"""``reshape pareto``: our results against ReLU count, with fronts and published anchors."""
from __future__ import annotations

import click

from reshape.report import run_views, views

from ._common import OutPath, emit, user_errors


@click.command("pareto")
@click.argument("sources", nargs=-1, required=True)
@click.option("--dataset", required=True,
              help="Dataset of the results (cifar100, cifar10, tinyimagenet, ...): titles the plot, "
                   "picks the anchors and skips CSV rows of other datasets.")
@click.option("--anchors", "with_anchors", is_flag=True,
              help="Add the published results (reshape/tables/anchors.csv) for --dataset.")
@click.option("--methods", help="Comma-separated published methods to show, e.g. snl,senet (implies --anchors).")
@click.option("--out", type=OutPath(directory=False),
              help="Write the plot here; the suffix picks the format (.png, .svg, .pdf).")
@click.option("--x", "x_axis", type=click.Choice(["relus", "measured-bytes", "measured-seconds"]),
              default="relus", show_default=True,
              help="x axis: ReLU count, or the cost `reshape measure` recorded in each run directory "
                   "(online bytes or seconds; run directories and frontier folders only, no published anchors).")
@click.option("--protocol", type=click.Choice(["cheetah", "semi2k"]), default="cheetah", show_default=True,
              help="Which measurement a measured x axis reads (pi_<protocol>_fm64.json).")
@click.option("--json", "as_json", is_flag=True, help="Print the points with their front flags as JSON.")
@user_errors
def command(sources: tuple[str, ...], dataset: str, with_anchors: bool, methods: str | None,
            out: str | None, x_axis: str, protocol: str, as_json: bool) -> None:
    """Plot top-1 accuracy against ReLU count for SOURCES, with each method's Pareto front.

    A SOURCE is a run directory (labelled by the method its run.json names, accuracy
    from run.json, ReLUs counted from the model), a results CSV (method, relus, top1
    in percent[, source, dataset]; a frontier's results.csv is one), a `reshape frontier`
    folder (its teacher and every point that reached its budget; on a measured axis, those
    that were measured) or an Optuna study STORAGE::STUDY. Fronts are per method: no other
    point of the method has fewer or equal ReLUs and at least the accuracy.

    \b
    Examples:
      reshape pareto runs/senet-50k runs/snl-50k --dataset cifar100 --anchors --out front.png
      reshape pareto sqlite:///search.db::hrn --dataset cifar100 --methods snl,senet --out front.svg
      reshape pareto results.csv --dataset cifar10 --json
      reshape pareto demo-out/frontier --dataset fashion-mnist-mini --x measured-bytes --protocol semi2k
    """
    from reshape.report.fronts import UNITS, fronts
    from reshape.report.plot import FORMATS

    if out and not out.lower().endswith(FORMATS):
        raise click.BadParameter(f"use a {', '.join(FORMATS)} file, got {out}", param_hint="--out")
    if x_axis in UNITS and (with_anchors or methods):
        raise click.UsageError("published results have no measured cost: drop --anchors/--methods or use --x relus")
    with views.progress_bar("reading sources", len(sources)) as advance:
        points = fronts(sources, dataset, anchors=with_anchors, out=out, x=x_axis, protocol=protocol,
                        methods=[m.strip() for m in methods.split(",") if m.strip()] if methods else None,
                        on_source=lambda _: advance())
    emit(as_json, [p.to_dict() for p in points], run_views.points_view(points, dataset, out, UNITS.get(x_axis)))
