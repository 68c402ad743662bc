"""What each command prints, built from the library's results: rich tables and lines, returned, never printed.

A command parses its options, calls one library function and prints its view:
``stdout_console().print(views.count_view(...))`` or ``click.echo(run_views.eval_line(...))``.
Where a line advises an option, the command passes the option's name in (the library never
spells the command line's options). Here: the cells every view is built of (numbers as a table
shows them, a table from a header and rows, lines, the console that prints them) and the views
of what a network is and costs (count, graph, synthesize, measure); ``reshape.report.run_views``
has those of trained results. rich is imported inside the functions: the command line imports
this module before it parses anything.
"""
from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Any, Callable, Collection, Iterable, Iterator, Sequence

if TYPE_CHECKING:
    from rich.console import Console, Group, RenderableType
    from rich.table import Table
    from rich.text import Text

    from ..accounting import Count, Priced
    from ..cost import CostEstimate
    from ..graph import ModelGraph
    from ..synthesis import Sweep, Synthesized


# -- cells ----------------------------------------------------------------------------------------


def human(n: float) -> str:
    """1234567 -> '1.23M': a table column stays narrow and still tells magnitudes apart."""
    for unit, scale in (("G", 1e9), ("M", 1e6), ("K", 1e3)):
        if abs(n) >= scale:
            return f"{n / scale:.2f}{unit}"
    return f"{n:g}"


def human_or_dash(n: float | None) -> str:
    """``human``, or '-' where there is no number (a block that cannot be merged)."""
    return "-" if n is None else human(n)


def pct(part: float, whole: float) -> str:
    """A share of a total with one decimal ('12.5%'), '-' of nothing: what each stage or layer holds."""
    return f"{100 * part / whole:.1f}%" if whole else "-"


def percent(mean: float | None, se: float | None = None) -> str:
    """A top-1 fraction as a percentage, with its standard error when it has one ('-' when not scored)."""
    if mean is None:
        return "-"
    return f"{100 * mean:.2f}%" + ("" if se is None else f" ± {100 * se:.2f}")


def cost_cells(cost: CostEstimate) -> tuple[str, str]:
    """The online seconds and bytes of a PI estimate, or 'no estimate' where its profile prices no op."""
    if cost.unpriced:
        return "no estimate", "no estimate"
    return f"{cost.online_s:.2f}s", human(cost.total_bytes) + "B"


def shape_text(shape: Sequence[int]) -> str:
    """An input or output shape as ``3x32x32``."""
    return "x".join(map(str, shape))


def table(title: str | None, header: Sequence[str], rows: Iterable[Sequence[str]] = (), *,
          left: int | Collection[str] = 1, no_wrap: bool | Collection[str] = False, overflow: str = "ellipsis",
          title_justify: str = "left", **options: Any) -> Table:
    """A rich table from a header and rows: names left (the first ``left`` columns, or those named),
    numbers right, so every command's tables line up alike."""
    from rich.table import Table

    view = Table(title=title, title_justify=title_justify, **options)  # type: ignore[arg-type]
    for i, name in enumerate(header):
        at_left = i < left if isinstance(left, int) else name in left
        view.add_column(name, justify="left" if at_left else "right", overflow=overflow,  # type: ignore[arg-type]
                        no_wrap=no_wrap if isinstance(no_wrap, bool) else name in no_wrap)
    for row in rows:
        view.add_row(*row)
    return view


def plain(line: str) -> Text:
    """A line as written: rich colours no number or path in it (the dense headlines and notes)."""
    from rich.text import Text

    return Text.from_markup(line)


def styled(line: str, style: str) -> RenderableType:
    """A line in one style (a warning in yellow), highlighted as any other line."""
    from rich.styled import Styled

    return Styled(line, style)


def group(*parts: RenderableType | None) -> Group:
    """Tables and lines printed one below the other, as one renderable (``None`` parts left out)."""
    from rich.console import Group

    return Group(*(part for part in parts if part is not None))


