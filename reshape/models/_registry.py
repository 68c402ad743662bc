"""Build spec-built models through timm's builder and register the families in its registry.

Every model, whether from ``reshape.build(spec)`` or ``timm.create_model(name)``, is made
by ``timm.models.build_model_with_cfg``, so it carries a ``pretrained_cfg`` (one per
dataset preset, as tags: ``resnet18_cifar.cifar100``), timm's feature extraction
(``features_only``, ``out_indices``) and timm's standard kwargs (``drop_rate``,
``drop_path_rate``, ``global_pool``); anything else is refused by name.

After ``import reshape.models`` (which every entry point of the tool does),
``timm.create_model('resnet18_cifar', num_classes=100)`` and
``timm.create_model('reshape_spec', spec='net.json')`` work like any timm model.
"""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Callable

from timm.models import build_model_with_cfg, generate_default_cfgs, register_model, resolve_pretrained_cfg
from timm.models.resnet import ResNet

from ..errors import ReshapeError
from ..spec import ArchSpec, load_spec
from . import _cfg
from ._builder import build as construct

#: Keyword arguments a spec-built model takes (timm's standard ones); timm's builder itself
#: consumes ``features_only``, ``out_indices`` and ``feature_cls``.
MODEL_KWARGS = ("num_classes", "in_chans", "img_size", "global_pool", "drop_rate", "drop_path_rate")
FEATURE_KWARGS = ("features_only", "out_indices", "feature_cls")

GENERIC = "reshape_spec"

#: Families registered here: name -> their tags (dataset presets), the default first.
_TAGS: dict[str, list[str]] = {}


def register_family(name: str, make_spec: Callable[[], ArchSpec], module: str,
                    dataset: str = "cifar10") -> None:
    """Register ``name`` in timm; its entrypoint builds ``make_spec()`` (its structure) in the
    geometry of the chosen dataset preset.

    ``dataset`` is the family's default preset; every preset of the same stem convention
    becomes a tag (``name.cifar100``). ``make_spec`` is only called when a model is built.
    """
    tags = [dataset] + [d for d in _cfg.datasets(_cfg.dataset_preset(dataset)["stem"]) if d != dataset]
    _TAGS[name] = tags
    mod = sys.modules[module]
    if not hasattr(mod, "default_cfgs"):
        mod.default_cfgs = {}
    mod.default_cfgs.update(generate_default_cfgs(_cfg.tagged_cfgs(name, tags)))

    def entrypoint(pretrained: bool = False, **kwargs: Any) -> ResNet:
        return create_spec_model(name, make_spec(), pretrained, **kwargs)

    entrypoint.__name__ = entrypoint.__qualname__ = name
    entrypoint.__module__ = module
    entrypoint.__doc__ = f"reshape spec-built model '{name}'."
    register_model(entrypoint)


def build(spec: ArchSpec) -> ResNet:
    """A freshly initialised model for ``spec`` (CPU unless a device context says otherwise),
    with the pretrained cfg of the dataset preset its geometry matches."""
    return create_spec_model(GENERIC, spec)


def create_spec_model(variant: str, spec: ArchSpec, pretrained: bool = False,
                      pretrained_cfg: Any = None, pretrained_cfg_overlay: dict[str, Any] | None = None,
                      cache_dir: Any = None, pretrained_model_args: dict[str, Any] | None = None,
                      **kwargs: Any) -> Any:
    """``spec`` built through ``timm.models.build_model_with_cfg`` as model ``variant``.

    Without a tag or cfg, the cfg is the preset whose geometry is the one asked for (the
    spec's, changed by ``num_classes``/``in_chans``/``img_size``), so
    ``create_model('resnet18_cifar', num_classes=100)`` normalises like CIFAR-100.
    """
    unknown = sorted(set(kwargs) - set(MODEL_KWARGS) - set(FEATURE_KWARGS))
    if unknown:
        raise ReshapeError(f"'{variant}' got unknown argument {unknown[0]!r}"
                           f"{f' (and {len(unknown) - 1} more)' if len(unknown) > 1 else ''}; "
                           f"it takes {', '.join(MODEL_KWARGS + FEATURE_KWARGS)}")
    if pretrained_cfg is None:
        pretrained_cfg = _untagged_cfg(variant, spec, kwargs)
    cfg = resolve_pretrained_cfg(variant, pretrained_cfg, pretrained_cfg_overlay)
    if pretrained and not cfg.has_weights:
        raise ReshapeError(f"'{variant}' has no pretrained weights; train it with `reshape train`")
    return build_model_with_cfg(
        _construct, variant, pretrained, pretrained_cfg=cfg.to_dict(), cache_dir=cache_dir,
        feature_cfg={"out_indices": tuple(range(len(spec.stages) + 1))},  # the stem, then each stage
        pretrained_model_args=pretrained_model_args, spec=spec, **kwargs)


def _untagged_cfg(variant: str, spec: ArchSpec, kwargs: dict[str, Any]) -> Any:
    """The tag whose geometry is the one asked for; else the default cfg (a family's
    default tag, or for a bare spec, timm's normalisation) at that geometry."""
    tags = _TAGS.get(variant, _cfg.datasets())
    base = _cfg.geometry(tags[0]) if variant in _TAGS else (spec.in_chans, spec.input_size, spec.num_classes)
    geom = (kwargs.get("in_chans", base[0]), _side(kwargs.get("img_size", base[1])),
            kwargs.get("num_classes", base[2]))
    tag = _cfg.matching(geom, tags)
    if tag is not None:
        return tag
    return _cfg.data_cfg(geom, tags[0] if variant in _TAGS else None)


def _side(img_size: int | tuple[int, int] | list[int]) -> int:
    if isinstance(img_size, int):
        return img_size
    height, width = img_size
    if height != width:
        raise ReshapeError(f"spec-built models take square inputs; got img_size={tuple(img_size)}")
    return int(height)


def _construct(spec: ArchSpec, num_classes: int, in_chans: int, img_size: Any,
               global_pool: str = "avg", drop_rate: float = 0.0, drop_path_rate: float = 0.0) -> ResNet:
    """The model class timm's builder instantiates: ``spec`` in the geometry timm resolved."""
    spec = spec.replace(num_classes=num_classes, in_chans=in_chans, input_size=_side(img_size))
    return construct(spec, drop_rate=drop_rate, drop_path_rate=drop_path_rate, global_pool=global_pool)


def _as_spec(spec: ArchSpec | dict[str, Any] | str | Path | None) -> ArchSpec:
    if spec is None:
        raise ReshapeError(f"{GENERIC} needs spec=<ArchSpec, spec dict or path to a spec JSON>")
    if isinstance(spec, ArchSpec):
        return spec
    if isinstance(spec, dict):  # as timm's exported config.json stores it (model_args.spec)
        return ArchSpec.from_dict(spec)
    return load_spec(spec)


default_cfgs = generate_default_cfgs(_cfg.tagged_cfgs(GENERIC, _cfg.datasets()))


@register_model
def reshape_spec(pretrained: bool = False, spec: ArchSpec | dict[str, Any] | str | None = None,
                 **kwargs: Any) -> ResNet:
    """Any spec: ``timm.create_model('reshape_spec', spec=ArchSpec_dict_or_json_path)``; a tag
    (``reshape_spec.cifar100``) sets the dataset's geometry and normalisation."""
    return create_spec_model(GENERIC, _as_spec(spec), pretrained, **kwargs)
