"""Register spec-built model families in timm's registry.

After ``import reshape.models`` (which every entry point of the tool does),
``timm.create_model('resnet18_cifar', num_classes=100)`` and
``timm.create_model('reshape_spec', spec='net.json')`` work like any timm model.
"""
from __future__ import annotations

from typing import Any, Callable

from timm.models import register_model

from ..errors import ReshapeError
from ..spec import ArchSpec, load_spec
from ._builder import build

#: Overrides that ``timm.create_model(..., key=value)`` may pass through to the spec.
SPEC_KWARGS = ("num_classes", "in_chans", "input_size")


def register_family(name: str, make_spec: Callable[[], ArchSpec], module: str) -> None:
    """Register ``name`` in timm; its entrypoint builds ``make_spec()`` with kwargs applied."""

    def entrypoint(pretrained: bool = False, **kwargs: Any):
        if pretrained:
            raise ReshapeError(f"'{name}' has no pretrained weights; train it with `reshape train`")
        return build(_with_overrides(make_spec(), kwargs))

    entrypoint.__name__ = entrypoint.__qualname__ = name
    entrypoint.__module__ = module
    entrypoint.__doc__ = f"reshape spec-built model '{name}'."
    register_model(entrypoint)


def _with_overrides(spec: ArchSpec, kwargs: dict[str, Any]) -> ArchSpec:
    return spec.replace(**{k: kwargs[k] for k in SPEC_KWARGS if k in kwargs})


@register_model
def reshape_spec(pretrained: bool = False, spec: ArchSpec | str | None = None, **kwargs: Any):
    """Any spec: ``timm.create_model('reshape_spec', spec=ArchSpec_or_json_path)``."""
    if spec is None:
        raise ReshapeError("reshape_spec needs spec=<ArchSpec or path to a spec JSON>")
    if pretrained:
        raise ReshapeError("reshape_spec has no pretrained weights")
    if not isinstance(spec, ArchSpec):
        spec = load_spec(spec)
    return build(_with_overrides(spec, kwargs))