def stdout_console(pipe_width: int | None = 400) -> Console:
    """A rich console for stdout; a pipe or a log gets ``pipe_width`` columns, whole tables rather than
    ones squeezed to 80 (None: rich's own choice, 80 columns in a pipe, as some commands have always had)."""
    from rich.console import Console

    console = Console()
    return console if console.is_terminal or pipe_width is None else Console(width=pipe_width)


@contextlib.contextmanager
def spinner(text: str) -> Iterator[Callable[[str], None]]:
    """A spinner on stderr while long work runs, yielding what sets its text; away from a
    terminal each text is printed as a line instead (a log keeps the progress)."""
    from rich.console import Console

    err = Console(stderr=True)
    with err.status(text, spinner="dots") as status:
        def update(line: str) -> None:
            status.update(line)
            if not err.is_terminal:
                err.print(line)

        yield update


@contextlib.contextmanager
def progress_bar(text: str, total: int) -> Iterator[Callable[[], None]]:
    """A transient progress bar on stderr (a terminal only), yielding what advances it by one."""
    from rich.console import Console
    from rich.progress import Progress

    err = Console(stderr=True)
    with Progress(transient=True, console=err, disable=not err.is_terminal) as progress:
        task = progress.add_task(text, total=total)
        yield lambda: progress.advance(task)


# -- reshape count ------------------------------------------------------------------------------


def count_view(label: str, result: Priced, protocol: str, per_layer: bool, costs_option: str) -> Group:
    """``reshape count``: per stage, the headline counts and the PI estimate; every layer on request."""
    return group(stage_table(label, result, protocol), *count_lines(result, protocol, costs_option),
                 layer_table(result.count) if per_layer else None)


def stage_table(label: str, result: Priced, protocol: str) -> Table:
    """Per stage and in total: every cost class this network has (ReLUs always), MACs, params, cost."""
    counted = result.count
    classes = ["relus", *(attr for attr in ("comparisons", "smooth") if getattr(counted, attr))]
    header = ["stage", *(("ReLUs" if attr == "relus" else attr) for attr in classes), "% ReLUs", "MACs", "% MACs",
              "params", f"{protocol} online", f"{protocol} comm"]
    t = table(f"{label}  input {shape_text(counted.input_shape)}  convention {counted.convention}", header)
    for s, cost in zip(counted.stages, result.stage_costs):
        t.add_row(s.name, *(f"{getattr(s, attr):,}" for attr in classes), pct(s.relus, counted.relus),
                  human(s.macs), pct(s.macs, counted.macs), human(s.params), *cost_cells(cost))
    t.add_row("total", *(f"{getattr(counted, attr):,}" for attr in classes), "100%", human(counted.macs), "100%",
              human(counted.params), *cost_cells(result.cost), style="bold")
    return t


def count_lines(result: Priced, protocol: str, costs_option: str) -> list[RenderableType]:
    """The headline counts, SNL's convention where known, and the network's PI estimate."""
    from ..accounting import ops_text

    counted, total = result.count, result.cost
    others = "".join(f"{name} {getattr(counted, name):,}  " for name in ("comparisons", "smooth")
                     if getattr(counted, name))
    lines: list[RenderableType] = [plain(
        f"ReLUs {counted.relus:,} ({stem_note(counted)})  {others}MACs {counted.macs:,}  params {counted.params:,}  "
        f"nonlinear depth {counted.nonlinear_depth}  (convention {counted.convention})")]
    if counted.smooth_ops:
        lines.append(plain(f"smooth by op: {ops_text(counted.smooth_ops)}"))
    if result.relus_snl is not None:
        lines.append(f"SNL's convention: {result.relus_snl:,} ReLUs (its networks have no {result.snl_omits} layer)")
    if total.unpriced:
        lines.append(plain(f"{protocol} estimate: none: the {protocol} profile has no cost for "
                           f"{', '.join(total.unpriced)} (docs/accounting.md; give one with {costs_option})"))
    else:
        lines.append(f"{protocol} estimate: online {total.online_s:.2f}s, offline {total.offline_s:.2f}s, "
                     f"communication {human(total.online_bytes)}B online + {human(total.offline_bytes)}B offline")
    return lines


