"""Run directories: where a spec and its trained weights (masks included) live together.

Layout: ``spec.json`` (the architecture), ``model.safetensors`` (weights and ReLU
masks). The trainer adds its checkpoint and metrics beside them. A run rewritten by
graph passes (shallow blocks) adds ``graph.json``, the rewrite steps replayed on load.
"""
from __future__ import annotations

import os
from pathlib import Path

from torch import nn

from .errors import ReshapeError
from .spec import ArchSpec, load_spec

SPEC_FILE = "spec.json"
WEIGHTS_FILE = "model.safetensors"
GRAPH_FILE = "graph.json"


def is_run_dir(path: str | os.PathLike[str]) -> bool:
    return Path(path, SPEC_FILE).is_file()


def load_run(path: str | os.PathLike[str], weights: bool = True) -> tuple[ArchSpec, nn.Module]:
    """The spec and model of a run directory, with its saved weights when there are any.

    A rewritten run (``graph.json``) loads as its rewritten module; ``weights=False``
    always gives the network the spec describes, freshly built.
    """
    from .models import build

    path = Path(path)
    if not is_run_dir(path):
        raise ReshapeError(f"{path} is not a run directory (no {SPEC_FILE}); "
                           "create one with `reshape train ... --out DIR`")
    if weights and (path / GRAPH_FILE).is_file():
        from .graph.recipe import load_rewritten

        spec, rewritten = load_rewritten(path)
        return spec, rewritten.to_module()
    spec = load_spec(path / SPEC_FILE)
    model = build(spec)
    if weights and (path / WEIGHTS_FILE).is_file():
        load_weights(model, path / WEIGHTS_FILE)
    return spec, model


def load_weights(model: nn.Module, file: str | os.PathLike[str]) -> None:
    """Load safetensors weights, failing clearly when they belong to another network."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        state = load_file(str(file))
    except (SafetensorError, OSError) as exc:
        raise ReshapeError(f"cannot read weights {file}: {exc}") from None
    own = model.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    wrong = sorted(k for k in set(own) & set(state) if own[k].shape != state[k].shape)
    if missing or unexpected or wrong:
        first = (missing or unexpected or wrong)[0]
        kind = "missing" if missing else "unexpected" if unexpected else "shape mismatch at"
        raise ReshapeError(f"weights {file} do not match the spec ({kind} '{first}'"
                           f" and {len(missing) + len(unexpected) + len(wrong) - 1} more)")
    model.load_state_dict(state)


def save_weights(model: nn.Module, file: str | os.PathLike[str]) -> None:
    from safetensors.torch import save_file

    from .io import atomic_path

    state = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    with atomic_path(file) as tmp:
        save_file(state, str(tmp))
