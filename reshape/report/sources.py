"""Read our results as Pareto points: run directories, result CSVs and Optuna studies.

A SOURCE on the command line is one of

* a run directory (``reshape.runs.summarize``): accuracy from its ``run.json`` (else the
  last finished epoch), the ReLU count is ``reshape.count`` of the saved model (stem
  ReLU included), the label is the method ``run.json`` names (the folder name for a
  plain ``reshape train`` run; ``<folder> (no run.json)`` for a run of an older version);
* a CSV file with columns ``method``, ``relus``, ``top1`` (percent) and optionally
  ``source`` and ``dataset`` (rows of another dataset are skipped);
* an Optuna study ``STORAGE::STUDY`` (``sqlite:///s.db::hrn``, ``journal:PATH::hrn``,
  ``PATH.log::hrn``): its completed trials with an accuracy, read from the user attributes ``relus`` and ``top1`` when set,
  else from the objective values (the maximized one is accuracy, the first minimized
  one ReLUs). Study accuracies are fractions, as the trainer reports them; the method
  is the trial's ``method`` attribute, else the study name.

A source without any finished result is an error, never an empty plot.
"""
from __future__ import annotations

import csv
import io
import math
from pathlib import Path
from typing import Any

from ..errors import ReshapeError
from ..io import read_text
from .pareto import Point

STUDY_SEPARATOR = "::"
CSV_COLUMNS = ("method", "relus", "top1")
#: x axis -> the field of a ``reshape measure`` record it reads (None: the ReLU count)
X_AXES = {"relus": None, "measured-bytes": "online_bytes", "measured-seconds": "online_s"}


def read_source(source: str, dataset: str | None = None, x: str = "relus",
                protocol: str = "cheetah") -> list[Point]:
    """The finished points of one SOURCE; ``dataset`` drops CSV rows and refuses runs of another.

    With a measured ``x`` axis each run directory's point carries the cost its
    ``reshape measure`` record under ``protocol`` reports; other sources have none.
    """
    frontier = frontier_runs(Path(source)) if Path(source).is_dir() else None
    if frontier is not None:
        return _read_frontier(source, frontier, dataset, x, protocol)
    if X_AXES[x] is not None:
        if not Path(source).is_dir():
            raise ReshapeError(f"{source}: measured cost (--x {x}) is known for run directories only")
        return [_with_measured(p, x, protocol) for p in read_run(source, dataset)]
    if STUDY_SEPARATOR in source:
        points = read_study(source)
    elif Path(source).is_dir():
        points = read_run(source, dataset)
    elif Path(source).suffix.lower() == ".csv":
        points = read_csv(source, dataset)
    else:
        raise ReshapeError(f"cannot read '{source}': give a run directory, a .csv file or "
                           f"STORAGE{STUDY_SEPARATOR}STUDY (e.g. sqlite:///s.db{STUDY_SEPARATOR}hrn)")
    if not points:
        raise ReshapeError(f"{source}: no finished points (no completed epoch, trial or row"
                           f"{' for ' + dataset if dataset else ''}); nothing to plot")
    return points


def frontier_runs(path: Path) -> list[Path] | None:
    """The trained runs of a ``reshape frontier`` folder (its teacher, then every point that
    reached its budget), or None when ``path`` is not a frontier folder."""
    from ..frontier import RESULTS_FILE, SETTING_FILE
    from ..io import read_json

    if not (path / SETTING_FILE).is_file():
        return None
    if not (path / RESULTS_FILE).is_file():
        raise ReshapeError(f"{path}: the frontier has no {RESULTS_FILE} yet; run `reshape frontier` to the end first")
    data = read_json(path / RESULTS_FILE, "frontier results")
    rows = data.get("rows") if isinstance(data, dict) else None
    if not isinstance(rows, list) or not all(isinstance(row, dict) for row in rows):
        raise ReshapeError(f"{path / RESULTS_FILE} is not a frontier's results (no list of \"rows\"); rerun "
                           "the `reshape frontier` command into that folder to write it again")
    runs = []
    for row in rows:
        if not row.get("reachable") or not isinstance(row.get("run"), str):
            continue
        run = path / row["run"]  # relative to the frontier folder (an absolute path stays itself)
        if not run.is_dir() and isinstance(row.get("method"), str) and isinstance(row.get("label"), str):
            run = path / row["method"] / row["label"]  # written elsewhere (older files: relative to its cwd)
        runs.append(run)
    return runs


def _read_frontier(source: str, runs: list[Path], dataset: str | None, x: str, protocol: str) -> list[Point]:
    """A frontier's runs as points; on a measured axis, those that were measured (the others
    are left out: a frontier is measured point by point with `reshape measure`)."""
    from ..measure import read_measured, result_name

    if X_AXES[x] is not None:
        runs = [run for run in runs if read_measured(run, protocol) is not None]
        if not runs:
            raise ReshapeError(f"{source}: no point of this frontier has a {result_name(protocol)}; measure "
                               f"them first under {protocol} (`reshape measure` on each {source}/METHOD/LABEL)")
    return [p for run in runs for p in read_source(str(run), dataset, x, protocol)]


