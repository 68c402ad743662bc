"""IDX files (MNIST, Fashion-MNIST and the packaged mini set), gzip-compressed or raw.

The format: two zero bytes, a type code (0x08 = unsigned byte, the only one these sets
use), the number of dimensions, each dimension as a big-endian uint32, then the data.
"""
from __future__ import annotations

import gzip
import math
import os
import struct
import zlib
from pathlib import Path
from typing import Any

import torch

from ..errors import ReshapeError
from ..io import write_bytes

_UBYTE = 0x08


def read_idx(path: str | os.PathLike[str]) -> torch.Tensor:
    """The uint8 tensor stored in ``path`` (``.gz`` is decompressed)."""
    path = Path(path)
    try:
        with (gzip.open if path.suffix == ".gz" else open)(path, "rb") as fh:
            data = fh.read()
    except (OSError, EOFError, zlib.error) as exc:
        raise ReshapeError(f"cannot read IDX file {path}: {exc}; re-download it") from None
    if len(data) < 4 or data[:2] != b"\0\0" or data[2] != _UBYTE:
        raise ReshapeError(f"{path} is not an unsigned-byte IDX file (magic {data[:4].hex() or 'missing'}, "
                           f"expected 000008xx); re-download it")
    ndim = data[3]
    start = 4 + 4 * ndim
    if len(data) < start:
        raise ReshapeError(f"IDX file {path} is truncated inside its header; re-download it")
    dims = struct.unpack(f">{ndim}I", data[4:start])
    if len(data) - start != math.prod(dims):
        raise ReshapeError(f"IDX file {path} holds {len(data) - start} bytes of data but its header "
                           f"promises {'x'.join(map(str, dims))}; re-download it")
    return torch.frombuffer(bytearray(data[start:]), dtype=torch.uint8).reshape(dims)


def write_idx(path: str | os.PathLike[str], array: torch.Tensor) -> None:
    """Write a uint8 tensor as IDX, gzip-compressed (reproducibly: no timestamp) if ``path`` ends in .gz.

    How the packaged mini set is made (``scripts/make_fashion_mnist_mini.py``), and a way to
    hand your own uint8 images to the ``mnist`` / ``fashion-mnist`` readers.
    """
    path = Path(path)
    array = array.to(torch.uint8).contiguous()
    data = bytes([0, 0, _UBYTE, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    data += array.numpy().tobytes()
    write_bytes(path, gzip.compress(data, compresslevel=9, mtime=0) if path.suffix == ".gz" else data)


def _file(folder: Path, name: str) -> Path | None:
    return next((p for p in (folder / name, folder / f"{name}.gz") if p.is_file()), None)


def locate(root: Path, preset: dict[str, Any]) -> Path | None:
    """The folder under ``root`` holding every split's IDX files, raw or gz."""
    names = [name for files in preset["files"].values() for name in files]
    return next((root / sub for sub in preset["folders"]
                 if all(_file(root / sub, name) for name in names)), None)


def wanted(preset: dict[str, Any]) -> str:
    names = [name for files in preset["files"].values() for name in files]
    return f"IDX files {', '.join(names)} (raw or .gz)"


def read(folder: Path, split: str, preset: dict[str, Any]) -> tuple[torch.Tensor, torch.Tensor]:
    """``(images N x 1 x H x W, labels N)`` of ``split``, both uint8."""
    image_path, label_path = (_file(folder, name) for name in preset["files"][split])
    images, labels = read_idx(image_path), read_idx(label_path)
    if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
        raise ReshapeError(f"{image_path} ({tuple(images.shape)}) and {label_path} ({tuple(labels.shape)}) "
                           f"do not pair up as N images and N labels")
    return images.unsqueeze(1), labels
