"""Stage criticality (DeepReDuce): how much accuracy each stage's ReLUs buy on their own.

For a backbone on a dataset, short proxy trainings with one recipe measure the test
accuracy of

* ``full``: every ReLU kept (``acc_full``);
* ``linear``: every ReLU removed (``acc_lin``);
* ``stage<k>``: ReLUs kept only in stage ``k``, the stem ReLU with stage 1 as
  DeepReDuce culls it (``acc_k``).

Then ``criticality_k = (acc_k - acc_lin) / (acc_full - acc_lin)`` (methods.md section 1,
"Ours"): 0 when stage k's ReLUs add nothing to the linear network, 1 when they alone
recover the all-ReLU accuracy. The ranking lists stages from least to most critical,
the form ``reshape.deepreshape.synthesize`` takes.

It lives in the method layer because it trains, but it is a measurement, not a
registered method: it fits no teacher to a budget. Every proxy trains through
``reshape.train.fit``, seeded before it is built, so the measurement is the same whatever
ran before it in the process.

Everything is cached under ``<cache>/<backbone>-w<width>-<dataset>-e<epochs>-<digest>/``,
where the digest is the fingerprint ``fit`` gives the all-ReLU proxy (network, recipe,
data): one run directory per proxy network, each owned by ``fit``, so an interrupted
measurement resumes where it stopped, finished runs are read back from their manifest,
and a run of other settings is refused rather than reused; ``criticality.json`` is
written once all are done, so a repeated call trains nothing.
"""
from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..analytic import total_relus
from ..data import splits
from ..deepreduce import cull
from ..errors import ReshapeError
from ..io import fingerprint, read_json, write_json
from ..models import spec_for
from ..runs import file_target, not_a_run
from ..spec import ArchSpec
from ..train import TrainConfig, fit, training_key

RESULT_FILE = "criticality.json"
FORMAT = "reshape.criticality"
VERSION = 1
#: Root of reshape's caches; criticality results go to ``$RESHAPE_CACHE/criticality``.
CACHE_ENV = "RESHAPE_CACHE"


def criticality(acc_k: float, acc_full: float, acc_lin: float) -> float | None:
    """``(acc_k - acc_lin) / (acc_full - acc_lin)``; None when the ReLUs buy nothing (acc_full == acc_lin)."""
    gain = acc_full - acc_lin
    return None if gain == 0 else (acc_k - acc_lin) / gain


def only_stage(spec: ArchSpec, stage: int) -> ArchSpec:
    """``spec`` with ReLUs kept only in ``stage`` (1-based; stage 1 keeps the stem ReLU)."""
    return cull(spec, [s for s in range(1, len(spec.stages) + 1) if s != stage])


def linear(spec: ArchSpec) -> ArchSpec:
    """``spec`` with every ReLU removed."""
    return cull(spec, range(1, len(spec.stages) + 1))


def proxy_specs(spec: ArchSpec) -> dict[str, ArchSpec]:
    """The networks the measurement trains, by run name: full, stage1..stageN, linear."""
    stages = {f"stage{k}": only_stage(spec, k) for k in range(1, len(spec.stages) + 1)}
    return {"full": spec, **stages, "linear": linear(spec)}


@dataclass(frozen=True)
class Criticality:
    """Raw accuracies of the proxy trainings and what they say about each stage.

    ``stage_acc[k-1]`` and ``stage_relus[k-1]`` belong to the network with ReLUs only in
    stage k. ``folder`` is where the runs are cached (not part of the JSON).
    """

    backbone: str
    dataset: str
    width: int | None
    limit: int | None
    recipe: dict[str, Any] = dataclasses.field(hash=False)
    acc_full: float
    acc_lin: float
    stage_acc: tuple[float, ...]
    full_relus: int
    stage_relus: tuple[int, ...]
    folder: str | None = dataclasses.field(default=None, compare=False)

    @property
    def scores(self) -> tuple[float | None, ...]:
        """Criticality of each stage, stage 1 first."""
        return tuple(criticality(a, self.acc_full, self.acc_lin) for a in self.stage_acc)

    @property
    def ranking(self) -> tuple[int, ...]:
        """Stages from least to most critical (by acc_k, i.e. by criticality when acc_full > acc_lin;
        ties go to the earlier stage)."""
        return tuple(sorted(range(1, len(self.stage_acc) + 1), key=lambda k: (self.stage_acc[k - 1], k)))

    def to_dict(self) -> dict[str, Any]:
        stages = [{"stage": k, "acc": acc, "criticality": score, "relus": relus}
                  for k, (acc, score, relus) in enumerate(zip(self.stage_acc, self.scores, self.stage_relus),
                                                          start=1)]
        return {"format": FORMAT, "version": VERSION, "backbone": self.backbone, "dataset": self.dataset,
                "width": self.width, "limit": self.limit, "recipe": self.recipe,
                "acc_full": self.acc_full, "acc_lin": self.acc_lin, "full_relus": self.full_relus,
                "stages": stages, "ranking": list(self.ranking)}

    @classmethod
    def from_dict(cls, data: Any, where: str = "criticality result") -> "Criticality":
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise ReshapeError(f"{where} was not written by `reshape criticality` "
                               f"(no \"format\": \"{FORMAT}\"); run that command and pass the file it writes")
        if data.get("version") != VERSION:
            raise ReshapeError(f"{where} has version {data.get('version')!r}; this tool reads version {VERSION}")
        try:
            stages = sorted(data["stages"], key=lambda s: s["stage"])
            if [s["stage"] for s in stages] != list(range(1, len(stages) + 1)):
                raise ReshapeError(f"{where}: stages must be numbered 1..{len(stages)} once each")
            return cls(backbone=data["backbone"], dataset=data["dataset"], width=data["width"],
                       limit=data["limit"], recipe=data["recipe"], acc_full=float(data["acc_full"]),
                       acc_lin=float(data["acc_lin"]), stage_acc=tuple(float(s["acc"]) for s in stages),
                       full_relus=int(data["full_relus"]), stage_relus=tuple(int(s["relus"]) for s in stages))
        except (KeyError, TypeError, ValueError) as exc:
            raise ReshapeError(f"{where} is malformed ({type(exc).__name__}: {exc}); "
                               "measure it again with `reshape criticality`") from None


