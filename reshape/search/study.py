"""Studies: open a storage, create or resume a study, and run one worker's share of it.

Storages: ``journal:PATH`` (or a path ending ``.log``/``.journal``) is Optuna's journal
file, shared by processes on one machine; anything else is an SQLAlchemy URL
(``sqlite:///search.db``, ``postgresql://user@host/db``) opened as an RDB storage with
Optuna's heartbeat, shared by machines.

``trials`` counts COMPLETE trials in the whole study: a worker stops once the study
holds that many (or once the running ones will make it so), whoever ran them. A
trial started after the study is full is marked PRUNED ("surplus") at once.

A killed worker leaves its trial RUNNING. Each trial records its worker
(``host:pid``) when it starts; before every trial a worker marks FAIL the RUNNING
trials of dead processes on its own host, and an RDB storage's heartbeat does the
same for other machines. Every such trial (and one stopped by Ctrl-C) is queued
again with the same parameters and ``run_of`` naming the original run directory, so
its training resumes from the last finished epoch.
"""
from __future__ import annotations

import contextlib
import dataclasses
import itertools
import json
import os
import socket
import warnings
from collections import Counter
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import optuna
from optuna.storages import BaseStorage
from optuna.trial import FrozenTrial, TrialState

from ..errors import BudgetUnreachable, OwnershipError, ReshapeError
from ..io import canonical, process_alive, refuse_special
from ..methods import Setting
from ..runs import RunDir, TrainedRun, load_trained
from ..spec import ArchSpec
from ..train import TrainConfig
from .objective import RUN_OF, WARM_START, Objective, PipelineObjective
from .space import PipelineSpace, SearchSpace

#: Study attr holding what a resumed study must be run with again (space, data, budgets, ...).
SETUP_ATTR = "reshape_setup"
WORKER_ATTR = "worker"
#: RDB heartbeat: a trial whose worker is silent for GRACE_S seconds is failed and queued again.
HEARTBEAT_S, GRACE_S = 60, 180
SAMPLERS: tuple[str, ...] = ("tpe", "nsga2")
JOURNAL_PREFIX = "journal:"
JOURNAL_SUFFIXES = (".log", ".journal")
SQLITE_PREFIX = "sqlite:///"
#: The pip extra that installs the driver of a database URL's scheme (``postgresql+psycopg2://`` too).
DRIVER_EXTRAS = {"postgresql": "postgres"}
#: ``postgresql://`` means psycopg 3 (the extra's driver) whatever SQLAlchemy's default for the scheme.
POSTGRES, POSTGRES_DRIVER = "postgresql://", "postgresql+psycopg://"
#: The advisory lock (a 64-bit key, here "reshape" in ASCII) held while Optuna's tables are made.
SCHEMA_LOCK_KEY = int.from_bytes(b"reshape", "big")


def worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def open_storage(url: str, create: bool = True) -> BaseStorage:
    """The storage ``url`` names, or a one-line ``ReshapeError`` when it cannot be opened.

    Workers create what is missing; readers (``create=False``: ``reshape pareto``) are
    refused a journal or SQLite file that does not exist, which opening would create empty.
    """
    from optuna.storages import JournalStorage, RDBStorage
    from optuna.storages.journal import JournalFileBackend

    hint = ("use journal:PATH (processes on one machine) or an SQLAlchemy URL such as "
            "sqlite:///search.db or postgresql://user@host/db (several machines)")
    journal = url.startswith(JOURNAL_PREFIX) or url.endswith(JOURNAL_SUFFIXES)
    file = (Path(url.removeprefix(JOURNAL_PREFIX)) if journal
            else Path(url.removeprefix(SQLITE_PREFIX)) if url.startswith(SQLITE_PREFIX) else None)
    if not create and file is not None and not file.is_file():
        raise ReshapeError(f"cannot open storage {url!r}: no such file {file}")
    if journal:
        _check_journal(file, url)
    try:
        if journal:
            file.parent.mkdir(parents=True, exist_ok=True)
            return JournalStorage(JournalFileBackend(str(file)))
        with warnings.catch_warnings():  # the heartbeat is "experimental" in Optuna 5.0
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            engine_url = POSTGRES_DRIVER + url.removeprefix(POSTGRES) if url.startswith(POSTGRES) else url
            with schema_lock(engine_url):
                return RDBStorage(engine_url, heartbeat_interval=HEARTBEAT_S, grace_period=GRACE_S,
                                  heartbeat_stale_trial_callback=requeue)
    except ImportError as exc:  # SQLAlchemy found no driver for the URL's database
        raise ReshapeError(missing_driver(url, exc)) from None
    except Exception as exc:  # sqlalchemy, driver and OS errors alike: the URL is the user's
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ReshapeError(f"cannot open storage {url!r}: {reason}; {hint}") from None


