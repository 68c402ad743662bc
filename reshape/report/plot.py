"""Draw accuracy against ReLU count: our points with per-method fronts, published anchors.

matplotlib is imported here only, with the Agg backend, so the rest of the tool (and
the CLI's help) never pays for it. The figure is written atomically in the format
its suffix names (png, svg, pdf).
"""
from __future__ import annotations

import os
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

from ..compare import passes_text
from ..errors import ReshapeError
from ..io import atomic_path
from .anchors import Anchor
from .pareto import Point, front_flags

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
    _draw_anchors(ax, anchors, colors, len(methods))
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


@dataclass(frozen=True)
class Design:
    """A network synthesized for a budget and counted from its spec, never trained: a ReLU
    count with no accuracy, drawn beside published results as what we would build there."""

    name: str
    budget: int
    relus: int
    macs: int


@dataclass(frozen=True)
class Published:
    """The third panel of a frontier figure: published results on ``dataset`` and the
    ``designs`` we synthesize for that dataset at budgets among them."""

    dataset: str
    anchors: Sequence[Anchor]
    designs: Sequence[Design] = ()


def _legend(method: str, baseline: bool, group: Sequence[Mapping[str, Any]]) -> str:
    """A method's legend entry: its role, and the training its points received (image-passes,
    parents included) and seeds, where the rows carry them."""
    text = f"{method} ({'baseline' if baseline else 'ours'}"
    passes = [r["image_passes"] for r in group if r.get("image_passes")]
    if passes:
        text += f", {passes_text(max(passes))} image-passes"
    seeds = max((r.get("n") or 1) for r in group)
    return text + (f", mean of {seeds} seeds" if seeds > 1 else "") + ")"


