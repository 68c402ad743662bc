"""SENet vs SNL vs uniform allocation at the same budgets, same epochs, one harness.

A narrow ResNet18 teacher is trained once on real data (fashion-mnist-mini by default,
the full Fashion-MNIST with --full); then, for budgets of 2%, 5%, 10% and 25% of its
ReLUs, each method fits it to the budget with the same number of epochs per stage:

* senet    SENet: pruning sensitivity -> water-filling -> mask location -> KD + AT
* uniform  the same pipeline with one keep fraction in every layer (allocation baseline)
* snl      SNL: L1-driven soft masks -> binarize -> KD fine-tune

Every point lives in its own run directory under --work and is skipped when finished,
so an interrupted benchmark resumes where it stopped. Prints a table with accuracy and
exact ReLU counts, and writes results.json.

    python benchmarks/relu_budget.py [--full] [--epochs 3] [--teacher-epochs 10] [--width 16]
                                     [--limit N] [--work runs/relu_budget]
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

METHODS = ("senet", "uniform", "snl")
FRACTIONS = (0.02, 0.05, 0.10, 0.25)


def _teacher(args, data):
    from reshape.models import spec_for
    from reshape.models import build
    from reshape.runs import load_run
    from reshape.train import CHECKPOINT_FILE, TrainConfig, load_checkpoint, train

    out = Path(args.work) / "teacher"
    cfg = TrainConfig(epochs=args.teacher_epochs, batch_size=args.batch_size, lr=0.1,
                      warmup_epochs=1, dataset=args.data)
    done = (out / CHECKPOINT_FILE).is_file() and load_checkpoint(out)["epoch"] >= cfg.epochs
    if not done:
        spec = spec_for("resnet18", args.data, args.width)
        train(build(spec), spec, cfg, data["train"], data["test"], out,
              resume=(out / CHECKPOINT_FILE).is_file())
    return load_run(out)


def _point(method, budget, args):
    """One point through the method registry (``uniform`` is ``senet_uniform``), read back when done."""
    from reshape.methods import Setting, get_method

    out = Path(args.work) / f"{method}_{budget}"
    registered = get_method("senet_uniform" if method == "uniform" else method)
    if method == "snl":  # SNL's fine-tune keeps TrainConfig's KD mix (0.9), SENet uses 0.5
        params, kd_alpha = registered.params(lam=args.snl_lambda, mask_lr=args.snl_mask_lr, warmup=0), 0.9
    else:
        params, kd_alpha = registered.params(at_weight=args.at_weight), 0.5
    # --epochs is per stage: each method's student budget is twice it (mask phase + fine-tune for SNL).
    setting = Setting(args.data, limit=args.limit, epochs=2 * args.epochs, batch_size=args.batch_size,
                      kd_alpha=kd_alpha)
    result = registered.fit(Path(args.work) / "teacher", budget, out, setting, params)
    return out, {"test_top1": result.top1}, result.seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--full", action="store_true", help="Full Fashion-MNIST instead of the mini set.")
    parser.add_argument("--epochs", type=int, default=3, help="Epochs per stage of every method.")
    parser.add_argument("--teacher-epochs", type=int, default=10)
    parser.add_argument("--width", type=int, default=16)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--limit", type=int, help="Train every method on at most this many images.")
    parser.add_argument("--snl-lambda", type=float, default=1e-4,
                        help="SNL's initial L1 weight (published 1e-5 assumes 100+ epochs).")
    parser.add_argument("--snl-mask-lr", type=float, default=1e-2,
                        help="SNL's Adam lr for the mask phase (published 1e-3 moves a gate by at most "
                             "~1e-3 per step: too slow to reach a budget in a few epochs).")
    parser.add_argument("--at-weight", type=float, default=1000.0,
                        help="SENet's attention-transfer weight (published 1000; the frontier uses 100: "
                             "docs/senet.md).")
    parser.add_argument("--methods", default=",".join(METHODS))
    parser.add_argument("--work", default="runs/relu_budget")
    args = parser.parse_args()
    args.data = "fashion-mnist" if args.full else "fashion-mnist-mini"

    from rich.console import Console
    from rich.table import Table

    from reshape.count import count
    from reshape.data import splits
    from reshape.io import write_json
    from reshape.runs import load_run
    from reshape.train import evaluate

    data = dict(zip(("train", "test"), splits(args.data, limit=args.limit)))
    spec, teacher = _teacher(args, data)
    shape = spec.input_shape
    total = count(teacher, shape).relus
    teacher_top1 = evaluate(teacher, data["test"])["top1"]
    rows = [{"method": "teacher", "fraction": 1.0, "budget": total, "relus": total, "top1": teacher_top1}]
    for fraction in FRACTIONS:
        budget = int(fraction * total)
        for method in args.methods.split(","):
            out, metrics, seconds = _point(method, budget, args)
            relus = count(load_run(out)[1], shape).relus
            rows.append({"method": method, "fraction": fraction, "budget": budget, "relus": relus,
                         "top1": metrics["test_top1"], "seconds": round(seconds, 1), "run": str(out)})
    write_json(Path(args.work) / "results.json", {"args": vars(args), "rows": rows})
    table = Table(title=f"ReLU budget on {args.data}: narrow ResNet18 (width {args.width}), "
                        f"{args.epochs} epochs per stage", title_justify="left")
    for col in ("budget", "ReLUs", *args.methods.split(",")):
        table.add_column(col, justify="right")
    table.add_row("teacher", f"{total:,}", *[f"{100 * teacher_top1:.2f}%"] * len(args.methods.split(",")))
    for fraction in FRACTIONS:
        cells = {r["method"]: r for r in rows if r["fraction"] == fraction}
        first = next(iter(cells.values()))
        table.add_row(f"{100 * fraction:g}%", f"{first['budget']:,}",
                      *[f"{100 * cells[m]['top1']:.2f}%" for m in args.methods.split(",")])
    Console().print(table)
    print(json.dumps(rows))


if __name__ == "__main__":
    main()
