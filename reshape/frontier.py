"""The accuracy-vs-ReLU frontier: registered methods at several budgets, from one teacher.

``run_frontier(teacher, methods, budgets, setting, out)`` fits the teacher to every
budget with every method (``reshape.methods.get_method(name).fit``) and returns a
``FrontierResult``: one row for the teacher, then one per (budget, method) point, each a
``MethodResult.to_dict()`` plus ``fraction``, ``label`` and ``reachable``. It writes
``out/results.json``; the table, CSV and plot are ``reshape.report.frontier``'s job
(report sits above this module).

Layout of ``out``:

* ``frontier.json``: what every point depends on (the teacher's weights digest, the
  setting's key, each method's params). A later call must agree on the teacher and the
  setting, and on the params of every method both calls name; it may add methods and
  budgets (their points join the folder; the record keeps the union). Anything else is
  refused, naming what differs, before any training (``force`` starts over).
* ``<method>/<budget label>/``: one run directory per point (``2pct``, ``10000relus``),
  claimed by the method, so a finished point is read back and a partial one resumes.
  A budget the method cannot reach (``BudgetUnreachable``) leaves ``unreachable.json``
  there, read back like a finished point.
* ``shared/``: stages that recur across budgets (``Setting.shared``), e.g. HybReNet bases.
* ``results.json``: the command, the machine (with the commit), the setting and the rows
  of this call's methods x budgets.
"""
from __future__ import annotations

import contextlib
import dataclasses
import os
import platform
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, Sequence

from .errors import BudgetUnreachable, ReshapeError
from .io import is_bookkeeping, read_json, write_json
from .methods import Method, MethodResult, Setting, get_method
from .runs import TrainedRun, canonical, differences, fingerprint, load_trained, refuse_inputs, summarize, written_by

FORMAT = "reshape.frontier"
VERSION = 1
SETTING_FILE = "frontier.json"
RESULTS_FILE = "results.json"
SHARED_DIR = "shared"
UNREACHABLE_FILE = "unreachable.json"
TEACHER = "teacher"

BudgetSpec = int | float
PointCallback = Callable[[dict[str, Any]], None]


@dataclass(frozen=True)
class Budget:
    """One budget of a frontier: its exact ReLU count, its share of the teacher's, its folder name."""

    relus: int
    fraction: float
    label: str


def resolve_budgets(budgets: Sequence[BudgetSpec], teacher_relus: int) -> list[Budget]:
    """Budgets as ReLU counts: an int is a count, a float in (0, 1] a fraction of the teacher's.

    A fraction's label is its percentage (``2pct``), a count's the count (``10000relus``),
    so the folder says what was asked; repeated budgets are run once.
    """
    if not budgets:
        raise ReshapeError("no budgets given; pass ReLU counts (10k) or fractions of the teacher's (2%)")
    out: dict[str, Budget] = {}
    for b in budgets:
        if isinstance(b, bool) or not isinstance(b, (int, float)):
            raise ReshapeError(f"a budget is a ReLU count (int) or a fraction in (0, 1] (float), got {b!r}")
        if isinstance(b, float):
            if not 0 < b <= 1:
                raise ReshapeError(f"budget fraction {b:g} is not in (0, 1]; give a fraction of the "
                                   "teacher's ReLUs (0.05 = 5%) or an integer ReLU count")
            relus = int(b * teacher_relus)
            if relus < 1:
                raise ReshapeError(f"budget {100 * b:g}% of {teacher_relus:,} ReLUs is below one ReLU")
            budget = Budget(relus, b, f"{100 * b:g}pct")
        else:
            if b < 1:
                raise ReshapeError(f"a ReLU budget must be a positive count, got {b}")
            budget = Budget(b, b / teacher_relus, f"{b}relus")
        out.setdefault(budget.label, budget)
    return list(out.values())


