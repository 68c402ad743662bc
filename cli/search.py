"""``reshape search``: Optuna multi-objective search over a declarative space, resumable and shared."""
from __future__ import annotations

from typing import TYPE_CHECKING

import click

from ._common import AmountList, Dataset, OutPath, echo_json, human, stdout_console, user_errors
from ._training import pop_training, train_config, training_options

if TYPE_CHECKING:
    from rich.table import Table


@click.command("search")
@click.option("--space", required=True, help="A bundled space (hybrenet, resnet) or a space JSON file.")
@click.option("--data", required=True, type=Dataset(), help="Dataset name (fashion-mnist-mini, cifar100, ...).")
@click.option("--root", type=click.Path(file_okay=False), help="Folder holding the dataset files.")
@click.option("--budgets", required=True, type=AmountList(),
              help="ReLU budgets a trial may target, comma separated: 25k,50k,100k.")
@click.option("--trials", type=click.IntRange(min=1), required=True,
              help="COMPLETE trials the study should hold in total (all workers, all runs).")
@click.option("--storage", required=True,
              help="journal:PATH (processes on one machine) or an SQLAlchemy URL (machines).")
@click.option("--study", "study_name", required=True, help="Study name inside the storage.")
@click.option("--macs", is_flag=True, help="Minimize MACs as a third objective.")
@click.option("--sampler", type=click.Choice(["tpe", "nsga2"]), default="tpe", show_default=True,
              help="Constrained multi-objective sampler (seeded with --seed).")
@click.option("--out", default="runs/search", show_default=True, type=OutPath(directory=True),
              help="Folder for the trials' run directories (trial-NNNN).")
@click.option("--json", "as_json", is_flag=True, help="Print the completed trials as JSON.")
@training_options(epochs=None, lr=0.05)
@user_errors
def command(space: str, data: str, root: str | None, budgets: list[int], trials: int, storage: str,
            study_name: str, macs: bool, sampler: str, out: str, as_json: bool, **opts) -> None:
    """Search architectures for the --budgets with Optuna and store every trial in --storage.

    Objectives: top-1 up, ReLUs down (and MACs down with --macs). Each trial targets
    one budget; the constraint ReLUs <= budget goes to the sampler. Each trial is
    counted exactly, proxy-trained (--epochs and --limit override the space's proxy)
    into OUT/trial-NNNN and evaluated on the test split.

    Rerun the same command to resume: the study continues until it holds --trials
    COMPLETE trials; trials of killed workers are failed and queued again, and their
    training resumes from the last finished epoch. Start the command several times
    with one journal file to share a study on one machine, or with one database URL
    to share it across machines.

    \b
    Examples:
      reshape search --space hybrenet --data fashion-mnist-mini --budgets 10k,25k,50k \\
          --trials 20 --storage journal:runs/search.log --study hrn --out runs/search
      reshape search --space my_space.json --data cifar100 --budgets 25k,50k,100k --macs \\
          --trials 200 --storage postgresql://me@db/optuna --study c100 --epochs 10
    """
    import logging

    import optuna

    from rich.console import Console

    from reshape.search import completed, load_space, search, trial_record

    optuna.logging.set_verbosity(logging.ERROR)  # failures reach the user as one-line errors
    shared = pop_training(opts)
    space_ = load_space(space)
    epochs, limit = space_.proxy(shared.pop("epochs"), shared.pop("limit"))
    progress = Console(stderr=True)
    study = search(space_, data, budgets, trials, storage, study_name, out,
                   train_config(shared, dataset=data, epochs=epochs), limit=limit, macs=macs, sampler=sampler,
                   root=root, log=lambda line: progress.print(line, highlight=False))
    rows = [trial_record(t) for t in completed(study)]
    echo_json(rows) if as_json else stdout_console().print(_table(rows, study_name))


def _table(rows: list[dict], study_name: str) -> Table:
    """The completed trials, best top-1 first."""
    from rich.table import Table

    table = Table(title=f"study {study_name}: {len(rows)} complete trials")
    for column in ("trial", "budget", "ReLUs", "MACs", "top-1", "feasible", "params"):
        table.add_column(column, justify="left" if column == "params" else "right")
    for row in sorted(rows, key=lambda r: -(r["top1"] or 0)):
        params = ", ".join(f"{k}={v}" for k, v in row["params"].items() if k != "budget")
        top1 = f"{100 * row['top1']:.2f}%" if row["top1"] is not None else "-"
        table.add_row(str(row["number"]), human(row["budget"]), f"{row['relus']:,}", human(row["macs"]),
                      top1, "yes" if row["feasible"] else "no", params)
    return table
