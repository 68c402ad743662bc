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

from ..compare import COMPUTE_TOLERANCE, passes_text
from ..frontier import FrontierResult
from ..io import write_text
from ..runs import writes
from .plot import plot_frontier
from .views import percent

CSV_FILE = "results.csv"
MARKDOWN_FILE = "results.md"
FIGURE_FILE = "frontier.png"
writes("frontier", CSV_FILE, MARKDOWN_FILE, FIGURE_FILE)  # what a forced rerun may delete beside the runs


def profiles(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    """The PI cost profiles the rows were estimated with, in table order."""
    return list(dict.fromkeys(p for row in rows for p in (row.get("pi") or {})))


def describe(row: Mapping[str, Any]) -> str:
    """One line for a finished point (or a seed's teacher): what a long frontier logs as it goes."""
    seed = f", seed {row['seed']}" if "seed" in row else ""
    where = f"teacher{seed}" if row["method"] == "teacher" else f"{row['method']} at {row['label']}{seed}"
    if not row["reachable"]:
        return f"{where}: unreachable: {row['why']}"
    top1 = "-" if row["top1"] is None else f"{100 * row['top1']:.2f}%"
    passes = (row.get("compute") or {}).get("image_passes")
    trained = f", {passes_text(passes)} image-passes" if passes else ""
    return f"{where}: {top1} at {row['relus']:,} ReLUs{trained}" + (
        " (read back)" if row["cached"] else f" in {row['seconds']} s")


def table(result: FrontierResult) -> tuple[list[str], list[list[str]]]:
    """The frontier as a text table, one row per (budget, method) over its seeds (mean ± standard
    error), the teacher first: what CLI and markdown show. ``training`` is each row's training in
    image-passes, parents included."""
    rows = [result.teacher, *result.summary]
    costs = profiles(rows)
    header = ["method", "family", "budget", "ReLUs", "top-1", "val top-1", "MACs", "training", "seeds",
              *(f"{p} {kind} s" for p in costs for kind in ("online", "total"))]
    body = []
    for r in rows:
        budget = "-" if r["method"] == "teacher" else f"{r['budget']:,} ({100 * r['fraction']:.3g}%)"
        if not r["reachable"]:
            body.append([r["method"], r["family"], budget, "-", "unreachable", "-", "-", "-", "-",
                         *("-" for _ in 2 * costs)])
            continue
        passes = passes_text(r["image_passes"])
        body.append([r["method"], r["family"], budget, f"{r['relus']:,}", percent(r["top1"], r["top1_se"]),
                     percent(r["val_top1"], r["val_top1_se"]), f"{r['macs'] / 1e6:.2f}M", passes, str(r["n"]),
                     *(f"{r['pi'][p][kind]:.3f}" if p in r["pi"] else "-" for p in costs
                       for kind in ("online_s", "total_s"))])
    return header, body


def pairs_table(result: FrontierResult) -> tuple[list[str], list[list[str]]]:
    """The paired comparisons: ours - baseline in points per budget, standard error, verdict,
    and the ratio of their training."""
    header = ["budget", "ours", "baseline", "ours - baseline", "SE", "seeds", "verdict", "training ratio"]
    body = [[p["label"], p["ours"], p["baseline"], "-" if p["diff"] is None else f"{p['diff']:+.2f}",
             "-" if p["se"] is None else f"{p['se']:.2f}", str(p["n"]), p["verdict"],
             "-" if p["compute_ratio"] is None else f"{p['compute_ratio']:.3f}"] for p in result.pairs]
    return header, body


def iso_table(result: FrontierResult) -> tuple[list[str], list[list[str]]]:
    """The ReLUs each of our pipelines needs to match its baseline's accuracy at each budget."""
    header = ["ours", "baseline", "baseline at", "its top-1", "ours needs", "ours / baseline ReLUs"]
    body = []
    for i in result.iso:
        bound = "<= " if i["kind"] == "at most" else ""
        needs = "not reached" if i["relus"] is None else f"{bound}{i['relus']:,.0f}"
        ratio = "-" if i["ratio"] is None else f"{bound}{i['ratio']:.2f}x"
        body.append([i["ours"], i["baseline"], f"{i['label']} ({i['baseline_relus']:,})", percent(i["baseline_top1"]),
                     needs, ratio])
    return header, body


def compute_note(result: FrontierResult) -> str:
    """Whether the rows' training agrees: the condition for naming a best network."""
    if result.compute_equal:
        return (f"Every row's training agrees within {100 * COMPUTE_TOLERANCE:g}% (image-passes, parents "
                "included): the rows compare.")
    return (f"The rows' training differs by more than {100 * COMPUTE_TOLERANCE:g}% (image-passes, parents "
            "included): no row is named best; compare only pairs marked equal.")


def markdown(result: FrontierResult) -> str:
    header, body = table(result)
    setting = result.setting
    limit = f", {setting['limit']:,} training images" if setting.get("limit") else ""
    val = f", {setting['val']:,} validation images" if setting.get("val") else ""
    seeds = ",".join(map(str, result.seeds))
    lines = [f"# Frontier on {setting['data']}", "",
             f"Teacher `{setting['teacher']}`; {_epochs(setting)} per method after its parent, "
             f"batch {setting['batch_size']}, seeds {seeds}{limit}{val}. "
             f"Commit {result.machine.get('commit', 'unknown')}, {result.machine.get('date', '')}.", "",
             f"```console\n$ {result.command}\n```", "", compute_note(result), "", markdown_table(header, body)]
    unreachable = [r for r in result.summary if not r["reachable"]]
    if unreachable:
        lines += ["", "Unreachable:", *(f"- {r['method']} at {r['label']}: {r['why']}" for r in unreachable)]
    if result.pairs:
        lines += ["", "## Paired comparisons", "",
                  "Same seed, same images on both sides; a win needs more than 2 standard errors.", "",
                  markdown_table(*pairs_table(result))]
    if result.iso:
        lines += ["", "## ReLUs at iso-accuracy", "",
                  "The ReLUs our pipeline needs to match the baseline's mean accuracy (read off our front, "
                  "linear in log ReLUs between budgets).", "", markdown_table(*iso_table(result))]
    return "\n".join(lines + ["", f"![frontier]({FIGURE_FILE})", ""])


def markdown_table(header: Sequence[str], body: Sequence[Sequence[str]], text_columns: int = 3) -> str:
    """A markdown table: the first ``text_columns`` left-aligned, numbers right-aligned."""
    lines = ["| " + " | ".join(header) + " |",
             "|" + "|".join("---" if i < text_columns else "---:" for i in range(len(header))) + "|"]
    return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in body])


