"""The method layer: every way to fit a trained teacher to a ReLU budget, behind one protocol.

A method is one file in this package that registers itself by name, timm-style::

    @dataclass(frozen=True)
    class Params:                      # every knob that changes the result, with its help
        lr: float = param(0.1, "Learning rate.", allowed=POSITIVE)

        def __post_init__(self) -> None:
            check_params(self, "width")   # a one-line error for a value out of its range

    @register_method("width", Params, family="baseline", summary="uniform width scaling")
    def run(job: Job, p: Params) -> dict:
        spec = ...                                        # the network for job.budget
        job.train(spec, job.config(job.setting.epochs, p.lr))  # trains into job.out
        return {"alpha": alpha}                           # what it built and why

and is run as ``get_method("width").fit(teacher_run, budget, out, setting)``, which
returns a ``MethodResult`` (exact ReLUs, MACs, top-1, PI cost estimates, what it built).
The registry does what every method shares: it owns ``out`` (``run.json`` records the
method, its params, the budget, the teacher's weights digest and the setting, and a
folder holding anything else is refused), reads back a finished run, counts the final
network and writes the summary. docs/architecture.md walks through adding a method.
"""
from __future__ import annotations

import importlib
import pkgutil
import sys

from ._registry import (OMIT_DEFAULT, Job, Method, MethodResult, Setting, check_params, describe_methods,
                        get_method, list_methods, nested, param, params_key, parent_config, register_method,
                        result_of, setting_config, setting_splits)

#: The shipped methods in listing order; any other module of this package lists after them, by name.
ORDER = ("width", "deepreduce", "snl", "senet", "hybrenet", "shallow")


def discover() -> list[str]:
    """Import every public module of this package, shipped methods first (``ORDER``): each
    registers itself on import (timm's pattern), so a new method is one file here and nothing
    else. Returns the modules this call imported (none once all are)."""
    found = {m.name for m in pkgutil.iter_modules(__path__) if not m.name.startswith("_")}
    names = [n for n in ORDER if n in found] + sorted(found - set(ORDER))
    new = [n for n in names if f"{__name__}.{n}" not in sys.modules]
    for name in names:
        importlib.import_module(f"{__name__}.{name}")
    return new


discover()

__all__ = ["OMIT_DEFAULT", "Job", "Method", "MethodResult", "Setting", "check_params", "describe_methods",
           "discover", "get_method", "list_methods", "nested", "param", "params_key", "parent_config",
           "register_method", "result_of", "setting_config", "setting_splits"]
