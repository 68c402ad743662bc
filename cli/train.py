"""``reshape train``: train a ResNet-family model or spec on a named dataset."""
from __future__ import annotations

import sys

import click

from reshape.report import run_views

from ._common import POSITIVE, RUN_DIR, Dataset, OutPath, emit, name_params, option_labels, user_errors
from ._training import train_config, training_options


@click.command("train")
@click.argument("model_or_spec")
@click.option("--data", "data", required=True, type=Dataset(), help="Dataset name (fashion-mnist-mini, cifar100, ...).")
@click.option("--root", type=click.Path(file_okay=False), help="Folder holding the dataset files.")
@click.option("--download", is_flag=True, help="Fetch the dataset first (CIFAR only).")
@click.option("--out", required=True, type=OutPath(directory=True), help="Run directory to write.")
@click.option("--width", type=POSITIVE, help="Narrow the model: stem and stage-1 width M, later stages "
                                        "scaled by the same factor (resnet18 --width 16: 16/32/64/128).")
@click.option("--teacher", type=RUN_DIR, help="Run directory of a trained teacher "
                                                                  "to distill from (same dataset).")
@click.option("--force", is_flag=True, help="Delete the run in --out first and train it again.")
@click.option("--retarget", is_flag=True, help="Train a spec file on a dataset of another input size, channel "
                                               "count or class count (refused otherwise: its ReLU count changes); "
                                               "prints the new count.")
@click.option("--json", "as_json", is_flag=True, help="Print the last epoch's metrics as JSON.")
@training_options(epochs=10, batch_size=64)
@user_errors
def command(model_or_spec: str, data: str, root: str | None, download: bool, out: str,
            width: int | None, teacher: str | None, force: bool, retarget: bool, as_json: bool,
            **opts: object) -> None:
    """Train MODEL_OR_SPEC on --data and write the run to --out.

    MODEL_OR_SPEC is a timm ResNet name (its stem follows the dataset's convention) or
    a spec JSON file. The run directory gets run.json (the manifest), spec.json,
    train_config.json, model.safetensors, checkpoint.pt and metrics.jsonl after every
    epoch. The model is seeded (--seed) before it is built, so its initial weights
    depend on the seed alone; Ctrl-C keeps the last finished epoch for a rerun to resume.
    Under `torchrun --nproc_per_node N reshape train ...` it trains on N GPUs (DDP). The
    default recipe is the one tuned on fashion-mnist-mini (docs/training.md).

    \b
    Examples:
      reshape train resnet18 --data fashion-mnist-mini --width 16 --out runs/fm16
      reshape train resnet18 --data cifar100 --root ~/data --epochs 200 --out runs/r18
      reshape train spec.json --data cifar100 --teacher runs/r18 --out runs/student
      reshape eval runs/fm16
    """
    from reshape.train import TrainingInterrupted, is_main, shutdown, train_model

    name_params(option_labels("train", teacher="--teacher (weights digest)"))
    try:
        result = train_model(model_or_spec, data, out, train_config(opts, dataset=data), root=root,
                             limit=opts["limit"], val=opts["val"], download=download, width=width, teacher=teacher,
                             retarget=retarget, force=force, log=lambda line: click.echo(line, err=True))
        if is_main():
            emit(as_json, result.metrics, run_views.trained_line(out, result))
            if result.cached:
                click.echo(run_views.read_back_line(out, again="--force trains it again"), err=True)
    except TrainingInterrupted as exc:
        if is_main():
            click.echo(str(exc), err=True)
        sys.exit(130)
    finally:
        shutdown()

