"""A frontier's folder and its points: the budgets, the teacher of each seed, the ownership of
``out`` (through ``RunDir`` alone) and one point fitted, read back or found unreachable.

``plan_frontier`` checks everything a frontier depends on and claims its folder before any
point runs; the worker loop (``._worker``) then fits the points of the ``FrontierPlan``,
alone or beside other processes.
"""
from __future__ import annotations

import dataclasses
import glob
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from ..errors import BudgetUnreachable, OwnershipError, ReshapeError
from ..io import canonical, differences, fingerprint, is_bookkeeping, read_json, write_json
from ..methods import Method, Setting, params_key, parent_config, setting_splits
from ..runs import RunDir, TrainedRun, compute_of, load_trained, refuse_inputs, summarize, writes
from ._options import method_params

FORMAT = "reshape.frontier"
#: 2: points per seed (``<method>/<label>/seed<S>``), teacher rows per seed, compute, summary and pairs.
VERSION = 2
#: The method the frontier folder's ``run.json`` names: ``RunDir`` owns the folder under it.
FRONTIER = "frontier"
SETTING_FILE = "frontier.json"
RESULTS_FILE = "results.json"
SHARED_DIR = "shared"
TEACHERS_DIR = "teachers"
UNREACHABLE_FILE = "unreachable.json"
TEACHER = "teacher"
writes(FRONTIER, SETTING_FILE, RESULTS_FILE, SHARED_DIR, TEACHERS_DIR)  # what a forced rerun may delete beside the points

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


@dataclass(frozen=True)
class Point:
    """One point of a frontier: a method at a budget, trained with one seed."""

    seed: int
    budget: Budget
    method: str

    @property
    def id(self) -> str:
        return f"{self.method}@{self.budget.label}@seed{self.seed}"


@dataclass
class FrontierPlan:
    """A claimed frontier folder and its points, before any point runs: every process that
    works on the folder, alone or beside others, fits a point with ``point``, so all give
    the same rows."""

    out: Path
    teacher: TrainedRun
    setting: Setting
    chosen: dict[str, tuple[Method, Any]]
    budgets: list[Budget]
    seeds: list[int]
    record: dict[str, Any]

    @property
    def todo(self) -> list[Point]:
        """The points in table order: seeds outer, then budgets, then methods."""
        return [Point(seed, b, name) for seed in self.seeds for b in self.budgets for name in self.chosen]

    @property
    def setup(self) -> dict[str, Any]:
        """What the points depend on: the study that hands them out records it."""
        return canonical({"teacher": self.teacher.digest, "setting": self.setting.key,
                          "params": self.record["params"], "points": [p.id for p in self.todo]})

    @property
    def study_name(self) -> str:
        """Named after ``setup`` and the folder's identity (kept in its ``frontier.json``): equal
        commands on one folder share a study, wherever each machine mounts it; the same command
        with another ``out`` gets a study, and points, of its own."""
        return f"frontier-{fingerprint({**self.setup, 'folder': frontier_id(self.out)})}"

    def teacher_for(self, seed: int) -> TrainedRun:
        """The teacher of ``seed``: the given one for its own seed; for another seed its recipe
        retrained with that seed in ``out/teachers/seed<S>`` (trained once, then read back)."""
        if seed == self.record["teacher_seed"]:
            return self.teacher
        from ..train import fit

        folder = self.out / TEACHERS_DIR / f"seed{seed}"
        setting = self.setting.with_seed(seed)
        fit(folder, self.teacher.spec, parent_config(self.teacher, setting), setting_splits(setting),
            parent=self.teacher.path, progress=False)
        return load_trained(folder, setting.data, setting.root, what=f"teacher of seed {seed}")

    def teacher_row(self, seed: int) -> dict[str, Any]:
        return _teacher_row(self.teacher_for(seed), seed)

    def point(self, point: Point) -> dict[str, Any]:
        """Fit (or read back) one point into ``out/<method>/<label>/seed<S>``: its row."""
        method, params = self.chosen[point.method]
        folder = self.out / point.method / point.budget.label / f"seed{point.seed}"
        return _point(method, params, point, self.teacher_for(point.seed), self.setting.with_seed(point.seed),
                      folder)


