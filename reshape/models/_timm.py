"""Read timm models as specs, and create timm models by name with clear errors."""
from __future__ import annotations

import difflib

import torch
from torch import nn

from ..errors import ReshapeError
from ..spec import ArchSpec, Stage, Stem

_PLAIN_RESNET_HINT = "plain ResNet family (BasicBlock or Bottleneck, 7x7 or 3x3 single-conv stem)"


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
    reproduces, else None.

    The check is structural and then exact: the spec rebuilt through our builder must
    hold the same parameter count as timm's own model.
    """
    from timm.models.resnet import BasicBlock, Bottleneck, ResNet

    with torch.device("meta"):
        model = create(name)
    if getattr(model, "reshape_spec", None) is not None:  # registered by this package (hybrenet_*, ...)
        return model.reshape_spec
    if not isinstance(model, ResNet) or not isinstance(model.conv1, nn.Conv2d):
        return None
    first = model.layer1[0]
    if type(first) not in (BasicBlock, Bottleneck):
        return None
    block = "basic" if type(first) is BasicBlock else "bottleneck"
    stages, s = [], 1
    while hasattr(model, f"layer{s}"):
        layer = getattr(model, f"layer{s}")
        out = layer[0].conv2 if block == "basic" else layer[0].conv1
        stages.append(Stage(width=out.out_channels, depth=len(layer)))
        s += 1
    conv1 = model.conv1
    stem_kind = "imagenet" if isinstance(model.maxpool, nn.MaxPool2d) and conv1.kernel_size == (7, 7) else None
    if stem_kind is None:
        return None
    spec = ArchSpec(
        block=block,
        stages=tuple(stages),
        stem=Stem(kind=stem_kind, width=conv1.out_channels, stride=conv1.stride[0]),
        num_classes=model.num_classes,
        in_chans=conv1.in_channels,
        input_size=224,
        name=name,
    )
    from ._builder import build

    with torch.device("meta"):
        rebuilt = build(spec)
    if _param_count(rebuilt) != _param_count(model):
        return None
    return spec


def _param_count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def require_plain_resnet(name: str) -> ArchSpec:
    spec = spec_from_timm(name)
    if spec is None:
        raise ReshapeError(f"'{name}' is not a {_PLAIN_RESNET_HINT}; supported families: "
                           "resnet18, resnet26, resnet34, resnet50, resnet101, resnet152 and specs")
    return spec