@dataclass
class FrontierResult:
    """A frontier as measured: the teacher row, then one row per (budget, method) point."""

    out: Path
    command: str
    machine: dict[str, Any]
    setting: dict[str, Any]
    rows: list[dict[str, Any]]
    results: list[MethodResult] = field(default_factory=list)

    @property
    def teacher(self) -> dict[str, Any]:
        return self.rows[0]

    @property
    def points(self) -> list[dict[str, Any]]:
        return self.rows[1:]

    @property
    def cached(self) -> bool:
        """Whether every point was read back (nothing trained in this call)."""
        return all(row["cached"] for row in self.points)

    def to_dict(self) -> dict[str, Any]:
        """As ``results.json`` holds it: each row's ``run`` relative to the frontier folder, so
        the file reads the same from any working directory (and after the folder moves)."""
        rows = [{**r, "run": _relative(r["run"], self.out)} if r.get("run") else r for r in self.rows]
        setting = {**self.setting, "teacher": _relative(self.setting["teacher"], self.out)} \
            if self.setting.get("teacher") else self.setting
        return {"format": f"{FORMAT}.results", "version": VERSION, "command": self.command,
                "machine": self.machine, "setting": setting, "rows": rows}


def machine() -> dict[str, Any]:
    """Where a result was measured: CPU, cores, GPU, torch, thread count, commit and date."""
    import torch

    here = Path(__file__).parent
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                                cwd=here, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], capture_output=True,
                               text=True, cwd=here).stdout.strip()
        commit += "-dirty" if dirty else ""
    except (OSError, subprocess.CalledProcessError):
        commit = "unknown"
    gpu = torch.cuda.get_device_name() if torch.cuda.is_available() else None
    return {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(), "gpu": gpu,
            "threads": torch.get_num_threads(), "torch": torch.__version__, "python": platform.python_version(),
            "commit": commit, "date": time.strftime("%Y-%m-%d")}


@dataclass
class FrontierPlan:
    """A claimed frontier folder and its points, before any point runs.

    ``run_frontier`` walks ``todo`` in one process; ``reshape.search.frontier`` hands the
    same points to workers through an Optuna study. Both fit a point with ``point`` and
    write the result with ``finish``, so the two give the same rows.
    """

    out: Path
    teacher: TrainedRun
    setting: Setting
    chosen: dict[str, tuple[Method, Any]]
    budgets: list[Budget]
    record: dict[str, Any]
    teacher_row: dict[str, Any]

    @property
    def todo(self) -> list[tuple[Budget, str]]:
        """The (budget, method) points in table order: budgets outer, methods inner."""
        return [(b, name) for b in self.budgets for name in self.chosen]

    def point(self, budget: Budget, name: str) -> tuple[dict[str, Any], MethodResult | None]:
        """Fit (or read back) one point into ``out/<method>/<label>``: its row and result."""
        method, params = self.chosen[name]
        return _point(method, params, budget, self.teacher, self.setting, self.out / name / budget.label)

    def finish(self, rows: Sequence[dict[str, Any]], results: Sequence[MethodResult],
               command: str | None = None) -> FrontierResult:
        """The result of the points' ``rows`` (in ``todo`` order), written to ``out/results.json``."""
        frontier = FrontierResult(self.out, command or "python " + shlex.join(sys.argv), machine(), self.record,
                                  [self.teacher_row, *rows], list(results))
        write_json(self.out / RESULTS_FILE, frontier.to_dict())
        return frontier


def plan_frontier(teacher: str | os.PathLike[str] | TrainedRun, methods: Sequence[str],
                  budgets: Sequence[BudgetSpec], setting: Setting, out: str | os.PathLike[str],
                  params: Mapping[str, Mapping[str, Any]] | None = None, force: bool = False) -> FrontierPlan:
    """Check the methods, load the teacher, resolve the budgets and claim ``out`` (see ``run_frontier``)."""
    out = Path(out)
    chosen = _methods(methods, params or {})
    if not isinstance(teacher, TrainedRun):
        teacher = load_trained(teacher, setting.data, setting.root, what=f"teacher {teacher}")
    teacher_row = _teacher_row(teacher)
    points = resolve_budgets(budgets, teacher_row["relus"])
    _claim(out, teacher, setting, chosen, points, force)
    run_setting = dataclasses.replace(setting, progress=False,
                                      shared=setting.shared or str(out / SHARED_DIR))
    record = {**setting.key, "teacher": str(teacher.path), "teacher_digest": teacher.digest,
              "methods": list(chosen), "budgets": [dataclasses.asdict(b) for b in points],
              "params": {name: canonical(dataclasses.asdict(p)) for name, (_, p) in chosen.items()}}
    return FrontierPlan(out, teacher, run_setting, chosen, points, record, teacher_row)


