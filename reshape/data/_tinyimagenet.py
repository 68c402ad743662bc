"""TinyImageNet's standard layout: wnids.txt, train/<wnid>/images/*.JPEG, and the
labelled validation split as val/images/*.JPEG listed in val/val_annotations.txt."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from ..errors import ReshapeError
from ._folder import LabelledImages


def locate(root: Path, preset: dict[str, Any]) -> Path | None:
    return next((root / sub for sub in preset["folders"]
                 if (root / sub / "wnids.txt").is_file() and (root / sub / "train").is_dir()
                 and (root / sub / "val" / "val_annotations.txt").is_file()), None)


def wanted(preset: dict[str, Any]) -> str:
    return f"{preset['folders'][0]}/ with wnids.txt, train/<wnid>/images/ and val/val_annotations.txt"


def _val_annotations(path: Path, classes: list[str]) -> dict[str, str]:
    known, annotations = set(classes), {}
    for number, line in enumerate(path.read_text().splitlines(), 1):
        fields = line.split("\t")
        if len(fields) < 2 or fields[1] not in known:
            raise ReshapeError(f"{path} line {number}: expected '<file>\\t<wnid from wnids.txt>\\t...', "
                               f"got {line[:60]!r}")
        annotations[fields[0]] = fields[1]
    return annotations


def dataset(folder: Path, split: str, transform: Callable[..., Any]) -> LabelledImages:
    """``train`` or the labelled ``val`` split (TinyImageNet's test split has no labels)."""
    classes = sorted((folder / "wnids.txt").read_text().split())
    if split == "train":
        return LabelledImages(folder / "train", classes, transform)
    return LabelledImages(folder / "val", classes, transform,
                          _val_annotations(folder / "val" / "val_annotations.txt", classes))
