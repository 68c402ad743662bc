"""CIFAR-10/100 in torchvision's on-disk format: pickled batches under cifar-10-batches-py
or cifar-100-python. Downloading is torchvision's job and happens only on request.

The batches are pickles; they are read with an unpickler that can build nothing but
numpy arrays, so a tampered file cannot run code.
"""
from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import torch

from ..errors import ReshapeError

# What a CIFAR batch pickle legitimately references: numpy array reconstruction (under
# numpy 1 and numpy 2 module names) and the byte-string codec of protocol-2 pickles.
_ALLOWED = {("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
            ("numpy", "ndarray"), ("numpy", "dtype"), ("_codecs", "encode")}


class _ArrayUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in _ALLOWED:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name}")
        return super().find_class(module, name)


def locate(root: Path, preset: dict[str, Any]) -> Path | None:
    names = [name for files in preset["files"].values() for name in files]
    return next((root / sub for sub in preset["folders"]
                 if all((root / sub / name).is_file() for name in names)), None)


def wanted(preset: dict[str, Any]) -> str:
    names = [name for files in preset["files"].values() for name in files]
    return f"{preset['folders'][0]}/ with {', '.join(names)}"


def download(root: Path, preset: dict[str, Any]) -> None:
    """Fetch and unpack the archive into ``root`` with torchvision (checksums verified)."""
    import torchvision.datasets

    try:
        getattr(torchvision.datasets, preset["torchvision"])(str(root), train=True, download=True)
    except (OSError, RuntimeError) as exc:
        raise ReshapeError(f"downloading {preset['torchvision']} into {root} failed ({exc}); "
                           f"check the network or place the files there by hand") from None


def _batch(path: Path, label_key: str) -> tuple[torch.Tensor, torch.Tensor]:
    try:
        with open(path, "rb") as fh:
            entry = _ArrayUnpickler(fh, encoding="latin1").load()
        data, labels = entry["data"], entry[label_key]
        images = torch.from_numpy(data.reshape(-1, 3, 32, 32).copy())
        labels = torch.tensor(labels, dtype=torch.long)
    except (pickle.UnpicklingError, EOFError, OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise ReshapeError(f"{path} is not a readable CIFAR batch ({type(exc).__name__}: {exc}); "
                           f"delete it and fetch it again with $download") from None
    if images.dtype != torch.uint8 or len(images) != len(labels):
        raise ReshapeError(f"{path} is not a CIFAR batch: {len(images)} uint8 images of 3x32x32 "
                           f"expected to match {len(labels)} labels")
    return images, labels


def read(folder: Path, split: str, preset: dict[str, Any]) -> tuple[torch.Tensor, torch.Tensor]:
    """``(images N x 3 x 32 x 32 uint8, labels N)`` of ``split``, batches concatenated in order."""
    parts = [_batch(folder / name, preset["label_key"]) for name in preset["files"][split]]
    return torch.cat([p[0] for p in parts]), torch.cat([p[1] for p in parts])