@contextlib.contextmanager
def schema_lock(engine_url: str) -> Iterator[None]:
    """Hold a PostgreSQL advisory lock while Optuna creates (or checks) its tables.

    ``RDBStorage`` runs ``CREATE TABLE`` / ``CREATE TYPE`` when it opens a fresh database;
    workers started at the same moment race there (``UniqueViolation`` on
    ``pg_type_typname_nsp_index``, ``DuplicateObject``). The lock makes them take turns:
    the first creates the schema, the others find it. Other databases pass through.
    """
    if not engine_url.startswith("postgresql"):
        yield
        return
    import sqlalchemy
    from sqlalchemy.pool import NullPool

    engine = sqlalchemy.create_engine(engine_url, poolclass=NullPool)
    try:
        with engine.connect() as conn:
            conn.execute(sqlalchemy.text("SELECT pg_advisory_lock(:key)"), {"key": SCHEMA_LOCK_KEY})
            try:
                yield
            finally:
                conn.execute(sqlalchemy.text("SELECT pg_advisory_unlock(:key)"), {"key": SCHEMA_LOCK_KEY})
    finally:
        engine.dispose()


def _check_journal(file: Path, url: str) -> None:
    """Refuse a journal path that is not a journal: Optuna would append its records to any file
    (a user's notes, a device). A journal's first line is a JSON record with an ``op_code``."""
    refuse_special(file, "storage")
    if not file.is_file() or file.stat().st_size == 0:
        return
    with open(file, "rb") as fh:
        first = fh.readline(1 << 16)
    try:
        record = json.loads(first)
    except ValueError:
        record = None
    if not isinstance(record, dict) or "op_code" not in record:
        raise OwnershipError(f"$storage {url}: {file} is not an Optuna journal (its first line is not a journal "
                             "record); pick a new file name for journal:PATH", param="storage")


def missing_driver(url: str, exc: ImportError) -> str:
    """The one line for a database URL whose driver is not installed: the extra (or module) to install."""
    cause = exc.__cause__ if isinstance(exc.__cause__, ImportError) else exc
    module = cause.name or "its driver"
    scheme = url.split(":", 1)[0].split("+", 1)[0]
    extra = DRIVER_EXTRAS.get(scheme)
    fix = f"pip install 'reshape[{extra}]'" if extra else f"pip install the Python module {module}"
    return f"cannot open storage {url!r}: the {scheme} driver ({module}) is not installed; {fix}"


def open_study(storage: BaseStorage, name: str, setup: dict[str, Any], directions: Sequence[str],
               sampler: str, seed: int) -> optuna.Study:
    """Create study ``name`` or resume it; a resumed study must have the same ``setup``.

    The sampler is seeded with ``seed`` plus the trials already in the study, so a
    fresh single worker is reproducible and a later worker does not replay its draws.
    """
    study = optuna.create_study(storage=storage, study_name=name, directions=list(directions),
                                load_if_exists=True)
    saved = study.user_attrs.get(SETUP_ATTR)
    if saved is None:
        study.set_user_attr(SETUP_ATTR, setup)
    else:
        for key, value in setup.items():
            if saved.get(key) != value:
                shown = "another search space" if key == "space" else f"{key} {saved.get(key)!r}, not {value!r}"
                raise ReshapeError(f"study '{name}' was started with {shown}; rerun with the same "
                                   "settings or pick another $study", param="study")
    study.sampler = make_sampler(sampler, seed + len(study.get_trials(deepcopy=False)))
    return study


