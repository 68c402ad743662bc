"""``reshape criticality``: per-stage ReLU criticality of a backbone from short proxy trainings."""
from __future__ import annotations

import sys

import click

from reshape.report import run_views

from ._common import POSITIVE, Dataset, OutPath, emit, user_errors
from ._training import train_config, training_options


@click.command("criticality")
@click.argument("backbone")
@click.option("--data", required=True, type=Dataset(), help="Dataset name (fashion-mnist-mini, cifar100, ...).")
@click.option("--root", type=click.Path(file_okay=False), help="Folder holding the dataset files.")
@click.option("--width", type=POSITIVE, help="Narrow the backbone as `reshape train --width` does "
                                        "(resnet18 --width 16: 16/32/64/128).")
@click.option("--cache", type=OutPath(directory=True),
              help="Cache folder [default: $RESHAPE_CACHE/criticality, else ~/.cache/reshape/criticality].")
@click.option("--out", type=OutPath(directory=False), help="Also write the result JSON here "
                                                             "(reshape synthesize --criticality-file takes it).")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@training_options(epochs=3)
@user_errors
def command(backbone: str, data: str, root: str | None, width: int | None, cache: str | None,
            out: str | None, as_json: bool, **opts: object) -> None:
    """Measure how critical each stage's ReLUs are for BACKBONE on --data (DeepReDuce).

    Trains, with one short recipe, the all-ReLU network, the all-linear network and one
    network per stage k with ReLUs only in stage k (the stem ReLU counts with stage 1),
    then reports criticality_k = (acc_k - acc_lin) / (acc_full - acc_lin) and the
    ranking from least to most critical stage. Results are cached per backbone, width,
    dataset and recipe: a repeated call trains nothing, and an interrupted one resumes
    (rerun the same command).

    \b
    Examples:
      reshape criticality resnet18 --data fashion-mnist-mini --width 16 --out crit.json
      reshape criticality resnet18 --data cifar100 --root ~/data --epochs 10 --json
      reshape synthesize --backbone resnet18 --dataset cifar100 --relus 180k --criticality-file crit.json
    """
    from reshape.methods import criticality
    from reshape.train import TrainingInterrupted

    cfg = train_config(opts, dataset=data)
    try:
        result = criticality.measure(backbone, data, cfg.epochs, width=width, root=root, cache=cache,
                                     limit=opts["limit"], recipe=cfg, out=out)
    except TrainingInterrupted as exc:
        click.echo(f"interrupted; finished proxy runs are kept in {exc.run_dir.parent}: "
                   "rerun the same command to resume", err=True)
        sys.exit(130)
    emit(as_json, result.to_dict(), run_views.criticality_view(
        result, out, width_option="--width", epochs_option="--epochs",
        ranking_use="reshape synthesize ... --criticality"), pipe_width=None)
