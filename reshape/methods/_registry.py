"""The method registry and protocol: ``Setting``, ``Job``, ``MethodResult``, ``register_method``."""
from __future__ import annotations

import dataclasses
import os
import time
import types
import typing
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from ..errors import OwnershipError, ReshapeError
from ..io import canonical
from ..runs import RunDir, TrainedRun, compute_of, load_trained, summarize
from ..setting import Setting
from ..spec import ArchSpec
from ..values import Range

FAMILIES = ("ours", "baseline")
#: Field metadata of a parameter added after runs were made: at its default it is left out of a
#: run's key (``params_key``), so those runs keep their fingerprints and are read back.
OMIT_DEFAULT = "omit_default"


def params_key(params: Any) -> dict[str, Any]:
    """``params`` as the plain data a run's key records: every field, nested params as dicts,
    except a field marked ``OMIT_DEFAULT`` that holds its default."""
    out = {}
    for f in dataclasses.fields(params):
        value = getattr(params, f.name)
        if f.metadata.get(OMIT_DEFAULT) and value == f.default:
            continue
        out[f.name] = params_key(value) if dataclasses.is_dataclass(value) else value
    return canonical(out)


@lru_cache(maxsize=4)
def _splits(data: str, root: str | None, limit: int | None, seed: int, val: int) -> Any:
    from ..data import splits

    return splits(data, root, limit, seed, val=val)


def setting_splits(setting: Setting) -> Any:
    """The data of ``setting`` (``reshape.data.Splits``), read once per process."""
    return _splits(setting.data, setting.root, setting.limit, setting.seed, setting.val)


def setting_config(setting: Setting, epochs: int, lr: float, **changes: Any) -> Any:
    """One stage's ``TrainConfig`` under ``setting``: its batch, seed, data and KD mix."""
    from ..train import TrainConfig

    base = dict(epochs=epochs, batch_size=setting.batch_size, lr=lr, kd_alpha=setting.kd_alpha,
                dataset=setting.data, seed=setting.seed, device=setting.device, workers=setting.workers,
                compile=setting.compile)
    return TrainConfig(**{**base, **changes})


def parent_config(teacher: TrainedRun, setting: Setting, extra_epochs: int = 0, **changes: Any) -> Any:
    """The recipe ``teacher`` was trained with (``train_config.json``), for ``setting``'s seed and
    runtime, plus ``extra_epochs``: how a network trained from scratch gets the parent's training.

    A teacher that records no recipe cannot be matched: a one-line error says so.
    """
    from ..train import load_config

    cfg = load_config(teacher.path)
    if cfg is None:
        raise ReshapeError(f"teacher {teacher.path} records no training recipe (train_config.json); "
                           "a network trained from scratch is given the teacher's training, so train the "
                           "teacher with `reshape train`")
    return cfg.replace(epochs=cfg.epochs + extra_epochs, seed=setting.seed, dataset=setting.data,
                       device=setting.device, workers=setting.workers, compile=setting.compile, **changes)


# -- params ------------------------------------------------------------------------------------
def param(default: Any, help: str, *, allowed: Range | None = None, choices: Sequence[str] = (),
          option: str | None = None, omit_default: bool = False) -> Any:
    """A params field that describes itself: its ``default``, the ``help`` its command-line
    option shows, what it may be (``allowed``, a ``Range``; ``choices``: ``check_params``
    checks both), and ``option`` where the command line names it otherwise (``lam`` is
    ``lambda``). The command line makes its options from these (``cli/_params.py``), so a
    default lives here alone. ``omit_default``: a field added after runs were made
    (``OMIT_DEFAULT``)."""
    return field(default=default, metadata={"help": help, "allowed": allowed, "choices": tuple(choices),
                                            "option": option, OMIT_DEFAULT: omit_default})


def check_params(params: Any, what: str, of: type | None = None) -> None:
    """Check the fields of ``params`` (those of class ``of``, default its own) against their
    ``param`` metadata: one line (``SNL lam must be ...``, ``unknown SENet allocation ...``)
    naming a field as ``what field``. None means "not set" and passes a range."""
    for f in dataclasses.fields(of or params):
        value = getattr(params, f.name)
        choices = f.metadata.get("choices")
        if choices and value not in choices:
            raise ReshapeError(f"unknown {what} {f.name} '{value}'; choose {', '.join(choices)}")
        allowed = f.metadata.get("allowed")
        if allowed is not None and value is not None:
            allowed.check(f"{what} {f.name}", value)