def plan_frontier(teacher: str | os.PathLike[str] | TrainedRun, methods: Sequence[str],
                  budgets: Sequence[BudgetSpec], setting: Setting, out: str | os.PathLike[str],
                  params: Mapping[str, Mapping[str, Any]] | None = None, force: bool = False,
                  seeds: Sequence[int] | None = None, preset: str | None = None) -> FrontierPlan:
    """Check the methods, load the teacher, check it was trained on the setting's images,
    resolve the budgets and claim ``out`` (see ``run_frontier``)."""
    out = Path(out)
    chosen = method_params(methods, params or {}, preset)
    seeds = _seeds(seeds, setting)
    if not isinstance(teacher, TrainedRun):
        teacher = load_trained(teacher, setting.data, setting.root, what=f"teacher {teacher}")
    teacher_seed = _check_teacher(teacher, setting)
    points = resolve_budgets(budgets, summarize(teacher.path)["relus"])
    chosen_params = {name: params_key(p) for name, (_, p) in chosen.items()}
    _claim(out, teacher, setting, chosen_params, points, seeds, force)
    run_setting = dataclasses.replace(setting, progress=False,
                                      shared=setting.shared or str(out / SHARED_DIR))
    record = {**setting.key, "teacher": str(teacher.path), "teacher_digest": teacher.digest,
              "teacher_seed": teacher_seed, "seeds": seeds, "methods": list(chosen),
              "budgets": [dataclasses.asdict(b) for b in points], "params": chosen_params}
    return FrontierPlan(out, teacher, run_setting, chosen, points, seeds, record)


def _seeds(seeds: Sequence[int] | None, setting: Setting) -> list[int]:
    """The seeds to run: distinct integers >= 0, the setting's when none are given."""
    chosen = [setting.seed] if seeds is None else list(seeds)
    if not chosen:
        raise ReshapeError("no seeds given; pass one or more, e.g. 0,1,2")
    if any(isinstance(s, bool) or not isinstance(s, int) or s < 0 for s in chosen):
        raise ReshapeError(f"seeds must be integers >= 0, got {chosen}")
    if len(set(chosen)) != len(chosen):
        raise ReshapeError(f"a seed is given twice in {chosen}")
    return chosen


def _check_teacher(teacher: TrainedRun, setting: Setting) -> int:
    """The teacher's seed, once its training is known to match the setting's images.

    Every network trained from scratch gets the teacher's training, and every reducer starts
    from it: that is equal compute only if the teacher trained on the setting's images. So a
    teacher trained on other images (dataset, ``limit``, ``val``) is refused, naming both.
    """
    manifest = RunDir(teacher.path).manifest()
    training = (manifest.training or {}) if manifest else {}
    data = (training.get("params") or {}).get("data")
    cfg_seed = ((training.get("params") or {}).get("train") or {}).get("seed")
    if not isinstance(data, dict) or cfg_seed is None:
        raise ReshapeError(f"teacher {teacher.path} records no training (run.json); a frontier gives every "
                           "network the teacher's training, so train the teacher with `reshape train`")
    wanted = {"dataset": setting.data, "limit": setting.limit, "val": setting.val, "test_limit": None}
    have = {k: data.get(k, 0 if k == "val" else None) for k in wanted}
    if have != wanted:
        changed = "; ".join(f"{k} {have[k]} vs {wanted[k]}" for k in wanted if have[k] != wanted[k])
        raise ReshapeError(f"teacher {teacher.path} was trained on other images than the students would be "
                           f"({changed}): their training could not be equal; train the teacher with the "
                           "frontier's $data, $limit and $val, or give those of the teacher")
    return int(cfg_seed)