def make_sampler(name: str, seed: int) -> optuna.samplers.BaseSampler:
    """A seeded multi-objective sampler; both honour the trials' constraints (``Trial.set_constraint``)."""
    if name not in SAMPLERS:
        raise ReshapeError(f"unknown sampler '{name}'; choose {', '.join(SAMPLERS)}")
    cls = optuna.samplers.TPESampler if name == "tpe" else optuna.samplers.NSGAIISampler
    return cls(seed=seed)


def requeue(study: optuna.Study, trial: FrozenTrial) -> None:
    """Queue ``trial``'s parameters again, its run directory with them (Optuna callback signature)."""
    study.enqueue_trial(trial.params, user_attrs={RUN_OF: trial.user_attrs.get(RUN_OF, trial.number)},
                        skip_if_exists=False)


def fail_dead_trials(study: optuna.Study) -> list[int]:
    """Mark FAIL (and queue again) the RUNNING trials of dead processes on this host."""
    host = socket.gethostname()
    failed = []
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        owner, _, pid = trial.user_attrs.get(WORKER_ATTR, "").rpartition(":")
        if owner != host or not pid.isdigit() or process_alive(int(pid)):
            continue
        try:
            study.tell(trial.number, state=TrialState.FAIL)
        except (ValueError, RuntimeError):  # another worker failed it first
            continue
        requeue(study, trial)
        failed.append(trial.number)
    return failed


def states(study: optuna.Study) -> Counter:
    return Counter(t.state for t in study.get_trials(deepcopy=False))


def run_worker(study: optuna.Study, objective: Objective, trials: int,
               on_done: Callable[[FrozenTrial], None] = lambda trial: None,
               on_requeue: Callable[[list[int]], None] = lambda numbers: None) -> None:
    """Run trials until the study holds ``trials`` COMPLETE ones (see the module docstring)."""
    current: list[int] = []

    def guarded(trial: optuna.Trial) -> tuple[float, ...]:
        current[:] = [trial.number]
        trial.set_user_attr(WORKER_ATTR, worker_id())
        ahead = [t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.RUNNING))
                 if t.state == TrialState.COMPLETE or t.number < trial.number]
        if len(ahead) >= trials:
            raise optuna.TrialPruned(f"surplus: the study already has {trials} trials done or running")
        return objective(trial)

    while True:
        failed = fail_dead_trials(study)
        if failed:
            on_requeue(failed)
        count = states(study)
        done, running = count[TrialState.COMPLETE], count[TrialState.RUNNING]
        if done >= trials or (done + running >= trials and not count[TrialState.WAITING]):
            return
        try:
            study.optimize(guarded, n_trials=1)
        except KeyboardInterrupt:
            if current:
                requeue(study, study.trials[current[0]])
            raise
        finished = study.trials[current[0]]
        if finished.state == TrialState.COMPLETE:
            on_done(finished)


def completed(study: optuna.Study) -> list[FrozenTrial]:
    return study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))


def search(space: SearchSpace, data: str, budgets: Sequence[int], trials: int, storage: str,
           study_name: str, out: str | os.PathLike[str], cfg: TrainConfig, limit: int | None = None,
           macs: bool = False, sampler: str = "tpe", root: str | None = None,
           log: Callable[[str], None] = print, progress: bool = True) -> optuna.Study:
    """Run one worker of study ``study_name`` in ``storage`` until it holds ``trials`` COMPLETE trials.

    Objectives: maximize top-1, minimize ReLUs (and MACs with ``macs``); each trial
    targets one of ``budgets`` under the constraint ``relus <= budget``. ``cfg`` is the
    proxy-training recipe; ``limit`` caps the training images (the space's ``proxy.limit``
    unless the caller overrides it), ``space.test_limit`` the test images scored.
    """
    from ..data import splits

    _check_counts(trials, budgets)
    cfg = cfg.replace(dataset=data)
    setup = {"space": space.canonical, "data": data, "budgets": sorted(budgets), "macs": macs,
             "train": cfg.to_dict(), "limit": limit}
    directions = ["maximize", "minimize"] + (["minimize"] if macs else [])
    study = open_study(open_storage(storage), study_name, setup, directions, sampler, cfg.seed)
    objective = Objective(space, sorted(budgets), cfg, splits(data, root, limit, cfg.seed, test_limit=space.test_limit),
                          Path(out), macs, log, progress, root)
    return _work(study, study_name, setup, out, objective, trials, log)