def run_frontier(teacher: str | os.PathLike[str] | TrainedRun, methods: Sequence[str],
                 budgets: Sequence[BudgetSpec], setting: Setting, out: str | os.PathLike[str],
                 params: Mapping[str, Mapping[str, Any]] | None = None, force: bool = False,
                 on_point: PointCallback | None = None, command: str | None = None) -> FrontierResult:
    """Fit ``teacher`` to every budget with every method into ``out``; finished points are read back.

    ``params`` overrides a method's defaults (``{"senet": {"at_weight": 100}}``, strings
    converted by ``Method.params``); ``on_point`` gets each row as it is done (the
    teacher's first). With ``setting.progress`` a rich display on stderr shows the points
    done and the one running (the methods' own epoch bars are off, as two live displays
    would overwrite each other). ``force`` deletes the frontier in ``out`` first.
    """
    plan = plan_frontier(teacher, methods, budgets, setting, out, params, force)
    rows, results = [], []
    if on_point:
        on_point(plan.teacher_row)
    with _display(setting.progress, len(plan.todo)) as advance:
        for budget, name in plan.todo:
            advance(f"{name} at {budget.label} ({budget.relus:,} ReLUs)")
            row, result = plan.point(budget, name)
            rows.append(row)
            if result is not None:
                results.append(result)
            if on_point:
                on_point(row)
        advance(None)
    return plan.finish(rows, results, command)


def _methods(names: Sequence[str], overrides: Mapping[str, Mapping[str, Any]]) -> dict[str, tuple[Method, Any]]:
    """Each named method with its params (defaults + overrides), checked before anything runs."""
    if not names:
        raise ReshapeError("no methods given; `reshape methods` lists the registered ones")
    stray = [m for m in overrides if m not in names]
    if stray:
        raise ReshapeError(f"params given for '{stray[0]}', which is not among the methods "
                           f"({', '.join(names)}); add it or drop its params")
    return {name: (m := get_method(name), m.params(**dict(overrides.get(name, {})))) for name in dict.fromkeys(names)}


def _teacher_row(teacher: TrainedRun) -> dict[str, Any]:
    """The teacher as a frontier row: counted, with its recorded accuracy and PI cost."""
    from .cost import estimate, load_costs

    s = summarize(teacher.path)
    costs = load_costs()
    pi = {p: estimate(s["relus"], s["macs"], s["depth"], p, costs).to_dict() for p in costs}
    return {"method": TEACHER, "family": TEACHER, "budget": s["relus"], "fraction": 1.0, "label": TEACHER,
            "run": str(teacher.path), "relus": s["relus"], "macs": s["macs"], "depth": s["depth"],
            "top1": s["top1"], "params": {}, "built": {}, "pi": pi, "seconds": None, "cached": True,
            "within_budget": True, "reachable": True, "why": None}


def _claim(out: Path, teacher: TrainedRun, setting: Setting, chosen: Mapping[str, tuple[Method, Any]],
           points: Sequence[Budget], force: bool) -> None:
    """Own ``out`` for this teacher and setting: refuse a frontier of others, extend one that agrees."""
    file = out / SETTING_FILE
    if out.exists() and not out.is_dir():
        raise ReshapeError(f"{out} is a file, not a frontier folder; pick another --out")
    refuse_inputs(out, [teacher.path])
    if force and file.is_file():
        _clear(out, read_json(file, "frontier setting"))
    params = {name: canonical(dataclasses.asdict(p)) for name, (_, p) in chosen.items()}
    wanted = {"teacher": teacher.digest, "setting": canonical(setting.key)}
    saved: dict[str, Any] = {"params": {}, "methods": [], "budgets": []}
    if file.is_file():
        saved = read_json(file, "frontier setting")
        if not isinstance(saved, dict) or saved.get("format") != FORMAT:
            raise ReshapeError(f"{file} is not a frontier setting; pick a new --out")
        common = {m: saved["params"][m] for m in params if m in saved["params"]}
        changed = differences({"teacher": saved["teacher"], "setting": saved["setting"], "params": common},
                              {**wanted, "params": {m: params[m] for m in common}})
        if changed:
            raise ReshapeError(f"{out} holds a frontier with another teacher or settings "
                               f"({'; '.join(changed[:4])}); pass --force to start it over, or pick a new --out")
    elif out.is_dir() and any(not is_bookkeeping(e) for e in out.iterdir()):
        raise ReshapeError(f"{out} holds files that are not a frontier (no {SETTING_FILE}); "
                           "pick an empty or new --out")
    # The folder's identity (shared studies are named after it): kept from the first call.
    identity = saved.get("id") or fingerprint({"folder": str(out.resolve())})
    record = {"format": FORMAT, "version": VERSION, "id": identity, **wanted,
              "teacher_run": _relative(teacher.path, out),
              "params": {**saved["params"], **params},
              "methods": list(dict.fromkeys([*saved["methods"], *params])),
              "budgets": list(dict.fromkeys([*saved["budgets"], *(b.label for b in points)]))}
    if record != saved:  # a read-back writes nothing: a finished frontier reads from a read-only folder
        write_json(file, record)