def layer_table(counted: Count) -> Table:
    """Every ReLU, max-pool and linear layer: where a network's comparisons are."""
    return table(f"layers  convention {counted.convention}",
                 ("layer", "stage", "kind", "output", "ReLUs", "comparisons", "smooth", "MACs"),
                 ((layer.name or "(model forward)", layer.stage, layer.kind, shape_text(layer.shape),
                   f"{layer.relus:,}", f"{layer.comparisons:,}", f"{layer.smooth:,}", f"{layer.macs:,}")
                  for layer in counted.layers), left=3)


def stem_note(counted: Count) -> str:
    """What the headline ReLU count holds at the stem (SNL's convention is its own line)."""
    if counted.stem_relus is None:
        return f"no stem split: {counted.stage_split_reason}"
    if counted.stem_relus == 0:
        return "the stem has no ReLU"
    return f"stem ReLU included; {counted.relus_without_stem:,} without it"


# -- reshape graph ------------------------------------------------------------------------------


def graph_view(label: str, mg: ModelGraph, blocks: list[dict[str, Any]]) -> Group:
    """``reshape graph``: the residual blocks with their ReLUs and MACs, merged or not, and the totals."""
    from rich import box

    types = ", ".join(sorted({b["type"] for b in blocks}))
    t = table(f"{label}  input {shape_text(mg.input_shape)}  {types}",
              ("block", "s", "shortcut", "ReLUs", "inner", "MACs", "exact", "compact"),
              ((b["name"], str(b["stride"]), b["shortcut"], f"{b['relus']:,}", f"{b['inner_relus']:,}",
                human(b["macs"]), human_or_dash(b["macs_exact_merge"]), human_or_dash(b["macs_compact_merge"]))
               for b in blocks), left=("block", "shortcut"), no_wrap=True, box=box.SIMPLE_HEAD)
    in_blocks = sum(b["relus"] for b in blocks)
    return group(t, "s: stride; inner: the ReLUs the shallow-block method removes; "
                    "exact/compact: the block's MACs once linearized and merged into one conv",
                 f"ReLUs {mg.relus:,} ({in_blocks:,} in {len(blocks)} blocks, "
                 f"{mg.relus - in_blocks:,} outside)  MACs {mg.macs:,}")


# -- reshape synthesize -------------------------------------------------------------------------


def design_view(result: Synthesized, out: str | None) -> Group:
    """``reshape synthesize`` for one budget: the stages, the counts against the budget, the estimate, why."""
    why, counted, cost = result.explanation, result.count, result.cost
    return group(
        design_table(result),
        f"ReLUs {counted.relus:,} of budget {why.budget:,} ({counted.relus / why.budget:.2%}; stem ReLU included)  "
        f"MACs {counted.macs:,}  params {counted.params:,}  nonlinear depth {counted.nonlinear_depth}",
        f"{cost.protocol} estimate: online {cost.online_s:.2f}s, offline {cost.offline_s:.2f}s, "
        f"communication {human(cost.total_bytes)}B",
        "why this shape:", *(plain(f"  - {reason}") for reason in why.reasons),
        f"wrote {out}" if out else None)


def design_table(result: Synthesized) -> Table:
    """The synthesized network per stage: width, depth, and the ReLUs and MACs that follow."""
    spec, counted = result.spec, result.count
    shape = {"stem": (spec.stem.width, 1), **{f"layer{i}": (s.width, s.depth)
                                               for i, s in enumerate(spec.stages, start=1)}}
    t = table(f"{spec.name}  ({spec.block} blocks, {spec.stem.kind} stem, "
              f"input {spec.in_chans}x{spec.input_size}x{spec.input_size})  convention {counted.convention}",
              ("stage", "width", "depth", "ReLUs", "% ReLUs", "MACs"),
              ((s.name, *map(str, shape.get(s.name, ("", ""))), f"{s.relus:,}", pct(s.relus, counted.relus),
                human(s.macs)) for s in counted.stages))
    t.add_row("total", "", "", f"{counted.relus:,}", "100%", human(counted.macs), style="bold")
    return t