def search_pipeline(space: PipelineSpace, teacher: TrainedRun | str | os.PathLike[str], budgets: Sequence[int],
                    setting: Setting, trials: int, storage: str, study_name: str, out: str | os.PathLike[str],
                    sampler: str = "tpe", warm_start: bool = False, macs: bool = False,
                    log: Callable[[str], None] = print) -> optuna.Study:
    """Run one worker of a pipeline study: every trial fits ``teacher`` to a budget with the
    space's method and sampled params under ``setting`` (``PipelineObjective``). Bases the
    trials share are trained once, in ``out/shared``.

    Objectives: maximize the score (validation top-1 where the setting has a validation split),
    minimize ReLUs (and MACs with ``macs``; a study without it keeps the setup it always had).
    With ``warm_start`` the network DeepReShape's rules synthesize for each budget enters the
    study first (once, whoever starts it), so the search starts where O(1) design stops; a
    space whose choices cannot express that network is refused before anything is written.
    """
    _check_counts(trials, budgets)
    if not isinstance(teacher, TrainedRun):
        teacher = load_trained(teacher, setting.data, setting.root, what=f"teacher {teacher}")
    check_reachable(space, teacher.spec, setting.data, budgets)
    first = warm_start_trials(space, teacher.spec, setting.data, budgets) if warm_start else []
    setup = {"space": space.canonical, "teacher": teacher.digest, "setting": canonical(setting.key),
             "budgets": sorted(budgets), "warm_start": warm_start, **({"macs": True} if macs else {})}
    directions = ["maximize", "minimize"] + (["minimize"] if macs else [])
    study = open_study(open_storage(storage), study_name, setup, directions, sampler, setting.seed)
    shared = dataclasses.replace(setting, shared=str(Path(out) / "shared"))
    objective = PipelineObjective(space, sorted(budgets), teacher, shared, Path(out), log, macs)
    enqueue_once(study, first)
    return _work(study, study_name, setup, out, objective, trials, log)


def _check_counts(trials: int, budgets: Sequence[int]) -> None:
    if trials < 1 or not budgets or min(budgets) < 1:
        raise ReshapeError("$trials and every entry of $budgets must be positive")


#: A HybReNet space with more networks than this is not enumerated by ``check_reachable``.
ENUMERATE = 20_000


def check_reachable(space: PipelineSpace, teacher: ArchSpec, data: str, budgets: Sequence[int]) -> None:
    """Refuse, before anything is written, a budget that no network of a HybReNet pipeline
    space reaches: every trial at it would be pruned and the study would never fill. The
    networks are synthesized, not trained (milliseconds each); the search stops at the first
    that fits, so only a budget out of reach walks the whole space."""
    from ..methods import get_method
    from ..methods.hybrenet import HybReNetParams, network_for

    method = get_method(space.method)
    if not isinstance(method.params(space.preset), HybReNetParams):
        return  # a reducer (SNL, SENet) reaches any budget up to the teacher's ReLUs
    combos = list(itertools.islice(itertools.product(*(p.values() for p in space.params)), ENUMERATE + 1))
    if len(combos) > ENUMERATE:
        return
    for budget in sorted(budgets):
        why = ""
        for combo in combos:
            try:
                network_for(teacher, data, budget, method.params(space.preset, **dict(zip(
                    (p.name for p in space.params), combo))))
                break
            except ReshapeError as exc:
                why = why or str(exc)
        else:
            raise BudgetUnreachable(f"no network of search space {space.name} reaches {budget:,} ReLUs ({why}); "
                                    f"raise $budgets or widen the space", param="budgets")


