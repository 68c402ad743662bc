"""Datasets by name, each a preset in ``reshape/tables/datasets.json``.

A preset fixes input size, channels, classes, normalisation, the stem convention, the
on-disk format, where files are looked for and the standard training augmentation.
Small sets (CIFAR, (Fashion-)MNIST, the packaged ``fashion-mnist-mini``) are decoded
once into uint8 tensors; image folders (TinyImageNet, ImageNet, any ImageFolder) are
decoded per item by torchvision.

    >>> from reshape import data
    >>> train = data.load("fashion-mnist-mini")                  # augmented
    >>> test = data.load("fashion-mnist-mini", "test")           # not augmented
    >>> image, label = train[0]; image.shape                     # torch.Size([1, 28, 28])
"""
from __future__ import annotations

import importlib
import os
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any, Iterator

import torch
from torch.utils.data import Dataset, Subset

from ..errors import ParamError, ReshapeError
from ..tables import dataset_preset
from ..tables import load as load_table
from ._idx import read_idx, write_idx
from ._memory import TensorImages

if TYPE_CHECKING:
    from ..spec import ArchSpec

__all__ = ["DATASETS", "SPLITS", "DatasetInfo", "TensorImages", "check_fits", "default_roots", "info",
           "load", "probe_batches", "read_idx", "Splits", "splits", "subset", "write_idx"]

DATASETS: tuple[str, ...] = tuple(load_table("datasets"))
#: Splits every dataset has; ``val`` is accepted as another name for ``test``.
SPLITS: tuple[str, ...] = ("train", "test")
#: Environment variable naming a folder searched first (DIR/<name>, then DIR).
DATA_ENV = "RESHAPE_DATA"


@dataclass(frozen=True)
class DatasetInfo:
    """What a model needs to know about its data: geometry, classes and normalisation."""

    name: str
    input_size: int
    in_chans: int
    num_classes: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    stem: str


def default_roots(name: str) -> list[Path]:
    """The folders searched, in order, when no root is given.

    ``$RESHAPE_DATA/<name>`` and ``$RESHAPE_DATA`` (if set), ``./data/<name>`` and
    ``./data`` (torchvision's habit), then the preset's system folders; the packaged
    mini set is found only in the package itself.
    """
    preset = dataset_preset(name)
    if "packaged" in preset:
        return [Path(__file__).resolve().parent / preset["packaged"]]
    bases = [Path(os.environ[DATA_ENV])] if os.environ.get(DATA_ENV) else []
    bases.append(Path("data"))
    roots = [path.absolute() for base in bases for path in (base / name, base)]
    return roots + [Path(p) for p in preset.get("roots", [])]


def info(name: str, root: str | None = None) -> DatasetInfo:
    """The preset of ``name``; an ``imagefolder``'s class count is read from its folder."""
    preset = dataset_preset(name)
    folder = _locate(name, preset, root) if preset["num_classes"] is None else None
    return _info(name, preset, folder)


def subset(dataset: Dataset, limit: int | None, seed: int = 0) -> Dataset:
    """At most ``limit`` items of ``dataset``, drawn by a seeded permutation (quick runs, tests)."""
    if limit is None or limit >= len(dataset):
        return dataset
    if limit < 1:
        raise ParamError("limit", f"must be a positive number of images, got {limit}")
    order = torch.randperm(len(dataset), generator=torch.Generator().manual_seed(seed))
    return Subset(dataset, order[:limit].tolist())


@dataclass(frozen=True, eq=False)
class Splits:
    """The training, validation and test splits one run reads, with what identifies them (``key``).

    Unpacks as ``train_set, test_set``. ``val`` (None without one) holds ``val_size``
    unaugmented images carved from the training split, which training never sees:
    settings are chosen on it, the test split only reports. ``key`` (name, limit, seed,
    test limit, validation size) is what a run's fingerprint records of its data; the
    folder it was read from is not part of it.
    """

    name: str
    train: Dataset
    test: Dataset | None
    limit: int | None = None
    seed: int = 0
    test_limit: int | None = None
    val: Dataset | None = None
    val_size: int = 0

    @property
    def key(self) -> dict[str, Any]:
        return {"dataset": self.name, "limit": self.limit, "seed": self.seed, "test_limit": self.test_limit,
                "val": self.val_size}

    def __iter__(self) -> Iterator[Dataset | None]:
        return iter((self.train, self.test))


def splits(name: str, root: str | None = None, limit: int | None = None, seed: int = 0,
           download: bool = False, test_limit: int | None = None, val: int = 0) -> Splits:
    """The (augmented training, test) splits of ``name``, cut to ``limit`` / ``test_limit``
    items by :func:`subset`: what every command that trains reads.

    With ``val`` images, a seeded permutation of the training split gives its first
    ``val`` to the validation split (augmentation off) and the rest, cut to ``limit``, to
    training; without, the training split is exactly as before validation existed.
    """
    whole = load(name, "train", root, download)
    validation = None
    if val:
        if isinstance(val, bool) or val < 0:
            raise ParamError("val", f"must be a number of validation images >= 0, got {val!r}")
        if val >= len(whole):
            raise ParamError("val", f"{val:,} leaves no training images: {name} has {len(whole):,}; "
                                    "give fewer validation images")
        order = torch.randperm(len(whole), generator=torch.Generator().manual_seed(seed)).tolist()
        validation = Subset(whole.unaugmented(), order[:val])
        rest = order[val:]
        train: Dataset = Subset(whole, rest[:limit] if limit is not None else rest)
    else:
        train = subset(whole, limit, seed)
    return Splits(name, train, subset(load(name, "test", root), test_limit, seed), limit, seed, test_limit,
                  validation, val)


