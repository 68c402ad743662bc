"""The accuracy-vs-ReLU frontier: registered methods at several budgets and seeds, from one teacher.

``run_frontier(teacher, methods, budgets, setting, out, seeds=..., storage=None | url)``
fits the teacher to every budget with every method, once per seed, and returns a
``FrontierResult``: the teacher rows (one per seed), then one row per (seed, budget,
method) point, each a ``MethodResult.to_dict()`` plus ``seed``, ``fraction``, ``label`` and
``reachable``; and, computed from them (``reshape.compare``), ``summary`` (mean and
standard error over seeds per budget and method), ``pairs`` (our pipelines against the
baselines they change one thing of: paired differences per budget) and ``iso`` (the
ReLUs ours needs to match a baseline). It writes ``out/results.json``; the table, CSV and
plot are ``reshape.report.frontier``'s job (report sits above this package).

One worker loop runs the points, as Optuna takes its backend: with ``storage=None`` in
this process alone (an in-memory study), with a journal file or PostgreSQL URL beside any
number of other processes, on machines sharing ``out`` (``worker=True`` only takes points;
docs/scaling.md). The rows are the same either way.

Equal training by construction (docs/frontier.md, "Equal compute"): the students train
``setting.epochs`` after their parent on the setting's images; a network trained from
scratch gets the teacher's epochs on top; a HybReNet base is trained as the teacher was.
So the teacher must have been trained on the setting's images (same dataset, ``limit``
and ``val``): another teacher is refused before anything trains. Each seed has its own
teacher: the given one for its own seed, and for every other seed the same recipe
retrained with that seed (``out/teachers/seed<S>``), so a seed's spread covers the
parent's training as it covers a HybReNet base's.

Layout of ``out``:

* ``run.json``: the folder is owned through ``reshape.runs.RunDir`` (method ``frontier``,
  keyed by the teacher's weights digest and the setting), so ``force`` deletes only what a
  frontier wrote there.
* ``frontier.json``: what every point depends on (the teacher's weights digest, the
  setting's key, each method's params). A later call must agree on the teacher and the
  setting, and on the params of every method both calls name; it may add methods,
  budgets and seeds (their points join the folder; the record keeps the union).
  Anything else is refused, naming what differs, before any training (``force`` starts over).
* ``<method>/<budget label>/seed<S>/``: one run directory per point (``2pct``,
  ``10000relus``), claimed by the method, so a finished point is read back and a partial
  one resumes. A budget the method cannot reach (``BudgetUnreachable``) leaves
  ``unreachable.json`` there, read back like a finished point.
* ``teachers/seed<S>/``: the teacher retrained for a seed other than its own.
* ``shared/``: stages that recur across budgets (``Setting.shared``), e.g. HybReNet bases.
* ``results.json``: the command, the machine (with the commit), the setting, the rows,
  the summary, the pairs and the iso-accuracy ReLUs of this call's points.
"""
from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any, Callable, Mapping, Sequence

from ..errors import ReshapeError
from ..methods import Setting
from ..runs import TrainedRun
from ._options import budget_text, frontier_command, method_params, parse_methods, parse_sets
from ._plan import (FORMAT, RESULTS_FILE, SETTING_FILE, SHARED_DIR, TEACHER, TEACHERS_DIR, UNREACHABLE_FILE,
                    VERSION, Budget, BudgetSpec, FrontierPlan, Point, PointCallback, frontier_id, plan_frontier,
                    resolve_budgets)
from ._result import FrontierResult, machine

if TYPE_CHECKING:
    from optuna.storages import BaseStorage

__all__ = ["FORMAT", "RESULTS_FILE", "SETTING_FILE", "SHARED_DIR", "TEACHER", "TEACHERS_DIR", "UNREACHABLE_FILE",
           "VERSION", "Budget", "BudgetSpec", "FrontierPlan", "FrontierResult", "Point", "PointCallback",
           "budget_text", "frontier_command", "frontier_id", "machine", "method_params", "parse_methods",
           "parse_sets", "plan_frontier", "resolve_budgets", "run_frontier"]


def run_frontier(teacher: str | os.PathLike[str] | TrainedRun, methods: Sequence[str],
                 budgets: Sequence[BudgetSpec], setting: Setting, out: str | os.PathLike[str],
                 params: Mapping[str, Mapping[str, Any]] | None = None, force: bool = False,
                 on_point: PointCallback | None = None, command: str | None = None,
                 seeds: Sequence[int] | None = None, preset: str | None = None,
                 storage: str | BaseStorage | None = None, worker: bool = False,
                 log: Callable[[str], None] = print) -> FrontierResult | None:
    """Fit ``teacher`` to every budget with every method, once per seed, into ``out``; finished
    points are read back.

    ``seeds`` (default: the setting's) seed each point's teacher, initialisation and data
    order. ``preset`` names a params preset (``short``) that every method having it starts
    from; ``params`` overrides a method's defaults (``{"senet": {"at_weight": 100}}``,
    strings converted by ``Method.params``); ``on_point`` gets each row as it is done (a
    seed's teacher first). With ``setting.progress`` a rich display on stderr shows the
    points done and the one running (the methods' own epoch bars are off, as two live
    displays would overwrite each other). ``force`` deletes the frontier in ``out`` first.

    ``storage`` (an Optuna storage or its URL: ``journal:PATH``, ``postgresql://...``) shares
    the points with every other process given the same arguments; this one waits for
    theirs, then writes the frontier. A ``worker`` only takes points until none is waiting,
    and returns None. ``log`` gets a line when the shared study opens and when a dead
    worker's points are queued again.
    """
    from ..search import open_storage
    from ._worker import work

    if worker and (storage is None or force):
        raise ReshapeError("a worker takes points from a shared storage and never starts a frontier over; "
                           "pass storage=URL and no force")
    queue = open_storage(storage) if isinstance(storage, str) else storage  # a bad URL stops before the claim
    plan = plan_frontier(teacher, methods, budgets, setting, out, params, force, seeds, preset)
    return work(plan, queue, worker, on_point, setting.progress, log, command)
