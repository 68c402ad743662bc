"""``reshape shallow``: the shallow-block method (remove inner ReLUs of chosen blocks, merge them)."""
from __future__ import annotations

from typing import Any

import click

from ._common import echo_json, human, user_errors
from ._training import pop_training, train_config, training_options


@click.command("shallow")
@click.argument("run_dir", type=click.Path(file_okay=False))
@click.option("--relus", required=True,
              help="ReLU target per image: a count (300k, 1.2M) or a fraction of the model's (0.6).")
@click.option("--macs", help="Optional MAC target: a count (40M) or a fraction of the model's (0.8).")
@click.option("--mode", type=click.Choice(["exact", "compact"]), default="compact", show_default=True,
              help="exact: one lossless K x K conv per block (more MACs); compact: one 3x3 conv, "
                   "least-squares fitted and KD fine-tuned (fewer MACs).")
@click.option("--data", required=True, help="Dataset the model in RUN_DIR was trained on.")
@click.option("--root", type=click.Path(file_okay=False), help="Folder holding the dataset files.")
@click.option("--out", required=True, type=click.Path(file_okay=False), help="Output run directory.")
@click.option("--json", "as_json", is_flag=True, help="Print shallow.json's content as JSON.")
@training_options(epochs=10, lr=0.05, kd_alpha=0.5)
@user_errors
def command(run_dir: str, relus: str, macs: str | None, mode: str, data: str, root: str | None, out: str,
            as_json: bool, **opts: Any) -> None:
    """Cut the ReLUs of the trained model in RUN_DIR to --relus by merging whole residual blocks.

    \b
    Stages (each resumable: rerun the same command after an interruption):
    1. score each block: rise in KD loss when its inner ReLUs become identity, per
       ReLU saved; take blocks in increasing score order until --relus (and --macs)
       is met (OUT/shallow.json);
    2. linearize them (padding-exact form) and fine-tune with KD (OUT/linearized/);
    3. merge each into one conv: exact (checked to 1e-4 against stage 2) or compact
       (3x3, least-squares fit, then KD fine-tuned in OUT).
    OUT is a rewritten run: `reshape count OUT` and `reshape eval OUT` work on it.
    --epochs sets the epochs of each training stage.

    \b
    Example:
      reshape train resnet18 --data fashion-mnist-mini --width 16 --out runs/teacher
      reshape shallow runs/teacher --relus 0.7 --data fashion-mnist-mini --epochs 3 --out runs/shallow70
    """
    from reshape import shallow
    from reshape.data import probe_batches
    from reshape.graph import trace

    from ._budget import teacher_and_data
    from ._common import amount_or_fraction

    shared = pop_training(opts)
    cfg = train_config(shared, dataset=data)
    t = teacher_and_data(run_dir, data, root, limit=shared["limit"], seed=shared["seed"])
    mg = trace(t.model, t.spec.input_shape)
    relu_target = amount_or_fraction(relus, mg.relus, "--relus")
    mac_target = amount_or_fraction(macs, mg.macs, "--macs") if macs else None
    result = shallow.run(t.spec, t.model, out, t.train_set, t.test_set, relu_target, mac_target, mode, cfg,
                         probe_batches(t.train_set), graph=mg)
    if as_json:
        echo_json({"out": out, **result})
        return
    _print(out, result)


def _print(out: str, result: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    stages = ("before", "linearized", "after")
    t = Table(title=f"{out}: shallow blocks, {result['mode']} merge", title_justify="left")
    t.add_column("")
    for stage in stages:
        t.add_column(stage, justify="right")
    t.add_row("ReLUs", *(f"{result[s]['relus']:,}" for s in stages))
    t.add_row("MACs", *(human(result[s]["macs"]) for s in stages))
    t.add_row("nonlinear depth", *(str(result[s]["nonlinear_depth"]) for s in stages))
    t.add_row("test top-1", *(_pct(result[s]["top1"]) for s in stages))
    console.print(t)
    errors = {m["name"]: m["max_rel_error"] for m in result["merges"]}
    b = Table(title="blocks by score (KD-loss rise per ReLU saved)", title_justify="left")
    for col in ("block", "score", "KD rise", "ReLUs saved", "MAC change", "merged", "merge error"):
        b.add_column(col, justify="left" if col == "block" else "right")
    for s in sorted(result["scores"], key=lambda s: s["score"]):
        merged = s["block"] in errors
        b.add_row(s["block"], f"{s['score']:.3g}", f"{s['sensitivity']:.3g}", f"{s['relus_saved']:,}",
                  f"{s['mac_change']:+,}", "yes" if merged else "", f"{errors[s['block']]:.1e}" if merged else "")
    console.print(b)


def _pct(top1: float | None) -> str:
    return "-" if top1 is None else f"{100 * top1:.2f}%"
