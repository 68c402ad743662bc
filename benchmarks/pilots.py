"""Pilots that pick a short-run setting, scored on the validation split (issue 22, item 6).

For one method and one param, each value is a frontier of its own (same teacher, images,
seeds and budgets; ``reshape.frontier.run_frontier``), and the value with the best mean
validation top-1 over every budget and seed is chosen. The test split is printed beside
it only to report: it never picks.

    python benchmarks/pilots.py --method senet --param at_weight --values 100,1000
    python benchmarks/pilots.py --method snl --preset snl          # SHORT_RUN against the published schedule

Writes WORK/<method>-<param>-<value>/ (one frontier each) and, with --record FILE, the
table as JSON (docs/results/pilot-*.json).
"""
from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path
from typing import Any

from reshape.methods.snl import SHORT_RUN

#: Named alternatives: a pilot of whole param sets rather than one param's values.
PRESETS: dict[str, dict[str, dict[str, Any]]] = {
    "snl": {"short-run": dict(SHORT_RUN), "published": {}},
}


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--method", required=True)
    parser.add_argument("--param", help="The param the values set (with --values).")
    parser.add_argument("--values", help="Comma-separated values of --param.")
    parser.add_argument("--preset", choices=sorted(PRESETS), help="Compare the named param sets instead.")
    parser.add_argument("--set", dest="sets", action="append", default=[], metavar="PARAM=VALUE",
                        help="A param every variant shares (repeatable).")
    parser.add_argument("--data", default="fashion-mnist-mini")
    parser.add_argument("--width", type=int, default=8)
    parser.add_argument("--limit", type=int, default=2000)
    parser.add_argument("--val", type=int, default=500)
    parser.add_argument("--teacher-epochs", type=int, default=4)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--fractions", default="0.05,0.33")
    parser.add_argument("--seeds", default="0,1")
    parser.add_argument("--work", default="runs/pilots")
    parser.add_argument("--record")
    args = parser.parse_args(argv)
    if bool(args.preset) == bool(args.param and args.values):
        parser.error("give --param with --values, or --preset")
    shared = dict(s.split("=", 1) for s in args.sets)
    if args.preset:
        args.variants = {name: {**shared, **p} for name, p in PRESETS[args.preset].items()}
    else:
        args.variants = {f"{args.param}={v}": {**shared, args.param: v} for v in args.values.split(",")}
    return args


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = parse(argv)
    from reshape.frontier import run_frontier
    from reshape.io import write_json
    from reshape.methods import setting_config, setting_splits
    from reshape.models import spec_for
    from reshape.setting import Setting, parse_seeds
    from reshape.train import fit

    seeds = parse_seeds(args.seeds)
    fractions = [float(f) for f in args.fractions.split(",")]
    setting = Setting(data=args.data, limit=args.limit, val=args.val, seed=seeds[0], epochs=args.epochs,
                      batch_size=args.batch_size)
    teacher = Path(args.work) / "teacher"
    fit(teacher, spec_for("resnet18", args.data, args.width),
        setting_config(setting, args.teacher_epochs, 0.1, warmup_epochs=int(args.teacher_epochs > 1)),
        setting_splits(setting), progress=False)
    table = []
    for name, params in args.variants.items():
        folder = Path(args.work) / f"{args.method}-{name.replace('=', '-')}"
        result = run_frontier(teacher, [args.method], fractions, setting, folder, {args.method: params},
                              seeds=seeds)
        points = [r for r in result.points if r["reachable"]]
        val = [r["val_top1"] for r in points]
        test = [r["top1"] for r in points]
        table.append({"variant": name, "params": params, "points": len(points),
                      "val_top1": statistics.fmean(val), "test_top1": statistics.fmean(test),
                      "per_budget": [{k: r[k] for k in ("label", "top1", "top1_se", "val_top1", "val_top1_se")}
                                     for r in result.summary]})
    chosen = max(table, key=lambda row: row["val_top1"])
    for row in table:
        mark = "  <- chosen on validation" if row is chosen else ""
        print(f"{args.method} {row['variant']:>24}: val {100 * row['val_top1']:.2f}%  "
              f"(test {100 * row['test_top1']:.2f}%, reported only){mark}")
    if args.record:
        write_json(args.record, {"method": args.method, "command": "python benchmarks/pilots.py " + " ".join(argv),
                                 "machine": result.machine, "setting": result.setting, "seeds": list(seeds),
                                 "variants": table, "chosen": chosen["variant"]})
    return 0


if __name__ == "__main__":
    sys.exit(main())
