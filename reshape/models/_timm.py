"""Read timm models as specs, and create timm models by name with clear errors."""
from __future__ import annotations

import difflib

import torch
from torch import nn

from ..errors import ReshapeError
from ..spec import ArchSpec
from ._read import spec_of

class NotASpec(ReshapeError):
    """A timm model the spec format cannot express (the message says why)."""


def create(name: str, **kwargs) -> nn.Module:
    """``timm.create_model`` with a one-line error and close matches for unknown names."""
    import timm  # our families are in its registry: reshape.models registers them on import

    if not timm.is_model(name):
        close = difflib.get_close_matches(name, timm.list_models(), n=5, cutoff=0.6)
        hint = f"; close matches: {', '.join(close)}" if close else ""
        raise ReshapeError(f"unknown model '{name}' (not a timm model name nor a spec/run path){hint}")
    try:
        return timm.create_model(name, pretrained=False, **kwargs)
    except TypeError as exc:
        raise ReshapeError(f"cannot create '{name}' with {kwargs}: {exc}") from None


def spec_from_timm(name: str) -> ArchSpec | None:
    """The spec of timm model ``name`` if it is one of ours or a plain ResNet our builder
    reproduces exactly, else None (``read_timm`` says why)."""
    try:
        return read_timm(name)
    except NotASpec:
        return None


def read_timm(name: str) -> ArchSpec:
    """The spec of timm model ``name``, read from its modules (``spec_of``, which checks the
    parameter shapes exactly); a one-line error says why a model cannot be one."""
    with torch.device("meta"):
        model = create(name)
    try:
        return spec_of(model).replace(name=name)
    except ReshapeError as exc:
        raise NotASpec(f"'{name}' is not expressible as a spec: {exc.template}") from None


def require_plain_resnet(name: str) -> ArchSpec:
    try:
        return read_timm(name)
    except ReshapeError as exc:
        raise ReshapeError(f"{exc.template}; supported families: resnet18, resnet26, resnet34, resnet50, resnet101, "
                           "resnet152 and specs") from None
