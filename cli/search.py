"""``reshape search``: Optuna multi-objective search over a declarative space, resumable and shared."""
from __future__ import annotations

from typing import Any, Callable

import click

from reshape.report import run_views

from ._common import RUN_DIR, Count, Dataset, OutPath, emit, usage_errors, user_errors
from ._training import method_setting, train_config, training_options

HELP = """Search architectures for the --budgets with Optuna and store every trial in --storage.

    Objectives: top-1 up, ReLUs down (and MACs down with --macs); each trial targets one
    budget, the constraint ReLUs <= budget goes to the sampler. A proxy space trains each
    network from scratch into OUT/trial-NNNN, scored on the test split (--epochs and --limit override its proxy). A
    pipeline space (hybrenet_snl) fits the --teacher to the budget as `reshape frontier`
    does, selecting on --val images; --warm-start enqueues the synthesized network first.

    Rerun the same command to resume until the study holds --trials COMPLETE trials (a
    killed worker's trial is queued again and resumes its training). Several processes
    share a study through one journal file, machines through one database URL.

    \b
    Examples:
      reshape search --space hybrenet --data fashion-mnist-mini --budgets 10k,25k,50k \\
          --trials 20 --storage journal:runs/search.log --study hrn --out runs/search
      reshape search --space my_space.json --data cifar100 --budgets 25k,50k,100k --macs \\
          --trials 200 --storage postgresql://me@db/optuna --study c100 --epochs 10
      reshape search --space hybrenet_snl --teacher runs/teacher --data fashion-mnist --val 1000 \\
          --budgets 13568 --trials 10 --warm-start --storage journal:runs/o1.log --study warm --out runs/o1
"""


@click.command("search", help=HELP)
@click.option("--space", required=True,
              help="A bundled space (hybrenet, resnet: proxies; hybrenet_snl: a pipeline) or a space JSON file.")
@click.option("--teacher", type=RUN_DIR, help="A pipeline space's teacher run: every trial fits it to its budget.")
@click.option("--warm-start", is_flag=True,
              help="Pipeline spaces: the network DeepReShape synthesizes for each budget is the study's first trial.")
@click.option("--data", required=True, type=Dataset(), help="Dataset name (fashion-mnist-mini, cifar100, ...).")
@click.option("--root", type=click.Path(file_okay=False), help="Folder holding the dataset files.")
@click.option("--budgets", required=True, type=Count(many=True),
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
def command(space: str, teacher: str | None, warm_start: bool, data: str, root: str | None, budgets: list[int],
            trials: int, storage: str, study_name: str, macs: bool, sampler: str, out: str, as_json: bool,
            **opts) -> None:
    import logging

    import optuna
    from rich.console import Console

    from reshape.search import completed, load_space, search, trial_record

    optuna.logging.set_verbosity(logging.ERROR)  # failures reach the user as one-line errors
    space_ = load_space(space)
    log = lambda line: Console(stderr=True).print(line, highlight=False)  # noqa: E731
    if space_.family == "pipeline":
        study = _pipeline(space_, teacher, warm_start, data, root, budgets, trials, storage, study_name, out,
                          sampler, macs, opts, log)
    else:
        if teacher or warm_start:
            raise click.BadParameter("takes a pipeline space (hybrenet_snl); proxy spaces train from scratch",
                                     param_hint="--teacher/--warm-start")
        epochs, limit = space_.proxy(opts.pop("epochs"), opts.pop("limit"))
        study = search(space_, data, budgets, trials, storage, study_name, out,
                       train_config(opts, dataset=data, epochs=epochs), limit=limit, macs=macs, sampler=sampler,
                       root=root, log=log)
    rows = [trial_record(t) for t in completed(study)]
    emit(as_json, rows, run_views.trials_table(rows, study_name))


def _pipeline(space: Any, teacher: str | None, warm_start: bool, data: str, root: str | None, budgets: list[int],
              trials: int, storage: str, study_name: str, out: str, sampler: str, macs: bool,
              opts: dict[str, Any], log: Callable[[str], None]) -> Any:
    """A pipeline study: the teacher and the Setting its trials share (as a frontier's), the warm
    start checked against the space first (a space that cannot express it is a usage error)."""
    from reshape.errors import BudgetUnreachable
    from reshape.runs import load_trained
    from reshape.search import check_reachable, search_pipeline, warm_start_trials
    from reshape.setting import EPOCHS

    if teacher is None:
        raise click.BadParameter("a pipeline space fits a teacher: give its run directory", param_hint="--teacher")
    setting = method_setting({**opts, "epochs": opts["epochs"] or EPOCHS}, data, root)
    run = load_trained(teacher, data, root, what=f"teacher {teacher}")
    with usage_errors("--budgets", BudgetUnreachable):
        check_reachable(space, run.spec, data, budgets)
    if warm_start:
        with usage_errors("--warm-start"):
            warm_start_trials(space, run.spec, data, budgets)
    return search_pipeline(space, run, budgets, setting, trials, storage, study_name, out, sampler=sampler,
                           warm_start=warm_start, macs=macs, log=log)
