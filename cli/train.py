"""``reshape train``: train a ResNet-family model or spec on a named dataset."""
from __future__ import annotations

import sys

import click

from ._common import echo_json, user_errors
from ._training import train_config, training_options


@click.command("train")
@click.argument("model_or_spec")
@click.option("--data", "data", required=True, help="Dataset name (fashion-mnist-mini, cifar100, ...).")
@click.option("--root", type=click.Path(file_okay=False), help="Folder holding the dataset files.")
@click.option("--download", is_flag=True, help="Fetch the dataset first (CIFAR only).")
@click.option("--out", required=True, type=click.Path(file_okay=False), help="Run directory to write.")
@click.option("--width", type=int, help="Narrow the model: stem and stage-1 width M, later stages "
                                        "scaled by the same factor (resnet18 --width 16: 16/32/64/128).")
@click.option("--teacher", type=click.Path(file_okay=False), help="Run directory of a trained teacher "
                                                                  "to distill from (same dataset).")
@click.option("--resume", is_flag=True, help="Continue the run in --out from its last epoch.")
@click.option("--json", "as_json", is_flag=True, help="Print the last epoch's metrics as JSON.")
@training_options(epochs=10, batch_size=64)
@user_errors
def command(model_or_spec: str, data: str, root: str | None, download: bool, out: str,
            width: int | None, teacher: str | None, resume: bool, as_json: bool, **opts: object) -> None:
    """Train MODEL_OR_SPEC on --data and write the run to --out.

    MODEL_OR_SPEC is a timm ResNet name (its stem follows the dataset's convention) or
    a spec JSON file. The run directory gets spec.json, train_config.json,
    model.safetensors, checkpoint.pt and metrics.jsonl after every epoch. Ctrl-C
    keeps the last finished epoch: rerun the same command with --resume. Under
    `torchrun --nproc_per_node N reshape train ...` it trains on N GPUs (DDP).
    The default recipe is the one tuned on fashion-mnist-mini (docs/training.md).

    \b
    Examples:
      reshape train resnet18 --data fashion-mnist-mini --width 16 --out runs/fm16
      reshape train resnet18 --data cifar100 --root ~/data --epochs 200 --out runs/r18
      reshape train spec.json --data cifar100 --teacher runs/r18 --out runs/student
      reshape eval runs/fm16
    """
    from reshape.data import splits
    from reshape.models import build, spec_for
    from reshape.train import TrainingInterrupted, is_main, seed_all, shutdown, train

    cfg = train_config(opts, dataset=data)
    spec = spec_for(model_or_spec, data, width)
    train_set, test_set = splits(data, root, opts["limit"], cfg.seed, download)
    seed_all(cfg.seed)
    model = build(spec)
    try:
        metrics = train(model, spec, cfg, train_set, test_set, out, teacher=teacher, resume=resume)
        if not is_main():
            return
        if as_json:
            echo_json(metrics)
        else:
            click.echo(f"{out}: test top-1 {100 * metrics['test_top1']:.2f}%  "
                       f"top-5 {100 * metrics['test_top5']:.2f}%  after {metrics['epoch']} epochs")
    except TrainingInterrupted as exc:
        if is_main():
            click.echo(str(exc), err=True)
        sys.exit(130)
    finally:
        shutdown()