def load(path: str | os.PathLike[str]) -> Criticality:
    """A result written by ``reshape criticality`` (or a cached ``criticality.json``)."""
    return Criticality.from_dict(read_json(path, "criticality file"), f"criticality file {path}")


def cache_dir(cache: str | os.PathLike[str] | None = None) -> Path:
    """``cache``, else ``$RESHAPE_CACHE/criticality``, else ``~/.cache/reshape/criticality``."""
    if cache is not None:
        return Path(cache)
    root = os.environ.get(CACHE_ENV)
    return (Path(root) if root else Path.home() / ".cache" / "reshape") / "criticality"


def measure(backbone: str, dataset: str, epochs: int = 3, width: int | None = None,
            root: str | None = None, cache: str | os.PathLike[str] | None = None,
            limit: int | None = None, recipe: TrainConfig | None = None,
            progress: bool = True, out: str | os.PathLike[str] | None = None) -> Criticality:
    """Measure (or read from the cache) the stage criticality of ``backbone`` on ``dataset``.

    ``backbone`` is a timm ResNet name or a spec JSON sized for ``dataset`` as ``reshape
    train`` does, narrowed to ``width`` when given. Every proxy network trains ``epochs``
    epochs with ``recipe`` (default: ``TrainConfig()``), from the same seed, on at most
    ``limit`` training images; accuracy is top-1 on the full test split. ``out``: also write
    the result JSON there (the path is checked before any training, not after).
    """
    if out is not None:
        file_target(out)
    # proxies of the backbone's stages at the dataset's geometry: resizing is the point here
    spec = spec_for(backbone, dataset, width, retarget=True)
    cfg = (recipe or TrainConfig()).replace(epochs=epochs, dataset=dataset)
    data = splits(dataset, root, limit, cfg.seed)
    key = training_key(spec, cfg, data)
    label = "-".join([Path(backbone).stem, *([f"w{width}"] if width else []), dataset, f"e{epochs}",
                      fingerprint(key)[:12]])
    folder = not_a_run(cache_dir(cache), "cache") / label
    if (folder / RESULT_FILE).is_file():
        return _written(dataclasses.replace(load(folder / RESULT_FILE), folder=str(folder)), out)

    specs = proxy_specs(spec)
    if progress:
        _announce(f"criticality runs in {folder}")
    acc = {}
    for i, (name, proxy) in enumerate(specs.items(), start=1):
        if progress:
            _announce(f"{i}/{len(specs)}: {name} ({total_relus(proxy):,} ReLUs)")
        result = fit(folder / name, proxy, cfg, data, method="criticality", progress=progress)
        acc[name] = float(result.metrics["test_top1"])
    n = len(spec.stages)
    result = Criticality(
        backbone=backbone, dataset=dataset, width=width, limit=limit, recipe=key["train"],
        acc_full=acc["full"], acc_lin=acc["linear"],
        stage_acc=tuple(acc[f"stage{k}"] for k in range(1, n + 1)),
        full_relus=total_relus(spec),
        stage_relus=tuple(total_relus(specs[f"stage{k}"]) for k in range(1, n + 1)),
        folder=str(folder))
    write_json(folder / RESULT_FILE, result.to_dict())
    return _written(result, out)


def _written(result: Criticality, out: str | os.PathLike[str] | None) -> Criticality:
    """``result``, written to ``out`` too when given."""
    if out is not None:
        write_json(out, result.to_dict())
    return result


def _announce(text: str) -> None:
    from rich.console import Console

    Console(stderr=True).print(text, highlight=False)
