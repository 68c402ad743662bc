"""``reshape criticality``: per-stage ReLU criticality of a backbone from short proxy trainings."""
from __future__ import annotations

import sys
from typing import TYPE_CHECKING

import click

from ._common import POSITIVE, Dataset, OutPath, echo_json, user_errors
from ._training import pop_training, train_config, training_options

if TYPE_CHECKING:
    from reshape.methods.criticality import Criticality


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
    from reshape.io import write_json
    from reshape.methods import criticality
    from reshape.runs import file_target
    from reshape.train import TrainingInterrupted

    if out:
        file_target(out)  # before hours of training, not after

    shared = pop_training(opts)
    cfg = train_config(shared, dataset=data)
    try:
        result = criticality.measure(backbone, data, cfg.epochs, width=width, root=root, cache=cache,
                                     limit=shared["limit"], recipe=cfg)
    except TrainingInterrupted as exc:
        click.echo(f"interrupted; finished proxy runs are kept in {exc.run_dir.parent}: "
                   "rerun the same command to resume", err=True)
        sys.exit(130)
    if out:
        write_json(out, result.to_dict())
    if as_json:
        echo_json(result.to_dict())
    else:
        _print(result, out)


def _print(result: Criticality, out: str | None) -> None:
    from rich.console import Console
    from rich.table import Table

    def pct(acc: float) -> str:
        return f"{100 * acc:.2f}%"

    width = f" --width {result.width}" if result.width else ""
    epochs = result.recipe["epochs"]
    table = Table(title=f"{result.backbone}{width} on {result.dataset}: stage criticality "
                        f"({epochs} epoch{'s' if epochs != 1 else ''} each)", title_justify="left")
    for col in ("network", "ReLUs", "test top-1", "criticality"):
        table.add_column(col, justify="left" if col == "network" else "right")
    table.add_row("all ReLUs", f"{result.full_relus:,}", pct(result.acc_full), "1")
    for k, (acc, score, relus) in enumerate(zip(result.stage_acc, result.scores, result.stage_relus), start=1):
        table.add_row(f"stage {k} only" + (" (+ stem)" if k == 1 else ""), f"{relus:,}", pct(acc),
                      "n/a" if score is None else f"{score:.3f}")
    table.add_row("all linear", "0", pct(result.acc_lin), "0")
    console = Console()
    console.print(table)
    if result.acc_full <= result.acc_lin:
        console.print("note: the all-ReLU network did not beat the linear one; train longer (--epochs) "
                      "for a meaningful criticality", style="yellow")
    ranking = ",".join(map(str, result.ranking))
    console.print(f"ranking, least -> most critical: {ranking}  "
                  f"(reshape synthesize ... --criticality {ranking})", highlight=False)
    console.print(f"cached in {result.folder}" + (f"; wrote {out}" if out else ""), highlight=False)
