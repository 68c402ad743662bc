"""Rewrites as data: linearize/merge steps replayed on a freshly built model.

A rewritten model (linearized blocks in padding-exact form, merged convs) has no
ArchSpec of its own. It saves as its spec + ``graph.json`` (the steps) +
``model.safetensors`` (the rewritten model's weights): loading builds the spec,
replays the steps (each merge re-checked) and loads the weights. No pickled code.

    {"schema_version": 1, "steps": [
      {"op": "linearize", "blocks": ["layer1.0"], "padding": "exact"},
      {"op": "merge", "blocks": ["layer1.0"], "mode": "compact", "k": 3}]}
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from torch import nn

from ..errors import ReshapeError
from .ir import ModelGraph, trace
from .passes import MODES, PADDINGS, linearize, merge_blocks

SCHEMA_VERSION = 1
OPS = ("linearize", "merge")


@dataclass(frozen=True)
class Step:
    """One rewrite: ``linearize`` blocks (``padding``) or ``merge`` them (``mode``, ``k``)."""

    op: str
    blocks: tuple[str, ...]
    padding: str = "exact"
    mode: str = "exact"
    k: int = 3

    def to_dict(self) -> dict[str, Any]:
        d = {**asdict(self), "blocks": list(self.blocks)}
        drop = ("mode", "k") if self.op == "linearize" else ("padding",)
        return {key: v for key, v in d.items() if key not in drop}


def replay(model: nn.Module, input_shape: tuple[int, ...], steps: list[Step]) -> ModelGraph:
    """Trace ``model`` and apply ``steps`` in order (merges were verified when the steps were
    made; here they only rebuild the structure that the saved weights fill)."""
    mg = trace(model, input_shape)
    for step in steps:
        if step.op == "linearize":
            mg = linearize(mg, step.blocks, step.padding)
        else:
            mg, _ = merge_blocks(mg, step.blocks, step.mode, step.k, check=False)
    return mg


def parse_steps(data: Any, where: str) -> list[Step]:
    """The rewrite steps read from ``where`` (``graph.json``); every malformed field is a
    ReshapeError naming it. Files are read and written by ``reshape.runs``."""
    if not isinstance(data, dict) or data.get("schema_version") != SCHEMA_VERSION:
        raise ReshapeError(f"{where}: schema_version must be {SCHEMA_VERSION}")
    steps = data.get("steps")
    if not isinstance(steps, list):
        raise ReshapeError(f"{where}: 'steps' must be a list")
    return [_step(where, i, s) for i, s in enumerate(steps)]


def _step(path: str, i: int, raw: Any) -> Step:
    where = f"{path}: steps[{i}]"
    if not isinstance(raw, dict) or set(raw) - {"op", "blocks", "padding", "mode", "k"}:
        raise ReshapeError(f"{where} must be an object with op, blocks and padding or mode/k")
    blocks = raw.get("blocks")
    if not isinstance(blocks, list) or not all(isinstance(b, str) for b in blocks):
        raise ReshapeError(f"{where}.blocks must be a list of block names")
    for key, choices in (("op", OPS), ("padding", PADDINGS), ("mode", MODES)):
        if (key in raw or key == "op") and raw.get(key) not in choices:
            raise ReshapeError(f"{where}.{key} must be one of {', '.join(choices)}, got {raw.get(key)!r}")
    if not isinstance(raw.get("k", 3), int) or raw.get("k", 3) < 1:
        raise ReshapeError(f"{where}.k must be a positive integer")
    return Step(**{**raw, "blocks": tuple(blocks)})

