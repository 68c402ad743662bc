"""Draw accuracy against ReLU count: our points with per-method fronts, published anchors.

matplotlib is imported here only, with the Agg backend, so the rest of the tool (and
``reshape --help``) never pays for it. The figure is written atomically in the format
its suffix names (png, svg, pdf).
"""
from __future__ import annotations

import os
import textwrap
from pathlib import Path
from typing import Any, Mapping, Sequence

from ..errors import ReshapeError
from ..io import atomic_path
from .anchors import Anchor
from .pareto import Point

FORMATS = (".png", ".svg", ".pdf")
_MARKERS = "sD^vP*Xhp<>"
_WRAP = 185  # characters per caption line


def plot_front(points: Sequence[Point], anchors: Sequence[Anchor], dataset: str,
               out: str | os.PathLike[str], xlabel: str | None = None) -> Path:
    """Write the figure to ``out``; ``points`` carry their front flags (``mark_fronts``).

    ``xlabel`` names a measured cost on the x axis (``Point.x``); the default is ReLUs.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = _checked(out)
    fig, ax = plt.subplots(figsize=(10, 6))
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    ours = [p for p in points if p.ours]
    methods = list(dict.fromkeys(p.method for p in ours))
    for i, method in enumerate(methods):
        group = [p for p in ours if p.method == method]
        front = sorted((p for p in group if p.on_front), key=lambda p: p.x)
        color = colors[i % len(colors)]
        ax.scatter([p.x for p in group], [p.top1 for p in group], s=30, color=color, zorder=3,
                   label=f"{method} (ours, {len(group)} point{'s' * (len(group) != 1)})")
        if len(front) > 1:  # a one-point front is the point itself
            ax.step([p.x for p in front], [p.top1 for p in front], where="post", color=color,
                    linewidth=1.5, zorder=2, label=f"{method} Pareto front")
    measured = [a for a in anchors if a.top1 is not None]
    for i, label in enumerate(dict.fromkeys(a.label for a in measured)):
        group = [a for a in measured if a.label == label]
        ax.plot([a.relus for a in group], [a.top1 for a in group], _MARKERS[i % len(_MARKERS)],
                color=colors[(len(methods) + i) % len(colors)], linestyle=":", linewidth=0.8,
                markersize=5, markerfacecolor="none", label=f"{label} (published)")
    _style(ax, f"Top-1 accuracy vs {'ReLU count' if xlabel is None else 'measured cost'} on {dataset}")
    if xlabel is not None:  # the K/M tick labels suit bytes and seconds too
        ax.set_xlabel(xlabel)
    fig.subplots_adjust(left=0.08, right=0.72, top=0.93)
    caption = _caption(anchors)
    if caption:
        lines = caption.count("\n") + 1
        fig.subplots_adjust(bottom=0.12 + 0.022 * lines)
        fig.text(0.01, 0.01, caption, fontsize=6.5, va="bottom", ha="left")
    return _save(fig, out)


def plot_frontier(rows: Sequence[Mapping[str, Any]], teacher: Mapping[str, Any], title: str,
                  out: str | os.PathLike[str], profile: str = "delphi") -> Path:
    """A frontier's figure in two panels: accuracy against ReLUs, and against the estimated PI
    latency (``profile``'s online + offline seconds, which also charges MACs: ReLUs are not
    the whole cost). One series per method (points joined in x order), labelled by method
    name; baselines (family ``baseline``) dashed with hollow markers; the teacher as a
    dashed horizontal line. ``rows`` are reachable points, top-1 a fraction."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    out = _checked(out)
    fig, (by_relus, by_latency) = plt.subplots(1, 2, figsize=(14, 6), sharey=True)
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    axes = ((by_relus, lambda r: r["relus"]), (by_latency, lambda r: r["pi"][profile]["total_s"]))
    for i, method in enumerate(dict.fromkeys(r["method"] for r in rows)):
        group = [r for r in rows if r["method"] == method]
        baseline = group[0]["family"] == "baseline"
        style = dict(color=colors[i % len(colors)], linestyle="--" if baseline else "-",
                     linewidth=1.2 if baseline else 1.8, markersize=6, zorder=3,
                     markerfacecolor="none" if baseline else colors[i % len(colors)])
        for ax, x in axes:
            shown = sorted((r for r in group if ax is by_relus or profile in (r.get("pi") or {})), key=x)
            ax.plot([x(r) for r in shown], [100 * r["top1"] for r in shown], _MARKERS[i % len(_MARKERS)],
                    label=f"{method}{' (baseline)' if baseline else ''}", **style)
    if teacher.get("top1") is not None:
        for ax, _ in axes:
            ax.axhline(100 * teacher["top1"], color="0.4", linestyle="--", linewidth=1, zorder=1,
                       label=f"teacher ({teacher['relus']:,} ReLUs, {100 * teacher['top1']:.2f}%)")
    _style(by_relus, "accuracy vs ReLUs", legend=False)
    by_latency.set_xscale("log")
    by_latency.xaxis.set_major_locator(LogLocator(subs=(1, 2, 5)))
    by_latency.xaxis.set_major_formatter(FuncFormatter(lambda x, _: f"{x:g}"))
    by_latency.xaxis.set_minor_formatter(NullFormatter())
    by_latency.set_xlabel(f"estimated PI latency, {profile} online + offline (s, log scale)")
    by_latency.set_title(f"accuracy vs estimated {profile} latency (ReLUs and MACs)")
    by_latency.grid(True, which="both", alpha=0.3)
    by_latency.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0)
    fig.suptitle(title)
    fig.subplots_adjust(left=0.06, right=0.8, top=0.88, wspace=0.08)
    return _save(fig, out)


