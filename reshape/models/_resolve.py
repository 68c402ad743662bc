"""Resolve what a user names on the command line into a model to analyse.

MODEL may be a run directory, a spec JSON file or a timm model name. A dataset
preset sets input size, channels, classes and, for timm models the spec format
expresses (plain ResNets, our families), the stem convention the published work uses
for that dataset. A spec file keeps its own stem. Any other timm model has only
timm's ImageNet stem, so a preset with the CIFAR stem is refused (``PresetError``)
rather than applied without its stem.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..analytic import scale_width, total_relus
from ..errors import ParamError, ReshapeError
from ..spec import ArchSpec, load_spec
from ..tables import dataset_preset
from ._registry import build
from ._timm import NotASpec, create, read_timm


class PresetError(ReshapeError):
    """A dataset preset that cannot be applied to the model named (a usage error: CLI exit 2)."""


@dataclass
class Resolved:
    model: nn.Module
    input_shape: tuple[int, int, int]
    spec: ArchSpec | None
    label: str


def apply_preset(spec: ArchSpec, preset: dict[str, Any], stem: bool = True) -> ArchSpec:
    """``spec`` sized for a dataset preset; with ``stem`` also in its stem convention."""
    from .resnet import with_stem

    if stem:
        spec = with_stem(spec, preset["stem"])
    return spec.replace(num_classes=preset["num_classes"], in_chans=preset["in_chans"],
                        input_size=preset["input_size"])


def resolve(model: str, dataset: str | None = None, input_size: int | None = None,
            weights: bool = True) -> Resolved:
    """The model MODEL names, sized by ``dataset``/``input_size``.

    ``weights=False`` is for shape-only work (counting): spec-built models without
    ReLU masks are then built on the meta device, skipping weight initialisation.
    """
    if input_size is not None and input_size < 1:
        raise ParamError("input_size", f"must be a positive integer, got {input_size}")
    preset = dataset_preset(dataset) if dataset else None
    path = Path(model)
    if path.is_dir():
        raise ReshapeError(f"{model} is a directory; models.resolve takes a model name or spec file "
                           "(reshape.runs.resolve_model_or_run also takes run directories)")
    if path.suffix == ".json" or path.is_file():
        return _from_spec(load_spec(path), preset, input_size, str(path), stem=False, weights=weights)
    try:
        spec = read_timm(model)
    except NotASpec as exc:
        if preset and preset["stem"] != "imagenet":
            raise PresetError(f"$dataset {dataset} sets the CIFAR stem (3x3 stride-1 conv, no max-pool), which "
                              f"cannot be applied: {exc.template}; count it with its ImageNet stem at the dataset's "
                              f"size with $input_size {preset['input_size']} instead of $dataset",
                              param="dataset") from None
    else:
        return _from_spec(spec, preset, input_size, model, stem=True, weights=weights)
    kwargs = {"num_classes": preset["num_classes"], "in_chans": preset["in_chans"]} if preset else {}
    with torch.device("cpu" if weights else "meta"):
        net = create(model, **kwargs)
    chans, size = _timm_input(net, preset)
    size = input_size or size
    return Resolved(net, (chans, size, size), None, model)


def _from_spec(spec: ArchSpec, preset: dict[str, Any] | None, input_size: int | None,
               label: str, stem: bool, weights: bool) -> Resolved:
    if preset:
        spec = apply_preset(spec, preset, stem=stem)
    if input_size:
        spec = spec.replace(input_size=input_size)
    return Resolved(build(spec) if weights else build_for_count(spec), spec.input_shape, spec, label)


def build_for_count(spec: ArchSpec) -> nn.Module:
    """``spec`` built for shape-only work (counting): on the meta device, skipping weight
    initialisation, except a masked spec, whose mask values decide its ReLU count."""
    masked = any(layer.state == "masked" for layer in spec.relus)
    with torch.device("cpu" if masked else "meta"):
        return build(spec)


def _timm_input(net: nn.Module, preset: dict[str, Any] | None) -> tuple[int, int]:
    if preset:
        return preset["in_chans"], preset["input_size"]
    cfg = getattr(net, "pretrained_cfg", None) or {}
    chans, height, _ = cfg.get("input_size", (3, 224, 224))
    return chans, height


def geometry_change(model_or_spec: str, dataset: str) -> str | None:
    """How ``dataset`` would resize the network a spec file describes (input size, channels,
    classes), with its ReLU count before and after; None for a timm name (sized by the
    dataset by design) or a spec of the dataset's geometry."""
    path = Path(model_or_spec)
    if path.suffix != ".json" and not path.is_file():
        return None
    before = load_spec(path)
    after = apply_preset(before, dataset_preset(dataset), stem=False)
    if after.input_shape == before.input_shape and after.num_classes == before.num_classes:
        return None
    old, new = total_relus(before), total_relus(after)
    return (f"{model_or_spec} is a {_geometry(before)} network with {old:,} ReLUs; on {dataset} it becomes "
            f"{_geometry(after)} with {new:,} ReLUs ({(new - old) / old:+.1%})")


def _geometry(spec: ArchSpec) -> str:
    return f"{'x'.join(map(str, spec.input_shape))}, {spec.num_classes}-class"


def spec_for(model_or_spec: str, dataset: str, width: int | None = None, retarget: bool = False) -> ArchSpec:
    """The spec to train for ``dataset``: a timm ResNet name or spec file, optionally narrowed.
    A spec file of another geometry is refused unless ``retarget``: it was designed for its
    ReLU count, which the dataset would change silently."""
    if Path(model_or_spec).is_dir():
        raise ReshapeError(f"{model_or_spec} is a directory; to retrain a run's architecture pass "
                           f"{Path(model_or_spec) / 'spec.json'}")
    change = None if retarget else geometry_change(model_or_spec, dataset)
    if change:
        raise ReshapeError(f"{change}; pass $retarget to train it so, or a dataset of its geometry")
    try:
        spec = resolve(model_or_spec, dataset, weights=False).spec
    except PresetError:  # a timm model the spec cannot express: the same answer for every dataset
        spec = None
    if spec is None:
        raise ReshapeError(f"'{model_or_spec}' is not a ResNet-family model this tool can build; "
                           "use resnet18/34/50/... or a spec JSON")
    return narrow(spec, width) if width is not None else spec


def narrow(spec: ArchSpec, width: int) -> ArchSpec:
    """``spec`` with stem and stage 1 ``width`` wide and later stages scaled by the same factor
    (DeepReDuce's width scale with alpha = width / stage-1 width)."""
    if width < 1:
        raise ParamError("width", f"must be a positive integer, got {width}")
    scaled = scale_width(spec, width / spec.stages[0].width)
    return scaled.replace(stem=dataclasses.replace(scaled.stem, width=width),
                          name=f"{spec.name}_w{width}" if spec.name else "")
