"""The allowed values of every real-number setting, checked in one place.

A learning rate of ``nan`` or a weight of ``inf`` passes a plain ``x > 0`` check (or
``nan < 0`` fails silently) and trains into a NaN loss. Each range here says what a
setting may be: finite, within its bounds, whole where it counts something. The CLI's
option types (``reshape.cli._common.Real``) and the library's params dataclasses
(``check_fields`` in their ``__post_init__``) use the same ``Range``, so the library
refuses what the command line refuses, with the same words.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

from .errors import ReshapeError


@dataclass(frozen=True)
class Range:
    """A finite number within ``[low, high]`` (each bound optional, open where asked)."""

    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False
    integer: bool = False

    def __str__(self) -> str:
        kind = "a whole number" if self.integer else "a finite number"
        lo = None if self.low is None else f"{'(' if self.low_open else '['}{self.low:g}"
        hi = None if self.high is None else f"{self.high:g}{')' if self.high_open else ']'}"
        if lo and hi:
            return f"{kind} in {lo}, {hi}"
        if lo:
            return f"{kind} {'>' if self.low_open else '>='} {self.low:g}"
        if hi:
            return f"{kind} {'<' if self.high_open else '<='} {self.high:g}"
        return kind

    def problem(self, value: Any) -> str | None:
        """Why ``value`` is not allowed (``must be ..., got ...``), or None when it is."""
        number = isinstance(value, (int, float)) and not isinstance(value, bool)
        ok = number and (not self.integer or isinstance(value, int) or float(value).is_integer()) \
            and math.isfinite(value) and self._within(value)
        return None if ok else f"must be {self}, got {value!r}"

    def _within(self, value: float) -> bool:
        if self.low is not None and (value < self.low or (self.low_open and value == self.low)):
            return False
        return self.high is None or not (value > self.high or (self.high_open and value == self.high))

    def check(self, name: str, value: Any) -> Any:
        """``value``, or a one-line ``ReshapeError`` naming ``name``."""
        problem = self.problem(value)
        if problem:
            raise ReshapeError(f"{name} {problem}")
        return value


#: Learning rates, temperatures, factors: above 0.
POSITIVE = Range(0, low_open=True)
#: Weights and penalties that may be 0.
NON_NEGATIVE = Range(0)
#: A mixing weight in [0, 1].
UNIT = Range(0, 1)
#: A share of something, in (0, 1].
FRACTION = Range(0, 1, low_open=True)
#: Label smoothing: in [0, 1).
SMOOTHING = Range(0, 1, high_open=True)
#: A growth factor: at least 1.
AT_LEAST_ONE = Range(1)
#: A count that must be at least 1 (epochs, kernel sizes, factors).
COUNT = Range(1, integer=True)
#: A count that may be 0 (warm-up epochs, worker processes).
COUNT_OR_ZERO = Range(0, integer=True)


def check_fields(obj: Any, what: str, **ranges: Range) -> None:
    """Check each named field of ``obj`` against its range (None means "not set" and passes);
    the error names the field as ``what field`` (``SENet at_weight must be ...``)."""
    for name, allowed in ranges.items():
        value = getattr(obj, name)
        if value is not None:
            allowed.check(f"{what} {name}", value)


_SUFFIX = {"": 1, "k": 10**3, "m": 10**6, "g": 10**9}
_NUMBER = re.compile(r"^\s*([0-9]*\.?[0-9]+)\s*([kKmMgG]?)\s*$")


def parse_amount(text: str, what: str = "value") -> int:
    """180k, 1.2M, 1.5G or 180000 as an integer (ReLU and MAC budgets are written this way);
    a ``ValueError`` saying what a count looks like otherwise."""
    m = _NUMBER.match(str(text))
    if not m:
        raise ValueError(f"{what} must look like 180k, 1.2M, 1.5G or 180000, got {text!r}")
    value = float(m.group(1)) * _SUFFIX[m.group(2).lower()]
    if value != int(value):
        raise ValueError(f"{what} {text!r} is not a whole number")
    return int(value)


def parse_target(text: str, what: str = "value") -> int | float:
    """A target as a count (``300k``, ``1.2M``, ``300000``) or as a fraction of the model's own
    count: a percentage (``70%``) or a number with a decimal point in (0, 1] (``0.7``, ``1.0``).

    A float is a fraction, an int a count; so ``1`` is one ReLU and ``1.0`` all of them.
    """
    item = str(text).strip()
    try:
        if re.fullmatch(r"[0-9]*\.?[0-9]+%", item):
            value: int | float = float(item[:-1]) / 100
        elif re.fullmatch(r"[0-9]*\.[0-9]+", item):
            value = float(item)
        else:
            value = parse_amount(item, what)
    except ValueError:
        value = 0
    if isinstance(value, float) and 0 < value <= 1 or isinstance(value, int) and value >= 1:
        return value
    raise ValueError(f"{what} {text!r} is neither a count (300k, 1.2M, 300000; at least 1) nor a "
                     "fraction of the model's in (0, 1] (0.7, 1.0 or 70%)")


def resolve_target(target: int | float, total: int) -> int:
    """A ``parse_target`` value as a count: a fraction of ``total``, or the count itself."""
    return int(target * total) if isinstance(target, float) else target
