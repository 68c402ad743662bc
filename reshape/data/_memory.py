"""Small datasets held in memory as uint8 tensors.

Fashion-MNIST, MNIST, CIFAR and the packaged mini set fit in RAM many times over, so
decoding happens once and an epoch's per-item work is one random crop, one flip and
one affine normalisation of a tiny tensor: cheap enough for CPU-only training.
"""
from __future__ import annotations

import copy
from typing import Any, Sequence

import torch
import torch.nn.functional as F
from torch.utils.data import Dataset


class TensorImages(Dataset):
    """``(C x H x W float image normalised by mean/std, int label)`` items from uint8 tensors.

    ``augment`` is a ``pad-crop`` policy from ``datasets.json`` (zero padding, random
    crop back to size, optional horizontal flip) or ``None`` for evaluation. Randomness
    comes from torch's global generator, so a trainer that saves and restores RNG state
    replays the same augmentations.
    """

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, mean: Sequence[float],
                 std: Sequence[float], augment: dict[str, Any] | None = None) -> None:
        if images.dtype != torch.uint8 or images.ndim != 4 or len(images) != len(labels):
            raise ValueError("images must be uint8 N x C x H x W with one label per image")
        self.images = images
        self.labels = labels.long()
        std_t = torch.tensor(std, dtype=torch.float32).view(-1, 1, 1)
        self._scale = 1.0 / (255.0 * std_t)
        self._shift = -torch.tensor(mean, dtype=torch.float32).view(-1, 1, 1) / std_t
        self.padding = int(augment["padding"]) if augment else 0
        self.flip = bool(augment and augment["flip"])

    def __len__(self) -> int:
        return len(self.images)

    def unaugmented(self) -> "TensorImages":
        """These items without augmentation, sharing the decoded tensors."""
        plain = copy.copy(self)
        plain.padding, plain.flip = 0, False
        return plain

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        image = self.images[index]
        if self.padding:
            pad, (height, width) = self.padding, image.shape[-2:]
            top, left = torch.randint(0, 2 * pad + 1, (2,)).tolist()
            image = F.pad(image, (pad, pad, pad, pad))[:, top:top + height, left:left + width]
        if self.flip and torch.randint(2, ()).item():
            image = image.flip(-1)
        return image.float().mul_(self._scale).add_(self._shift), int(self.labels[index])
