"""``reshape eval``: accuracy and ReLU count of a trained run directory."""
from __future__ import annotations

import click

from reshape.report import run_views

from ._common import POSITIVE, RUN_DIR, Dataset, emit, user_errors


@click.command("eval")
@click.argument("run_dir", type=RUN_DIR)
@click.option("--data", type=Dataset(), help="Dataset name; defaults to the one the run was trained on.")
@click.option("--root", type=click.Path(file_okay=False), help="Folder holding the dataset files.")
@click.option("--batch-size", type=POSITIVE, default=256, show_default=True)
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda or cuda:N.")
@click.option("--json", "as_json", is_flag=True, help="Print {method, top1, top5, loss, relus} as JSON.")
@user_errors
def command(run_dir: str, data: str | None, root: str | None, batch_size: int, device: str,
            as_json: bool) -> None:
    """Score the trained model in RUN_DIR on the test split of --data.

    Prints the method that made the run (from its run.json), top-1/top-5 accuracy and
    the model's exact ReLU count per image (stem ReLU included). With --json, top1 and
    top5 are fractions, method is null for a run without run.json (an older version) and
    label is how plots name the run.

    \b
    Examples:
      reshape eval runs/fm16
      reshape eval runs/r18 --data cifar100 --root ~/data --json
    """
    from reshape.train import evaluate_run

    result = evaluate_run(run_dir, data, root, batch_size, device)
    emit(as_json, result, run_views.eval_line(result))