def warm_start_trials(space: PipelineSpace, teacher: ArchSpec, data: str, budgets: Sequence[int]) -> list[dict[str, Any]]:
    """Per budget, the synthesized network as the space's trial params (Optuna's labels), or a
    one-line error naming the param whose choices cannot give it.

    Shape params take the rules' choice; any other param its preset value, or the space's one
    fixed value if that synthesizes the same network (a MAC cap that does not bind)."""
    from ..methods import get_method
    from ..methods.hybrenet import SHAPE_FIELDS, HybReNetParams, network_for, shape_fields

    method = get_method(space.method)
    base = method.params(space.preset)
    if not isinstance(base, HybReNetParams):
        raise ReshapeError(f"a warm start enqueues the network DeepReShape synthesizes; {space.method} does not "
                           "synthesize one (use a space of hybrenet, hybrenet_snl or hybrenet_senet)")
    rows = []
    for budget in sorted(budgets):
        what = f"the synthesized network for budget {budget:,}"
        o1, why = network_for(teacher, data, budget, base)
        values = shape_fields(o1, why)
        values.update({p.name: _value(p, _dotted(base, p.name)) for p in space.params if p.name not in SHAPE_FIELDS})
        chosen = {p.name: values[p.name] for p in space.params}
        if network_for(teacher, data, budget, method.params(space.preset, **chosen))[0] != o1:
            changed = [p.name for p in space.params if p.name not in SHAPE_FIELDS
                       and values[p.name] != _dotted(base, p.name)]
            raise ReshapeError(f"the search space cannot express {what}: with its {', '.join(changed)} "
                               f"{', '.join(str(values[n]) for n in changed)} the network differs; add the "
                               "preset's value to the space, or drop the warm start")
        labels = {p.name: p.label_of(values[p.name], what) for p in space.params}
        rows.append({"budget": budget, **{p.name: labels[p.name] for p in space.params if len(p.choices) != 1}})
    return rows


def _value(param: Any, preset: Any) -> Any:
    """The preset's value where the space offers it, else the space's one fixed value."""
    wanted = list(preset) if isinstance(preset, tuple) else preset
    return param.choices[0] if len(param.choices) == 1 and wanted not in param.choices else preset


def _dotted(params: Any, name: str) -> Any:
    for part in name.split("."):
        params = getattr(params, part)
    return params


def enqueue_once(study: optuna.Study, rows: Sequence[dict[str, Any]]) -> None:
    """Queue each row's params as a warm-start trial unless the study already has one for its budget."""
    have = {t.params.get("budget") for t in study.get_trials(deepcopy=False) if t.user_attrs.get(WARM_START)}
    for row in rows:
        if row["budget"] not in have:
            study.enqueue_trial(row, user_attrs={WARM_START: "synthesize"})


def _work(study: optuna.Study, study_name: str, setup: dict[str, Any], out: str | os.PathLike[str],
          objective: Callable[[optuna.Trial], tuple[float, ...]], trials: int,
          log: Callable[[str], None]) -> optuna.Study:
    """Own ``out`` for the study, then run this worker until the study holds ``trials`` trials."""
    # The trials' folder belongs to this study: another study's trial-NNNN would collide with its own.
    RunDir(out).claim("study", {"study": study_name, "setup": setup}, fresh="pick a new $out for this study",
                      lock=False)  # shared by the study's workers; each trial's folder is locked
    run_worker(study, objective, trials, lambda t: log(done_line(t)),
               lambda numbers: log(f"trials {numbers} were left running by a dead worker: failed and queued again"))
    return study


def done_line(trial: FrozenTrial) -> str:
    attrs = trial.user_attrs
    top1 = f"top-1 {100 * attrs['top1']:.2f}%" if attrs.get("top1") is not None else "not trained"
    if attrs.get("val_top1") is not None:
        top1 += f" (val {100 * attrs['val_top1']:.2f}%)"
    fit = "within" if attrs["feasible"] else "OVER"
    return (f"trial {trial.number} done: {top1}  {attrs['relus']:,} ReLUs ({fit} budget "
            f"{attrs['budget']:,})  {attrs['macs']:,} MACs")
