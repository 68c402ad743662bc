"""Spec -> model: the builder, timm registration and model resolution.

Importing this package registers the spec-built families in timm's registry.
"""
from __future__ import annotations

from ._builder import require_memory
from ._cfg import spec_cfg
from ._read import spec_of
from ._registry import build, create_spec_model, register_family
from ._resolve import (PresetError, Resolved, apply_preset, build_for_count, geometry_change, narrow, resolve,
                       spec_for)
from ._timm import create, read_timm, require_plain_resnet, spec_from_timm
from .resnet import with_stem

# The family modules (resnet above, hybrenet, wrn) register their models in timm on import.
from . import hybrenet, wrn  # noqa: E402,F401  isort: skip
from .wrn import wrn_spec  # noqa: E402  isort: skip

__all__ = ["build", "build_for_count", "create", "create_spec_model", "register_family", "resolve", "Resolved",
           "PresetError", "apply_preset", "geometry_change", "spec_for", "spec_of", "narrow", "spec_from_timm", "read_timm",
           "require_memory", "require_plain_resnet", "spec_cfg", "with_stem", "wrn_spec"]
