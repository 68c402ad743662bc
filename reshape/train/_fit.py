"""``fit``: the one way every trained stage trains, resumes or reads back its run.

Criticality proxies, search trials, each SENet and SNL phase, shallow blocks, frontier
points and ``reshape train`` all call it, so they share one behaviour:

* the run's fingerprint covers everything that changes its result: the network (spec),
  the recipe (``TrainConfig`` less runtime fields), the data (``Splits.key``), the
  teacher (a digest of its weights), where the weights start (``init_key``) and any
  stage parameters (``params``: loss weights, mask settings);
* a folder holding another fingerprint is refused with the parameters that differ
  (``force`` starts over); the same fingerprint resumes from the checkpoint, or, when
  the manifest says the training is done, is read back without touching the checkpoint;
* python, numpy and torch are seeded from the recipe before the model is built, so a
  run's initial weights depend on its seed alone, not on what ran before in the process.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping, Protocol, Sequence

from torch import nn

from ..data import Splits
from ..errors import OwnershipError
from ..io import canonical, differences, fingerprint
from ..models import build
from ..runs import WEIGHTS_FILE, RunDir, chain_compute, compute_of, load_weights, own_compute
from ..spec import ArchSpec
from ._checkpoint import has_checkpoint, seed_all
from ._config import RUNTIME_FIELDS, TrainConfig
from ._loop import Callback, ExtraLoss, run_epochs


class Teacher(Protocol):
    """What a stage needs of its teacher: the network and a digest of its weights
    (``reshape.runs.TrainedRun`` is one)."""

    model: nn.Module
    digest: str


@dataclass(frozen=True)
class FitResult:
    """A finished training: its run directory, last metrics row and trained model.

    ``cached`` says the run was already done and was read back, not trained.
    """

    run: Path
    metrics: dict[str, Any]
    model: nn.Module
    fingerprint: str
    cached: bool

    @property
    def top1(self) -> float | None:
        return self.metrics.get("test_top1")


def training_key(spec: ArchSpec, cfg: TrainConfig, data: Splits, teacher: Teacher | None = None,
                 init_key: str | None = None, params: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Everything that decides a training's result, as JSON data (what ``fit`` fingerprints)."""
    recipe = {k: v for k, v in cfg.to_dict().items() if k not in RUNTIME_FIELDS}
    return canonical({"spec": spec.to_dict(), "train": recipe, "data": data.key,
                      "teacher": None if teacher is None else teacher.digest, "init": init_key,
                      "params": dict(params or {})})


def fit(out: str | os.PathLike[str], spec: ArchSpec, cfg: TrainConfig, data: Splits, *,
        teacher: Teacher | None = None, model_fn: Callable[[], nn.Module] | None = None,
        init: Callable[[nn.Module], None] | None = None, init_key: str | None = None,
        extra_loss: ExtraLoss | None = None, callbacks: Sequence[Callback] = (),
        params: Mapping[str, Any] | None = None, method: str = "train",
        parent: str | os.PathLike[str] | None = None, owned: bool = False, force: bool = False,
        progress: bool = True,
        inherits: str | os.PathLike[str] | None = None,
        inputs: Sequence[str | os.PathLike[str]] = (), wait: bool = False) -> FitResult:
    """Train ``spec`` by ``cfg`` on ``data`` into ``out``, resume it, or read it back when done.

    ``model_fn`` builds the network (default ``build(spec)``) and ``init`` sets its starting
    weights, both after seeding; ``init_key`` names that start (e.g. the fingerprint of the
    stage it continues) and ``params`` the stage's other settings, for the fingerprint.
    ``inherits`` is the run whose weights this training starts from: its compute record
    (its own parents' included) heads this run's, so the training a network received is
    read from its folder alone (``reshape.runs.compute_of``).
    A standalone training owns ``out`` as ``method``; a method's final stage, which trains
    in a folder the method already claimed, passes ``owned=True`` and is recorded as the
    run's ``training``. ``out`` holding another run or training is refused (an
    ``OwnershipError`` naming what differs) unless ``force``; it is never the folder of
    ``parent`` (the teacher) or of ``inputs`` (a spec file). ``out`` in training by another
    process is refused too, or with ``wait`` waited for and read back (a stage that several
    workers share). Under torchrun only rank 0 locks ``out``: the other ranks write nothing there.
    """
    run = RunDir(out)
    key = training_key(spec, cfg, data, teacher, init_key, params)
    digest = fingerprint(key)
    if owned:
        manifest = run.require_manifest()
    else:
        manifest = run.claim(method, key, parent, force, inputs=inputs,
                             lock=int(os.environ.get("RANK", "0")) == 0, wait=wait)
    record = manifest.training
    if record is not None and record.get("fingerprint") != digest:
        changed = "; ".join(differences(record.get("params", {}), key)[:4]) or "fingerprint differs"
        raise OwnershipError(f"{out} holds a training with other settings ({changed}); "
                             "pass $force to start it over, or pick a new $out")
    if record is None and has_checkpoint(out):
        raise OwnershipError(f"{out} holds a checkpoint that its {run.manifest_file.name} does not record; "
                             "pass $force to start it over, or pick a new $out")
    build_model = model_fn or (lambda: build(spec))
    if record is not None and record.get("status") == "done":
        model = build_model()
        load_weights(model, run / WEIGHTS_FILE)
        return FitResult(run.path, dict(record["last"]), model, digest, cached=True)
    run.update(training={"fingerprint": digest, "params": key, "status": "running"})
    seed_all(cfg.seed)
    model = build_model()
    if init is not None:
        init(model)
    last = run_epochs(model, spec, cfg, data.train, data.test, run.path,
                      teacher=None if teacher is None else teacher.model, extra_loss=extra_loss,
                      callbacks=callbacks, resume=has_checkpoint(run.path), progress=progress, val_set=data.val)
    last = canonical(last)
    inherited = compute_of(inherits)["phases"] if inherits is not None else []
    compute = chain_compute([*inherited, own_compute(run.path, method if not owned else manifest.method)])
    run.update(training={"fingerprint": digest, "params": key, "status": "done", "last": last,
                         "compute": compute})
    if not owned:
        run.finish(last)
    return FitResult(run.path, last, model, digest, cached=False)

