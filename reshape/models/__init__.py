"""Spec -> model: the builder, timm registration and model resolution.

Importing this package registers the spec-built families in timm's registry.
"""
from __future__ import annotations

from ._builder import build
from ._registry import register_family
from ._resolve import Resolved, apply_preset, build_for_count, narrow, resolve, spec_for
from ._timm import create, require_plain_resnet, spec_from_timm
from .resnet import with_stem

# The family modules (resnet above, hybrenet, wrn) register their models in timm on import.
from . import hybrenet, wrn  # noqa: E402,F401  isort: skip
from .wrn import wrn_spec  # noqa: E402  isort: skip

__all__ = ["build", "build_for_count", "create", "register_family", "resolve", "Resolved", "apply_preset",
           "spec_for", "narrow", "spec_from_timm", "require_plain_resnet", "with_stem",
           "wrn_spec"]
