"""Image files on disk, shared by the ImageFolder and TinyImageNet readers.

Both decode with torchvision's ImageFolder machinery. Labels number the train split's
classes in sorted order and every split reuses that numbering, so a validation folder
that lacks a class (or lists its images in an annotation file, as TinyImageNet's does)
still labels each image as training did.
"""
from __future__ import annotations

import copy
from pathlib import Path
from typing import Any, Callable

from torchvision.datasets import ImageFolder

from ..errors import ReshapeError


class LabelledImages(ImageFolder):
    """An ImageFolder with a fixed class list; ``annotations`` (file name -> class) reads
    a flat ``images/`` folder instead of one folder per class. ``plain_transform`` (set by
    ``reshape.data.load``) is the transform without augmentation."""

    plain_transform: Callable[..., Any] | None = None

    def __init__(self, root: Path, classes: list[str], transform: Callable[..., Any],
                 annotations: dict[str, str] | None = None) -> None:
        self._fixed = classes
        self._annotations = annotations
        super().__init__(str(root), transform=transform, allow_empty=True)
        if not self.samples:
            raise ReshapeError(f"no images found in {root}")

    def unaugmented(self) -> "LabelledImages":
        """These items without augmentation, sharing the file list."""
        plain = copy.copy(self)
        plain.transform = self.plain_transform
        return plain

    def find_classes(self, directory: str) -> tuple[list[str], dict[str, int]]:
        return self._fixed, {name: i for i, name in enumerate(self._fixed)}

    def make_dataset(self, directory: str, class_to_idx: dict[str, int], *args: Any,
                     **kwargs: Any) -> list[tuple[str, int]]:
        if self._annotations is None:
            return super().make_dataset(directory, class_to_idx, *args, **kwargs)
        return [(str(Path(directory) / "images" / name), class_to_idx[wnid])
                for name, wnid in self._annotations.items()]


def transform(size: int, mean: tuple[float, ...], std: tuple[float, ...], policy: dict[str, Any],
              augment: bool) -> Callable[..., Any]:
    """PIL image -> normalised tensor under a ``datasets.json`` augmentation policy."""
    from torchvision import transforms as T

    flip = [T.RandomHorizontalFlip()] if policy["flip"] else []
    if policy["kind"] == "resized-crop":
        steps = ([T.RandomResizedCrop(size), *flip] if augment
                 else [T.Resize(round(size / policy["crop_pct"])), T.CenterCrop(size)])
    else:
        steps = ([T.RandomCrop(size, padding=policy["padding"], pad_if_needed=True), *flip] if augment
                 else [T.CenterCrop(size)])
    return T.Compose([*steps, T.ToTensor(), T.Normalize(mean, std)])
