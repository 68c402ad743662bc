"""A frontier's table, CSV and figure, from ``reshape.frontier.FrontierResult``.

``reshape.frontier`` trains and writes ``results.json``; this module, one layer above,
turns the rows into what a reader looks at. ``write_frontier`` writes into the frontier's
folder:

* ``results.csv``: one row per reachable point and the teacher, top-1 in percent and the
  PI online seconds of every cost profile; its ``method``, ``relus`` and ``top1``
  columns make it a source for ``reshape pareto``. Unreachable points are left out
  (they have no network); they are in ``results.json`` and ``results.md``.
* ``results.md``: the same table as the CLI prints (``table``), unreachable points included;
* ``frontier.png``: accuracy against ReLUs and against the estimated DELPHI latency, which
  also charges MACs (``reshape.report.plot.plot_frontier``).
"""
from __future__ import annotations

import csv
import io
import os
from pathlib import Path
from typing import Any, Mapping, Sequence

from ..frontier import FrontierResult
from ..io import write_text
from ..runs import writes
from .plot import plot_frontier

CSV_FILE = "results.csv"
MARKDOWN_FILE = "results.md"
FIGURE_FILE = "frontier.png"
writes("frontier", CSV_FILE, MARKDOWN_FILE, FIGURE_FILE)  # what --force may delete beside the runs


def profiles(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    """The PI cost profiles the rows were estimated with, in table order."""
    return list(dict.fromkeys(p for row in rows for p in (row.get("pi") or {})))


def describe(row: Mapping[str, Any]) -> str:
    """One line for a finished point (or the teacher): what a long frontier logs as it goes."""
    where = "teacher" if row["method"] == "teacher" else f"{row['method']} at {row['label']}"
    if not row["reachable"]:
        return f"{where}: unreachable: {row['why']}"
    top1 = "-" if row["top1"] is None else f"{100 * row['top1']:.2f}%"
    return f"{where}: {top1} at {row['relus']:,} ReLUs" + (
        " (read back)" if row["cached"] else f" in {row['seconds']} s")


def table(result: FrontierResult) -> tuple[list[str], list[list[str]]]:
    """The frontier as a text table: (header, one row per teacher/point); what CLI and markdown show."""
    costs = profiles(result.rows)
    header = ["method", "family", "budget", "ReLUs", "top-1", "MACs",
              *(f"{p} {kind} s" for p in costs for kind in ("online", "total")), "wall s"]
    body = []
    for r in result.rows:
        budget = "-" if r["method"] == "teacher" else f"{r['budget']:,} ({100 * r['fraction']:.3g}%)"
        if not r["reachable"]:
            body.append([r["method"], r["family"], budget, "-", "unreachable", "-", *("-" for _ in 2 * costs), "-"])
            continue
        top1 = "-" if r["top1"] is None else f"{100 * r['top1']:.2f}%"
        body.append([r["method"], r["family"], budget, f"{r['relus']:,}", top1, f"{r['macs'] / 1e6:.2f}M",
                     *(f"{r['pi'][p][kind]:.3f}" if p in r["pi"] else "-" for p in costs
                       for kind in ("online_s", "total_s")),
                     "-" if r["seconds"] is None else f"{r['seconds']:g}"])
    return header, body


def markdown(result: FrontierResult) -> str:
    header, body = table(result)
    setting = result.setting
    limit = f", {setting['limit']:,} training images" if setting.get("limit") else ""
    lines = [f"# Frontier on {setting['data']}", "",
             f"Teacher `{setting['teacher']}`; {_epochs(setting)} per method, "
             f"batch {setting['batch_size']}, seed {setting['seed']}{limit}. "
             f"Commit {result.machine.get('commit', 'unknown')}, {result.machine.get('date', '')}.", "",
             f"```console\n$ {result.command}\n```", "", markdown_table(header, body)]
    unreachable = [r for r in result.points if not r["reachable"]]
    if unreachable:
        lines += ["", "Unreachable:", *(f"- {r['method']} at {r['label']}: {r['why']}" for r in unreachable)]
    return "\n".join(lines + ["", f"![frontier]({FIGURE_FILE})", ""])


def markdown_table(header: Sequence[str], body: Sequence[Sequence[str]], text_columns: int = 3) -> str:
    """A markdown table: the first ``text_columns`` left-aligned, numbers right-aligned."""
    lines = ["| " + " | ".join(header) + " |",
             "|" + "|".join("---" if i < text_columns else "---:" for i in range(len(header))) + "|"]
    return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in body])


def best_per_budget(rows: Sequence[Mapping[str, Any]]) -> list[tuple[Mapping[str, Any], Mapping[str, Any] | None]]:
    """At each budget (in row order), the most accurate reachable point and the runner-up (the
    next most accurate point, of another method since a frontier has one point per method and
    budget; None when only one method reached the budget). Ties go to fewer ReLUs."""
    budgets: dict[str, list[Mapping[str, Any]]] = {}
    for r in rows:
        if r["method"] != "teacher" and r["reachable"] and r["top1"] is not None:
            budgets.setdefault(r["label"], []).append(r)
    out = []
    for points in budgets.values():
        ranked = sorted(points, key=lambda r: (-r["top1"], r["relus"]))
        out.append((ranked[0], ranked[1] if len(ranked) > 1 else None))
    return out


def csv_text(result: FrontierResult) -> str:
    costs = profiles(result.rows)
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["method", "family", "budget", "fraction", "relus", "macs", "top1",
                     *(f"{p}_{kind}_s" for p in costs for kind in ("online", "total")), "run"])
    for r in result.rows:
        if not r["reachable"]:
            continue
        writer.writerow([r["method"], r["family"], r["budget"], f"{r['fraction']:.6g}", r["relus"], r["macs"],
                         "" if r["top1"] is None else f"{100 * r['top1']:.2f}",
                         *(f"{r['pi'][p][kind]:.6g}" if p in r["pi"] else "" for p in costs
                           for kind in ("online_s", "total_s")), r["run"]])
    return buf.getvalue()


def write_frontier(result: FrontierResult, out: str | os.PathLike[str] | None = None) -> list[Path]:
    """Write results.csv, results.md and frontier.png into ``out`` (default: the frontier's folder)."""
    out = Path(out or result.out)
    write_text(out / CSV_FILE, csv_text(result))
    write_text(out / MARKDOWN_FILE, markdown(result))
    points = [r for r in result.points if r["reachable"] and r["top1"] is not None]
    setting = result.setting
    figure = plot_frontier(points, result.teacher, f"Frontier on {setting['data']}: {_epochs(setting)}",
                           out / FIGURE_FILE)
    return [out / CSV_FILE, out / MARKDOWN_FILE, figure]


def _epochs(setting: Mapping[str, Any]) -> str:
    return f"{setting['epochs']} student epoch{'s' * (setting['epochs'] != 1)}"