def frontier_id(out: str | os.PathLike[str]) -> str:
    """The identity of the frontier claimed in ``out`` (``frontier.json``'s ``id``)."""
    saved = read_json(Path(out) / SETTING_FILE, "frontier setting")
    if not isinstance(saved, dict) or not isinstance(saved.get("id"), str):
        raise ReshapeError(f"{Path(out) / SETTING_FILE} has no frontier id; rerun `reshape frontier` into it")
    return saved["id"]


def _relative(path: str | os.PathLike[str], folder: str | os.PathLike[str]) -> str:
    """``path`` relative to ``folder`` (both resolved): what the frontier's files store."""
    return os.path.relpath(Path(path).resolve(), Path(folder).resolve())


def _clear(out: Path, saved: Any) -> None:
    """Delete a frontier's contents: only what a frontier writes (its records and tables, the
    method folders it names, ``shared/``); anything else there is listed and nothing is deleted."""
    import fnmatch
    import shutil

    methods = saved.get("methods", []) if isinstance(saved, dict) else []
    if not isinstance(saved, dict) or saved.get("format") != FORMAT or not isinstance(methods, list):
        raise ReshapeError(f"{out / SETTING_FILE} is not a frontier setting; --force replaces only a "
                           "frontier: move the folder away or pick a new --out")
    ours = (SETTING_FILE, RESULTS_FILE, SHARED_DIR, *written_by("frontier"), *map(str, methods))
    stray = [e.name for e in sorted(out.iterdir())
             if not is_bookkeeping(e) and not any(fnmatch.fnmatchcase(e.name, p) for p in ours)]
    if stray:
        raise ReshapeError(f"{out} holds files a frontier did not write ({', '.join(stray[:5])}); --force "
                           "deletes nothing it did not write: move them away, or pick a new --out")
    for entry in out.iterdir():
        if is_bookkeeping(entry):
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink()


def _point(method: Method, params: Any, budget: Budget, teacher: TrainedRun, setting: Setting,
           folder: Path) -> tuple[dict[str, Any], MethodResult | None]:
    """One (method, budget) point: fitted, read back, or recorded as unreachable."""
    record = folder / UNREACHABLE_FILE
    key = {"method": method.name, "budget": budget.relus, "params": canonical(dataclasses.asdict(params))}
    extra = {"fraction": budget.fraction, "label": budget.label}
    if record.is_file():
        saved = read_json(record, "unreachable point")
        if isinstance(saved, dict) and {k: saved.get(k) for k in key} == key:
            return _unreachable(method, budget, folder, saved["why"], cached=True), None
        record.unlink()  # another configuration's record: the method decides anew
    try:
        result = method.fit(teacher, budget.relus, folder, setting, params)
    except BudgetUnreachable as exc:
        write_json(record, {**key, "why": str(exc)})
        return _unreachable(method, budget, folder, str(exc), cached=False), None
    return {**result.to_dict(), **extra, "reachable": True, "why": None}, result


def _unreachable(method: Method, budget: Budget, folder: Path, why: str, cached: bool) -> dict[str, Any]:
    return {"method": method.name, "family": method.family, "budget": budget.relus, "fraction": budget.fraction,
            "label": budget.label, "run": str(folder), "relus": None, "macs": None, "depth": None, "top1": None,
            "params": {}, "built": {}, "pi": {}, "seconds": None, "cached": cached, "within_budget": False,
            "reachable": False, "why": why}


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
