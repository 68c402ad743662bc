"""The accuracy-vs-ReLU frontier: registered methods at several budgets and seeds, from one teacher.

``run_frontier(teacher, methods, budgets, setting, out, seeds=...)`` fits the teacher to
every budget with every method, once per seed, and returns a ``FrontierResult``: the
teacher rows (one per seed), then one row per (seed, budget, method) point, each a
``MethodResult.to_dict()`` plus ``seed``, ``fraction``, ``label`` and ``reachable``; and,
computed from them (``reshape.compare``), ``summary`` (mean and standard error over
seeds per budget and method), ``pairs`` (our pipelines against the baselines they change
one thing of: paired differences per budget) and ``iso`` (the ReLUs ours needs to match
a baseline). It writes ``out/results.json``; the table, CSV and plot are
``reshape.report.frontier``'s job (report sits above this module).

Equal training by construction (docs/frontier.md, "Equal compute"): the students train
``setting.epochs`` after their parent on the setting's images; a network trained from
scratch gets the teacher's epochs on top; a HybReNet base is trained as the teacher was.
So the teacher must have been trained on the setting's images (same dataset, ``limit``
and ``val``): another teacher is refused before anything trains. Each seed has its own
teacher: the given one for its own seed, and for every other seed the same recipe
retrained with that seed (``out/teachers/seed<S>``), so a seed's spread covers the
parent's training as it covers a HybReNet base's.

Layout of ``out``:

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

import contextlib
import dataclasses
import os
import platform
import re
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, Sequence

from . import compare
from .errors import BudgetUnreachable, ReshapeError
from .io import is_bookkeeping, read_json, write_json
from .methods import Method, MethodResult, Setting, get_method, params_key, parent_config, setting_splits
from .runs import (RunDir, TrainedRun, canonical, compute_of, differences, fingerprint, load_trained, refuse_inputs,
                   summarize, written_by)

FORMAT = "reshape.frontier"
#: 2: points per seed (``<method>/<label>/seed<S>``), teacher rows per seed, compute, summary and pairs.
VERSION = 2
SETTING_FILE = "frontier.json"
RESULTS_FILE = "results.json"
SHARED_DIR = "shared"
TEACHERS_DIR = "teachers"
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
class FrontierResult:
    """A frontier as measured: the teacher rows (one per seed), then one row per point, and
    what ``reshape.compare`` makes of them (``summary``, ``pairs``, ``iso``), computed once:
    the rows do not change after the frontier is built."""

    out: Path
    command: str
    machine: dict[str, Any]
    setting: dict[str, Any]
    rows: list[dict[str, Any]]
    results: list[MethodResult] = field(default_factory=list)
    tests: int | None = None

    @property
    def teachers(self) -> list[dict[str, Any]]:
        return [r for r in self.rows if r["method"] == TEACHER]

    @cached_property
    def teacher(self) -> dict[str, Any]:
        """The teacher over its seeds (mean top-1), as one row."""
        return compare.aggregate(self.teachers)[0]

    @property
    def points(self) -> list[dict[str, Any]]:
        return [r for r in self.rows if r["method"] != TEACHER]

    @property
    def seeds(self) -> list[int]:
        return sorted({r["seed"] for r in self.rows})

    @cached_property
    def summary(self) -> list[dict[str, Any]]:
        """One row per (budget, method): mean and standard error over the seeds."""
        return compare.aggregate(self.points)

    @cached_property
    def pairs(self) -> list[dict[str, Any]]:
        return compare.paired(self.points, self.tests)

    @cached_property
    def iso(self) -> list[dict[str, Any]]:
        return compare.iso_relus(self.summary)

    @cached_property
    def compute_equal(self) -> bool:
        """Whether every point's training agrees within ``compare.COMPUTE_TOLERANCE``."""
        return compare.compute_agrees([r for r in self.summary if r["reachable"]])

    @property
    def cached(self) -> bool:
        """Whether every point was read back (nothing trained in this call)."""
        return all(row["cached"] for row in self.points)

    def to_dict(self) -> dict[str, Any]:
        """As ``results.json`` holds it: each row's ``run`` relative to the frontier folder, so
        the file reads the same from any working directory (and after the folder moves)."""
        rows = [{**r, "run": _relative(r["run"], self.out)} if r.get("run") else r for r in self.rows]
        summary = [{**r, "run": _relative(r["run"], self.out), "runs": [_relative(x, self.out) for x in r["runs"]]}
                   for r in self.summary]
        setting = {**self.setting, "teacher": _relative(self.setting["teacher"], self.out)} \
            if self.setting.get("teacher") else self.setting
        return {"format": f"{FORMAT}.results", "version": VERSION, "command": self.command,
                "machine": self.machine, "setting": setting, "seeds": self.seeds, "tests": self.tests,
                "compute_equal": self.compute_equal, "rows": rows, "summary": summary,
                "pairs": self.pairs, "iso": self.iso}


