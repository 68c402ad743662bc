"""Data tables shipped with the package: rules and constants live here, not in code.

``datasets.json`` holds dataset presets, ``conventions.json`` the counting conventions,
``pi_costs.json`` the PI cost constants with their sources. Each loader returns plain
dicts and is cached: the files never change at run time.
"""
from __future__ import annotations

import difflib
import functools
import json
from importlib import resources
from typing import Any

from ..errors import ReshapeError


@functools.cache
def load(name: str) -> dict[str, Any]:
    """The table ``name`` (file name without extension), with ``_about`` keys dropped."""
    text = resources.files(__name__).joinpath(f"{name}.json").read_text(encoding="utf-8")
    return {k: v for k, v in json.loads(text).items() if not k.startswith("_")}


def lookup(table: str, key: str, what: str) -> dict[str, Any]:
    """``table[key]``, or a one-line error listing the valid keys and close matches."""
    entries = load(table)
    if key in entries:
        return entries[key]
    close = difflib.get_close_matches(key, entries, n=3)
    hint = f" (did you mean {', '.join(close)}?)" if close else ""
    raise ReshapeError(f"unknown {what} '{key}'{hint}; choose one of: {', '.join(entries)}")


def dataset_preset(name: str) -> dict[str, Any]:
    return lookup("datasets", name, "dataset")
