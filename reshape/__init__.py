"""reshape: design ReLU-lean convolutional networks for private inference.

The public API is flat and lazy: ``import reshape`` is cheap (the CLI's help
stays fast), and torch/timm load only when a name below is first used.

    spec -> build -> count -> train -> methods -> frontier / search -> report
"""
from __future__ import annotations

import importlib
from typing import Any

from ._version import __version__

_API = {
    "ArchSpec": "reshape.spec", "Stage": "reshape.spec", "Stem": "reshape.spec",
    "ReluLayer": "reshape.spec", "load_spec": "reshape.spec", "save_spec": "reshape.spec",
    "build": "reshape.models", "create": "reshape.models", "spec_from_timm": "reshape.models",
    "spec_of": "reshape.models",
    "count": "reshape.accounting", "Count": "reshape.accounting",
    "estimate": "reshape.cost", "load_costs": "reshape.cost",
    "MaskedReLU": "reshape.layers",
    "ReshapeError": "reshape.errors", "SpecError": "reshape.errors",
}

__all__ = ["__version__", *_API]


def __getattr__(name: str) -> Any:
    if name in _API:
        return getattr(importlib.import_module(_API[name]), name)
    raise AttributeError(f"module 'reshape' has no attribute '{name}'")
