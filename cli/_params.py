"""Method commands (``reshape senet``, ``snl``, ``shallow``; ``sensitivity`` shares the teacher).

One option per params field (``reshape.methods.param`` metadata: name, type, range, help,
default), and only the options given are passed on, so a default lives in the dataclass
alone (docs/architecture.md, "Params"). Reading params imports torch, so ``MethodCommand``
makes its options only when click first asks for them.
"""
from __future__ import annotations

import dataclasses
import types
import typing
from typing import Any, Callable, Collection

import click
from click.core import ParameterSource

from reshape.report import run_views
from reshape.setting import EPOCHS
from reshape.values import Range

from ._common import RUN_DIR, Count, Dataset, IntList, OutPath, Real, emit, name_params, option_labels
from ._training import SETTING_OPTIONS, method_setting, training_options


class MethodCommand(click.Command):
    """The command of registered method ``method``: the options it declares, then ``--preset``
    and one per params field (less those in ``skip``, which the command offers its own way)."""

    def __init__(self, *args: Any, method: str, skip: Collection[str] = (), **kwargs: Any) -> None:
        self.method, self.skip, self.fields = method, frozenset(skip), ()
        self._made = False
        super().__init__(*args, **kwargs)

    @property
    def params(self) -> list[click.Parameter]:
        if not self._made:
            self._made = True
            made = method_options(self.method, self.skip, {o for p in self._params for o in p.opts})
            self.fields = tuple(p.name for p in made if p.name != "preset")
            self._params += made
        return self._params

    @params.setter
    def params(self, value: list[click.Parameter]) -> None:
        self._params = value


def method_options(name: str, skip: Collection[str] = (), taken: Collection[str] = ()) -> list[click.Option]:
    """An option per field of method ``name``'s params but ``skip``, after ``--preset`` where the
    method has presets besides ``published``; an option that clashes with one in ``taken`` (the
    command's own) is a bug in the params, said at once."""
    from reshape.methods import get_method

    method = get_method(name)
    hints = typing.get_type_hints(method.params_type)
    options = [click.Option(["--preset"], type=click.Choice(list(method.presets)),
                            help="Start from these named params (`reshape methods` lists them); the "
                                 "options given override them.")] if len(method.presets) > 1 else []
    for f in _own_fields_first(method.params_type):
        if f.name in skip:
            continue
        flag = option_name(f)
        if flag in taken:
            raise TypeError(f"{name}.{f.name}: option {flag} is taken by the command; name another in param()")
        options.append(_option(f, flag, hints[f.name], getattr(method.defaults, f.name)))
    return options


def _own_fields_first(params_type: type) -> list[dataclasses.Field]:
    """The fields of ``params_type``, a class's own before those it inherits (a method's knobs
    before the shared training recipe), each class's in declaration order."""
    mro = params_type.__mro__
    return sorted(dataclasses.fields(params_type),
                  key=lambda f: next(i for i, c in enumerate(mro) if f.name in vars(c).get("__annotations__", {})))


def option_name(f: dataclasses.Field) -> str:
    """The command-line option of params field ``f``."""
    return "--" + (f.metadata.get("option") or f.name).replace("_", "-")


def _option(f: dataclasses.Field, flag: str, hint: Any, default: Any) -> click.Option:
    """The option ``flag`` of field ``f`` (annotation ``hint``; ``int | None`` offers an ``int``)."""
    kind = typing.get_args(hint)[0] if typing.get_origin(hint) in (typing.Union, types.UnionType) else hint
    help = f.metadata.get("help")
    if kind is bool:
        return click.Option([f"{flag}/--no-{flag[2:]}", f.name], default=default, show_default=True, help=help)
    shown = ",".join(map(str, default)) if isinstance(default, tuple) else default is not None
    return click.Option([flag, f.name], type=_type(f, kind), default=default, show_default=shown, help=help)


def _type(f: dataclasses.Field, kind: Any) -> click.ParamType:
    """The click type of field ``f`` of annotation ``kind``: its choices, its range, or its kind."""
    allowed: Range | None = f.metadata.get("allowed")
    if f.metadata.get("choices"):
        return click.Choice(f.metadata["choices"])
    if kind is int:
        return click.IntRange(allowed.low, allowed.high, min_open=allowed.low_open,
                              max_open=allowed.high_open) if allowed else click.INT
    if kind is float:
        return Real(allowed or Range())
    if typing.get_origin(kind) is tuple and typing.get_args(kind)[0] is int:
        return IntList()
    if kind is str:
        return click.STRING
    raise TypeError(f"params field {f.name}: no command-line type for {kind}")


def chosen_params(name: str, opts: dict[str, Any], **extra: Any) -> Any:
    """The params of method ``name`` that the command's options choose: its defaults, then
    ``--preset``, then each option given on the command line, then ``extra`` (what the command
    works out itself). Those options leave ``opts``; one left at its default passes nothing on."""
    from reshape.methods import get_method

    ctx = click.get_current_context()
    command: MethodCommand = ctx.command  # type: ignore[assignment]
    given = {}
    for field in command.fields:
        value = opts.pop(field)
        if ctx.get_parameter_source(field) is not ParameterSource.DEFAULT:
            given[field] = value
    return get_method(name).params(opts.pop("preset", None), **given, **extra)


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
    name_params(option_labels("params", "setting", teacher="teacher RUN_DIR (weights digest)", budget=budget_option))
    return method.fit(teacher, budget, out, setting, params, force=force)


def report(result: Any, as_json: bool) -> None:
    """The result of a method run: one line, or ``MethodResult.to_dict()`` as JSON."""
    emit(as_json, result.to_dict(), run_views.method_line(result))