def read_run(path: str | Path, dataset: str | None = None) -> list[Point]:
    """One point for a trained run directory (``reshape.runs.summarize``), or none before
    its first finished epoch. The label is the method its ``run.json`` names."""
    from ..runs import summarize
    from ..train import load_config

    path = Path(path)
    config = load_config(path)
    if dataset and config is not None and config.dataset and config.dataset != dataset:
        raise ReshapeError(f"run {path} was trained on {config.dataset}, not {dataset}; "
                           f"pass {config.dataset} as $dataset or leave the run out", param="dataset")
    summary = summarize(path)
    if summary["top1"] is None:
        return []
    return [Point(summary["label"], summary["relus"], 100 * summary["top1"], str(path))]


def _with_measured(point: Point, x: str, protocol: str) -> Point:
    import dataclasses

    from ..measure import read_measured, result_name

    record = read_measured(point.source, protocol)
    if record is None:
        raise ReshapeError(f"{point.source} has no {result_name(protocol)}; measure it first under "
                           f"{protocol} (`reshape measure`)")
    return dataclasses.replace(point, cost=float(record["measured"][X_AXES[x]]))


def read_csv(path: str | Path, dataset: str | None = None) -> list[Point]:
    """Points from a results CSV (``top1`` in percent)."""
    reader = csv.DictReader(io.StringIO(read_text(path, "results CSV"), newline=""))
    missing = [c for c in CSV_COLUMNS if c not in (reader.fieldnames or [])]
    if missing:
        raise ReshapeError(f"{path}: missing column '{missing[0]}'; a results CSV needs "
                           f"{', '.join(CSV_COLUMNS)} (top1 in percent)")
    points = []
    for line, row in enumerate(reader, start=2):
        if dataset and row.get("dataset") and row["dataset"] != dataset:
            continue
        relus, top1 = _csv_number(row["relus"]), _csv_number(row["top1"])
        # A count is whole and not negative, an accuracy a percentage: anything else is a typo
        # (a fraction where percent is meant plots at the bottom, so top1 <= 1 stays allowed).
        if relus is None or relus < 0 or relus != int(relus):
            raise ReshapeError(f"{path} line {line}: relus must be a whole number >= 0, got {row['relus']!r}")
        if top1 is None or not 0 <= top1 <= 100:
            raise ReshapeError(f"{path} line {line}: top1 must be a percentage in [0, 100], got {row['top1']!r}")
        points.append(Point(row["method"], int(relus), top1, row.get("source") or str(path)))
    return points


def _csv_number(text: str | None) -> float | None:
    """A CSV cell as a finite number, or None when it is empty, not a number, NaN or infinite."""
    try:
        value = float(text)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


def read_study(source: str) -> list[Point]:
    """Points of the completed trials of an Optuna study named ``STORAGE::STUDY``."""
    import optuna

    storage_text, _, name = source.rpartition(STUDY_SEPARATOR)
    study = optuna.load_study(study_name=name, storage=_storage(storage_text, name))
    relus_index, top1_index = _objective_indices(study)
    points = []
    for trial in study.get_trials(states=(optuna.trial.TrialState.COMPLETE,)):
        attrs: dict[str, Any] = trial.user_attrs
        if "top1" in attrs and attrs["top1"] is None:  # completed without training (e.g. over budget)
            continue
        relus = attrs.get("relus", None if relus_index is None else trial.values[relus_index])
        top1 = attrs.get("top1", None if top1_index is None else trial.values[top1_index])
        if relus is None or top1 is None:
            raise ReshapeError(f"{source}: trial {trial.number} has no 'relus'/'top1' user attributes "
                               "and the study's objectives do not say which is which")
        if not 0 <= top1 <= 1:
            raise ReshapeError(f"{source}: trial {trial.number} has accuracy {top1}; study "
                               "accuracies must be fractions in [0, 1], as the trainer reports them")
        points.append(Point(str(attrs.get("method", name)), int(relus), 100 * float(top1),
                            f"{source} #{trial.number}"))
    return points


def _storage(text: str, name: str) -> Any:
    """The Optuna storage ``text`` names (never created: see ``open_storage``), checked to hold study ``name``."""
    import optuna

    from ..search.study import open_storage

    storage = open_storage(text, create=False)
    try:
        storage.get_study_id_from_name(name)
    except KeyError:
        names = [s.study_name for s in optuna.get_all_study_summaries(storage)]
        raise ReshapeError(f"no study '{name}' in {text}; studies there: "
                           f"{', '.join(names) or 'none'}") from None
    return storage


def _objective_indices(study: Any) -> tuple[int | None, int | None]:
    """(ReLUs, accuracy) positions among the objectives: first minimized, first maximized."""
    from optuna.study import StudyDirection

    directions = list(study.directions)
    relus = directions.index(StudyDirection.MINIMIZE) if StudyDirection.MINIMIZE in directions else None
    top1 = directions.index(StudyDirection.MAXIMIZE) if StudyDirection.MAXIMIZE in directions else None
    return relus, top1
