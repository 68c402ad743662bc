"""The one worker loop: a frontier's points as trials of one Optuna study, in memory or shared.

Every point runs through this loop, whether the process works alone (no storage: an
in-memory study) or beside others (a journal file or PostgreSQL URL, as ``reshape
search`` takes it). The study is ``FrontierPlan.study_name``; each point is a trial
enqueued with the point as its one fixed parameter (``Study.enqueue_trial``), and each
process takes WAITING trials with ``Study.optimize``, so Optuna pops every enqueued trial
exactly once, in the order enqueued, and an RDB storage's heartbeat covers the running
one. A trial fits its point with ``FrontierPlan.point`` into the frontier folder, where a
point's run directory resumes from its last checkpoint, and keeps the point's row.

Nothing here is a queue of its own: the storage is the queue. Dead workers are found the
way ``reshape search`` finds them (``fail_dead_trials`` for this host's processes, the
heartbeat and ``fail_stale_trials`` for other machines'), and their point is enqueued
again. A ``worker`` leaves when no point is waiting; otherwise the loop also waits for the
points running elsewhere, takes up any whose worker died, and returns every row in table
order: the same rows however many processes shared the points.
"""
from __future__ import annotations

import contextlib
import time
import warnings
from typing import Any, Callable, Iterable, Iterator

import optuna
from optuna.storages import BaseStorage
from optuna.trial import FrozenTrial, TrialState

from ..search.study import SETUP_ATTR, WORKER_ATTR, fail_dead_trials, worker_id
from ._plan import FrontierPlan, PointCallback
from ._result import FrontierResult, finish

#: The trial parameter naming a point: "<method>@<budget label>@seed<S>" (``Point.id``).
POINT = "point"
ROW_ATTR = "row"
#: Seconds between looks at the study while the last points run elsewhere.
POLL_S = 2.0
Log = Callable[[str], None]


def work(plan: FrontierPlan, storage: BaseStorage | None, worker: bool = False,
         on_point: PointCallback | None = None, progress: bool = False, log: Log = print,
         command: str | None = None) -> FrontierResult | None:
    """Fit ``plan``'s points as trials of its study in ``storage`` (None: in memory, this process
    alone) and write the frontier; a ``worker`` fits the points waiting, then returns None.

    ``on_point`` gets each row this process makes (a seed's teacher first); ``log`` a line
    when a shared study is opened and when the points of dead workers are queued again;
    ``progress`` shows the points done and the one running on stderr.
    """
    with _quiet(), _display(progress, len(plan.todo) + len(plan.seeds)) as advance:
        study = _open(plan, storage, log if storage is not None else lambda line: None)
        teachers = [] if worker else [_teacher(plan, seed, on_point, advance) for seed in plan.seeds]
        rows = _fit_points(plan, study, worker, on_point, advance, log)
        advance(None)
    return None if rows is None else finish(plan, [*teachers, *rows], command)


def _teacher(plan: FrontierPlan, seed: int, on_point: PointCallback | None,
             advance: Callable[[str | None], None]) -> dict[str, Any]:
    advance(f"teacher of seed {seed}")
    row = plan.teacher_row(seed)
    if on_point:
        on_point(row)
    return row


def _fit_points(plan: FrontierPlan, study: optuna.Study, worker: bool, on_point: PointCallback | None,
                advance: Callable[[str | None], None], log: Log) -> list[dict[str, Any]] | None:
    """Take waiting points until every one is done (their rows, in table order) or, for a
    ``worker``, until none is waiting (None)."""
    ids = {p.id: p for p in plan.todo}

    def fit_point(trial: optuna.Trial) -> float:
        pid = _fixed_point(study, trial)
        if pid is None or _taken(study, trial.number, pid):
            raise optuna.TrialPruned("surplus: no point waiting for this trial, or its point is taken")
        trial.suggest_categorical(POINT, list(ids))
        trial.set_user_attr(WORKER_ATTR, worker_id())
        point = ids[pid]
        advance(f"{point.method} at {point.budget.label} ({point.budget.relus:,} ReLUs), seed {point.seed}")
        row = plan.point(point)
        trial.set_user_attr(ROW_ATTR, row)
        if on_point:
            on_point(row)
        return float(row["top1"] or 0.0)

    while True:
        failed = fail_dead_trials(study)
        _fail_stale(study)
        if failed:
            log(f"points of trials {failed} were left running by a dead worker: queued again")
        trials = study.get_trials(deepcopy=False)
        done = _done(trials)
        if all(pid in done for pid in ids):
            return None if worker else [done[pid] for pid in ids]
        if any(t.state == TrialState.WAITING for t in trials):
            study.optimize(fit_point, n_trials=1)
            continue
        if worker:
            return None
        _enqueue_missing(study, ids, trials)
        time.sleep(POLL_S)