def _checked(out: str | os.PathLike[str]) -> Path:
    out = Path(out)
    if out.suffix.lower() not in FORMATS:
        raise ReshapeError(f"cannot write a plot to {out}: use a {', '.join(FORMATS)} file")
    return out


def _style(ax: Any, title: str, legend: bool = True) -> None:
    """Log ReLU axis with 20K-style ticks, accuracy in percent, grid, legend outside the axes."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    ax.set_xscale("log")
    ax.xaxis.set_major_locator(LogLocator(subs=(1, 2, 5)))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda x, _: _relus_label(x)))
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_xlabel("ReLUs per image (count, log scale)")
    ax.set_ylabel("top-1 accuracy (%)")
    ax.set_title(title)
    ax.grid(True, which="both", alpha=0.3)
    if legend:
        ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0)


def _save(fig: Any, out: Path) -> Path:
    import matplotlib.pyplot as plt

    with atomic_path(out) as tmp:
        # The temporary file ends in .tmp: name the target's format explicitly.
        fig.savefig(tmp, format=out.suffix[1:].lower(), dpi=150)
    plt.close(fig)
    return out


def _relus_label(x: float) -> str:
    """20000 -> '20K', 1500000 -> '1.5M': tick labels in the units ReLU budgets are quoted in."""
    for unit, scale in (("M", 1e6), ("K", 1e3)):
        if x >= scale:
            return f"{x / scale:g}{unit}"
    return f"{x:g}"


def _caption(anchors: Sequence[Anchor]) -> str:
    """Sources of the published points, their counting conventions and unplotted claims."""
    if not anchors:
        return ""
    parts = []
    for label in dict.fromkeys(a.label for a in anchors if a.top1 is not None):
        row = next(a for a in anchors if a.label == label)
        parts.append(f"{label}: {row.source} [{row.relu_convention.replace('_', ' ')}]")
    claims = [f"{a.label} at {a.relus:,} ReLUs: {a.note} ({a.source})" for a in anchors if a.top1 is None]
    text = "Published: " + "; ".join(parts) + ". Our run directories are counted with the stem ReLU."
    if claims:
        text += " Not plotted (no accuracy given): " + "; ".join(claims) + "."
    return "\n".join(textwrap.wrap(text, _WRAP))