# -- one call of a method ---------------------------------------------------------------------
@dataclass
class Job:
    """What a method's ``run`` works with: the teacher, the budget, its folder and the setting."""

    method: str
    teacher: TrainedRun
    budget: int
    run: RunDir
    setting: Setting
    fingerprint: str
    notes: dict[str, Any] = field(default_factory=dict)

    @property
    def out(self) -> Path:
        return self.run.path

    @property
    def data(self) -> Any:
        return setting_splits(self.setting)

    def config(self, epochs: int, lr: float, **changes: Any) -> Any:
        """One stage's ``TrainConfig``: ``setting_config`` of this job's setting."""
        return setting_config(self.setting, epochs, lr, **changes)

    def scratch_config(self, lr: float, **changes: Any) -> Any:
        """The recipe of a network trained from scratch: the teacher's recipe for the teacher's
        epochs plus the setting's student epochs (equal compute with a reducer that starts from
        the teacher), at ``lr``, distilled from the teacher with the setting's KD mix."""
        return parent_config(self.teacher, self.setting, self.setting.epochs, lr=lr,
                             kd_alpha=self.setting.kd_alpha, **changes)

    @property
    def progress(self) -> bool:
        return self.setting.progress

    def shared_dir(self, name: str) -> Path:
        """Where a stage that other budgets may reuse lives: ``setting.shared/name``, else ``out/name``."""
        return Path(self.setting.shared, name) if self.setting.shared else self.out / name

    def train(self, spec: ArchSpec, cfg: Any, *, out: str | os.PathLike[str] | None = None,
              teacher: Any = "default", **kwargs: Any) -> Any:
        """``reshape.train.fit`` for one stage: into ``out`` (a sub-folder, a run of its own)
        or, by default, into this job's folder as its final training. KD from the job's
        teacher unless ``teacher`` is given (None for none). A stage in ``setting.shared`` may
        be in training by another worker of a frontier or study: it is waited for, not refused."""
        from ..train import fit

        teacher = self.teacher if teacher == "default" else teacher
        if out is None:
            return fit(self.out, spec, cfg, self.data, teacher=teacher, owned=True,
                       progress=self.progress, **kwargs)
        shared = self.setting.shared is not None and Path(out).parent == Path(self.setting.shared)
        kwargs.setdefault("wait", shared)
        kwargs.setdefault("parent", self.out)
        kwargs.setdefault("method", f"{self.method}:{Path(out).name}")
        return fit(out, spec, cfg, self.data, teacher=teacher, progress=self.progress, **kwargs)


@dataclass(frozen=True)
class MethodResult:
    """One method's network for one budget, as measured: what reports and frontiers read."""

    method: str
    family: str
    budget: int
    run: str
    relus: int
    macs: int
    depth: int
    top1: float | None
    params: dict[str, Any]
    built: dict[str, Any]
    pi: dict[str, dict[str, float]]
    seconds: float
    cached: bool = False
    #: Top-1 on the setting's validation images (None without a validation split): what
    #: pilots choose settings by; ``top1`` (test) only reports.
    val_top1: float | None = None
    #: The training the final weights received, parents included (``reshape.runs.compute_of``):
    #: image-passes, optimizer steps and seconds per phase and summed.
    compute: dict[str, Any] = field(default_factory=dict)

    @property
    def within_budget(self) -> bool:
        return self.relus <= self.budget

    def to_dict(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "within_budget": self.within_budget}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], cached: bool = True) -> "MethodResult":
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{**{k: v for k, v in data.items() if k in names}, "cached": cached})


#: A method's own work, ``run(job, params) -> built``: what ``Method.fit`` calls once the
#: registry has claimed the folder and found no finished run there.
RunFn = Callable[[Job, Any], Mapping[str, Any]]


