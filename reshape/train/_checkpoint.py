"""Checkpoints and metrics in a run directory, safe against crashes and foreign files.

``checkpoint.pt`` holds everything a run needs to continue bit-exactly: model,
optimizer, scheduler, the state of stateful loss hooks and callbacks, the RNG states
(python, numpy, torch, CUDA; under torchrun every rank's, each rank seeded apart) and the
number of completed epochs. It is written
atomically and read with ``torch.load(weights_only=True)``, so every entry is a
tensor or a plain container (RNG states are stored as lists and tensors for that).
``metrics.jsonl`` gets one JSON line per epoch.
"""
from __future__ import annotations

import json
import os
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..errors import OwnershipError, ReshapeError
from ..io import atomic_path, write_text
from ..runs import CHECKPOINT_FILE, METRICS_FILE, read_metrics

FORMAT = "reshape.train.checkpoint"
VERSION = 1


def rng_state() -> dict[str, Any]:
    py_version, py_internal, py_gauss = random.getstate()
    np_kind, np_keys, np_pos, np_has_gauss, np_gauss = np.random.get_state()
    return {
        "python": [py_version, list(py_internal), py_gauss],
        "numpy": [np_kind, np_keys.tolist(), np_pos, np_has_gauss, np_gauss],
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
    }


def set_rng_state(state: dict[str, Any]) -> None:
    py_version, py_internal, py_gauss = state["python"]
    random.setstate((py_version, tuple(py_internal), py_gauss))
    np_kind, np_keys, np_pos, np_has_gauss, np_gauss = state["numpy"]
    np.random.set_state((np_kind, np.array(np_keys, dtype=np.uint32), np_pos, np_has_gauss, np_gauss))
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def seed_all(seed: int) -> None:
    """Seed python, numpy and torch (all devices) so a run can be repeated."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def save_checkpoint(run_dir: str | os.PathLike[str], state: dict[str, Any]) -> None:
    """Write ``state`` (plus format tag and RNG states) atomically as the run's checkpoint."""
    payload = {"format": FORMAT, "version": VERSION, **state, "rng": rng_state()}
    with atomic_path(Path(run_dir, CHECKPOINT_FILE)) as tmp:
        torch.save(payload, tmp)


def load_checkpoint(run_dir: str | os.PathLike[str]) -> dict[str, Any]:
    """The run's checkpoint, or a ``ReshapeError`` when it is missing, damaged or foreign."""
    path = Path(run_dir, CHECKPOINT_FILE)
    if not path.is_file():
        raise ReshapeError(f"no {CHECKPOINT_FILE} in {run_dir} to resume from; start without $resume")
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch.load raises many types for a damaged or foreign file
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:120]
        raise OwnershipError(f"checkpoint {path} is damaged or not a reshape checkpoint ({first}); "
                             "move it away to start over, or pick another $out") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise OwnershipError(f"checkpoint {path} was not written by reshape's trainer; "
                             "move it away to start over, or pick another $out")
    if data.get("version") != VERSION:
        raise ReshapeError(f"checkpoint {path} has format version {data.get('version')!r}; "
                           f"this tool reads version {VERSION}")
    return data


def has_checkpoint(run_dir: str | os.PathLike[str]) -> bool:
    """Whether ``run_dir`` holds a checkpoint to resume (pass as ``run_epochs(..., resume=...)``)."""
    return Path(run_dir, CHECKPOINT_FILE).is_file()


def append_metrics(run_dir: str | os.PathLike[str], row: dict[str, Any]) -> None:
    """Append one epoch's metrics as a single line (one write, flushed to disk)."""
    with open(Path(run_dir, METRICS_FILE), "a", encoding="utf-8") as fh:
        fh.write(json.dumps(row) + "\n")
        fh.flush()
        os.fsync(fh.fileno())


def truncate_metrics(run_dir: str | os.PathLike[str], epochs: int) -> None:
    """Keep the lines of the first ``epochs`` epochs: a resumed run rewrites the rest."""
    rows = [r for r in read_metrics(run_dir) if r.get("epoch", 0) <= epochs]
    write_text(Path(run_dir, METRICS_FILE), "".join(json.dumps(r) + "\n" for r in rows))
