"""Shared fixtures: small specs built by hand so tests never download anything."""
from __future__ import annotations

import pytest

from reshape.spec import ArchSpec, Stage, Stem


@pytest.fixture
def resnet18_cifar_spec() -> ArchSpec:
    return ArchSpec(block="basic", stages=tuple(Stage(w, 2) for w in (64, 128, 256, 512)),
                    stem=Stem("cifar", 64, 1), num_classes=100, in_chans=3, input_size=32)


@pytest.fixture
def tiny_spec() -> ArchSpec:
    """A narrow 4-stage BasicBlock net on 1x16x16 input: cheap to build and run."""
    return ArchSpec(block="basic", stages=tuple(Stage(w, 1) for w in (4, 8, 8, 16)),
                    stem=Stem("cifar", 4, 1), num_classes=3, in_chans=1, input_size=16)
