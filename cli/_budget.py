"""What ``reshape senet``, ``snl``, ``sensitivity`` and ``shallow`` share: options, the teacher
run and its data, and running a registered method from the command line."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import click

from reshape.spec import GRANULARITIES

from ._common import RUN_DIR, Amount, Dataset, OutPath, name_params

#: ``reshape.budget.sensitivity.ESTIMATORS`` (named here so the CLI loads without torch; a test keeps them equal).
ESTIMATORS = ("criticality", "pruning", "linearize")


def budget_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    """RUN_DIR, --budget, --data, --root, --out, --force: the arguments of every budget method."""
    for decorator in reversed([
        click.argument("run_dir", type=RUN_DIR),
        click.option("--budget", type=Amount(), required=True,
                     help="ReLU budget per image: 50k, 1.2M or 50000."),
        click.option("--data", required=True, type=Dataset(), help="Dataset the teacher was trained on."),
        click.option("--root", type=click.Path(file_okay=False), help="Folder holding the dataset files."),
        click.option("--out", required=True, type=OutPath(directory=True), help="Output run directory."),
        click.option("--force", is_flag=True,
                     help="Start over: deletes the run in --out (one with other settings is refused without it)."),
        click.option("--granularity", type=click.Choice(GRANULARITIES), default="neuron",
                     show_default=True, help="Mask per neuron (C x H x W) or per channel."),
        click.option("--json", "as_json", is_flag=True, help="Print the result as JSON."),
    ]):
        fn = decorator(fn)
    return fn


def teacher_run(run_dir: str, data: str, root: str | None) -> Any:
    """The trained teacher of ``run_dir`` (a ``TrainedRun``), refused when it was trained on
    another dataset than ``data`` or does not fit its classes and input."""
    from reshape.runs import load_trained
    from reshape.train import load_teacher

    run = load_trained(run_dir, data, root, what=f"teacher {run_dir}")
    load_teacher(run, run.spec, data)
    return run


@dataclass
class TeacherData:
    spec: Any
    model: Any
    train_set: Any
    test_set: Any


def teacher_and_data(run_dir: str, data: str, root: str | None, splits: bool = True,
                     limit: int | None = None, seed: int = 0) -> TeacherData:
    """The teacher of ``run_dir`` checked against dataset ``data``, with its splits loaded
    (the training split cut to ``limit`` images when given)."""
    from reshape.data import splits as load_splits

    run = teacher_run(run_dir, data, root)
    if not splits:
        return TeacherData(run.spec, run.model, None, None)
    return TeacherData(run.spec, run.model, *load_splits(data, root, limit, seed))


def fit_method(name: str, run_dir: str, budget: int, data: str, root: str | None, out: str, force: bool,
               training: dict[str, Any], **params: Any) -> Any:
    """Run method ``name`` (``reshape.methods``) as a command and return its ``MethodResult``.

    The shared ``training`` options become the ``Setting`` (``method_setting``: ``--epochs``
    is every stage after the teacher, as in ``reshape frontier``); those the method's params
    have a field for (the recipe: ``--optimizer``, ``--schedule``, ...; ``--lr``) join
    ``params``, so every option that changes the result is in the run's fingerprint.
    """
    import dataclasses

    from reshape.methods import get_method

    from ._training import method_setting

    setting = method_setting(training, data, root)
    method = get_method(name)
    fields = {f.name for f in dataclasses.fields(method.params_type)}
    recipe = {k: v for k, v in training.items() if k in fields and k not in setting.key and k not in setting.RUNTIME}
    name_params(option_labels(method, setting))
    return method.fit(teacher_run(run_dir, data, root), budget, out, setting,
                      method.params(**{**recipe, **params}), force=force)


#: Method params that a command sets through an option of another name.
_OPTION_OF = {"estimator": "--sensitivity", "lam": "--lambda", "growth": "--lambda-growth",
              "warmup": "--lambda-warmup", "final_lr": "--lr", "macs": "--macs"}


def option_labels(method: Any, setting: Any) -> dict[str, str]:
    """The run keys of ``method`` named as the running command's options (``params.lam`` ->
    ``--lambda``), so a refused rerun says which option differs; keys without an option keep
    their name."""
    import dataclasses

    offered = {opt for p in click.get_current_context().command.params for opt in p.opts}
    wanted = {f"params.{f.name}": _OPTION_OF.get(f.name, "--" + f.name.replace("_", "-"))
              for f in dataclasses.fields(method.params_type)}
    wanted |= {f"setting.{k}": "--" + k.replace("_", "-") for k in setting.key}
    wanted |= {"budget": "--budget", "teacher": "teacher RUN_DIR (weights digest)"}
    return {key: option for key, option in wanted.items() if option in offered or key == "teacher"}


def report(result: Any, as_json: bool) -> None:
    """The result of a method run: one line, or ``MethodResult.to_dict()`` as JSON."""
    from ._common import echo_json

    if as_json:
        echo_json(result.to_dict())
        return
    top1 = f"{100 * result.top1:.2f}%" if result.top1 is not None else "-"
    note = "  (finished earlier: read back)" if result.cached else ""
    click.echo(f"{result.run}: {result.method}  ReLUs {result.relus:,} (budget {result.budget:,})  "
               f"MACs {result.macs:,}  test top-1 {top1}{note}")


def per_stage_line(per_stage: dict[str, int]) -> str:
    """The plan's split of the kept ReLUs over the stages, e.g. ``stem 12 (1.1%)  layer1 ...``."""
    total = sum(per_stage.values()) or 1
    order = sorted(per_stage, key=lambda stage: (stage != "stem", len(stage), stage))  # JSON read-backs sort keys
    return "ReLUs per stage: " + "  ".join(f"{stage} {per_stage[stage]:,} ({100 * per_stage[stage] / total:.1f}%)"
                                           for stage in order)
