"""What the commands that train, fit, search and compare print: views of trained results,
returned as rich tables and lines or as plain strings, never printed (``reshape.report.views``
has those of what a network is and costs, the cells both are built of, and how a command uses them)."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Mapping, Sequence

from .views import group, human, pct, percent, plain, styled, table

if TYPE_CHECKING:
    from rich.console import Group
    from rich.table import Table

    from ..frontier import FrontierResult
    from ..methods import MethodResult
    from ..methods.criticality import Criticality
    from ..train import FitResult
    from .export import ExportResult
    from .pareto import Point


# -- a run: train, eval, a method, export -------------------------------------------------------


def trained_line(out: str, result: FitResult) -> str:
    """``reshape train``: how the last epoch scored."""
    metrics = result.metrics
    return (f"{out}: test top-1 {percent(metrics['test_top1'])}  top-5 {percent(metrics['test_top5'])}  "
            f"after {metrics['epoch']} epochs")


def read_back_line(out: str, again: str) -> str:
    """Why nothing trained: the run was finished with these settings (``again`` says how to retrain)."""
    return f"{out} was already trained with these settings: read back, nothing trained ({again})"


def eval_line(scored: Mapping[str, Any]) -> str:
    """``reshape eval`` (``reshape.train.evaluate_run``): a run's test accuracy and loss, and its
    exact ReLU count."""
    return (f"{scored['run']} ({scored['label']}) on {scored['data']}: top-1 {percent(scored['top1'])}  "
            f"top-5 {percent(scored['top5'])}  loss {scored['loss']:.4f}  ReLUs {scored['relus']:,}")


def method_line(result: MethodResult) -> str:
    """A method run in one line: its ReLUs against the budget, MACs and test top-1."""
    note = "  (finished earlier: read back)" if result.cached else ""
    return (f"{result.run}: {result.method}  ReLUs {result.relus:,} (budget {result.budget:,})  "
            f"MACs {result.macs:,}  test top-1 {percent(result.top1)}{note}")


def per_stage_line(per_stage: dict[str, int]) -> str:
    """The plan's split of the kept ReLUs over the stages, e.g. ``stem 12 (1.1%)  layer1 ...``."""
    total = sum(per_stage.values()) or 1
    order = sorted(per_stage, key=lambda stage: (stage != "stem", len(stage), stage))  # JSON read-backs sort keys
    return "ReLUs per stage: " + "  ".join(f"{stage} {per_stage[stage]:,} ({pct(per_stage[stage], total)})"
                                           for stage in order)


def export_lines(result: ExportResult) -> str:
    """``reshape export``: the files written and how far ONNX runtime's output is from PyTorch's."""
    from .export import CHECK_BATCH

    lines = [f"wrote {file}" for file in result.files]
    if result.onnx_max_diff is not None:
        lines.append(f"ONNX check: max |onnxruntime - PyTorch| = {result.onnx_max_diff:.3g} "
                     f"on a batch of {CHECK_BATCH}")
    return "\n".join(lines)


def demo_line(done: Any) -> str:
    """The demo's last line: how long it took and where its answer is (``done``: a ``reshape.demo.DemoResult``,
    from the layer above, read by its fields)."""
    return f"[bold green]demo done[/] in {done.seconds:.0f} s: {done.summary}, {done.figure}, {done.export}/"


# -- methods and what they see ------------------------------------------------------------------


def methods_text(rows: Sequence[Mapping[str, Any]]) -> str:
    """``reshape methods``: each method's family, summary, params with defaults, and presets."""
    def listed(params: Mapping[str, Any]) -> str:
        """Params as ``name=value`` pairs."""
        return ", ".join(f"{k}={param_text(v)}" for k, v in params.items())

    return "\n".join(
        f"{row['name']} ({row['family']}): {row['summary']}\n    params: {listed(row['params']) or 'none'}\n"
        f"    presets: {', '.join(row['presets'])}"
        + "".join(f"; {name}: {listed(over)}" for name, over in row["presets"].items() if over) for row in rows)


def param_text(value: object) -> str:
    """A param's value as it is written on the command line (tuples as comma lists)."""
    if isinstance(value, list):
        return ",".join(str(v) for v in value)
    return str(value)


def sensitivity_table(title: str, rows: Sequence[Mapping[str, Any]], allocated: bool) -> Table:
    """Each ReLU layer's size and sensitivity, and with a budget the ReLUs it keeps."""
    return table(title, ("layer", "ReLUs in layer", "sensitivity", *(["allocated", "kept %"] if allocated else [])),
                 ((r["layer"], f"{r['size']:,}", f"{r['sensitivity']:.4g}",
                   *([f"{r['relus']:,}", pct(r["relus"], r["size"])] if allocated else [])) for r in rows))


