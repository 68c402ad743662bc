"""The layout of a run directory: its file names, and what makes a folder a run.

The one module that names the files; the manifest, the loaders and the summaries read
the names from here.
"""
from __future__ import annotations

import os
from pathlib import Path

from ..errors import ReshapeError

SPEC_FILE = "spec.json"
WEIGHTS_FILE = "model.safetensors"
GRAPH_FILE = "graph.json"
MANIFEST_FILE = "run.json"
CONFIG_FILE = "train_config.json"
CHECKPOINT_FILE = "checkpoint.pt"
METRICS_FILE = "metrics.jsonl"

#: The files that make a folder a run directory written by some version of this tool.
RUN_MARKERS = (MANIFEST_FILE, SPEC_FILE, CHECKPOINT_FILE)
#: What any command may write into a run directory it owns (glob patterns): the layout and
#: measurements (``pi_<protocol>_<field>.json``); temporary files and the lock aside.
RUN_FILES = (MANIFEST_FILE, SPEC_FILE, WEIGHTS_FILE, GRAPH_FILE, CONFIG_FILE, CHECKPOINT_FILE, METRICS_FILE,
             "pi_*.json")
#: Files that make a folder the run of a network (its manifest aside).
NETWORK_FILES = (SPEC_FILE, WEIGHTS_FILE, CHECKPOINT_FILE)


def is_run_dir(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` holds a network to load (its spec), whatever wrote it."""
    return Path(path, SPEC_FILE).is_file()


def require_run_dir(path: Path) -> None:
    """One clear error for a folder that is not a run (no spec), before anything reads it."""
    if not is_run_dir(path):
        raise ReshapeError(f"{path} is not a run directory (no {SPEC_FILE}); "
                           "train a network into it first (reshape train, or reshape.train.fit)")
