"""A frontier as measured (``FrontierResult``) and the ``results.json`` that records it.

The rows are the teacher's (one per seed), then one per point; what ``reshape.compare``
makes of them (summary, pairs, iso-accuracy ReLUs) is computed once, as the rows do not
change after the frontier is built. ``finish`` writes them with the machine they were
measured on.
"""
from __future__ import annotations

import os
import platform
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any, Sequence

from .. import compare
from ..io import write_json
from ..methods import MethodResult, Setting, setting_splits
from ._plan import FORMAT, RESULTS_FILE, TEACHER, VERSION, FrontierPlan, relative


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

    @cached_property
    def results(self) -> list[MethodResult]:
        """The points that reached their budget, as their methods' results."""
        return [MethodResult.from_dict(r, cached=r["cached"]) for r in self.points if r["reachable"]]

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
        rows = [{**r, "run": relative(r["run"], self.out)} if r.get("run") else r for r in self.rows]
        summary = [{**r, "run": relative(r["run"], self.out), "runs": [relative(x, self.out) for x in r["runs"]]}
                   for r in self.summary]
        setting = {**self.setting, "teacher": relative(self.setting["teacher"], self.out)} \
            if self.setting.get("teacher") else self.setting
        return {"format": f"{FORMAT}.results", "version": VERSION, "command": self.command,
                "machine": self.machine, "setting": setting, "seeds": self.seeds, "tests": self.tests,
                "compute_equal": self.compute_equal, "rows": rows, "summary": summary,
                "pairs": self.pairs, "iso": self.iso}


def finish(plan: FrontierPlan, rows: Sequence[dict[str, Any]], command: str | None = None) -> FrontierResult:
    """The frontier of ``plan``'s teacher and point ``rows``, written to ``out/results.json``."""
    frontier = FrontierResult(plan.out, command or "python " + shlex.join(sys.argv), machine(), plan.record,
                              list(rows), tests=_tests(plan.setting))
    write_json(plan.out / RESULTS_FILE, frontier.to_dict())
    return frontier


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


def _tests(setting: Setting) -> int | None:
    """The number of test images every point is scored on."""
    test = setting_splits(setting).test
    return None if test is None else len(test)
