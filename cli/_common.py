"""Helpers shared by CLI commands: error handling, number parsing, JSON output."""
from __future__ import annotations

import functools
import json
import re
import sys
from typing import Any, Callable, TypeVar

import click

F = TypeVar("F", bound=Callable[..., Any])
_SUFFIX = {"": 1, "k": 10**3, "m": 10**6, "g": 10**9}
_NUMBER = re.compile(r"^\s*([0-9]*\.?[0-9]+)\s*([kKmMgG]?)\s*$")


def user_errors(fn: F) -> F:
    """Turn ``ReshapeError`` into one line on stderr and exit code 1, never a traceback."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from reshape.errors import ReshapeError

        try:
            return fn(*args, **kwargs)
        except ReshapeError as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(1)
        except KeyboardInterrupt:
            click.echo("interrupted", err=True)
            sys.exit(130)

    return wrapper  # type: ignore[return-value]


def parse_amount(text: str, what: str = "value") -> int:
    """Parse 180k, 1.2M, 1.5G or 180000 into an integer."""
    m = _NUMBER.match(str(text))
    if not m:
        raise click.BadParameter(f"{what} must look like 180k, 1.2M, 1.5G or 180000, got {text!r}")
    value = float(m.group(1)) * _SUFFIX[m.group(2).lower()]
    if value != int(value):
        raise click.BadParameter(f"{what} {text!r} is not a whole number")
    return int(value)


def amount_or_fraction(text: str, total: int, what: str = "value") -> int:
    """A target given as a count (300k, 1.2M, 300000) or as a fraction of ``total`` (0.6, in (0, 1))."""
    m = _NUMBER.match(str(text))
    if m and not m.group(2) and 0 < float(m.group(1)) < 1:
        return int(float(m.group(1)) * total)
    return parse_amount(text, what)


class Amount(click.ParamType):
    """A click type for counts written as 180k / 1.2M / 180000."""

    name = "amount"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> int:
        if isinstance(value, int):
            return value
        try:
            return parse_amount(value, param.name if param else "value")
        except click.BadParameter as exc:
            self.fail(exc.message, param, ctx)


def echo_json(obj: Any) -> None:
    click.echo(json.dumps(obj, indent=2))


def human(n: float) -> str:
    """1234567 -> '1.23M' for tables."""
    for unit, scale in (("G", 1e9), ("M", 1e6), ("K", 1e3)):
        if abs(n) >= scale:
            return f"{n / scale:.2f}{unit}"
    return f"{n:g}"
