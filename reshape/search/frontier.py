"""A frontier's (seed, budget, method) points as trials of one Optuna study: workers on many machines.

``reshape frontier ... --storage URL`` opens (or creates) the study
``frontier-<fingerprint>`` in ``URL``, named after what the points depend on (teacher
digest, setting, methods, params, budgets), and enqueues every point that has no
trial yet (``Study.enqueue_trial`` with the point as its one fixed parameter). Each
process then takes WAITING trials with ``Study.optimize``, so Optuna pops every
enqueued trial exactly once, and an RDB storage's heartbeat covers the running one.
A trial fits its point with ``FrontierPlan.point`` into the shared output folder,
where a point's run directory resumes from its last checkpoint.

Nothing here is a queue of its own. The storage is the queue (Optuna's atomic pop of
WAITING trials); dead workers are found the way ``reshape search`` finds them
(``fail_dead_trials`` for this host's processes, the heartbeat and
``fail_stale_trials`` for other machines'), and their point is enqueued again.

A ``--worker`` leaves when no point is waiting. The coordinator (the same command
without ``--worker``) also waits for the running points, takes up any whose worker
died, and then writes results.json from the rows the trials recorded: the rows a
single-process run of the same points gives.
"""
from __future__ import annotations

import time
import warnings
from typing import Any, Callable

import optuna
from optuna.storages import BaseStorage
from optuna.trial import FrozenTrial, TrialState

from ..frontier import FrontierPlan, FrontierResult, PointCallback, frontier_id
from ..methods import MethodResult
from ..runs import canonical, fingerprint
from .study import SETUP_ATTR, WORKER_ATTR, fail_dead_trials, open_storage, worker_id

#: The trial parameter naming a point: "<method>@<budget label>@seed<S>" (``Point.id``).
POINT = "point"
ROW_ATTR = "row"
#: Seconds between looks at the study while the last points run elsewhere.
POLL_S = 2.0


def study_name(plan: FrontierPlan) -> str:
    """Named after what the points depend on and the frontier folder's identity (kept in its
    ``frontier.json``): equal commands on one folder share a study, wherever each machine
    mounts it; the same command with another ``--out`` gets a study, and points, of its own."""
    return f"frontier-{fingerprint({**setup(plan), 'folder': frontier_id(plan.out)})}"


def setup(plan: FrontierPlan) -> dict[str, Any]:
    record = plan.record
    return canonical({"teacher": plan.teacher.digest, "setting": plan.setting.key, "params": record["params"],
                      "points": [p.id for p in plan.todo]})


def shared_frontier(plan: FrontierPlan, storage: str | BaseStorage, worker: bool = False,
                    on_point: PointCallback | None = None, log: Callable[[str], None] = print,
                    command: str | None = None) -> FrontierResult | None:
    """Run ``plan``'s points as trials of a study in ``storage`` with any number of other processes.

    Returns the frontier once every point is COMPLETE (the coordinator), or None (a
    ``worker``, which leaves when nothing is waiting). ``on_point`` gets the rows this
    process fits; ``log`` a line when trials of dead workers are queued again.
    """
    study = _open(plan, storage, log)
    ids = {p.id: p for p in plan.todo}

    def fit_point(trial: optuna.Trial) -> float:
        pid = _fixed_point(study, trial)
        if pid is None or _taken(study, trial.number, pid):
            raise optuna.TrialPruned("surplus: no point waiting for this trial, or its point is taken")
        trial.suggest_categorical(POINT, list(ids))
        trial.set_user_attr(WORKER_ATTR, worker_id())
        row, _ = plan.point(ids[pid])
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
            break
        if any(t.state == TrialState.WAITING for t in trials):
            study.optimize(fit_point, n_trials=1)
            continue
        if worker:
            return None
        _enqueue_missing(study, ids, trials)
        time.sleep(POLL_S)
    if worker:
        return None
    rows = [done[p.id] for p in plan.todo]
    results = [MethodResult.from_dict(row, cached=row["cached"]) for row in rows if row["reachable"]]
    return plan.finish([*(plan.teacher_row(seed) for seed in plan.seeds), *rows], results, command)


def _fail_stale(study: optuna.Study) -> None:
    """Fail and requeue the trials of silent workers on other machines (RDB heartbeat; a no-op
    on a journal), as ``Study.optimize`` does before each trial, while nothing is waiting."""
    with warnings.catch_warnings():  # "experimental" in Optuna 5.0
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        optuna.storages.fail_stale_trials(study)


def _open(plan: FrontierPlan, storage: str | BaseStorage, log: Callable[[str], None]) -> optuna.Study:
    """Create or load the frontier's study and enqueue the points that have no live trial."""
    name = study_name(plan)
    if isinstance(storage, str):
        storage = open_storage(storage)
    study = optuna.create_study(storage=storage, study_name=name, direction="maximize",
                                load_if_exists=True)
    if SETUP_ATTR not in study.user_attrs:
        study.set_user_attr(SETUP_ATTR, setup(plan))
    ids = [p.id for p in plan.todo]
    queued = _enqueue_missing(study, ids, study.get_trials(deepcopy=False))
    log(f"study {name}: {len(ids)} points, {queued} queued now")
    return study


def _enqueue_missing(study: optuna.Study, ids: Any, trials: list[FrozenTrial]) -> int:
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