@dataclass(frozen=True)
class Method:
    """A registered method: ``fit(teacher_run, budget, out, setting, params) -> MethodResult``."""

    name: str
    params_type: type
    run: RunFn
    family: str
    summary: str
    defaults: Any
    #: Named sets of overrides, timm's pretrained tags for params: ``published`` (the defaults,
    #: always there) and e.g. ``short`` (settings for short runs, chosen on a validation split).
    presets: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)

    def params(self, preset: str | None = None, **overrides: Any) -> Any:
        """The params dataclass: this entry's defaults, then ``preset``'s overrides, then
        ``overrides`` (strings are converted; ``"senet.at_weight"`` reaches into a nested
        params dataclass)."""
        chosen: Mapping[str, Any] = {}
        if preset is not None:
            if preset not in self.presets:
                raise ReshapeError(f"method {self.name} has no preset '{preset}'; it has "
                                   f"{', '.join(self.presets)}")
            chosen = self.presets[preset]
        return _override(self.name, self.defaults, {**chosen, **overrides})

    def fit(self, teacher: TrainedRun | str | os.PathLike[str], budget: int, out: str | os.PathLike[str],
            setting: Setting, params: Any = None, force: bool = False) -> MethodResult:
        """Fit ``teacher`` to ``budget`` ReLUs into ``out``; a finished run is read back.

        ``out`` holding another run is refused (``RunDir.claim``) unless ``force``.
        """
        params = self.defaults if params is None else params
        if not isinstance(params, self.params_type):
            raise ReshapeError(f"method {self.name} takes {self.params_type.__name__}, "
                               f"got {type(params).__name__}")
        if isinstance(budget, bool) or not isinstance(budget, int) or budget < 1:
            raise ReshapeError(f"the ReLU budget must be a positive integer, got {budget!r}")
        if not isinstance(teacher, TrainedRun):
            teacher = load_trained(teacher, setting.data, setting.root, what=f"teacher {teacher}")
        teacher.model.eval().requires_grad_(False)
        if Path(out).resolve() == teacher.path.resolve():  # forcing it would delete the teacher
            raise OwnershipError(f"$out {out} is the teacher's run directory; pick a new $out")
        run = RunDir(out)
        key = {"params": params_key(params), "budget": budget, "teacher": teacher.digest,
               "setting": setting.key}
        fresh = not run.path.exists()
        manifest = run.claim(self.name, key, parent=teacher.path, force=force)
        if manifest.status == "done" and manifest.summary:
            return MethodResult.from_dict(manifest.summary)
        start = time.perf_counter()
        job = Job(self.name, teacher, budget, run, setting, manifest.fingerprint)
        try:
            built = dict(self.run(job, params))
        except ReshapeError:
            if fresh:
                _release(run)
            raise
        result = result_of(self, job, params, built, time.perf_counter() - start)
        run.finish(result.to_dict())
        return result


def result_of(method: Method, job: Job, params: Any, built: dict[str, Any], seconds: float) -> MethodResult:
    """The ``MethodResult`` of a finished method: the network it left in ``job.out`` counted and
    priced, its accuracy and compute read from the run. (Measured PI cost is ``reshape.measure``'s.)"""
    from ..cost import estimate, load_costs

    run = summarize(job.out)  # counts the saved network; top-1 from its training record
    top1 = built.pop("top1", None)
    if top1 is None:
        top1 = run["top1"]
    # A method whose final network was not trained in its own folder (an exact merge) names
    # the run whose training it carries.
    trained = built.pop("trained_in", job.out)
    compute = compute_of(trained)
    manifest = RunDir(trained).manifest()
    val_top1 = ((manifest.training or {}).get("last") or {}).get("val_top1") if manifest else None
    costs = load_costs()
    pi = {p: estimate(run["relus"], run["macs"], run["depth"], p, costs).to_dict() for p in costs}
    return MethodResult(method.name, method.family, job.budget, str(job.out), run["relus"], run["macs"],
                        run["depth"], top1, params_key(params), canonical(built),
                        pi, round(seconds, 1), val_top1=val_top1, compute=compute)


def _release(run: RunDir) -> None:
    """Undo a claim that produced nothing (e.g. an unreachable budget found before any
    training), so the same ``out`` can be used again with other settings."""
    run.abandon()


