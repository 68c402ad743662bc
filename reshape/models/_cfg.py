"""timm pretrained cfgs for spec-built models, made from the dataset presets.

A spec-built family has no weights, but timm's data pipeline (``resolve_data_config``,
its train and validate scripts) reads input size, normalisation and crop from the model's
``pretrained_cfg``. Each family therefore gets one cfg per dataset preset, as a timm tag
(``hybrenet_5x5x3x_m16.cifar100``): the preset's geometry (channels, side, classes) and its
mean/std and crop, read from ``reshape/tables/datasets.json`` so the constants stay data.
"""
from __future__ import annotations

from typing import Any, Iterable

from ..spec import ArchSpec
from ..tables import dataset_preset
from ..tables import load as load_table

#: How eval images are resized (torchvision's ``Resize`` default, used by ``reshape.data``).
INTERPOLATION = "bilinear"

NO_WEIGHTS = "reshape spec-built network; no weights: train it with `reshape train`"

Geometry = tuple[int, int, int]  # (in_chans, side, num_classes)


def datasets(stem: str | None = None) -> list[str]:
    """Presets with a fixed class count (``imagefolder`` counts its classes from files),
    optionally only those of one stem convention, in table order."""
    return [name for name, p in load_table("datasets").items()
            if p["num_classes"] is not None and stem in (None, p["stem"])]


def geometry(dataset: str) -> Geometry:
    p = dataset_preset(dataset)
    return p["in_chans"], p["input_size"], p["num_classes"]


def data_cfg(geom: Geometry, dataset: str | None) -> dict[str, Any]:
    """A timm pretrained cfg for a network of geometry ``geom``; normalisation and crop from
    ``dataset``'s preset, or timm's defaults (ImageNet's) when no preset describes it.

    ``fixed_input_size``: ReLU counts and neuron masks hold for one input size, so timm
    passes the cfg's size to the builder (``img_size``) and keeps data configs to it.
    """
    in_chans, side, num_classes = geom
    cfg: dict[str, Any] = {
        "input_size": (in_chans, side, side), "fixed_input_size": True, "num_classes": num_classes,
        "interpolation": INTERPOLATION, "crop_pct": 1.0, "first_conv": "conv1", "classifier": "fc",
    }
    if dataset is not None:
        p = dataset_preset(dataset)
        cfg.update(mean=tuple(p["mean"]), std=tuple(p["std"]), crop_pct=p["augment"].get("crop_pct", 1.0))
    return cfg


def spec_cfg(spec: ArchSpec, dataset: str | None) -> dict[str, Any]:
    """The pretrained cfg of ``spec`` (its geometry) used on ``dataset`` (its normalisation)."""
    return {**data_cfg((spec.in_chans, spec.input_size, spec.num_classes), dataset), "tag": dataset,
            "description": "reshape spec-built network: the spec is model_args.spec; "
                           "`import reshape.models` registers reshape_spec in timm"}


def matching(geom: Geometry, names: Iterable[str]) -> str | None:
    """The first preset in ``names`` whose geometry is ``geom``, else None."""
    return next((name for name in names if geometry(name) == geom), None)


def tagged_cfgs(arch: str, names: list[str]) -> dict[str, dict[str, Any]]:
    """``{'arch.dataset': cfg}`` for ``timm.models.generate_default_cfgs``; the first is the default."""
    return {f"{arch}.{name}": {**data_cfg(geometry(name), name), "description": NO_WEIGHTS} for name in names}
