"""Plain ResNets in the CIFAR convention of the PI literature (3x3 stride-1 stem, no max-pool).

``resnet18_cifar`` is the 557,056-ReLU ResNet18 every PI paper reports against.
"""
from __future__ import annotations

from ..spec import ArchSpec, Stem
from ._registry import register_family
from ._timm import require_plain_resnet

#: timm ResNets that get a CIFAR-stem twin in timm's registry.
CIFAR_FAMILIES = ("resnet18", "resnet34", "resnet50")


def with_stem(spec: ArchSpec, kind: str) -> ArchSpec:
    """``spec`` with the stem convention ``kind`` (cifar: 3x3/1, no pool; imagenet: 7x7/2 + pool)."""
    stride = 1 if kind == "cifar" else 2
    return spec.replace(stem=Stem(kind=kind, width=spec.stem.width, stride=stride))


def cifar_spec(base: str) -> ArchSpec:
    spec = with_stem(require_plain_resnet(base), "cifar")
    return spec.replace(input_size=32, num_classes=10, name=f"{base}_cifar")


for _base in CIFAR_FAMILIES:
    register_family(f"{_base}_cifar", lambda base=_base: cifar_spec(base), __name__)
