"""Helpers shared by CLI commands: the error boundary, option types, JSON output.

Exit codes (docs/architecture.md, "Errors and exit codes"): 2 for a value wrong by itself,
caught by the option types below while click parses, before any work; 1 for what it
points to (a file's contents, a run's state, memory) and failures during the work.
"""
from __future__ import annotations

import contextlib
import functools
import json
import os
import sys
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, TypeVar

import click

from reshape import values
from reshape.errors import ReshapeError, python_name
from reshape.io import writable_problem

F = TypeVar("F", bound=Callable[..., Any])
#: Set to 1 to see the traceback behind any one-line error (for bug reports).
DEBUG_ENV = "RESHAPE_DEBUG"
#: Library parameters (``reshape.errors.PARAMS``) whose option is not ``--`` and the name in dashes.
_OPTION_OF = {"leaf_modules": "--leaf"}
#: Library parameters no command has an option for (the command sets them itself): named as in Python.
NO_OPTION = ("resume",)
#: Where ``name_params`` keeps a command's own names in click's context (``Context.meta``).
_NAMES = "reshape.names"

# -- the error boundary ----------------------------------------------------------------------


@contextlib.contextmanager
def usage_errors(option: str, kind: type[ReshapeError] = ReshapeError) -> Iterator[None]:
    """The library's refusal (a ``kind`` of error) of ``option``'s value as click's usage error
    (exit 2), naming it: for checks that need the library (a preset, a warm start, a protocol)
    but judge the command line alone."""
    try:
        yield
    except kind as exc:
        raise click.BadParameter(cli_message(exc), param_hint=option) from None


def user_errors(fn: F) -> F:
    """Every command's error boundary: a user-facing failure becomes one line on stderr and
    exit code 1, never a traceback; click's usage errors (exit 2) and real bugs pass through.
    ``RESHAPE_DEBUG=1`` lets every error through with its traceback."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        refuse_empty(kwargs)
        try:
            return fn(*args, **kwargs)
        except (click.ClickException, click.exceptions.Exit, click.exceptions.Abort):
            raise  # usage errors print themselves and exit 2; Exit/Abort are click's own control flow
        except KeyboardInterrupt as exc:
            click.echo(str(exc) or "interrupted", err=True)  # a TrainingInterrupted says what a rerun resumes
            sys.exit(130)
        except Exception as exc:
            message = user_message(exc)
            if message is None or os.environ.get(DEBUG_ENV, "") not in ("", "0"):
                raise
            click.echo(f"error: {message}", err=True)
            sys.exit(1)

    return wrapper  # type: ignore[return-value]


def refuse_empty(kwargs: dict[str, Any]) -> None:
    """A usage error (exit 2) for an option or argument given as an empty string (``--study ''``):
    where a value is expected, nothing is never meant. Checked for every command, before any work."""
    ctx = click.get_current_context(silent=True)
    params = {p.name: p for p in ctx.command.params} if ctx else {}
    for name, value in kwargs.items():
        items = value if isinstance(value, (list, tuple)) else [value]
        if any(isinstance(item, str) and not item.strip() for item in items):
            param = params.get(name)
            hint = param.opts[0] if isinstance(param, click.Option) else name.upper()
            raise click.BadParameter("must not be empty; give a value or leave the option out", param_hint=hint)


def user_message(exc: BaseException) -> str | None:
    """The one-line message for an error the user can act on (``reshape.errors.user_error``,
    its parameters named as this command's options), or None for a bug (keep its traceback)."""
    from reshape.errors import user_error

    error = user_error(exc)
    if error is not None:
        return cli_message(error)
    if isinstance(exc, ValueError):
        return f"{exc} (if this looks like a bug, rerun with {DEBUG_ENV}=1 and report the traceback)"
    return None


def name_params(names: Mapping[str, str]) -> None:
    """Name library parameters and run keys as the running command's options where its own
    differ (``budget`` -> ``--relus``, ``params.lam`` -> ``--lambda``), for its error messages."""
    click.get_current_context().meta[_NAMES] = dict(names)


def option_labels(*prefixes: str, **keys: str) -> dict[str, str]:
    """The run keys under ``prefixes`` (``train.epochs``, ``params.lam``) named as the running
    command's options (``--epochs``, ``--lambda``), and other ``keys`` as given, so that a
    refused rerun says which option differs (for ``name_params``)."""
    options = [p for p in click.get_current_context().command.params if isinstance(p, click.Option)]
    return {f"{prefix}.{p.name}": p.opts[0] for prefix in prefixes for p in options} | keys


def _names() -> dict[str, str]:
    """The running command's own names (``name_params``); none outside a command."""
    ctx = click.get_current_context(silent=True)
    return ctx.meta.get(_NAMES, {}) if ctx else {}


def option_name(name: str) -> str:
    """The running command's option for library parameter ``name``: its own name for it
    (``name_params``), else the option of that name; one no command has, as in Python."""
    names = _names()
    if name in names:
        return names[name]
    return python_name(name) if name in NO_OPTION else _OPTION_OF.get(name, "--" + name.replace("_", "-"))


def cli_message(exc: ReshapeError) -> str:
    """A ``ReshapeError``'s message with the parameters and run keys it names spelled as this
    command's options (``reshape.errors``): ``--force`` where a Python caller reads ``force=True``."""
    return exc.render(option_name, _names())


# -- numbers ------------------------------------------------------------------------------------


class Count(click.ParamType):
    """A count written as 180k / 1.2M / 180000, at least 1 (a budget of 0 is a mistake); with
    ``fractions`` also a share of the model's own (70%, 0.7: ``reshape.values.parse_target``);
    ``many`` takes a comma list of them."""

    name = "count"

    def __init__(self, fractions: bool = False, many: bool = False) -> None:
        self.fractions, self.many = fractions, many

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, (int, float, list)):
            return value
        parts = [part.strip() for part in str(value).split(",") if part.strip()] if self.many else [value]
        parse = values.parse_target if self.fractions else values.parse_amount
        try:
            items = [parse(part, "each entry" if self.many else "value") for part in parts]
        except ValueError as exc:
            self.fail(str(exc), param, ctx)
        if not items:
            self.fail(f"give at least one, e.g. {'2%,5%,10k' if self.fractions else '25k,50k,100k'}; got {value!r}",
                      param, ctx)
        if not self.fractions and min(items) < 1:
            self.fail(f"must be at least 1 (like 50k, 1.2M or 50000), got {value!r}", param, ctx)
        return items if self.many else items[0]


