"""Regenerate the packaged ``fashion-mnist-mini`` set from the full Fashion-MNIST.

The subset is the first 600 training and first 100 test images of each class, in the
official files' order, so it is the same on every machine. Files are written as
gzip-compressed IDX with no timestamp (byte-identical on reruns) and their SHA-256
sums printed, to compare with docs/data.md.

    python scripts/make_fashion_mnist_mini.py [--source /usr/share/datasets/fashion-mnist]
"""
from __future__ import annotations

import argparse
import hashlib
from pathlib import Path

import torch

from reshape.data import default_roots
from reshape.data._idx import read, write_idx
from reshape.tables import dataset_preset

PER_CLASS = {"train": 600, "test": 100}


def first_per_class(labels: torch.Tensor, count: int) -> torch.Tensor:
    """Indices of the first ``count`` items of every class, in file order."""
    keep = torch.cat([torch.nonzero(labels == c).flatten()[:count] for c in labels.unique()])
    return keep.sort().values


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--source", type=Path, default=Path("/usr/share/datasets/fashion-mnist"),
                        help="folder with the four official Fashion-MNIST IDX files (raw or .gz)")
    args = parser.parse_args()
    preset = dataset_preset("fashion-mnist-mini")
    target = default_roots("fashion-mnist-mini")[0]
    for split, count in PER_CLASS.items():
        images, labels = read(args.source, split, preset)
        keep = first_per_class(labels, count)
        for name, array in zip(preset["files"][split], (images[keep].squeeze(1), labels[keep])):
            path = target / f"{name}.gz"
            write_idx(path, array)
            print(f"{hashlib.sha256(path.read_bytes()).hexdigest()}  {path.name}  {tuple(array.shape)}")


if __name__ == "__main__":
    main()