def _teacher_row(teacher: TrainedRun, seed: int) -> dict[str, Any]:
    """A seed's teacher as a frontier row: counted, with its recorded accuracy, training and PI cost."""
    from ..cost import estimate, load_costs

    s = summarize(teacher.path)
    costs = load_costs()
    pi = {p: estimate(s["relus"], s["macs"], s["depth"], p, costs).to_dict() for p in costs}
    manifest = RunDir(teacher.path).manifest()
    val = ((manifest.training or {}).get("last") or {}).get("val_top1") if manifest else None
    return {"method": TEACHER, "family": TEACHER, "seed": seed, "budget": s["relus"], "fraction": 1.0,
            "label": TEACHER, "run": str(teacher.path), "relus": s["relus"], "macs": s["macs"], "depth": s["depth"],
            "top1": s["top1"], "val_top1": val, "params": {}, "built": {}, "pi": pi, "seconds": None,
            "cached": True, "within_budget": True, "reachable": True, "why": None,
            "compute": compute_of(teacher.path)}


# -- the folder: owned through RunDir ------------------------------------------------------------
def _claim(out: Path, teacher: TrainedRun, setting: Setting, params: Mapping[str, Any],
           points: Sequence[Budget], seeds: Sequence[int], force: bool) -> None:
    """Own ``out`` for this teacher and setting: refuse a frontier of others, extend one that agrees.

    ``RunDir`` owns the folder (``run.json``, method ``frontier``, keyed by the teacher and the
    setting, unlocked: the workers of a shared frontier all write into it; each point's
    folder is locked). ``frontier.json`` records what the folder holds so far, the union
    of every call's methods, budgets and seeds, which no fixed key can: a call may add
    methods, so each method's params are checked against it by name.
    """
    run = RunDir(out)
    key = {"teacher": teacher.digest, "setting": canonical(setting.key)}
    refuse_inputs(out, [teacher.path])  # before a forced rerun deletes anything
    if force:
        _clear(run, key, teacher.path)
    saved = _saved(out, key, params)
    if saved is not None and run.manifest() is None:  # written before a frontier kept a run.json
        run.start(FRONTIER, key, teacher.path)
    run.claim(FRONTIER, key, parent=teacher.path, lock=False)
    saved = saved or {"params": {}, "methods": [], "budgets": [], "seeds": []}
    # The folder's identity (shared studies are named after it): kept from the first call.
    identity = saved.get("id") or fingerprint({"folder": str(out.resolve())})
    record = {"format": FORMAT, "version": VERSION, "id": identity, **key,
              "teacher_run": relative(teacher.path, out),
              "params": {**saved["params"], **params},
              "methods": list(dict.fromkeys([*saved["methods"], *params])),
              "budgets": list(dict.fromkeys([*saved["budgets"], *(b.label for b in points)])),
              "seeds": list(dict.fromkeys([*saved.get("seeds", []), *seeds]))}
    if record != saved:  # a read-back writes nothing: a finished frontier reads from a read-only folder
        write_json(out / SETTING_FILE, record)


def _saved(out: Path, key: Mapping[str, Any], params: Mapping[str, Any]) -> dict[str, Any] | None:
    """The record of the frontier in ``out`` (None where there is none), refused when it is of
    another layout, another teacher or setting, or other params of a method both calls name."""
    file = out / SETTING_FILE
    if not file.is_file():
        return None
    saved = read_json(file, "frontier setting")
    if not isinstance(saved, dict) or saved.get("format") != FORMAT:
        raise OwnershipError(f"{file} is not a frontier setting; pick a new $out")
    if saved.get("version") != VERSION:
        raise OwnershipError(f"{out} holds a frontier of layout version {saved.get('version')} (this reshape "
                             f"writes {VERSION}); pass $force to start it over, or pick a new $out")
    common = {m: saved["params"][m] for m in params if m in saved["params"]}
    changed = differences({"teacher": saved["teacher"], "setting": saved["setting"], "params": common},
                          {**key, "params": {m: params[m] for m in common}})
    if changed:
        raise OwnershipError(f"{out} holds a frontier with another teacher or settings "
                             f"({'; '.join(changed[:4])}); pass $force to start it over, or pick a new $out")
    return saved


