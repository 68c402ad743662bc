"""ImageFolder trees (ImageNet and any other): DIR/train/<class>/..., DIR/val/<class>/...
(or DIR/test/). Classes are the train folder's subfolders, sorted."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from torchvision.datasets.folder import find_classes

from ..errors import ReshapeError
from ._folder import LabelledImages

_EVAL_FOLDERS = ("val", "test")


def _eval_folder(root: Path) -> Path | None:
    return next((root / name for name in _EVAL_FOLDERS if (root / name).is_dir()), None)


def locate(root: Path, preset: dict[str, Any]) -> Path | None:
    return next((root / sub for sub in preset["folders"]
                 if (root / sub / "train").is_dir() and _eval_folder(root / sub)), None)


def wanted(preset: dict[str, Any]) -> str:
    return "train/<class>/ and val/<class>/ (or test/<class>/) image folders"


def classes(folder: Path) -> list[str]:
    """The class names: the train split's subfolders, sorted."""
    try:
        return find_classes(str(folder / "train"))[0]
    except FileNotFoundError as exc:
        raise ReshapeError(f"{folder / 'train'}: {exc}") from None


def dataset(folder: Path, split: str, transform: Callable[..., Any]) -> LabelledImages:
    return LabelledImages(folder / "train" if split == "train" else _eval_folder(folder),
                          classes(folder), transform)