def plot_frontier(rows: Sequence[Mapping[str, Any]], teacher: Mapping[str, Any], title: str,
                  out: str | os.PathLike[str], profile: str = "delphi", published: Published | None = None,
                  footer: str = "") -> Path:
    """A frontier's figure: accuracy against ReLUs, and against the estimated PI latency
    (``profile``'s online + offline seconds, which also charges MACs: ReLUs are not the whole
    cost); with ``published``, a third panel of published results beside our designs.

    Each method's points are markers and its Pareto front on that panel's axis (no other
    point of the method cheaper and more accurate) a line through them, labelled by method
    name; baselines (the registry's family ``baseline``) dashed with hollow markers, our
    methods solid; the teacher a dashed horizontal line. ``rows`` are reachable points, top-1
    a fraction. Rows aggregated over seeds
    (``reshape.compare.aggregate``) get error bars of one standard error, and the legend
    names each method's training in image-passes. ``footer`` (e.g. the machine and date) is
    printed under the panels.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    out = _checked(out)
    panels = 2 if published is None else 3
    fig = plt.figure(figsize=(7 * panels, 7))
    by_relus = fig.add_subplot(1, panels, 1)
    by_latency = fig.add_subplot(1, panels, 2, sharey=by_relus)
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    axes = ((by_relus, lambda r: r["relus"]), (by_latency, lambda r: r["pi"][profile]["total_s"]))
    for i, method in enumerate(dict.fromkeys(r["method"] for r in rows)):
        group = [r for r in rows if r["method"] == method]
        baseline = group[0]["family"] == "baseline"
        color, marker = colors[i % len(colors)], _MARKERS[i % len(_MARKERS)]
        style = dict(color=color, markersize=6, zorder=3, markerfacecolor="none" if baseline else color)
        for ax, x in axes:
            shown = sorted((r for r in group if ax is by_relus or profile in (r.get("pi") or {})), key=x)
            ys = [100 * r["top1"] for r in shown]
            flags = front_flags([(x(r), y) for r, y in zip(shown, ys)])
            front = [(x(r), y) for r, y, on in zip(shown, ys, flags) if on]
            ax.plot([x(r) for r in shown], ys, marker, linestyle="none", **style)
            errors = [100 * (r.get("top1_se") or 0.0) for r in shown]
            if any(errors):  # seeded points: mean +- one standard error
                ax.errorbar([x(r) for r in shown], ys, yerr=errors, fmt="none", ecolor=color, capsize=3,
                            linewidth=1, zorder=2)
            ax.plot([f[0] for f in front], [f[1] for f in front], marker, linestyle="--" if baseline else "-",
                    linewidth=1.2 if baseline else 1.8, label=_legend(method, baseline, group), **style)
    if teacher.get("top1") is not None:
        for ax, _ in axes:
            ax.axhline(100 * teacher["top1"], color="0.4", linestyle="--", linewidth=1, zorder=1,
                       label=f"teacher ({teacher['relus']:,} ReLUs, {100 * teacher['top1']:.2f}%)")
    _style(by_relus, "accuracy vs ReLUs (line: each method's front)", legend=False)
    by_latency.set_xscale("log")
    by_latency.xaxis.set_major_locator(LogLocator(subs=(1, 2, 5)))
    by_latency.xaxis.set_major_formatter(FuncFormatter(lambda x, _: f"{x:g}"))
    by_latency.xaxis.set_minor_formatter(NullFormatter())
    by_latency.set_xlabel(f"estimated PI latency, {profile} online + offline (s, log scale)")
    by_latency.set_title(f"accuracy vs estimated {profile} latency (ReLUs and MACs)")
    by_latency.grid(True, which="both", alpha=0.3)
    by_latency.tick_params(labelleft=True)
    handles, labels = by_relus.get_legend_handles_labels()
    fig.legend(handles, labels, fontsize=8, ncol=3, loc="upper center",
               bbox_to_anchor=(1 / panels, 0.2), frameon=False)
    caption = footer
    if published is not None:
        third = fig.add_subplot(1, panels, 3)
        _draw_published(third, published, colors)
        caption = "\n".join(filter(None, [_caption(published.anchors), footer]))
    fig.suptitle(title)
    fig.subplots_adjust(left=0.05, right=0.98, top=0.9, bottom=0.3, wspace=0.18)
    if caption:
        fig.text(0.01, 0.01, caption, fontsize=6.5, va="bottom", ha="left")
    return _save(fig, out)


def _draw_anchors(ax: Any, anchors: Sequence[Anchor], colors: Sequence[str], offset: int) -> None:
    """Published results: one hollow-marker series per method and backbone, dotted lines."""
    measured = [a for a in anchors if a.top1 is not None]
    for i, label in enumerate(dict.fromkeys(a.label for a in measured)):
        group = [a for a in measured if a.label == label]
        ax.plot([a.relus for a in group], [a.top1 for a in group], _MARKERS[i % len(_MARKERS)],
                color=colors[(offset + i) % len(colors)], linestyle=":", linewidth=0.8,
                markersize=5, markerfacecolor="none", label=f"{label} (published)")


def _draw_published(ax: Any, published: Published, colors: Sequence[str]) -> None:
    """Published results on their dataset, and a vertical line at each design's exact ReLU
    count (it has no accuracy: it is synthesized, not trained), named at the top."""
    _draw_anchors(ax, published.anchors, colors, 0)
    for i, d in enumerate(published.designs):
        ax.axvline(d.relus, color="black", linestyle="-.", linewidth=1, zorder=1,
                   label="our HybReNet for the budget (spec only, untrained)" if i == 0 else None)
        ax.text(d.relus, 0.98, f" {d.name}: {d.relus:,}", transform=ax.get_xaxis_transform(), rotation=90,
                va="top", ha="right", fontsize=7)
    _style(ax, f"published {published.dataset} results and what we would build", legend=False)
    ax.legend(fontsize=7.5, ncol=2, loc="upper center", bbox_to_anchor=(0.5, -0.12), frameon=False)


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