def _open(plan: FrontierPlan, storage: BaseStorage | None, log: Log) -> optuna.Study:
    """Create or load the frontier's study and enqueue the points that have no live trial."""
    name = plan.study_name
    study = optuna.create_study(storage=storage, study_name=name, direction="maximize", load_if_exists=True)
    if SETUP_ATTR not in study.user_attrs:
        study.set_user_attr(SETUP_ATTR, plan.setup)
    ids = [p.id for p in plan.todo]
    queued = _enqueue_missing(study, ids, study.get_trials(deepcopy=False))
    log(f"study {name}: {len(ids)} points, {queued} queued now")
    return study


def _fail_stale(study: optuna.Study) -> None:
    """Fail and requeue the trials of silent workers on other machines (RDB heartbeat; a no-op
    on a journal or in memory), as ``Study.optimize`` does before each trial, while nothing is waiting."""
    with warnings.catch_warnings():  # "experimental" in Optuna 5.0
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        optuna.storages.fail_stale_trials(study)


def _enqueue_missing(study: optuna.Study, ids: Iterable[str], trials: list[FrozenTrial]) -> int:
    """Enqueue the points no trial holds (WAITING, RUNNING or COMPLETE): new ones, or one whose
    trial failed with an error. Two processes may both enqueue a point; ``_taken`` prunes the later."""
    live = {_param(t) for t in trials if t.state in (TrialState.WAITING, TrialState.RUNNING, TrialState.COMPLETE)}
    missing = [pid for pid in ids if pid not in live]
    for pid in missing:
        study.enqueue_trial({POINT: pid})
    return len(missing)


def _param(trial: FrozenTrial) -> str | None:
    """The point a trial holds: its parameter once suggested, its fixed parameter while queued."""
    return trial.params.get(POINT) or trial.system_attrs.get("fixed_params", {}).get(POINT)


def _fixed_point(study: optuna.Study, trial: optuna.Trial) -> str | None:
    """The point enqueued for ``trial``, or None for a trial Optuna sampled because nothing was waiting."""
    frozen = study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
    return next((_param(t) for t in frozen if t.number == trial.number), None)


def _taken(study: optuna.Study, number: int, pid: str) -> bool:
    """Whether an earlier trial holds ``pid`` (running or done): the lower number keeps a point
    enqueued twice, so two workers never train one folder."""
    return any(t.number < number and _param(t) == pid
               for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING, TrialState.COMPLETE)))


def _done(trials: list[FrozenTrial]) -> dict[str, dict[str, Any]]:
    """Each finished point's row, as the trial that fitted it recorded it."""
    return {t.params[POINT]: t.user_attrs[ROW_ATTR] for t in trials
            if t.state == TrialState.COMPLETE and ROW_ATTR in t.user_attrs}


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Optuna's own log lines off while the points run: a point that fails reaches the caller as
    its one-line error, not also as Optuna's warning with a traceback; restored afterwards."""
    level = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    try:
        yield
    finally:
        optuna.logging.set_verbosity(level)


@contextlib.contextmanager
def _display(enabled: bool, total: int) -> Iterator[Callable[[str | None], None]]:
    """Points done / total and the point running, as a rich progress bar on stderr.

    Yields ``advance(description)``: marks the previous point done and shows the next
    one as running (None: all done).
    """
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    progress = Progress(TextColumn("frontier"), BarColumn(), MofNCompleteColumn(),
                        TextColumn("{task.description}"), TimeElapsedColumn(),
                        console=Console(stderr=True), disable=not enabled)
    task = progress.add_task("", total=total)
    started = False

    def advance(description: str | None) -> None:
        nonlocal started
        if started:
            progress.advance(task)
        started = True
        progress.update(task, description=description or "done")

    with progress:
        yield advance