_SET = re.compile(r"^([A-Za-z0-9_]+)\.([A-Za-z0-9_]+)=(.*)$")


def parse_sets(items: Sequence[str], methods: Sequence[str]) -> dict[str, dict[str, str]]:
    """``senet.at_weight=100`` items as ``{"senet": {"at_weight": "100"}}`` (values are converted
    by ``Method.params``); an item for a method not in ``methods`` is refused."""
    params: dict[str, dict[str, str]] = {}
    for item in items:
        m = _SET.match(item)
        if not m:
            raise ReshapeError(f"write METHOD.PARAM=VALUE (e.g. senet.at_weight=100), got {item!r}")
        method, name, value = m.groups()
        if method not in methods:
            raise ReshapeError(f"{item!r} sets a param of '{method}', which is not among the methods "
                               f"({', '.join(methods)})")
        params.setdefault(method, {})[name] = value
    return params


def budget_text(budget: int | float | str) -> str:
    """A budget as ``--budgets`` takes it: a fraction as a percentage, a count as digits (text,
    such as a placeholder in a summary, is kept as written)."""
    return f"{100 * budget:g}%" if isinstance(budget, float) else str(budget)


def frontier_command(teacher: str | os.PathLike[str], methods: Sequence[str], budgets: Sequence[int | float | str],
                     setting: Setting, seeds: Sequence[int], sets: Sequence[str], out: str | os.PathLike[str],
                     preset: str | None = None) -> str:
    """The ``reshape frontier`` command of these points, every setting spelled out."""
    args = ["reshape", "frontier", str(teacher), "--methods", ",".join(methods),
            "--budgets", ",".join(map(budget_text, budgets)), "--data", setting.data,
            "--epochs", str(setting.epochs), "--batch-size", str(setting.batch_size),
            "--kd-alpha", f"{setting.kd_alpha:g}", "--seeds", ",".join(map(str, seeds))]
    args += ["--root", setting.root] if setting.root else []
    args += ["--limit", str(setting.limit)] if setting.limit else []
    args += ["--val", str(setting.val)] if setting.val else []
    args += ["--preset", preset] if preset else []
    for item in sets:
        args += ["--set", item]
    return shlex.join(args + ["--out", str(out)])


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
    seeds: list[int]
    record: dict[str, Any]

    @property
    def todo(self) -> list[Point]:
        """The points in table order: seeds outer, then budgets, then methods."""
        return [Point(seed, b, name) for seed in self.seeds for b in self.budgets for name in self.chosen]

    def teacher_for(self, seed: int) -> TrainedRun:
        """The teacher of ``seed``: the given one for its own seed; for another seed its recipe
        retrained with that seed in ``out/teachers/seed<S>`` (trained once, then read back)."""
        if seed == self.record["teacher_seed"]:
            return self.teacher
        from .train import fit

        folder = self.out / TEACHERS_DIR / f"seed{seed}"
        setting = self.setting.with_seed(seed)
        fit(folder, self.teacher.spec, parent_config(self.teacher, setting), setting_splits(setting),
            parent=self.teacher.path, progress=False)
        return load_trained(folder, setting.data, setting.root, what=f"teacher of seed {seed}")

    def teacher_row(self, seed: int) -> dict[str, Any]:
        return _teacher_row(self.teacher_for(seed), seed)

    def point(self, point: Point) -> tuple[dict[str, Any], MethodResult | None]:
        """Fit (or read back) one point into ``out/<method>/<label>/seed<S>``: its row and result."""
        method, params = self.chosen[point.method]
        folder = self.out / point.method / point.budget.label / f"seed{point.seed}"
        return _point(method, params, point, self.teacher_for(point.seed), self.setting.with_seed(point.seed),
                      folder)

    def finish(self, rows: Sequence[dict[str, Any]], results: Sequence[MethodResult],
               command: str | None = None) -> FrontierResult:
        """The result of the teacher and point ``rows``, written to ``out/results.json``."""
        frontier = FrontierResult(self.out, command or "python " + shlex.join(sys.argv), machine(), self.record,
                                  list(rows), list(results), tests=_tests(self.setting))
        write_json(self.out / RESULTS_FILE, frontier.to_dict())
        return frontier


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
    _claim(out, teacher, setting, chosen, points, seeds, force)
    run_setting = dataclasses.replace(setting, progress=False,
                                      shared=setting.shared or str(out / SHARED_DIR))
    record = {**setting.key, "teacher": str(teacher.path), "teacher_digest": teacher.digest,
              "teacher_seed": teacher_seed, "seeds": seeds, "methods": list(chosen),
              "budgets": [dataclasses.asdict(b) for b in points],
              "params": {name: params_key(p) for name, (_, p) in chosen.items()}}
    return FrontierPlan(out, teacher, run_setting, chosen, points, seeds, record)