def best_per_budget(result: FrontierResult) -> list[tuple[Mapping[str, Any], Mapping[str, Any] | None]]:
    """At each budget (in row order), the most accurate reachable row over its seeds and the
    runner-up (None when only one method reached the budget). Ties go to fewer ReLUs. None at
    all when the rows' training differs (``compute_note``): unequal training names no best."""
    if not result.compute_equal:
        return []
    budgets: dict[str, list[Mapping[str, Any]]] = {}
    for r in result.summary:
        if r["reachable"] and r["top1"] is not None:
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
    writer.writerow(["method", "family", "seed", "budget", "fraction", "relus", "macs", "top1", "val_top1",
                     "image_passes", *(f"{p}_{kind}_s" for p in costs for kind in ("online", "total")), "run"])
    for r in result.rows:
        if not r["reachable"]:
            continue
        writer.writerow([r["method"], r["family"], r["seed"], r["budget"], f"{r['fraction']:.6g}", r["relus"],
                         r["macs"], "" if r["top1"] is None else f"{100 * r['top1']:.2f}",
                         "" if r.get("val_top1") is None else f"{100 * r['val_top1']:.2f}",
                         (r.get("compute") or {}).get("image_passes") or "",
                         *(f"{r['pi'][p][kind]:.6g}" if p in r["pi"] else "" for p in costs
                           for kind in ("online_s", "total_s")), r["run"]])
    return buf.getvalue()


def write_frontier(result: FrontierResult, out: str | os.PathLike[str] | None = None) -> list[Path]:
    """Write results.csv, results.md and frontier.png into ``out`` (default: the frontier's folder)."""
    out = Path(out or result.out)
    write_text(out / CSV_FILE, csv_text(result))
    write_text(out / MARKDOWN_FILE, markdown(result))
    points = [r for r in result.summary if r["reachable"] and r["top1"] is not None]
    setting = result.setting
    figure = plot_frontier(points, result.teacher, f"Frontier on {setting['data']}: {_epochs(setting)}",
                           out / FIGURE_FILE)
    return [out / CSV_FILE, out / MARKDOWN_FILE, figure]


def _epochs(setting: Mapping[str, Any]) -> str:
    return f"{setting['epochs']} student epoch{'s' * (setting['epochs'] != 1)}"
