"""A frontier's methods, params and budgets as the command line spells them.

``reshape frontier``, the demo and the benchmark read ``--set`` items and write the
command of a frontier with these; ``plan_frontier`` checks the methods and their params
with ``method_params`` before anything runs.
"""
from __future__ import annotations

import os
import re
import shlex
from typing import Any, Mapping, Sequence

from ..errors import ReshapeError
from ..methods import Method, Setting, get_method, list_methods

_SET = re.compile(r"^([A-Za-z0-9_]+)\.([A-Za-z0-9_]+)=(.*)$")


def parse_methods(text: str) -> list[str]:
    """``snl,hybrenet_snl`` as registered method names, in order, each once."""
    names = list(dict.fromkeys(t.strip() for t in text.split(",") if t.strip()))
    unknown = [n for n in names if n not in list_methods()]
    if unknown or not names:
        what = f"unknown method '{unknown[0]}'" if unknown else "give at least one method"
        raise ReshapeError(f"{what}; registered: {', '.join(list_methods())} (`reshape methods` describes them)")
    return names


def parse_sets(items: Sequence[str], methods: Sequence[str]) -> dict[str, dict[str, str]]:
    """``senet.at_weight=100`` items as ``{"senet": {"at_weight": "100"}}`` (values are converted
    by ``Method.params``); an item for a method not in ``methods`` is refused."""
    params: dict[str, dict[str, str]] = {}
    for item in items:
        m = _SET.match(item)
        if not m:
            raise ReshapeError(f"write METHOD.PARAM=VALUE (e.g. senet.at_weight=100), got {item!r}")
        method, name, value = m.groups()
        if method not in methods:
            raise ReshapeError(f"{item!r} sets a param of '{method}', which is not among the methods "
                               f"({', '.join(methods)})")
        params.setdefault(method, {})[name] = value
    return params


def method_params(names: Sequence[str], overrides: Mapping[str, Mapping[str, Any]],
                  preset: str | None = None) -> dict[str, tuple[Method, Any]]:
    """Each named method with its params (defaults, then ``preset`` where the method has it,
    then overrides), checked before anything runs."""
    if not names:
        raise ReshapeError("no methods given; `reshape methods` lists the registered ones")
    stray = [m for m in overrides if m not in names]
    if stray:
        raise ReshapeError(f"params given for '{stray[0]}', which is not among the methods "
                           f"({', '.join(names)}); add it or drop its params")
    methods = {name: get_method(name) for name in dict.fromkeys(names)}
    if preset is not None and not any(preset in m.presets for m in methods.values()):
        known = sorted({p for m in methods.values() for p in m.presets})
        raise ReshapeError(f"no method among {', '.join(methods)} has a preset '{preset}'; they have "
                           f"{', '.join(known)} (`reshape methods` lists them)")
    return {name: (m, m.params(preset if preset in m.presets else None, **dict(overrides.get(name, {}))))
            for name, m in methods.items()}


def budget_text(budget: int | float | str) -> str:
    """A budget as ``--budgets`` takes it: a fraction as a percentage, a count as digits (text,
    such as a placeholder in a summary, is kept as written)."""
    return f"{100 * budget:g}%" if isinstance(budget, float) else str(budget)


def frontier_command(teacher: str | os.PathLike[str], methods: Sequence[str], budgets: Sequence[int | float | str],
                     setting: Setting, seeds: Sequence[int], sets: Sequence[str], out: str | os.PathLike[str],
                     preset: str | None = None) -> str:
    """The ``reshape frontier`` command of these points, every setting spelled out."""
    args = ["reshape", "frontier", str(teacher), "--methods", ",".join(methods),
            "--budgets", ",".join(map(budget_text, budgets)), "--data", setting.data,
            "--epochs", str(setting.epochs), "--batch-size", str(setting.batch_size),
            "--kd-alpha", f"{setting.kd_alpha:g}", "--seeds", ",".join(map(str, seeds))]
    args += ["--root", setting.root] if setting.root else []
    args += ["--limit", str(setting.limit)] if setting.limit else []
    args += ["--val", str(setting.val)] if setting.val else []
    args += ["--preset", preset] if preset else []
    for item in sets:
        args += ["--set", item]
    return shlex.join(args + ["--out", str(out)])
