"""Run directories: where a spec and its trained weights (masks included) live together.

Layout: ``spec.json`` (the architecture), ``model.safetensors`` (weights and ReLU
masks). The trainer adds its checkpoint and metrics beside them. A run rewritten by
graph passes (shallow blocks) adds ``graph.json``, the rewrite steps replayed on load.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
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
    _require_run_dir(path)
    if weights and (path / GRAPH_FILE).is_file():
        from .graph.recipe import load_rewritten

        spec, rewritten = load_rewritten(path)
        return spec, rewritten.to_module()
    spec = load_spec(path / SPEC_FILE)
    model = build(spec)
    if weights and (path / WEIGHTS_FILE).is_file():
        load_weights(model, path / WEIGHTS_FILE)
    return spec, model


@dataclass(frozen=True)
class TrainedRun:
    """A run directory loaded with its trained weights.

    ``trained_on`` is the dataset its training config records ("" when it records none);
    ``dataset`` is the one the run is used on: the one asked for, else ``trained_on``.
    """

    path: Path
    spec: ArchSpec
    model: nn.Module
    trained_on: str
    dataset: str

    def need_dataset(self, option: str, purpose: str = "") -> str:
        """``dataset``, or a one-line error naming the ``option`` that supplies it."""
        if not self.dataset:
            raise ReshapeError(f"{self.path} does not record its dataset; pass {option} NAME{purpose}")
        return self.dataset


def load_trained(path: str | os.PathLike[str], dataset: str | None = None, root: str | None = None,
                 what: str | None = None, check: bool = True) -> TrainedRun:
    """Run ``path`` with its trained weights, for use on ``dataset`` (default: the one it was trained on).

    One loader for eval, teachers, the budget methods and export, so a missing training
    or a network of other classes or input fails the same way everywhere. With ``check``
    the network must fit the dataset's classes and input (``root`` locates its files when
    the preset counts classes from a folder); ``what`` names the run in errors.
    """
    from .data import check_fits, info
    from .train import load_config

    path = Path(path)
    what = what or str(path)
    _require_run_dir(path)
    if not (path / WEIGHTS_FILE).is_file():
        raise ReshapeError(f"{what} has no trained weights ({WEIGHTS_FILE}); train it first")
    spec, model = load_run(path)
    config = load_config(path)
    trained_on = config.dataset if config else ""
    used = dataset or trained_on
    if check and used:
        check_fits(spec, info(used, root), what, f"{used} needs", "pass the dataset it was trained on")
    return TrainedRun(path, spec, model, trained_on, used)


def _require_run_dir(path: Path) -> None:
    if not is_run_dir(path):
        raise ReshapeError(f"{path} is not a run directory (no {SPEC_FILE}); "
                           "create one with `reshape train ... --out DIR`")


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