def _override(method: str, params: Any, overrides: Mapping[str, Any]) -> Any:
    """``params`` with ``overrides``; a dotted name (``senet.at_weight``) sets a nested dataclass field."""
    known = {f.name for f in dataclasses.fields(params)}
    hints = typing.get_type_hints(type(params))
    flat: dict[str, Any] = {}
    nested: dict[str, dict[str, Any]] = {}
    for name, value in overrides.items():
        head, _, rest = name.partition(".")
        if head not in known or (rest and not dataclasses.is_dataclass(getattr(params, head))):
            raise ReshapeError(f"method {method} has no parameter '{name}'; it has "
                               f"{', '.join(_names(params)) or 'none'}")
        if rest:
            nested.setdefault(head, {})[rest] = value
        else:
            flat[name] = _convert(method, name, value, hints[name])
    for head, inner in nested.items():
        flat[head] = _override(f"{method}.{head}", getattr(params, head), inner)
    return dataclasses.replace(params, **flat)


def _names(params: Any) -> list[str]:
    """Every settable parameter name of ``params``, nested ones dotted."""
    out = []
    for f in dataclasses.fields(params):
        value = getattr(params, f.name)
        out += [f"{f.name}.{n}" for n in _names(value)] if dataclasses.is_dataclass(value) else [f.name]
    return out


def _convert(method: str, name: str, value: Any, hint: Any) -> Any:
    if not isinstance(value, str):
        return value
    target = typing.get_args(hint)[0] if typing.get_origin(hint) in (typing.Union, types.UnionType) \
        else hint
    try:
        if target is bool:
            if value.lower() not in ("true", "false", "1", "0", "yes", "no"):
                raise ValueError(value)
            return value.lower() in ("true", "1", "yes")
        if target in (int, float):
            return target(value)
        if typing.get_origin(target) is tuple:
            kind = typing.get_args(target)[0]
            return tuple(kind(v) for v in value.split(",") if v)
    except ValueError:
        raise ReshapeError(f"{method}.{name} must be a {getattr(target, '__name__', target)}, "
                           f"got {value!r}") from None
    return value


# -- the registry ------------------------------------------------------------------------------
_REGISTRY: dict[str, Method] = {}


def register_method(name: str, params_type: type, *, family: str, summary: str, defaults: Any = None,
                    presets: Mapping[str, Mapping[str, Any]] | None = None) -> Callable[[RunFn], RunFn]:
    """Register ``run(job, params) -> built`` under ``name``; ``defaults`` makes a variant
    (the same run with other default params, e.g. uniform allocation for SENet); ``presets``
    names sets of overrides (``{"short": {"lam": 1e-4}}``; ``published``, the defaults, is
    always one), checked here so a bad preset fails at import, not in a user's run."""
    if family not in FAMILIES:
        raise ValueError(f"family must be one of {FAMILIES}, got {family!r}")
    if not (dataclasses.is_dataclass(params_type) and params_type.__dataclass_params__.frozen):
        raise TypeError(f"{name}: params must be a frozen dataclass")

    def decorate(fn: RunFn) -> RunFn:
        if name in _REGISTRY:
            raise ValueError(f"method {name!r} is already registered")
        method = Method(name, params_type, fn, family, summary,
                        defaults if defaults is not None else params_type(),
                        {"published": {}, **(presets or {})})
        for preset in method.presets:
            method.params(preset)
        _REGISTRY[name] = method
        return fn

    return decorate


def nested(name: str, overrides: Mapping[str, Any]) -> dict[str, Any]:
    """``overrides`` of a params dataclass nested as field ``name`` (``{"lam": 1}`` ->
    ``{"snl.lam": 1}``): a pipeline's preset built from its reducer's."""
    return {f"{name}.{k}": v for k, v in overrides.items()}


def list_methods() -> list[str]:
    """Registered method names, in registration order."""
    return list(_REGISTRY)


def describe_methods() -> list[dict[str, Any]]:
    """Every registered method as ``reshape methods`` lists it: name, family, summary, the
    defaults of its params and its presets (canonical JSON values)."""
    return [{"name": m.name, "family": m.family, "summary": m.summary,
             "params": canonical(dataclasses.asdict(m.defaults)), "presets": canonical(dict(m.presets))}
            for m in _REGISTRY.values()]


def get_method(name: str) -> Method:
    if name not in _REGISTRY:
        raise ReshapeError(f"unknown method '{name}'; choose from {', '.join(_REGISTRY)}")
    return _REGISTRY[name]
