"""What a finished run holds, summarised: its one summary (``summarize``), its metrics rows,
and the training compute its weights received.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Mapping

from ..errors import ReshapeError
from ._layout import METRICS_FILE, require_run_dir
from ._load import load_run
from ._manifest import RunDir

#: The method a standalone ``reshape train`` (``reshape.train.fit``) records: a network, not a
#: method, so its label is the folder name (a sweep of trained networks stays one point each).
PLAIN_TRAINING = "train"
NO_MANIFEST = "(no run.json)"


def summarize(path: str | os.PathLike[str], network: tuple[Any, Any] | None = None) -> dict[str, Any]:
    """The one summary of a run that reports, ``reshape eval``, the demo and frontiers print.

    ``method`` comes from ``run.json`` (None for an older run without one), ``relus``,
    ``macs`` and ``depth`` from counting the saved network (stem ReLU included), ``top1``
    (a fraction) from the manifest's summary or training record, else the last finished
    epoch in ``metrics.jsonl`` (an unfinished or older run), and ``budget`` from the
    method's params when it had one. ``label`` names the run in plots: the method, the
    folder name for a plain training, ``<folder> (no run.json)`` for an older run.
    ``network``: the run's (spec, model) where the caller has loaded them already.
    """
    from ..accounting import count

    path = Path(path)
    require_run_dir(path)
    manifest = RunDir(path).manifest()
    spec, model = network or load_run(path)
    c = count(model, spec.input_shape)
    summary = (manifest.summary or {}) if manifest else {}
    training = ((manifest.training or {}).get("last") or {}) if manifest else {}
    top1 = summary.get("top1", summary.get("test_top1", training.get("test_top1")))
    if top1 is None:
        top1 = _last_top1(path)
    budget = summary.get("budget", (manifest.params.get("budget") if manifest else None))
    if manifest is None:
        label = f"{path.name} {NO_MANIFEST}"
    else:
        label = path.name if manifest.method == PLAIN_TRAINING else manifest.method
    return {"run": str(path), "method": manifest.method if manifest else None, "label": label,
            "status": manifest.status if manifest else None, "relus": c.relus, "macs": c.macs,
            "depth": c.nonlinear_depth, "top1": None if top1 is None else float(top1), "budget": budget,
            "dataset": RunDir(path).trained_on()}


def read_metrics(run_dir: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """The rows of ``metrics.jsonl`` (one JSON row per finished epoch); none when it is absent.

    A last line cut short (a process killed while appending it) is no row: the epoch it
    belonged to has no checkpoint either, and a resumed run writes it again.
    """
    path = Path(run_dir, METRICS_FILE)
    if not path.is_file():
        return []
    text = path.read_text(encoding="utf-8")
    lines = text.splitlines()
    if lines and not text.endswith("\n"):
        try:
            json.loads(lines[-1])
        except json.JSONDecodeError:
            lines.pop()
    try:
        return [json.loads(line) for line in lines if line.strip()]
    except json.JSONDecodeError as exc:
        raise ReshapeError(f"{path} is damaged (line {exc.doc[:40]!r}: {exc.msg}); "
                           "pass $force to start the run over") from None


# -- training compute -------------------------------------------------------------------------
#: A compute record: what the weights of a run received in training, its parents' included.
#: ``phases`` lists each training the weights went through (the teacher's, a base's, each
#: stage's), oldest first; the totals are their sums (None where a phase predates the record).
COMPUTE_TOTALS = ("image_passes", "steps", "seconds")


def own_compute(run_dir: str | os.PathLike[str], method: str) -> dict[str, Any]:
    """The training done in ``run_dir`` itself, from its finished epochs in ``metrics.jsonl``
    (a resumed run's rows are its final weights' epochs: those after the checkpoint are cut);
    unknown (None) where no epoch or one without counts is recorded."""
    rows = read_metrics(run_dir)
    known = bool(rows) and all("train_images" in r for r in rows)
    return {"run": Path(run_dir).name, "method": method, "epochs": len(rows),
            "image_passes": sum(int(r["train_images"]) for r in rows) if known else None,
            "steps": sum(int(r["steps"]) for r in rows) if known else None,
            "seconds": round(sum(float(r.get("epoch_s", 0.0)) for r in rows), 1)}


def chain_compute(phases: list[Mapping[str, Any]]) -> dict[str, Any]:
    """A compute record of ``phases`` (oldest first): the phases and their summed totals."""
    totals = {k: None if any(p.get(k) is None for p in phases) else sum(p[k] for p in phases)
              for k in COMPUTE_TOTALS}
    if totals["seconds"] is not None:
        totals["seconds"] = round(totals["seconds"], 1)
    return {**totals, "phases": [dict(p) for p in phases]}


def compute_of(run_dir: str | os.PathLike[str]) -> dict[str, Any]:
    """The compute recorded for the weights in ``run_dir``; a run trained before the record
    existed counts its own epochs only, and its totals say unknown (None)."""
    manifest = RunDir(run_dir).manifest()
    record = ((manifest.training or {}).get("compute") if manifest else None)
    if record:
        return record
    return chain_compute([own_compute(run_dir, manifest.method if manifest else "unknown")])


def _last_top1(path: Path) -> float | None:
    """The last ``test_top1`` in ``metrics.jsonl``, if any."""
    return next((row["test_top1"] for row in reversed(read_metrics(path)) if "test_top1" in row), None)