def criticality_view(result: Criticality, out: str | None, *, width_option: str, epochs_option: str,
                     ranking_use: str) -> Group:
    """``reshape criticality``: each stage's accuracy alone and its criticality, then the ranking
    as ``ranking_use`` takes it (the options are named by the caller)."""
    width = f" {width_option} {result.width}" if result.width else ""
    epochs = result.recipe["epochs"]
    t = table(f"{result.backbone}{width} on {result.dataset}: stage criticality "
              f"({epochs} epoch{'s' if epochs != 1 else ''} each)", ("network", "ReLUs", "test top-1", "criticality"),
              [("all ReLUs", f"{result.full_relus:,}", percent(result.acc_full), "1")])
    for k, (acc, score, relus) in enumerate(zip(result.stage_acc, result.scores, result.stage_relus), start=1):
        t.add_row(f"stage {k} only" + (" (+ stem)" if k == 1 else ""), f"{relus:,}", percent(acc),
                  "n/a" if score is None else f"{score:.3f}")
    t.add_row("all linear", "0", percent(result.acc_lin), "0")
    ranking = ",".join(map(str, result.ranking))
    return group(t, styled(f"note: the all-ReLU network did not beat the linear one; train longer ({epochs_option}) "
                           "for a meaningful criticality", "yellow") if result.acc_full <= result.acc_lin else None,
                 plain(f"ranking, least -> most critical: {ranking}  ({ranking_use} {ranking})"),
                 plain(f"cached in {result.folder}" + (f"; wrote {out}" if out else "")))


def shallow_view(out: str, built: dict[str, Any]) -> Group:
    """``reshape shallow``: the network before, linearized and merged, and every block's score."""
    stages = ("before", "linearized", "after")
    t = table(f"{out}: shallow blocks, {built['mode']} merge", ("", *stages), (
        ("ReLUs", *(f"{built[s]['relus']:,}" for s in stages)),
        ("MACs", *(human(built[s]["macs"]) for s in stages)),
        ("nonlinear depth", *(str(built[s]["nonlinear_depth"]) for s in stages)),
        ("test top-1", *(percent(built[s]["top1"]) for s in stages))))
    errors = {m["name"]: m["max_rel_error"] for m in built["merges"]}
    blocks = table("blocks by score (KD-loss rise per ReLU saved)",
                   ("block", "score", "KD rise", "ReLUs saved", "MAC change", "merged", "merge error"),
                   ((s["block"], f"{s['score']:.3g}", f"{s['sensitivity']:.3g}", f"{s['relus_saved']:,}",
                     f"{s['mac_change']:+,}", *(("yes", f"{errors[s['block']]:.1e}") if s["block"] in errors
                                                else ("", ""))) for s in sorted(built["scores"],
                                                                                key=lambda s: s["score"])))
    return group(t, blocks)


# -- search, frontier, pareto -------------------------------------------------------------------


def trials_table(rows: Sequence[Mapping[str, Any]], study_name: str) -> Table:
    """``reshape search``: the completed trials, best validation (else test) top-1 first."""
    def trial(row: Mapping[str, Any]) -> tuple[str, ...]:
        """One trial's cells."""
        params = ", ".join(f"{k}={v}" for k, v in row["params"].items() if k != "budget")
        return (f"{row['number']}{' (warm start)' if row['warm_start'] else ''}", human(row["budget"]),
                f"{row['relus']:,}", human(row["macs"]), percent(row["val_top1"]), percent(row["top1"]),
                "yes" if row["feasible"] else "no", params)

    return table(f"study {study_name}: {len(rows)} complete trials",
                 ("trial", "budget", "ReLUs", "MACs", "val", "top-1", "feasible", "params"),
                 map(trial, sorted(rows, key=lambda r: -(r["val_top1"] or r["top1"] or 0))),
                 left=("params",), title_justify="center")


def frontier_view(result: FrontierResult) -> Group:
    """``reshape frontier``: its table, its pairs and its iso-accuracy ReLUs, and whether the training agrees."""
    from .frontier import compute_note, iso_table, pairs_table
    from .frontier import table as frontier_table

    return group(*(table(title, header, body, left=3) for title, (header, body) in (
        (f"Frontier on {result.setting['data']}", frontier_table(result)),
        ("Paired: ours - baseline (points, same seed)", pairs_table(result)),
        ("ReLUs at iso-accuracy", iso_table(result))) if body), plain(compute_note(result)))


def points_view(points: Sequence[Point], dataset: str, out: str | None, unit: str | None) -> Group:
    """``reshape pareto``: every point against ReLUs (or a measured cost), ours first, and which are on a front."""
    t = table(f"{dataset}: top-1 against {f'measured {unit}' if unit else 'ReLUs'}",
              ("method", "ReLUs", *([f"measured {unit}"] if unit else []), "top-1 %", "on front", "source"),
              left=("method", "on front", "source"), no_wrap=("ReLUs", f"measured {unit}", "top-1 %", "on front"))
    for p in sorted(points, key=lambda p: (not p.ours, p.method, p.x)):
        cost = [f"{p.cost:,.0f}" if unit == "bytes" else f"{p.cost:.3f}"] if unit else []
        t.add_row(p.method if p.ours else f"{p.method} (published)", f"{p.relus:,}", *cost, f"{p.top1:.2f}",
                  "yes" if p.on_front else "", p.source, style=None if p.ours else "dim")
    return group(t, f"plot written to {out}" if out else None)