def sweep_table(done: Sweep) -> Table:
    """A synthesized sweep's summary: one network per budget, its shape and how close it came to it."""
    from ..accounting import DEFAULT_CONVENTION
    from ..synthesis import SUMMARY_FILE

    def online(row: dict[str, Any]) -> float:
        """A row's online seconds, whichever profile priced it."""
        return next(v for k, v in row.items() if k.endswith("_online_s"))

    return table(f"sweep -> {done.out}/ ({SUMMARY_FILE})  convention {DEFAULT_CONVENTION}",
                 ("budget", "shape", "widths", "ReLUs", "ReLUs/B", "MACs", "online"),
                 ((f"{r['budget']:,}", r["shape"], "/".join(map(str, r["widths"])), f"{r['relus']:,}",
                   f"{r['ratio']:.4f}", human(r["macs"]), f"{online(r):.2f}s") for r in done.rows),
                 left=("shape", "widths"), overflow="fold")


# -- reshape measure ----------------------------------------------------------------------------


def measurement_view(record: dict[str, Any]) -> Group:
    """``reshape measure``: what one private inference cost, by part, against the estimates."""
    return group(measurement_table(record), *measurement_lines(record))


def measurement_table(r: dict[str, Any]) -> Table:
    """The measured bytes, send actions and seconds: online in total and by kind, and the one-time setup."""
    m, b = r["measured"], r["backend"]
    t = table(f"{r['source']}: SPU {b['protocol']} {b['field']}, 2 parties ({b['link']} link), "
              f"weights {b['weights']}", ("part", "bytes", "send actions", "seconds"),
              [("online (total)", human(m["online_bytes"]), str(m["send_actions"]), f"{m['online_s']:.3f}")])
    for kind, row in m["by_kind"].items():
        t.add_row(f"  {kind}", human(row["bytes"]), str(row["send_actions"]), f"{row['seconds']:.3f}", style="dim")
    t.add_row("one-time setup", human(m["setup_bytes"]), "", f"{m['setup_s']:.3f}")
    return t


def measurement_lines(r: dict[str, Any]) -> list[RenderableType]:
    """The ReLU and linear parts of the bytes, measured over estimated, and the check against PyTorch."""
    relu, vs, c = r["relu_part"], r["measured_over_estimated"], r["counts"]
    lines: list[RenderableType] = [plain(f"ReLUs {c['relus']:,}  MACs {human(c['macs'])}")]
    if relu["per_kept_relu"] is not None:
        split = (f": {relu['slope_per_kept_relu']:.1f} B per kept ReLU ({relu['profile']} slope) + "
                 f"{human(relu['fixed_bytes'])}B fixed" if "profile" in relu else "")
        lines.append(plain(f"ReLU part {human(relu['bytes'])}B{split}; {relu['per_kept_relu']:.1f} B per kept ReLU "
                           f"with the fixed part"))
    lines.append(plain(f"linear part (convolutions and the rest) {human(r['linear_part']['bytes'])}B"))
    ratios = [f"{name} {v['ratio']:.2f} ({what} {v['profile']})" for name, what, v in (
        ("ReLU part", "vs the per-ReLU constant of", vs["relu_part_over_published"]),
        ("total", "vs the measured profile", vs.get("total_over_measured_profile"))) if v and v["ratio"] is not None]
    if ratios:
        lines.append(plain("measured/estimated bytes: " + "; ".join(ratios)))
    return [*lines, f"check: max |MPC - plaintext| = {r['check']['max_abs_diff']:.2e} "
                    f"(outputs up to {r['check']['max_abs_output']:.3g})", f"written to {r['file']}"]
