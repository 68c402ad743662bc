"""What ``reshape senet``, ``snl``, ``shallow`` and ``sensitivity`` share: the arguments of a
method command, the teacher run, and running a registered method from the command line."""
from __future__ import annotations

from typing import Any, Callable

import click

from reshape.report import run_views
from reshape.setting import EPOCHS

from ._common import RUN_DIR, Count, Dataset, OutPath, name_params
from ._params import chosen_params, option_labels
from ._training import SETTING_OPTIONS, method_setting, training_options

#: ``reshape.budget.sensitivity.ESTIMATORS`` (named here so the CLI loads without torch; a test keeps them equal).
ESTIMATORS = ("criticality", "pruning", "linearize")
#: The ReLU budget of ``senet`` and ``snl`` (``shallow`` takes ``--relus``, a count or a fraction).
BUDGET = click.option("--budget", type=Count(), required=True, help="ReLU budget per image: 50k, 1.2M or 50000.")


def method_arguments(budget: Callable[..., Any] = BUDGET) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """RUN_DIR, ``budget``, --data, --root, --out, --force, --json and the ``Setting`` options:
    what every method command takes besides its params (``MethodCommand`` adds those)."""
    decorators = [
        click.argument("run_dir", type=RUN_DIR),
        budget,
        click.option("--data", required=True, type=Dataset(), help="Dataset the teacher was trained on."),
        click.option("--root", type=click.Path(file_okay=False), help="Folder holding the dataset files."),
        click.option("--out", required=True, type=OutPath(directory=True), help="Output run directory."),
        click.option("--force", is_flag=True,
                     help="Start over: deletes the run in --out (one with other settings is refused without it)."),
        click.option("--json", "as_json", is_flag=True, help="Print the result as JSON."),
        training_options(only=SETTING_OPTIONS, epochs=EPOCHS),
    ]

    def decorate(fn: Callable[..., Any]) -> Callable[..., Any]:
        for decorator in reversed(decorators):
            fn = decorator(fn)
        return fn

    return decorate


def teacher_run(run_dir: str, data: str, root: str | None) -> Any:
    """The trained teacher of ``run_dir`` (a ``TrainedRun``), refused when it was trained on
    another dataset than ``data`` or does not fit its classes and input."""
    from reshape.runs import load_trained
    from reshape.train import load_teacher

    run = load_trained(run_dir, data, root, what=f"teacher {run_dir}")
    load_teacher(run, run.spec, data)
    return run


def fit_method(name: str, teacher: Any, budget: int, data: str, root: str | None, out: str, force: bool,
               opts: dict[str, Any], budget_option: str = "--budget", **extra: Any) -> Any:
    """Run method ``name`` (``reshape.methods``) as a command and return its ``MethodResult``:
    the params its options choose (``chosen_params``; ``extra``: those the command works out)
    under the ``Setting`` the rest make (``--epochs`` is every stage after the teacher, as in
    ``reshape frontier``). A refused rerun names the budget as ``budget_option``."""
    from reshape.methods import get_method

    method = get_method(name)
    params = chosen_params(name, opts, **extra)
    setting = method_setting(opts, data, root)
    name_params({**option_labels(method, setting), "budget": budget_option})
    return method.fit(teacher, budget, out, setting, params, force=force)


def report(result: Any, as_json: bool) -> None:
    """The result of a method run: one line, or ``MethodResult.to_dict()`` as JSON."""
    from ._common import echo_json

    echo_json(result.to_dict()) if as_json else click.echo(run_views.method_line(result))