def _clear(run: RunDir, key: Mapping[str, Any], teacher: Path) -> None:
    """``force``: delete the frontier in ``run`` with ``RunDir.clear``, which deletes only what a
    frontier wrote (its records and tables, ``teachers/``, ``shared/`` and the method folders
    its ``frontier.json`` names) and otherwise lists the rest and deletes nothing. A frontier
    written before it kept a run.json is owned first, and left as it was when refused."""
    if not run.path.is_dir() or all(is_bookkeeping(e) for e in run.path.iterdir()):
        return
    file = run.path / SETTING_FILE
    saved = read_json(file, "frontier setting") if file.is_file() else None
    ours = isinstance(saved, dict) and saved.get("format") == FORMAT
    methods = saved.get("methods") if ours else None
    folders = [glob.escape(m) for m in methods if isinstance(m, str)] if isinstance(methods, list) else []
    adopted = ours and run.manifest() is None
    if adopted:
        run.start(FRONTIER, key, teacher)
    try:
        run.clear(FRONTIER, also=folders)
    except ReshapeError:
        if adopted:
            run.manifest_file.unlink()
        raise


def frontier_id(out: str | os.PathLike[str]) -> str:
    """The identity of the frontier claimed in ``out`` (``frontier.json``'s ``id``)."""
    saved = read_json(Path(out) / SETTING_FILE, "frontier setting")
    if not isinstance(saved, dict) or not isinstance(saved.get("id"), str):
        raise ReshapeError(f"{Path(out) / SETTING_FILE} has no frontier id; rerun `reshape frontier` into it")
    return saved["id"]


def relative(path: str | os.PathLike[str], folder: str | os.PathLike[str]) -> str:
    """``path`` relative to ``folder`` (both resolved): what the frontier's files store."""
    return os.path.relpath(Path(path).resolve(), Path(folder).resolve())


# -- one point -----------------------------------------------------------------------------------
def _point(method: Method, params: Any, point: Point, teacher: TrainedRun, setting: Setting,
           folder: Path) -> dict[str, Any]:
    """One point's row: fitted, read back, or recorded as unreachable."""
    budget = point.budget
    record = folder / UNREACHABLE_FILE
    key = {"method": method.name, "budget": budget.relus, "params": params_key(params)}
    extra = {"seed": point.seed, "fraction": budget.fraction, "label": budget.label}
    if record.is_file():
        saved = read_json(record, "unreachable point")
        if isinstance(saved, dict) and {k: saved.get(k) for k in key} == key:
            return _unreachable(method, point, folder, saved["why"], cached=True)
        record.unlink()  # another configuration's record: the method decides anew
    try:
        result = method.fit(teacher, budget.relus, folder, setting, params)
    except BudgetUnreachable as exc:
        write_json(record, {**key, "why": str(exc)})
        return _unreachable(method, point, folder, str(exc), cached=False)
    return {**result.to_dict(), **extra, "reachable": True, "why": None}


def _unreachable(method: Method, point: Point, folder: Path, why: str, cached: bool) -> dict[str, Any]:
    budget = point.budget
    return {"method": method.name, "family": method.family, "seed": point.seed, "budget": budget.relus,
            "fraction": budget.fraction, "label": budget.label, "run": str(folder), "relus": None, "macs": None,
            "depth": None, "top1": None, "val_top1": None, "params": {}, "built": {}, "pi": {}, "seconds": None,
            "cached": cached, "within_budget": False, "reachable": False, "why": why, "compute": {}}