def run_frontier(teacher: str | os.PathLike[str] | TrainedRun, methods: Sequence[str],
                 budgets: Sequence[BudgetSpec], setting: Setting, out: str | os.PathLike[str],
                 params: Mapping[str, Mapping[str, Any]] | None = None, force: bool = False,
                 on_point: PointCallback | None = None, command: str | None = None,
                 seeds: Sequence[int] | None = None, preset: str | None = None) -> FrontierResult:
    """Fit ``teacher`` to every budget with every method, once per seed, into ``out``; finished
    points are read back.

    ``seeds`` (default: the setting's) seed each point's teacher, initialisation and data
    order. ``preset`` names a params preset (``short``) that every method having it starts
    from; ``params`` overrides a method's defaults (``{"senet": {"at_weight": 100}}``,
    strings converted by ``Method.params``); ``on_point`` gets each row as it is done (a
    seed's teacher first). With ``setting.progress`` a rich display on stderr shows the
    points done and the one running (the methods' own epoch bars are off, as two live
    displays would overwrite each other). ``force`` deletes the frontier in ``out`` first.
    """
    plan = plan_frontier(teacher, methods, budgets, setting, out, params, force, seeds, preset)
    rows, results = [], []
    with _display(setting.progress, len(plan.todo) + len(plan.seeds)) as advance:
        for seed in plan.seeds:
            advance(f"teacher of seed {seed}")
            rows.append(plan.teacher_row(seed))
            if on_point:
                on_point(rows[-1])
        for point in plan.todo:
            advance(f"{point.method} at {point.budget.label} ({point.budget.relus:,} ReLUs), seed {point.seed}")
            row, result = plan.point(point)
            rows.append(row)
            if result is not None:
                results.append(result)
            if on_point:
                on_point(row)
        advance(None)
    return plan.finish(rows, results, command)


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
                           "frontier's --data, --limit and --val, or give those of the teacher")
    return int(cfg_seed)


def _tests(setting: Setting) -> int | None:
    """The number of test images every point is scored on."""
    test = setting_splits(setting).test
    return None if test is None else len(test)


def method_params(names: Sequence[str], overrides: Mapping[str, Mapping[str, Any]],
             preset: str | None = None) -> dict[str, tuple[Method, Any]]:
    """Each named method with its params (defaults, then ``preset`` where the method has it,
    then overrides), checked before anything runs."""
    if not names:
        raise ReshapeError("no methods given; `reshape methods` lists the registered ones")
    stray = [m for m in overrides if m not in names]
    if stray:
        raise ReshapeError(f"params given for '{stray[0]}', which is not among the methods "
                           f"({', '.join(names)}); add it or drop its params")
    methods = {name: get_method(name) for name in dict.fromkeys(names)}
    if preset is not None and not any(preset in m.presets for m in methods.values()):
        known = sorted({p for m in methods.values() for p in m.presets})
        raise ReshapeError(f"no method among {', '.join(methods)} has a preset '{preset}'; they have "
                           f"{', '.join(known)} (`reshape methods` lists them)")
    return {name: (m, m.params(preset if preset in m.presets else None, **dict(overrides.get(name, {}))))
            for name, m in methods.items()}