#: Counts that must be at least 1 (epochs, batch size, widths, image limits).
POSITIVE = click.IntRange(min=1)
#: Counts that may be 0 (warm-up epochs, worker processes).
NON_NEGATIVE = click.IntRange(min=0)
class Real(click.ParamType):
    """A real number in a ``reshape.values.Range``: finite (no nan, no inf) and within its
    bounds, the very check the library's params make, so both refuse the same values."""

    name = "number"

    def __init__(self, allowed: Any) -> None:
        self.allowed = allowed

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> float:
        number = click.FLOAT.convert(value, param, ctx)
        problem = self.allowed.problem(number)
        if problem:
            self.fail(problem, param, ctx)
        return number


#: Rates and weights that must be above 0 (learning rates, temperatures).
POSITIVE_FLOAT = Real(values.POSITIVE)
#: Weights and penalties that may be 0.
NON_NEGATIVE_FLOAT = Real(values.NON_NEGATIVE)
#: A mixing weight in [0, 1].
UNIT = Real(values.UNIT)
#: A growth factor: at least 1.
AT_LEAST_ONE = Real(values.AT_LEAST_ONE)


class IntList(click.ParamType):
    """Comma-separated integers (``4,1,2,3``), as a tuple; ``what`` they are names them in an error."""

    name = "ints"

    def __init__(self, what: str = "integers") -> None:
        self.what = what

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> tuple[int, ...]:
        if isinstance(value, tuple):
            return value
        try:
            items = tuple(int(part) for part in str(value).split(",") if part.strip())
        except ValueError:
            items = ()
        if not items:
            self.fail(f"give comma-separated {self.what} such as 1,4,2,3; got {value!r}", param, ctx)
        return items


class Dataset(click.ParamType):
    """A dataset preset name (reshape/tables/datasets.json); an unknown one names close matches."""

    name = "dataset"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str:
        from reshape.tables import dataset_preset

        try:
            dataset_preset(value)
        except ReshapeError as exc:
            self.fail(cli_message(exc), param, ctx)
        return value


# -- paths --------------------------------------------------------------------------------------

#: A trained run directory given as input.
RUN_DIR = click.Path(exists=True, file_okay=False)


class OutPath(click.Path):
    """A path the command will write, checked before any work: of the right kind when it exists
    (a file, or a directory for ``directory=True``), and creatable (its nearest existing folder
    takes a new file), so a long run never fails at its last step."""

    def __init__(self, directory: bool) -> None:
        super().__init__(file_okay=not directory, dir_okay=directory)
        self.directory = directory

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        path = super().convert(value, param, ctx)
        problem = writable_problem(Path(path), self.directory)
        if problem:
            self.fail(problem, param, ctx)
        return path


def check_out(path: str, directory: bool, hint: str = "--out") -> None:
    """``OutPath``'s check for a path whose kind depends on another option (``synthesize --sweep``)."""
    problem = writable_problem(Path(path), directory)
    if problem:
        raise click.BadParameter(problem, param_hint=hint)


# -- output -------------------------------------------------------------------------------------


def echo_json(obj: Any) -> None:
    click.echo(json.dumps(obj, indent=2))


def emit(as_json: bool, data: Any, view: Any, pipe_width: int | None = 400) -> None:
    """What every command prints: ``data`` as JSON with --json, else ``view`` (a line of text,
    or a rich renderable on a console ``pipe_width`` wide in a pipe: ``views.stdout_console``)."""
    from reshape.report.views import stdout_console

    if as_json:
        echo_json(data)
    elif isinstance(view, str):
        click.echo(view)
    else:
        stdout_console(pipe_width).print(view)


def cost_table(protocol: str, costs: str | None = None) -> dict[str, dict[str, Any]]:
    """The PI cost profiles (``--costs`` applied) with ``--protocol`` checked against them: an
    unknown protocol is a usage error (exit 2) before any work starts."""
    from reshape.cost import check_protocol, load_costs

    table = load_costs(costs, measured=True)
    with usage_errors("--protocol"):
        check_protocol(protocol, table)
    return table