def probe_batches(split: Dataset, n: int = 4, batch: int = 64) -> list[torch.Tensor]:
    """``n`` seeded batches of ``batch`` unaugmented images from ``split`` (from :func:`load`, or a
    :func:`subset` of one: then from its whole split), for estimators that run the model.

    The images come from what is already loaded, augmentation off: no second read of the split.
    """
    whole = split.dataset if isinstance(split, Subset) else split
    plain = whole.unaugmented()
    order = torch.randperm(len(plain), generator=torch.Generator().manual_seed(0))[: n * batch].tolist()
    return list(torch.stack([plain[i][0] for i in order]).split(batch))


def check_fits(spec: "ArchSpec", target: "DatasetInfo | ArchSpec", what: str, target_what: str,
               advice: str = "use a network trained on this dataset") -> None:
    """Refuse a network whose classes or input differ from ``target`` (a dataset preset or
    another network, e.g. the student of a teacher): one check for eval, KD and the methods."""
    def geometry(x: "DatasetInfo | ArchSpec") -> str:
        return f"{x.num_classes} classes from {x.in_chans}x{x.input_size}x{x.input_size} inputs"

    if geometry(spec) != geometry(target):
        raise ReshapeError(f"{what} predicts {geometry(spec)} but {target_what} {geometry(target)}; {advice}")


def load(name: str, split: str = "train", root: str | None = None, download: bool = False,
         augment: bool | None = None) -> Dataset:
    """The ``split`` of dataset ``name``: items are ``(C x H x W float tensor, int label)``.

    Files are looked for in ``root``, or in :func:`default_roots` when it is ``None``.
    ``download`` fetches CIFAR with torchvision first (nothing else is downloadable).
    ``augment`` (default: ``split == "train"``) applies the preset's training
    augmentation; otherwise images are only resized/centre-cropped and normalised.
    """
    preset = dataset_preset(name)
    split = _split(split)
    augment = split == "train" if augment is None else augment
    if download:
        _download(name, preset, root)
    folder = _locate(name, preset, root)
    meta = _info(name, preset, folder)
    policy = preset["augment"] if augment else None
    reader = _reader(preset)
    if hasattr(reader, "read"):
        images, labels = reader.read(folder, split, preset)
        dataset: Any = TensorImages(images, labels, meta.mean, meta.std, policy)
        classes = int(labels.max()) + 1 if len(labels) else 0
    else:
        from ._folder import transform

        dataset = reader.dataset(folder, split, transform(meta.input_size, meta.mean, meta.std,
                                                          preset["augment"], augment))
        dataset.plain_transform = transform(meta.input_size, meta.mean, meta.std, preset["augment"], False)
        classes = len(dataset.classes)
    if classes > meta.num_classes:
        raise ReshapeError(f"{folder} has labels for {classes} classes but the {name} preset has "
                           f"{meta.num_classes}; use the matching preset (imagefolder for your own folders)")
    return dataset


def _info(name: str, preset: dict[str, Any], folder: Path | None) -> DatasetInfo:
    num_classes = preset["num_classes"]
    if num_classes is None:
        num_classes = len(_reader(preset).classes(folder))
    return DatasetInfo(name=name, input_size=preset["input_size"], in_chans=preset["in_chans"],
                       num_classes=num_classes, mean=tuple(preset["mean"]), std=tuple(preset["std"]),
                       stem=preset["stem"])


def _reader(preset: dict[str, Any]) -> ModuleType:
    """The private module ``_<format>`` that reads this preset's files, imported on first use.

    Every reader has ``locate(root, preset)`` (the data folder under ``root``, or None)
    and ``wanted(preset)`` (what it looks for, for error messages), then either
    ``read(folder, split, preset)`` -> uint8 images and labels held in memory, or
    ``dataset(folder, split, transform)`` -> a Dataset decoding files per item.
    Downloadable formats add ``download(root, preset)``.
    """
    return importlib.import_module(f"._{preset['format']}", __name__)


def _split(split: str) -> str:
    split = "test" if split == "val" else split
    if split not in SPLITS:
        raise ReshapeError(f"unknown split '{split}'; choose train or test (val means test)")
    return split


def _search_roots(name: str, root: str | None) -> list[Path]:
    return [Path(root).expanduser()] if root is not None else default_roots(name)


def _locate(name: str, preset: dict[str, Any], root: str | None) -> Path:
    reader = _reader(preset)
    roots = _search_roots(name, root)
    for candidate in roots:
        found = reader.locate(candidate, preset)
        if found is not None:
            return found
    raise ReshapeError(f"dataset {name} not found: looked for {reader.wanted(preset)} in "
                       f"{', '.join(map(str, roots))}; to get it: {preset['get']}")


def _download(name: str, preset: dict[str, Any], root: str | None) -> None:
    reader = _reader(preset)
    if not hasattr(reader, "download"):
        downloadable = [n for n in DATASETS if hasattr(_reader(dataset_preset(n)), "download")]
        raise ReshapeError(f"{name} cannot be downloaded by reshape (only {', '.join(downloadable)}); "
                           f"to get it: {preset['get']}")
    target = _search_roots(name, root)[0]
    if reader.locate(target, preset) is None:
        reader.download(target, preset)