def _teacher_row(teacher: TrainedRun, seed: int) -> dict[str, Any]:
    """A seed's teacher as a frontier row: counted, with its recorded accuracy, training and PI cost."""
    from .cost import estimate, load_costs

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


def _claim(out: Path, teacher: TrainedRun, setting: Setting, chosen: Mapping[str, tuple[Method, Any]],
           points: Sequence[Budget], seeds: Sequence[int], force: bool) -> None:
    """Own ``out`` for this teacher and setting: refuse a frontier of others, extend one that agrees."""
    file = out / SETTING_FILE
    if out.exists() and not out.is_dir():
        raise ReshapeError(f"{out} is a file, not a frontier folder; pick another --out")
    refuse_inputs(out, [teacher.path])
    if force and file.is_file():
        _clear(out, read_json(file, "frontier setting"))
    params = {name: params_key(p) for name, (_, p) in chosen.items()}
    wanted = {"teacher": teacher.digest, "setting": canonical(setting.key)}
    saved: dict[str, Any] = {"params": {}, "methods": [], "budgets": [], "seeds": []}
    if file.is_file():
        saved = read_json(file, "frontier setting")
        if not isinstance(saved, dict) or saved.get("format") != FORMAT:
            raise ReshapeError(f"{file} is not a frontier setting; pick a new --out")
        if saved.get("version") != VERSION:
            raise ReshapeError(f"{out} holds a frontier of layout version {saved.get('version')} (this reshape "
                               f"writes {VERSION}); pass --force to start it over, or pick a new --out")
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
              "budgets": list(dict.fromkeys([*saved["budgets"], *(b.label for b in points)])),
              "seeds": list(dict.fromkeys([*saved.get("seeds", []), *seeds]))}
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
    method folders it names, ``shared/``, ``teachers/``); anything else there is listed and
    nothing is deleted."""
    import fnmatch
    import shutil

    methods = saved.get("methods", []) if isinstance(saved, dict) else []
    if not isinstance(saved, dict) or saved.get("format") != FORMAT or not isinstance(methods, list):
        raise ReshapeError(f"{out / SETTING_FILE} is not a frontier setting; --force replaces only a "
                           "frontier: move the folder away or pick a new --out")
    ours = (SETTING_FILE, RESULTS_FILE, SHARED_DIR, TEACHERS_DIR, *written_by("frontier"), *map(str, methods))
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


def _point(method: Method, params: Any, point: Point, teacher: TrainedRun, setting: Setting,
           folder: Path) -> tuple[dict[str, Any], MethodResult | None]:
    """One point: fitted, read back, or recorded as unreachable."""
    budget = point.budget
    record = folder / UNREACHABLE_FILE
    key = {"method": method.name, "budget": budget.relus, "params": params_key(params)}
    extra = {"seed": point.seed, "fraction": budget.fraction, "label": budget.label}
    if record.is_file():
        saved = read_json(record, "unreachable point")
        if isinstance(saved, dict) and {k: saved.get(k) for k in key} == key:
            return _unreachable(method, point, folder, saved["why"], cached=True), None
        record.unlink()  # another configuration's record: the method decides anew
    try:
        result = method.fit(teacher, budget.relus, folder, setting, params)
    except BudgetUnreachable as exc:
        write_json(record, {**key, "why": str(exc)})
        return _unreachable(method, point, folder, str(exc), cached=False), None
    return {**result.to_dict(), **extra, "reachable": True, "why": None}, result


def _unreachable(method: Method, point: Point, folder: Path, why: str, cached: bool) -> dict[str, Any]:
    budget = point.budget
    return {"method": method.name, "family": method.family, "seed": point.seed, "budget": budget.relus,
            "fraction": budget.fraction, "label": budget.label, "run": str(folder), "relus": None, "macs": None,
            "depth": None, "top1": None, "val_top1": None, "params": {}, "built": {}, "pi": {}, "seconds": None,
            "cached": cached, "within_budget": False, "reachable": False, "why": why, "compute": {}}


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
