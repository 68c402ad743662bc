"""Loading and saving what a run holds: weights, the rewrite steps of ``graph.json``, a run's
network (``load_run``), a trained run (``load_trained``), and a model named or a run (``resolve``).
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

from torch import nn

from ..errors import ReshapeError
from ..io import read_json, write_bytes, write_json
from ..spec import ArchSpec, load_spec, save_spec
from ._layout import GRAPH_FILE, SPEC_FILE, WEIGHTS_FILE, require_run_dir
from ._manifest import RunDir

if TYPE_CHECKING:  # models imports timm: loaded when a network is built, not with this module
    from ..models import Resolved


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
    """Write the weights through ``reshape.io`` (safetensors' own ``save_file`` writes a
    temporary file of its own, 0600, that an interrupted run could not name or clean up)."""
    from safetensors.torch import save

    state = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    write_bytes(file, save(state))


# -- rewritten runs (graph.json) ---------------------------------------------------------------
def save_rewrite_steps(run_dir: str | os.PathLike[str], steps: list[Any]) -> None:
    from ..graph.rewrite import SCHEMA_VERSION

    write_json(Path(run_dir, GRAPH_FILE),
               {"schema_version": SCHEMA_VERSION, "steps": [s.to_dict() for s in steps]})


def load_rewrite_steps(run_dir: str | os.PathLike[str]) -> list[Any]:
    """The rewrite steps of ``run_dir/graph.json``; a malformed file is one clear error."""
    from ..graph.rewrite import parse_steps

    path = Path(run_dir, GRAPH_FILE)
    return parse_steps(read_json(path, "graph rewrite steps"), str(path))


def save_rewritten(run_dir: str | os.PathLike[str], spec: ArchSpec, steps: list[Any], mg: Any) -> None:
    """Write spec.json, graph.json and model.safetensors of a rewritten model."""
    save_spec(spec, Path(run_dir, SPEC_FILE))
    save_rewrite_steps(run_dir, steps)
    save_weights(mg.to_module(), Path(run_dir, WEIGHTS_FILE))


def load_rewritten(run_dir: str | os.PathLike[str]) -> tuple[ArchSpec, Any]:
    """The spec and rewritten graph (a ``ModelGraph``) of a run with ``graph.json``, weights loaded."""
    from ..graph.rewrite import replay

    spec, model = load_run(run_dir, weights=False)
    mg = replay(model, spec.input_shape, load_rewrite_steps(run_dir))
    load_weights(mg.to_module(), Path(run_dir, WEIGHTS_FILE))
    return spec, mg


def load_run(path: str | os.PathLike[str], weights: bool = True) -> tuple[ArchSpec, nn.Module]:
    """The spec and model of a run directory, with its saved weights when there are any.

    A rewritten run (``graph.json``) loads as its rewritten module; ``weights=False``
    always gives the network the spec describes, freshly built.
    """
    from ..models import build

    path = Path(path)
    require_run_dir(path)
    if weights and (path / GRAPH_FILE).is_file():
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
    ``digest`` identifies the weights (a student's fingerprint records its teacher by it).
    """

    path: Path
    spec: ArchSpec
    model: nn.Module
    trained_on: str
    dataset: str
    digest: str

    def need_dataset(self, param: str, purpose: str = "") -> str:
        """``dataset``, or a one-line error naming the parameter ``param`` that supplies it."""
        if not self.dataset:
            raise ReshapeError(f"{self.path} does not record its dataset; name it with ${param}{purpose}",
                               param=param)
        return self.dataset


def load_trained(path: str | os.PathLike[str], dataset: str | None = None, root: str | None = None,
                 what: str | None = None, check: bool = True) -> TrainedRun:
    """Run ``path`` with its trained weights, for use on ``dataset`` (default: the one it was trained on).

    One loader for eval, teachers, the methods and export, so a missing training or a
    network of other classes or input fails the same way everywhere. With ``check`` the
    network must fit the dataset's classes and input (``root`` locates its files when
    the preset counts classes from a folder); ``what`` names the run in errors.
    """
    from ..data import check_fits, info

    path = Path(path)
    what = what or str(path)
    require_run_dir(path)
    run = RunDir(path)
    digest = run.weights_digest()
    spec, model = load_run(path)
    trained_on = run.trained_on()
    used = dataset or trained_on
    if check and used:
        check_fits(spec, info(used, root), what, f"{used} needs", "pass the dataset it was trained on")
    return TrainedRun(path, spec, model, trained_on, used, digest)


def resolve_model_or_run(model: str, dataset: str | None = None, input_size: int | None = None,
                         weights: bool = True) -> Resolved:
    """A model name or spec file (``reshape.models.resolve``), or a run directory (counted as
    trained, at its own input): what ``reshape count`` takes."""
    from ..models import Resolved, resolve

    if not Path(model).is_dir():
        return resolve(model, dataset, input_size, weights)
    if dataset or input_size:
        raise ReshapeError("a run directory is counted as trained, at its own input; "
                           "drop $dataset and $input_size")
    spec, net = load_run(model)
    return Resolved(net, spec.input_shape, spec, str(model))


def trace_model_or_run(model: str, dataset: str | None = None, input_size: int | None = None,
                       leaf_modules: Sequence[str] = ()) -> Any:
    """The traced graph (a ``ModelGraph``) of what ``resolve_model_or_run`` takes, a run with
    ``graph.json`` rewritten as it was traced: what ``reshape graph`` lists."""
    from ..graph import trace

    if Path(model, GRAPH_FILE).is_file():
        if dataset or input_size or leaf_modules:
            raise ReshapeError("a rewritten run is shown as it was traced, at its own input; "
                               "drop $dataset/$input_size/$leaf_modules")
        return load_rewritten(model)[1]
    resolved = resolve_model_or_run(model, dataset, input_size, weights=False)
    return trace(resolved.model, resolved.input_shape, leaf_modules)
