"""Command-line options made from a registered method's params dataclass.

Each field becomes one option (``reshape.methods.param`` metadata): its name is the
field's (``at_weight`` -> ``--at-weight``) unless the field names another (``lam`` ->
``--lambda``), its type follows the annotation and the field's range or choices, its help
is the field's, and the default it shows is the registered method's. A command passes on
only the options given on the command line (and ``--preset``), so the defaults live in
the dataclass alone: ``reshape snl`` with no options builds ``get_method("snl").params()``.

Reading a params dataclass imports its method and so torch; ``MethodCommand`` makes the
options the first time click asks for them (to parse or to print help), so importing a
command module stays cheap.
"""
from __future__ import annotations

import dataclasses
import types
import typing
from typing import Any, Collection

import click
from click.core import ParameterSource

from reshape.values import Range

from ._common import Real


class IntList(click.ParamType):
    """Comma-separated integers (``4,1,2,3``), as a tuple."""

    name = "ints"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> tuple[int, ...]:
        if isinstance(value, tuple):
            return value
        try:
            items = tuple(int(part) for part in str(value).split(",") if part.strip())
        except ValueError:
            items = ()
        if not items:
            self.fail(f"give comma-separated integers such as 4,1,2,3; got {value!r}", param, ctx)
        return items


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


def option_labels(method: Any, setting: Any) -> dict[str, str]:
    """The run keys of ``method`` named as the running command's options (``params.lam`` ->
    ``--lambda``), so a refused rerun says which option differs; keys without an option keep
    their name (the budget's is the command's to give)."""
    offered = {opt for p in click.get_current_context().command.params for opt in p.opts}
    wanted = {f"params.{f.name}": option_name(f) for f in dataclasses.fields(method.params_type)}
    wanted |= {f"setting.{k}": "--" + k.replace("_", "-") for k in setting.key}
    return {key: option for key, option in wanted.items() if option in offered} | \
        {"teacher": "teacher RUN_DIR (weights digest)"}
