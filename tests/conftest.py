"""Shared test setup: one CPU thread, and small specs built by hand so tests never download anything.

Tiny models gain nothing from threads, and on a shared 2-core machine spinning OpenMP
threads make the suite crawl. The environment is set before torch is first imported
(here, ahead of every test module), so worker subprocesses inherit it too.
"""
from __future__ import annotations

import os

os.environ["OMP_NUM_THREADS"] = "1"
os.environ["OMP_WAIT_POLICY"] = "PASSIVE"

import pytest  # noqa: E402
import torch  # noqa: E402

from _postgres import postgres_url  # noqa: E402,F401  (a session-wide throwaway PostgreSQL cluster)
from reshape.spec import ArchSpec, Stage, Stem  # noqa: E402

torch.set_num_threads(1)


@pytest.fixture
def resnet18_cifar_spec() -> ArchSpec:
    return ArchSpec(block="basic", stages=tuple(Stage(w, 2) for w in (64, 128, 256, 512)),
                    stem=Stem("cifar", 64, 1), num_classes=100, in_chans=3, input_size=32)


@pytest.fixture
def tiny_spec() -> ArchSpec:
    """A narrow 4-stage BasicBlock net on 1x16x16 input: cheap to build and run."""
    return ArchSpec(block="basic", stages=tuple(Stage(w, 1) for w in (4, 8, 8, 16)),
                    stem=Stem("cifar", 4, 1), num_classes=3, in_chans=1, input_size=16)
