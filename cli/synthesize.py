"""``reshape synthesize``: a HybReNet spec for a ReLU budget, with the reasons for its shape."""
from __future__ import annotations

import click

from reshape.report import views

from ._common import Count, IntList, check_out, cost_table, emit, name_params, user_errors
from .count import DATASETS

#: A refused sweep names its params as these options.
_LABELS = {"budgets": "--sweep", "ranking": "--criticality", "round_to": "--round-to"}


@click.command("synthesize")
@click.option("--backbone", required=True, help="timm plain ResNet giving block and depths (resnet18, resnet34, resnet50, ...).")
@click.option("--dataset", required=True, type=click.Choice(DATASETS),
              help="Input size, classes and stem (cifar*/tinyimagenet: 3x3 stride-1 stem; imagenet: 7x7 + max-pool).")
@click.option("--width", type=click.IntRange(min=1),
              help="Narrow the backbone first, as `reshape train --width` does (stem and stage-1 width W): "
                   "the HybReNet of a narrow teacher, e.g. the demo's resnet18 --width 8.")
@click.option("--relus", type=Count(), help="ReLU budget B, e.g. 180k, 1.2M or 180000.")
@click.option("--macs", type=Count(), help="Optional MAC budget, e.g. 1.5G: the widest shape meeting both.")
@click.option("--round-to", type=click.IntRange(min=1), default=8, show_default=True,
              help="Round the base width down to a multiple of this (made finer when it misses B by > 2%).")
@click.option("--criticality", type=IntList("stage numbers"),
              help="Stages from least to most critical, e.g. 1,4,2,3 (default: the dataset's published ranking). "
                   "It picks the culled stage and, by ReLU equalization, the stage multipliers.")
@click.option("--criticality-file", type=click.Path(exists=True, dir_okay=False),
              help="Take the ranking from this `reshape criticality --out` JSON instead.")
@click.option("--sweep", type=Count(many=True), help="Comma-separated budgets (e.g. 25k,50k,100k,180k,300k): one spec per budget into --out DIR.")
@click.option("--out", type=click.Path(), help="Spec JSON to write (a directory with --sweep).")
@click.option("--force", is_flag=True, help="With --sweep: start --out DIR over if it holds another sweep (deletes it).")
@click.option("--protocol", default="delphi", show_default=True, help="PI protocol of the cost estimate.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of tables.")
@user_errors
def command(backbone: str, dataset: str, width: int | None, relus: int | None, macs: int | None, round_to: int,
            criticality: tuple[int, ...] | None, criticality_file: str | None, sweep: list[int] | None,
            out: str | None, force: bool, protocol: str, as_json: bool) -> None:
    """Synthesize a HybReNet for a ReLU budget (DeepReShape), in O(1): no training, no search.

    The budget picks a stage-multiplier family (HRN-5x5x3x when ReLUs are plentiful,
    HRN-2x5x3x with the least-critical stage culled, and thinned, when they are scarce);
    the criticality ranking orders the stages' ReLU shares (the published 1,4,2,3 keeps
    the published multipliers, another ranking gets its own); the largest base width
    within the budget is rounded, and the count is exact. The rules are data
    (reshape/tables/deepreshape_rules.json); docs/deepreshape.md explains them.

    \b
    Examples:
      reshape synthesize --backbone resnet18 --dataset cifar100 --relus 180k --out hrn.json
      reshape synthesize --backbone resnet50 --dataset imagenet --relus 2M --macs 1.5G --json
      reshape synthesize --backbone resnet18 --dataset cifar100 --sweep 25k,50k,100k,180k,300k --out specs/
      reshape synthesize --backbone resnet18 --dataset cifar100 --relus 180k --criticality-file crit.json
      reshape synthesize --backbone resnet18 --width 8 --dataset fashion-mnist-mini --relus 10k --out my.json
      reshape count hrn.json     # the same counts, from the spec file
    """
    _check(relus, sweep, out, criticality, criticality_file)
    from reshape.synthesis import design, sweep as sweep_to

    shared = dict(costs=cost_table(protocol), ranking=_ranking(criticality, criticality_file), width=width,
                  macs=macs, round_to=round_to, protocol=protocol)  # a wrong --protocol first: exit 2
    if sweep is None:
        one = design(backbone, dataset, relus, out=out, **shared)
        emit(as_json, {**one.to_dict(), "out": out}, views.design_view(one, out))
        return
    name_params(_LABELS)
    done = sweep_to(out, backbone, dataset, sweep, force=force,
                    inputs=[criticality_file] if criticality_file else [], **shared)
    emit(as_json, done.rows, views.sweep_table(done))


def _ranking(stages: tuple[int, ...] | None, path: str | None) -> list[int] | None:
    """The explicit ranking, the one measured in a criticality file, or None for the default."""
    from reshape.methods.criticality import load

    return list(load(path).ranking) if path else stages and list(stages)


def _check(relus: int | None, sweep: list[int] | None, out: str | None, criticality: tuple[int, ...] | None,
           criticality_file: str | None) -> None:
    """Usage errors (exit 2) of options that go together, before any work."""
    if (relus is None) == (sweep is None):
        raise click.UsageError("give exactly one of --relus B or --sweep B1,B2,...")
    if sweep is not None and out is None:
        raise click.UsageError("--sweep writes one spec per budget: give --out DIR")
    if criticality and criticality_file:
        raise click.UsageError("give --criticality or --criticality-file, not both")
    if out is not None:
        check_out(out, directory=sweep is not None)
